"""The synthetic shape datasets are deterministic and load in the real OpenMMLab toolboxes."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
from PIL import Image

from demo.shapes import (ADE_CLASSES, ADE_PALETTE, COCO_CLASSES, MIN_IMAGE_SIZE,
                                 SHAPE_CLASSES, make_ade20k, make_classification, make_coco)

from .helpers import PY, REPO, tool_env

CLI = REPO / 'tools' / 'make_shapes.py'

CLS_KW = dict(num_train_per_class=4, num_val_per_class=2, image_size=32)
COCO_KW = dict(num_train=10, num_val=12, image_size=96)
ADE_KW = dict(num_train=6, num_val=5, image_size=64)


@pytest.fixture(scope='module')
def data(tmp_path_factory) -> Dict[str, dict]:
    """One small dataset of each kind, shared by the loading tests."""
    base = tmp_path_factory.mktemp('shapes')
    return dict(cls=make_classification(base / 'cls', **CLS_KW),
                coco=make_coco(base / 'coco', **COCO_KW),
                ade=make_ade20k(base / 'ade', **ADE_KW))


def _files(root: Path) -> Dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob('*')) if p.is_file()}


def _content(path: Path):
    """Pixels for images (what 'identical images' means), bytes for everything else."""
    if path.suffix in ('.png', '.jpg'):
        return np.asarray(Image.open(path)).tobytes()
    return path.read_bytes()


# ----------------------------------------------------------------------------- determinism
@pytest.mark.parametrize('make, kw', [(make_classification, CLS_KW), (make_coco, COCO_KW),
                                      (make_ade20k, ADE_KW)])
def test_same_seed_same_files_other_seed_differs(tmp_path, make, kw):
    make(tmp_path / 'a', seed=3, **kw)
    make(tmp_path / 'b', seed=3, **kw)
    make(tmp_path / 'c', seed=4, **kw)
    a, b, c = (_files(tmp_path / n) for n in 'abc')
    assert a.keys() == b.keys() and len(a) > 4
    for rel in a:
        assert a[rel].read_bytes() == b[rel].read_bytes(), rel  # byte-identical, images too
    differing = [rel for rel in a if rel in c and _content(a[rel]) != _content(c[rel])]
    images = [rel for rel in a if rel.endswith(('.png', '.jpg'))]
    assert len([r for r in differing if r in images]) >= len(images) // 2
    if make is make_coco:
        assert 'annotations/instances_train2017.json' in differing


def test_image_i_does_not_depend_on_count(tmp_path):
    make_coco(tmp_path / 'small', num_train=2, num_val=1, image_size=64)
    make_coco(tmp_path / 'big', num_train=5, num_val=1, image_size=64)
    for name in ('000000000001.jpg', '000000000002.jpg'):
        assert (tmp_path / 'small/train2017' / name).read_bytes() == \
            (tmp_path / 'big/train2017' / name).read_bytes()


def test_regenerating_replaces_old_files(tmp_path):
    make_classification(tmp_path, num_train_per_class=3, num_val_per_class=2, image_size=32)
    make_classification(tmp_path, num_train_per_class=1, num_val_per_class=1, image_size=32)
    assert len(list((tmp_path / 'train').rglob('*.png'))) == len(SHAPE_CLASSES)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.staging')]


# ----------------------------------------------------------------------------- classification
def test_classification_loads_as_imagenet_and_customdataset(data):
    from mmpretrain.datasets import CustomDataset, ImageNet
    root = data['cls']['root']
    for split, per_class in (('train', CLS_KW['num_train_per_class']),
                             ('val', CLS_KW['num_val_per_class'])):
        ds = ImageNet(data_root=root, split=split, metainfo=dict(classes=SHAPE_CLASSES))
        assert len(ds) == per_class * len(SHAPE_CLASSES)
        assert tuple(ds.CLASSES) == SHAPE_CLASSES
        infos = [ds.get_data_info(i) for i in range(len(ds))]
        for info in infos:  # label index names the folder the image is in
            assert Path(info['img_path']).parent.name == SHAPE_CLASSES[info['gt_label']]
        assert np.bincount([i['gt_label'] for i in infos]).tolist() == [per_class] * 5
        folder = CustomDataset(data_root=root, data_prefix=split)
        assert tuple(folder.CLASSES) == SHAPE_CLASSES
        assert sorted((i['img_path'], i['gt_label']) for i in infos) == \
            sorted((folder.get_data_info(i)['img_path'], folder.get_data_info(i)['gt_label'])
                   for i in range(len(folder)))


def test_classification_images_are_rgb_of_requested_size(data):
    paths = list(Path(data['cls']['root'], 'train').rglob('*.png'))
    assert paths
    for p in paths:
        img = Image.open(p)
        assert img.mode == 'RGB' and img.size == (CLS_KW['image_size'], ) * 2


# ----------------------------------------------------------------------------- COCO
def _load_coco(data, split):
    from pycocotools.coco import COCO
    return COCO(str(data['coco']['splits'][split]['ann_file']))


def test_coco_json_decodes_to_consistent_masks(data):
    coco = _load_coco(data, 'train')
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(COCO_CLASSES)
    assert len(coco.getImgIds()) == COCO_KW['num_train']
    kinds = {'polygon': 0, 'rle': 0}
    for img_id in coco.getImgIds():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
        assert anns, f'image {img_id} has no objects'
        for ann in anns:
            assert ann['iscrowd'] == 0 and 1 <= ann['category_id'] <= len(COCO_CLASSES)
            seg = ann['segmentation']
            if isinstance(seg, dict):
                kinds['rle'] += 1
                assert isinstance(seg['counts'], str)
            else:
                kinds['polygon'] += 1
                assert len(seg[0]) >= 6 and len(seg[0]) % 2 == 0
            mask = coco.annToMask(ann)
            assert mask.shape == (COCO_KW['image_size'], ) * 2
            assert abs(int(mask.sum()) - ann['area']) <= max(2, 0.02 * ann['area'])
            ys, xs = np.nonzero(mask)
            x, y, w, h = ann['bbox']
            assert x - 0.5 <= xs.min() and xs.max() + 1 <= x + w + 0.5
            assert y - 0.5 <= ys.min() and ys.max() + 1 <= y + h + 0.5
    assert kinds['polygon'] > kinds['rle'] > 0, kinds


def test_coco_objects_are_visible_in_the_image(data):
    """Pixels inside a mask differ from the ring just outside it (the shape is drawn there)."""
    from scipy import ndimage
    coco = _load_coco(data, 'val')
    contrasts = []
    for ann in coco.loadAnns(coco.getAnnIds()):
        info = coco.loadImgs(ann['image_id'])[0]
        img = np.asarray(Image.open(Path(data['coco']['splits']['val']['img_dir'],
                                         info['file_name'])), dtype=np.float64)
        mask = coco.annToMask(ann).astype(bool)
        inner = ndimage.binary_erosion(mask, iterations=2)
        ring = ndimage.binary_dilation(mask, iterations=3) & ~ndimage.binary_dilation(mask)
        if inner.sum() and ring.sum():
            contrasts.append(np.abs(img[inner].mean(0) - img[ring].mean(0)).sum())
    assert contrasts and np.median(contrasts) > 40


def test_coco_loads_in_mmdet_and_scores_perfect_with_gt_predictions(data):
    import torch
    from mmdet.datasets import CocoDataset
    from mmdet.datasets.transforms import LoadAnnotations
    from mmdet.evaluation import CocoMetric
    from mmcv.transforms import LoadImageFromFile
    split = data['coco']['splits']['val']
    ds = CocoDataset(data_root=str(data['coco']['root']), ann_file=str(split['ann_file']),
                     data_prefix=dict(img=str(split['img_dir']) + '/'),
                     metainfo=dict(classes=COCO_CLASSES), test_mode=True,
                     pipeline=[LoadImageFromFile(), LoadAnnotations(with_mask=True)])
    assert len(ds) == COCO_KW['num_val'] and tuple(ds.metainfo['classes']) == COCO_CLASSES
    metric = CocoMetric(ann_file=str(split['ann_file']), metric=['bbox', 'segm'])
    metric.dataset_meta = ds.metainfo
    n_instances = 0
    for i in range(len(ds)):
        sample = ds[i]
        masks = sample['gt_masks'].to_ndarray()
        n_instances += len(masks)
        assert sample['img'].shape == (COCO_KW['image_size'], COCO_KW['image_size'], 3)
        assert masks.sum() > 0 and (sample['gt_bboxes_labels'] < len(COCO_CLASSES)).all()
        pred = dict(bboxes=sample['gt_bboxes'].tensor,
                    labels=torch.as_tensor(sample['gt_bboxes_labels']),
                    scores=torch.ones(len(masks)), masks=torch.as_tensor(masks).bool())
        metric.process({}, [dict(pred_instances=pred, img_id=sample['img_id'],
                                 ori_shape=sample['ori_shape'])])
    assert n_instances == split['annotations']
    results = metric.evaluate(len(ds))
    assert results['coco/bbox_mAP'] > 0.95 and results['coco/segm_mAP'] > 0.95, results


# ----------------------------------------------------------------------------- ADE20K
def _seg_dataset(data, split: str, cls_name: str, **kw):
    from mmseg.datasets import ADE20KDataset, BaseSegDataset
    from mmseg.datasets.transforms import LoadAnnotations
    from mmcv.transforms import LoadImageFromFile
    folder = 'training' if split == 'train' else 'validation'
    cls = dict(ADE20KDataset=ADE20KDataset, BaseSegDataset=BaseSegDataset)[cls_name]
    return cls(data_root=str(data['ade']['data_root']),
               data_prefix=dict(img_path=f'images/{folder}', seg_map_path=f'annotations/{folder}'),
               pipeline=[LoadImageFromFile(), LoadAnnotations()], **kw)


def _raw_labels(data, split: str) -> List[np.ndarray]:
    paths = sorted(Path(data['ade']['splits'][split]['ann_dir']).glob('*.png'))
    return [np.asarray(Image.open(p)) for p in paths]


def test_ade_label_pngs_follow_the_convention(data):
    labels = _raw_labels(data, 'train')
    assert len(labels) == ADE_KW['num_train'] and len(ADE_PALETTE) == len(ADE_CLASSES)
    for lab in labels:
        assert lab.dtype == np.uint8 and lab.shape == (ADE_KW['image_size'], ) * 2
        assert set(np.unique(lab)) <= set(range(1, len(ADE_CLASSES) + 1))  # no 0 = ignore
        assert (lab == 1).any() and (lab >= 2).any()  # background and at least one shape
    seen = set(np.unique(np.concatenate([lab.ravel() for lab in labels])))
    assert len(seen) >= 4  # several shape classes across the split


def test_ade_loads_in_mmseg_with_reduce_zero_label(data):
    custom = _seg_dataset(data, 'val', 'BaseSegDataset', img_suffix='.jpg', seg_map_suffix='.png',
                          reduce_zero_label=True,
                          metainfo=dict(classes=ADE_CLASSES, palette=ADE_PALETTE))
    plain = _seg_dataset(data, 'val', 'ADE20KDataset')
    raw = _raw_labels(data, 'val')
    assert len(custom) == len(plain) == ADE_KW['num_val'] == len(raw)
    assert tuple(custom.metainfo['classes']) == ADE_CLASSES and custom.label_map is None
    for i, lab in enumerate(raw):
        a, b = custom[i], plain[i]
        assert Path(a['seg_map_path']).stem == Path(a['img_path']).stem
        assert a['img'].shape == (ADE_KW['image_size'], ADE_KW['image_size'], 3)
        np.testing.assert_array_equal(a['gt_seg_map'], lab.astype(np.int64) - 1)
        np.testing.assert_array_equal(b['gt_seg_map'], a['gt_seg_map'])
        assert a['gt_seg_map'].max() < len(ADE_CLASSES)


# ----------------------------------------------------------------------------- bad input
BAD_ARGS = [
    (make_classification, dict(num_train_per_class=0), 'num_train_per_class', '0'),
    (make_classification, dict(num_val_per_class=-3), 'num_val_per_class', '-3'),
    (make_coco, dict(num_train=2.5), 'num_train', '2.5'),
    (make_coco, dict(image_size=-8), 'image_size', '-8'),
    (make_ade20k, dict(image_size=MIN_IMAGE_SIZE - 1), f'{MIN_IMAGE_SIZE} (minimum)',
     str(MIN_IMAGE_SIZE - 1)),
    (make_ade20k, dict(seed=-1), 'seed', '-1'),
]


@pytest.mark.parametrize('make, kw, name, value', BAD_ARGS)
def test_bad_values_raise_before_writing(tmp_path, make, kw, name, value):
    root = tmp_path / 'out'
    with pytest.raises(ValueError) as err:
        make(root, **kw)
    assert name in str(err.value) and value in str(err.value)
    assert not root.exists()


def test_root_under_a_file_raises_oserror_naming_it(tmp_path):
    blocker = tmp_path / 'file.txt'
    blocker.write_text('x')
    for root in (blocker, blocker / 'sub'):
        with pytest.raises(OSError, match='file.txt'):
            make_coco(root, num_train=1, num_val=1, image_size=64)
    assert blocker.read_text() == 'x'


def test_refuses_to_overwrite_foreign_data(tmp_path):
    (tmp_path / 'train' / 'dog').mkdir(parents=True)
    with pytest.raises(FileExistsError, match='train'):
        make_classification(tmp_path, **CLS_KW)
    assert [p.name for p in tmp_path.rglob('*')] == ['train', 'dog']


# ----------------------------------------------------------------------------- CLI
CLI_CASES = {
    'ok': ['all', '--out', 'shapes', '--num-train', '1', '--num-val', '1', '--size', '48'],
    'zero_images': ['all', '--out', 'out', '--num-train', '0'],
    'negative_size': ['det', '--out', 'out', '--size', '-5'],
    'negative_val': ['seg', '--out', 'out', '--num-val', '-2'],
    'under_a_file': ['all', '--out', 'plain/data'],
}


@pytest.fixture(scope='module')
def cli_runs(tmp_path_factory) -> Dict[str, tuple]:
    """Run every CLI case as a real subprocess, concurrently (each start imports torch)."""
    procs = {}
    for name, args in CLI_CASES.items():
        cwd = tmp_path_factory.mktemp(f'cli_{name}')
        (cwd / 'plain').write_text('x')
        procs[name] = (cwd, subprocess.Popen([PY, str(CLI), *args], cwd=cwd, env=tool_env(),
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                             text=True))
    runs = {}
    for name, (cwd, proc) in procs.items():
        out, err = proc.communicate(timeout=120)
        runs[name] = (cwd, proc.returncode, out, err)
    return runs


def test_cli_writes_all_three(cli_runs):
    out_dir, code, _, err = cli_runs['ok']
    assert code == 0, err
    out = out_dir / 'shapes'
    assert len(list((out / 'cls/train').rglob('*.png'))) == len(SHAPE_CLASSES)
    assert (out / 'cls/meta/val.txt').read_text().count('\n') == len(SHAPE_CLASSES)
    coco = json.loads((out / 'coco/annotations/instances_val2017.json').read_text())
    assert len(coco['images']) == 1 and coco['annotations']
    assert len(list((out / 'ade/ADEChallengeData2016/annotations/training').glob('*.png'))) == 1
    assert Image.open(next((out / 'coco/train2017').glob('*.jpg'))).size == (48, 48)


@pytest.mark.parametrize('case, needle', [('zero_images', '--num-train'), ('negative_size', '-5'),
                                          ('negative_val', '-2'), ('under_a_file', 'plain')])
def test_cli_rejects_bad_input_without_writing(cli_runs, case, needle):
    cwd, code, _, err = cli_runs[case]
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and 'Traceback' not in err, err
    assert sorted(p.name for p in cwd.iterdir()) == ['plain']  # nothing else written
