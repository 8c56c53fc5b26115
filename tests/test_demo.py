"""`make demo` (tools/demo.py, demo): inputs, configs, pictures, and that it learns.

Default suite: the CLI's input errors, the demo configs differ from the real iFormer-T configs
only where allowed, the pictures, the dataset reuse rule, and a ``--quick`` run of all three
tasks through the real runners and evaluators (1-2 iterations each).
``-m slow``: the full demo, with lower bounds on the metrics (see SLOW_THRESHOLDS).
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List

import numpy as np
import pytest
from PIL import Image

from demo import cli, visualize as vis
from demo.data import DataSpec, ensure_data, mismatch
from demo.tasks import TASKS, with_dependencies

from .helpers import REPO, run_tool

CLI = REPO / 'tools' / 'demo.py'


# ----------------------------------------------------------------------------- CLI input errors
def _run_main(argv: List[str], capsys) -> str:
    """Run the CLI in-process; it must exit 2 with exactly one stderr line."""
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('demo.py: error: '), err
    return err[0]


def test_cli_unknown_task_is_one_line_exit_2(tmp_path):
    """The real script (subprocess): argparse's message, no usage dump, no traceback."""
    proc = run_tool(CLI, '--tasks', 'cls', 'detect', '--out-dir', tmp_path / 'out',
                    cwd=tmp_path, check=False, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "'detect'" in lines[0] and 'cls' in lines[0], proc.stderr
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('argv, needle', [
    (['--seed', '-1'], '-1'),
    (['--seed', 'x'], "'x'"),
    (['--threads', '0'], '0'),
    (['--tasks'], '--tasks'),
])
def test_cli_rejects_bad_values(argv, needle, capsys, tmp_path):
    assert needle in _run_main(argv + ['--out-dir', str(tmp_path / 'out')], capsys)


def test_cli_rejects_out_dir_that_is_a_file(tmp_path, capsys):
    blocker = tmp_path / 'results.txt'
    blocker.write_text('x')
    for out in (blocker, blocker / 'sub'):
        line = _run_main(['--out-dir', str(out), '--data-root', str(tmp_path / 'd')], capsys)
        assert 'results.txt' in line and 'is a file, not a folder' in line
    assert blocker.read_text() == 'x' and not (tmp_path / 'd').exists()


def test_cli_rejects_unwritable_out_dir(tmp_path, capsys):
    if os.geteuid() == 0:  # root ignores permissions: a folder nobody can create files in
        line = _run_main(['--out-dir', '/proc/iformer_demo_out'], capsys)
        assert '/proc is not writable' in line and not os.path.exists('/proc/iformer_demo_out')
        return
    locked = tmp_path / 'locked'
    locked.mkdir(mode=0o500)
    try:
        assert 'not writable' in _run_main(['--out-dir', str(locked / 'out')], capsys)
    finally:
        locked.chmod(0o700)


def test_cli_refuses_foreign_data_before_training(tmp_path, capsys):
    """A data root whose cls/ holds someone's own train/ folder is never overwritten."""
    (tmp_path / 'data' / 'cls' / 'train' / 'dog').mkdir(parents=True)
    line = _run_main(['--tasks', 'cls', '--out-dir', str(tmp_path / 'out'),
                      '--data-root', str(tmp_path / 'data')], capsys)
    assert '--data-root' in line and 'refusing to overwrite' in line
    assert not (tmp_path / 'out').exists()
    assert [p.name for p in (tmp_path / 'data' / 'cls').iterdir()] == ['train']


def test_det_and_seg_bring_the_classifier_they_start_from():
    assert with_dependencies(['seg']) == ['cls', 'seg']
    assert with_dependencies(['seg', 'det', 'seg']) == ['cls', 'det', 'seg']
    assert with_dependencies(['cls']) == ['cls']


# ----------------------------------------------------------------------------- demo configs
#: what a demo config may change relative to the real iFormer-T config it inherits
COMMON_ALLOWED = (
    'train_dataloader', 'val_dataloader', 'test_dataloader', 'val_evaluator', 'test_evaluator',
    'train_pipeline', 'test_pipeline', 'param_scheduler', 'train_cfg', 'default_hooks.logger',
    'default_hooks.checkpoint', 'randomness', 'auto_scale_lr', 'optim_wrapper.optimizer.lr',
    'model.backbone.init_cfg',
    # helper variables of the demo configs
    'data_root', 'classes', 'palette', 'img_size', 'img_scale', 'crop_size', 'max_epochs',
    'max_iters', 'backbone_checkpoint', 'dataset')
MODEL_ALLOWED = {
    'cls': ('model.head.num_classes', 'model.head.topk', 'model.train_cfg',
            'data_preprocessor.num_classes'),
    'det': ('model.roi_head.bbox_head.num_classes', 'model.roi_head.mask_head.num_classes',
            # CPU budget for <= 4 objects per 128-px image (see the config's header)
            'model.train_cfg.rcnn.sampler.num', 'model.train_cfg.rpn_proposal.max_per_img',
            'model.test_cfg.rpn.max_per_img', 'model.test_cfg.rcnn.max_per_img'),
    'seg': ('model.data_preprocessor.size', 'model.decode_head.num_classes'),
}
REAL_CONFIGS = {
    'cls': 'classification/iformer-t_8xb512_in1k.py',
    'det': 'detection/mask-rcnn_iformer-t_fpn_1x_coco.py',
    'seg': 'segmentation/fpn_iformer-t_8xb4-40k_ade20k-512x512.py',
}


def _flat(obj: Any, prefix: str = '') -> Dict[str, Any]:
    if isinstance(obj, dict):
        out: Dict[str, Any] = {}
        for key, value in obj.items():
            out.update(_flat(value, f'{prefix}.{key}' if prefix else str(key)))
        return out
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(v, dict) for v in obj):
        out = {}
        for i, value in enumerate(obj):
            out.update(_flat(value, f'{prefix}.{i}'))
        return out
    return {prefix: obj}


