"""Shape datasets with real aspect ratios (#28): landscape, portrait, 2:1, 1:2 and odd sizes load in
mmdet / mmseg with every mask and label map at its own image's size; square sets are unchanged."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Dict

import numpy as np
import pytest
from PIL import Image

from demo.shapes import (ADE_CLASSES, ADE_PALETTE, COCO_CLASSES, SIZE_PRESETS, make_ade20k,
                         make_coco)
from demo.shapes.cli import main as make_shapes
from demo.shapes.draw import image_rng, scene

#: small sizes with real ratios: 4:3, 3:4, 2:1, 1:2, odd sizes
SIZES = '160x120,120x160,200x100,100x200,107x160,125x83,97x131'
WH = [tuple(map(int, s.split('x'))) for s in SIZES.split(',')]


@pytest.fixture(scope='module')
def mixed(tmp_path_factory) -> Dict[str, dict]:
    base = tmp_path_factory.mktemp('mixed')
    return dict(coco=make_coco(base / 'coco', num_train=1, num_val=len(WH), sizes=SIZES, seed=1),
                ade=make_ade20k(base / 'ade', num_train=1, num_val=len(WH), sizes=SIZES))


def _expected_hw(i: int):
    w, h = WH[i % len(WH)]
    return h, w


def test_coco_mixed_sizes_load_in_mmdet_and_gt_scores_map_1(mixed):
    import torch
    from mmcv.transforms import LoadImageFromFile
    from mmdet.datasets import CocoDataset
    from mmdet.datasets.transforms import LoadAnnotations
    from mmdet.evaluation import CocoMetric
    split = mixed['coco']['splits']['val']
    coco = json.loads(Path(split['ann_file']).read_text())
    sizes = {img['id']: (img['height'], img['width']) for img in coco['images']}
    assert [sizes[i + 1] for i in range(len(WH))] == [_expected_hw(i) for i in range(len(WH))]
    rles = [a for a in coco['annotations'] if isinstance(a['segmentation'], dict)]
    assert rles and all(a['segmentation']['size'] == list(sizes[a['image_id']]) for a in rles)
    ds = CocoDataset(data_root=mixed['coco']['root'], ann_file=split['ann_file'],
                     data_prefix=dict(img=split['img_dir'] + '/'), test_mode=True,
                     metainfo=dict(classes=COCO_CLASSES),
                     pipeline=[LoadImageFromFile(), LoadAnnotations(with_mask=True)])
    metric = CocoMetric(ann_file=split['ann_file'], metric=['bbox', 'segm'])
    metric.dataset_meta = ds.metainfo
    for i in range(len(ds)):
        sample = ds[i]
        h, w = sample['img'].shape[:2]
        assert (h, w) == sizes[sample['img_id']]
        masks = sample['gt_masks'].to_ndarray()
        assert masks.shape[1:] == (h, w) and len(masks)
        assert masks.reshape(len(masks), -1).any(1).all()
        boxes = sample['gt_bboxes'].tensor
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
        for box, mask in zip(boxes.tolist(), masks):  # the JSON bbox is its mask's box
            ys, xs = np.nonzero(mask)
            np.testing.assert_allclose(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1],
                                       atol=1)
        pred = dict(bboxes=boxes, labels=torch.as_tensor(sample['gt_bboxes_labels']),
                    scores=torch.ones(len(masks)), masks=torch.as_tensor(masks).bool())
        metric.process({}, [dict(pred_instances=pred, img_id=sample['img_id'],
                                 ori_shape=sample['ori_shape'])])
    results = metric.evaluate(len(ds))
    assert results['coco/bbox_mAP'] == 1.0 and results['coco/segm_mAP'] == 1.0, results


def test_ade_mixed_sizes_load_in_mmseg_with_label_map_of_image_size(mixed):
    from mmcv.transforms import LoadImageFromFile
    from mmseg.datasets import BaseSegDataset
    from mmseg.datasets.transforms import LoadAnnotations
    ds = BaseSegDataset(data_root=mixed['ade']['data_root'],
                        data_prefix=dict(img_path='images/validation',
                                         seg_map_path='annotations/validation'),
                        img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True,
                        metainfo=dict(classes=ADE_CLASSES, palette=ADE_PALETTE),
                        pipeline=[LoadImageFromFile(), LoadAnnotations()])
    assert len(ds) == len(WH)
    for i in range(len(ds)):
        sample = ds[i]
        assert sample['img'].shape[:2] == sample['gt_seg_map'].shape == _expected_hw(i)
        assert (sample['gt_seg_map'] == 0).any() and (sample['gt_seg_map'] > 0).any()


def test_objects_reach_every_border_of_wide_and_tall_images():
    """Placement spans the whole canvas (x along the width, y along the height) and objects keep
    a share of the image that survives a keep-ratio resize."""
    for hw in ((100, 400), (400, 100)):
        boxes, shares = [], []
        for i in range(30):
            _, objects = scene(image_rng(0, 'coco', 'train', i), hw, max_objects=4)
            for _, _, mask in objects:
                ys, xs = np.nonzero(mask)
                boxes.append((xs.min(), ys.min(), xs.max(), ys.max()))
                shares.append(mask.mean())
        x0, y0, x1, y1 = np.array(boxes).T
        h, w = hw
        assert x0.min() < 0.1 * w and y0.min() < 0.1 * h, hw
        assert x1.max() > 0.9 * w and y1.max() > 0.9 * h, hw
        assert min(shares) > 0.005, hw


def test_mixed_sets_are_reproducible(tmp_path):
    for name in 'ab':
        make_ade20k(tmp_path / name, num_train=3, num_val=1, sizes=[(64, 40), (40, 64)], seed=2)
    files = sorted(p.relative_to(tmp_path / 'a') for p in (tmp_path / 'a').rglob('*')
                   if p.is_file())
    assert len(files) == 9
    for rel in files:
        assert (tmp_path / 'a' / rel).read_bytes() == (tmp_path / 'b' / rel).read_bytes(), rel


def test_square_sets_are_unchanged(tmp_path):
    """Golden hashes of the square output from before sizes existed: the demo's measured
    numbers were trained on it (they also change if numpy's or Pillow's drawing changes)."""
    make_coco(tmp_path / 'coco', num_train=3, num_val=1, image_size=64, seed=0)
    make_ade20k(tmp_path / 'ade', num_train=3, num_val=1, image_size=64, seed=0)
    coco = tmp_path / 'coco'
    digest = {name: hashlib.sha256((coco / name).read_bytes()).hexdigest()
              for name in ('annotations/instances_train2017.json', '.synthetic_shapes.json')}
    assert digest == {
        'annotations/instances_train2017.json':
            'f077f3180f681510b0f5a38ad05efcdee70d99f84b8606da0a576b78afb74525',
        '.synthetic_shapes.json':
            '57c248455df048f4b82e9b4aa54c37613f3f843756cc7f128c4dd17282fd2706'}
    labels = hashlib.sha256()
    for p in sorted((tmp_path / 'ade/ADEChallengeData2016/annotations/training').glob('*.png')):
        labels.update(np.asarray(Image.open(p)).tobytes())
    assert labels.hexdigest() == '6783fa28e33063afbe91cd3f0a2acf2a46df63ce36513ca659088d0deef23d42'


def test_presets_are_real_ratios_within_limits():
    from demo.shapes import check_sizes
    for name, sizes in SIZE_PRESETS.items():
        assert check_sizes(name) == sizes
        ratios = [w / h for w, h in sizes]
        assert min(ratios) <= 0.5 and max(ratios) >= 2, name  # 1:2 and 2:1 at least
        assert any(w % 2 and h % 2 for w, h in sizes), name  # an odd size


# ----------------------------------------------------------------------------- CLI
def test_cli_sizes_for_det_and_seg_cls_stays_square(tmp_path, capsys):
    assert make_shapes(['all', '--out', str(tmp_path), '--num-train', '2', '--num-val', '1',
                        '--sizes', '64x48,48x64']) == 0
    coco = json.loads((tmp_path / 'coco/annotations/instances_train2017.json').read_text())
    assert [(i['width'], i['height']) for i in coco['images']] == [(64, 48), (48, 64)]
    ade = tmp_path / 'ade/ADEChallengeData2016'
    for i, size in enumerate([(64, 48), (48, 64)]):
        stem = f'ADE_train_{i + 1:08d}'
        assert Image.open(ade / f'images/training/{stem}.jpg').size == size
        assert Image.open(ade / f'annotations/training/{stem}.png').size == size
    assert {Image.open(p).size for p in (tmp_path / 'cls/train').rglob('*.png')} == {(64, 64)}
    marker = json.loads((tmp_path / 'coco/.synthetic_shapes.json').read_text())
    assert marker['sizes'] == [[64, 48], [48, 64]] and marker['image_size'] is None


@pytest.mark.parametrize('args, needle', [
    (['det', '--sizes', '160x120,12y4'], "'12y4'"),
    (['seg', '--sizes', '20x100'], 'width 20'),
    (['det', '--sizes', '100x3000'], 'height 3000'),
    (['det', '--sizes', ''], "got ''"),
    (['all', '--sizes', 'cocoo'], 'coco, ade20k'),
    (['cls', '--sizes', 'coco'], 'square'),
    (['det', '--size', '64', '--sizes', 'coco'], 'not allowed with argument --size'),
])
def test_cli_bad_sizes_one_line_exit_2_nothing_written(tmp_path, capsys, args, needle):
    with pytest.raises(SystemExit) as exit_info:
        make_shapes([*args, '--out', str(tmp_path / 'out')])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('make_shapes.py: error: ') and needle in err[0], err
    assert '--sizes' in err[0]
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('sizes', [[(64, 20)], [(64,)], 7, [], ['64x48']])
def test_api_bad_sizes_raise_before_writing(tmp_path, sizes):
    with pytest.raises(ValueError, match='sizes'):
        make_coco(tmp_path / 'out', num_train=1, num_val=1, sizes=sizes)
    assert not (tmp_path / 'out').exists()
