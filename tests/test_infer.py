"""tools/infer.py (iformer_mm.zoo.infer): the toolboxes' Inferencers on pictures, all three tasks.

The demo configs (iFormer-T on the shapes data) with weights whose heads are set to a known
answer (classification: 'star' for any image; segmentation: 'cross' for every pixel), so the
printed predictions prove the weights were loaded; detection weights are random. The three
toolboxes run in one process, segmentation before classification: mmpretrain's Inferencer used
to fail there ("ResizeEdge is not in the mmseg::transform registry").
"""
import shutil

import mmcv
import numpy as np
import pytest
import torch

from demo.shapes import ADE_CLASSES, ADE_PALETTE, SHAPE_CLASSES, make_classification
from iformer_mm.apis.inference import infer, main

from .helpers import REPO, build_model, load_dense_config, run_tool, write_release_file

CONFIGS = {
    'cls': REPO / 'configs/classification/iformer-t_1xb32_shapes.py',
    'det': REPO / 'configs/detection/mask-rcnn_iformer-t_fpn_3e_shapes.py',
    'seg': REPO / 'configs/segmentation/fpn_iformer-t_1xb8-800iter_shapes-128x128.py',
}
PHOTO = __import__('matplotlib.cbook', fromlist=['x']).get_sample_data('grace_hopper.jpg',
                                                                      asfileobj=False)


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    """task -> checkpoint: a published-layout classifier file, mm files for det / seg."""
    folder = tmp_path_factory.mktemp('weights')
    torch.manual_seed(0)
    out = {}
    cls = build_model(load_dense_config(CONFIGS['cls']))
    with torch.no_grad():
        cls.head.classifier.fc.weight.zero_()
        cls.head.classifier.fc.bias.copy_(torch.tensor([0., 0., 0., 8., 0.]))  # 'star'
    out['cls'] = folder / 'iFormer_t.pth'
    write_release_file(cls, 't', out['cls'])
    det = build_model(load_dense_config(CONFIGS['det']))
    out['det'] = folder / 'det.pth'
    torch.save({'state_dict': det.state_dict(),
                'meta': {'dataset_meta': {'classes': SHAPE_CLASSES}}}, out['det'])
    seg = build_model(load_dense_config(CONFIGS['seg']))
    with torch.no_grad():
        seg.decode_head.conv_seg.weight.zero_()
        seg.decode_head.conv_seg.bias.copy_(torch.tensor([0., 0., 8., 0., 0., 0.]))  # 'cross'
    out['seg'] = folder / 'seg.pth'
    torch.save({'state_dict': seg.state_dict(), 'meta': {'dataset_meta': {
        'classes': ADE_CLASSES, 'palette': ADE_PALETTE}}}, out['seg'])
    return out


@pytest.fixture(scope='module')
def pictures(tmp_path_factory):
    """A folder with the matplotlib photo and a generated shapes picture, plus the photo alone."""
    root = tmp_path_factory.mktemp('pictures')
    make_classification(root / 'shapes', num_train_per_class=1, num_val_per_class=1,
                        image_size=64, seed=0)
    folder = root / 'folder'
    folder.mkdir()
    shutil.copy(PHOTO, folder / 'grace_hopper.jpg')
    shutil.copy(next((root / 'shapes' / 'val').rglob('*.*')), folder / 'shape.png')
    (folder / 'notes.txt').write_text('not an image: skipped in folders')
    return [str(folder), PHOTO]


def test_three_toolboxes_in_one_process(weights, pictures, tmp_path):
    expected = {'seg': 'cross 100.0%', 'cls': 'star ', 'det': ' objects (score >= 0.3)'}
    for task in ('seg', 'cls', 'det'):  # mmseg first: the default-scope trap
        out_dir = tmp_path / task
        results = infer(pictures, str(CONFIGS[task]), str(weights[task]), str(out_dir), 'cpu')
        names = [r.output.rsplit('/', 1)[-1] for r in results]
        assert names == ['grace_hopper.png', 'shape.png', 'grace_hopper_1.png'], names
        assert sorted(p.name for p in out_dir.iterdir()) == sorted(names)  # no leftovers
        for r in results:
            assert expected[task] in r.summary, (task, r.summary)
            picture = mmcv.imread(r.output)
            source = mmcv.imread(r.image)
            assert picture.shape == source.shape and picture.dtype == np.uint8, task
        if task == 'cls':
            assert results[0].summary.startswith('star ') and results[0].result['pred_label'] == 3
        if task == 'seg':
            assert (results[1].result['sem_seg'] == 2).all()


def test_bad_input_is_one_line_and_writes_nothing(weights, pictures, tmp_path, capsys):
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'broken.jpg').write_bytes(b'\xff\xd8 not really a jpeg')
    other = tmp_path / 'rotate.py'
    other.write_text("default_scope = 'mmrotate'\n")
    out = tmp_path / 'out'
    cls = ['--config', str(CONFIGS['cls']), '--weights', str(weights['cls']), '--out-dir', str(out)]
    cases = [
        ([str(tmp_path / 'missing.jpg'), *cls], f'image not found: {tmp_path}/missing.jpg'),
        ([str(tmp_path / 'broken.jpg'), *cls], f'cannot read {tmp_path}/broken.jpg as an image'),
        ([str(tmp_path / 'empty'), *cls], f'folder {tmp_path}/empty has no images'),
        ([PHOTO, '--config', str(other), '--weights', str(weights['cls']), '--out-dir', str(out)],
         "has default_scope 'mmrotate'; expected one of ['mmpretrain', 'mmdet', 'mmseg']"),
        ([PHOTO, '--config', str(CONFIGS['cls']), '--weights', str(tmp_path / 'gone.pth'),
          '--out-dir', str(out)], f'--weights not found: {tmp_path}/gone.pth'),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count('\n') == 1 and err.startswith('infer.py: error: '), err
    assert not out.exists()


@pytest.mark.slow  # a tool start; the in-process runs above cover the three tasks
def test_cli_prints_predictions_and_writes_pngs(weights, pictures, tmp_path):
    out = tmp_path / 'cli'
    proc = run_tool('tools/infer.py', *pictures, '--config', CONFIGS['cls'], '--weights',
                    weights['cls'], '--out-dir', out, '--device', 'cpu')
    lines = [line for line in proc.stdout.splitlines() if ' -> ' in line]
    assert len(lines) == 3 and all(': star ' in line for line in lines), proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ['grace_hopper.png', 'grace_hopper_1.png',
                                                      'shape.png']
    assert 'pkg_resources' not in proc.stderr