@pytest.mark.parametrize('task', list(TASKS))
def test_demo_config_inherits_the_real_one_and_changes_only_data_schedule_init(task):
    from mmengine.config import Config
    demo_path = REPO / 'configs' / TASKS[task].config
    real_path = REPO / 'configs' / REAL_CONFIGS[task]
    assert f"_base_ = ['./{real_path.name}']" in demo_path.read_text()
    demo, real = _flat(Config.fromfile(str(demo_path)).to_dict()), _flat(
        Config.fromfile(str(real_path)).to_dict())
    changed = {k for k in set(demo) | set(real) if demo.get(k, KeyError) != real.get(k, KeyError)}
    allowed = COMMON_ALLOWED + MODEL_ALLOWED[task]
    unexpected = sorted(k for k in changed
                        if not any(k == a or k.startswith(a + '.') for a in allowed))
    assert not unexpected, f'{demo_path.name} changes {unexpected}'
    assert demo['model.backbone.arch'] == 't'
    assert demo['randomness.deterministic'] is True
    for loader in ('train_dataloader', 'val_dataloader'):
        assert demo[f'{loader}.num_workers'] in (0, 1)
        assert str(demo[f'{loader}.dataset.data_root']).startswith(
            f'data/shapes/{TASKS[task].data.subdir}')


# ----------------------------------------------------------------------------- pictures
def test_grid_size_and_tiles():
    tiles = [Image.new('RGB', (20, 10), (i, 0, 0)) for i in range(5)]
    img = vis.grid(tiles, cols=3)
    assert img.size == vis.grid_size((20, 10), 5, 3) == (3 * 24 + 4, 2 * 14 + 4)
    assert img.getpixel((4 + 24 + 1, 4 + 1)) == (1, 0, 0)  # second tile, first row
    with pytest.raises(ValueError, match='20x10'):
        vis.grid(tiles + [Image.new('RGB', (8, 8))], cols=3)


def test_detection_tile_draws_box_and_mask_in_class_colour():
    img = np.full((32, 32, 3), 255, np.uint8)
    mask = np.zeros((1, 32, 32), bool)
    mask[0, 10:20, 10:20] = True
    tile = vis.detection_tile(img, np.array([[8., 8., 24., 24.]]), [2], [0.9],
                              ['a', 'b', 'c'], masks=mask, factor=2)
    arr = np.asarray(tile)
    assert tile.size == (64, 64)
    assert tuple(arr[16 * 2, 8 * 2]) == vis.class_colour(2)  # left edge of the box
    inside = arr[15 * 2, 15 * 2].astype(int)  # tinted towards the class colour
    assert (inside < 255).any() and tuple(arr[2, 60]) == (255, 255, 255)


def test_segmentation_overlay_tints_only_foreground():
    img = np.full((4, 4, 3), 100, np.uint8)
    labels = np.zeros((4, 4), np.int64)
    labels[0, 0], labels[1, 1] = 1, 255
    out = vis.overlay(img, labels, [[0, 0, 0], [200, 0, 0]], alpha=0.5)
    assert tuple(out[0, 0]) == (150, 50, 50)
    assert tuple(out[2, 2]) == (100, 100, 100)  # background untouched
    row = vis.segmentation_row(img, labels, labels, [[0, 0, 0], [200, 0, 0]], factor=2)
    assert [t.size for t in row] == [(8, 8 + vis.CAPTION_HEIGHT)] * 3


def test_save_png_is_atomic_and_readable(tmp_path):
    path = vis.save_png(Image.new('RGB', (7, 5)), tmp_path / 'sub' / 'x.png')
    assert Image.open(path).size == (7, 5)
    assert [p.name for p in path.parent.iterdir()] == ['x.png']


# ----------------------------------------------------------------------------- data reuse
def test_data_is_generated_reused_and_regenerated_when_the_spec_changes(tmp_path):
    logs: List[str] = []
    spec = DataSpec('cls', 'cls', num_train=1, num_val=1, image_size=32)
    root = ensure_data(spec, tmp_path, logs.append)
    assert mismatch(spec, root) is None and 'writing' in logs[-1]
    stamp = (root / 'meta' / 'train.txt').stat().st_mtime_ns
    ensure_data(spec, tmp_path, logs.append)
    assert 'reusing' in logs[-1] and (root / 'meta' / 'train.txt').stat().st_mtime_ns == stamp
    bigger = DataSpec('cls', 'cls', num_train=2, num_val=1, image_size=32)
    assert 'train 5 (demo uses 10)' in mismatch(bigger, root)
    ensure_data(bigger, tmp_path, logs.append)
    assert len((root / 'meta' / 'train.txt').read_text().splitlines()) == 10


# ----------------------------------------------------------------------------- quick end to end
@pytest.fixture(scope='module')
def quick_run(tmp_path_factory) -> Dict[str, Any]:
    """``tools/demo.py --quick``: tiny data, 1-2 iterations, real runners / metrics / pictures.

    A subprocess, because the runners set process-wide state (default registry scope,
    deterministic algorithms, seeds) that must not leak into the tests that follow.
    """
    base = tmp_path_factory.mktemp('demo_quick')
    proc = run_tool(CLI, '--quick', '--tasks', 'seg', 'det', '--out-dir', 'out',
                    '--data-root', 'data', '--threads', '1', cwd=base, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(base=base, stdout=proc.stdout,
                results=json.loads((base / 'out' / 'results.json').read_text()))


def test_quick_demo_writes_results_and_pictures(quick_run):
    out = quick_run['base'] / 'out'
    results = quick_run['results']
    assert list(results['tasks']) == ['cls', 'det', 'seg']  # cls added: det / seg start from it
    assert 'task  metric' in quick_run['stdout'] and 'results.json' in quick_run['stdout']
    for name, rec in results['tasks'].items():
        assert rec['iterations'] >= 1 and rec['train_seconds'] >= 0
        for metric in rec['metrics']:
            assert metric['key'] in rec['raw_metrics'] and 0 <= metric['value'] <= 1
        assert (quick_run['base'] / rec['checkpoint']).is_file()
    cls_ckpt = results['tasks']['cls']['checkpoint']
    assert results['tasks']['det']['backbone_init'] == cls_ckpt
    assert results['tasks']['seg']['backbone_init'] == cls_ckpt
    assert results['versions']['mmdet'] == '3.3.0'
    # pictures: every val image of the quick sets (10 cls, 2 det, 2 seg), in the documented grids
    # (det and seg add a class legend strip)
    sizes = {'cls': vis.grid_size((128, 128 + vis.CAPTION_HEIGHT), 10, 6),
             'det': vis.grid_size((256, 256), 2, 4),
             'seg': vis.grid_size((256, 256 + vis.CAPTION_HEIGHT), 6, 3)}
    for name, (w, h) in sizes.items():
        legend = vis.LEGEND_HEIGHT if name != 'cls' else 0
        assert Image.open(out / results['tasks'][name]['picture']).size == (w, h + legend)


def test_quick_demo_seg_trivial_baseline_matches_mmseg(quick_run):
    """The 'trivial' column for seg is mmseg's mIoU of an all-background prediction."""
    import torch
    from mmengine.structures import PixelData
    from mmseg.evaluation import IoUMetric
    from mmseg.structures import SegDataSample

    from demo.shapes import ADE_CLASSES
    root = quick_run['base'] / 'data/ade/ADEChallengeData2016/annotations/validation'
    metric = IoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = dict(classes=ADE_CLASSES)
    for png in sorted(root.glob('*.png')):
        gt = torch.from_numpy(np.asarray(Image.open(png)).astype(np.int64) - 1)
        gt[gt < 0] = 255
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=gt[None])
        sample.pred_sem_seg = PixelData(data=torch.zeros_like(gt)[None])
        metric.process([], [sample.to_dict()])
    miou = metric.compute_metrics(metric.results)['mIoU'] / 100
    trivial = quick_run['results']['tasks']['seg']['metrics'][0]['trivial']
    assert trivial == pytest.approx(miou, abs=1e-4)


# ----------------------------------------------------------------------------- full demo (slow)
#: Lower bounds for the full demo. Measured (1 thread, data seed 0) with training seed 0 / 1:
#: top-1 0.940 / 0.990, box AP 0.434 / 0.577, mask AP 0.354 / 0.598, mIoU 0.500 / 0.679
#: (all-background mIoU 0.144, chance top-1 0.200). Each bound is well below the lower
#: measurement and well above chance, so only a run that stops learning fails.
SLOW_THRESHOLDS = {
    ('cls', 'accuracy/top1'): 0.80,
    ('det', 'coco/bbox_mAP'): 0.25,
    ('det', 'coco/segm_mAP'): 0.20,
    ('seg', 'mIoU'): 0.30,
}


@pytest.fixture(scope='module')
def full_run(tmp_path_factory) -> Dict[str, Any]:
    base = tmp_path_factory.mktemp('demo_full')
    # one thread, as measured: the run is deterministic for a given thread count
    proc = run_tool(CLI, '--out-dir', base / 'out', '--data-root', base / 'data',
                    '--threads', '1', cwd=base, check=False, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((base / 'out' / 'results.json').read_text())


@pytest.mark.slow
@pytest.mark.parametrize('task, key', list(SLOW_THRESHOLDS))
def test_full_demo_learns(full_run, task, key):
    metric = {m['key']: m for m in full_run['tasks'][task]['metrics']}[key]
    assert metric['value'] >= SLOW_THRESHOLDS[task, key], (task, key, metric)
    assert metric['value'] > metric['trivial'] + 0.1
