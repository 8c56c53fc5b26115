"""mmpretrain's own tools/train.py and tools/test.py on the iFormer-T config (published pipeline:
RandAugment, RandomErasing, Mixup/CutMix, label smoothing) with a generated ImageFolder set,
64 px images, a few iterations; then ``--resume`` continues the iteration counter."""
import re
import subprocess
import time
from pathlib import Path

import pytest
import torch

import mmpretrain

from .helpers import CLS_CONFIGS, run_tool

MMPRETRAIN_TOOLS = Path(mmpretrain.__file__).parent / '.mim' / 'tools'
TRAIN_IMAGES_PER_CLASS, BATCH = 4, 4  # 5 classes -> 20 images -> 5 iterations per epoch
ITERS_PER_EPOCH = 5 * TRAIN_IMAGES_PER_CLASS // BATCH


def _test_config(folder: Path, data_root: Path) -> Path:
    """The real iFormer-T config with only data, image size, batch and schedule length changed."""
    text = f"""
_base_ = ['{CLS_CONFIGS / 'iformer-t_8xb512_in1k.py'}']
from demo.shapes import SHAPE_CLASSES
_bgr_mean = [103.53, 116.28, 123.675]
model = dict(head=dict(num_classes=len(SHAPE_CLASSES), topk=(1, )))
data_preprocessor = dict(num_classes=len(SHAPE_CLASSES))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64, backend='pillow', interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2, total_level=10,
         magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[104, 116, 124], interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand', min_area_ratio=0.02,
         max_area_ratio=1 / 3, fill_color=_bgr_mean, fill_std=[57.375, 57.12, 58.395]),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=73, edge='short', backend='pillow', interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=64),
    dict(type='PackInputs'),
]
_data = dict(data_root='{data_root}', metainfo=dict(classes=SHAPE_CLASSES))
train_dataloader = dict(batch_size={BATCH}, num_workers=0, persistent_workers=False,
                        pin_memory=False, dataset=dict(pipeline=train_pipeline, **_data))
val_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False, pin_memory=False,
                      dataset=dict(pipeline=test_pipeline, **_data))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=2, val_interval=2)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=1,
         convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(interval=1))
randomness = dict(seed=0)
"""
    path = folder / 'iformer-t_tiny_shapes.py'
    path.write_text(text)
    return path


def _run(script: str, *args) -> subprocess.CompletedProcess:
    return run_tool(MMPRETRAIN_TOOLS / script, *args, threads=2, timeout=900)


def _meta(path: Path) -> dict:
    # plain torch.load: weights_only=True by default; importing iformer_mm allowlisted mmengine's
    # checkpoint types, exactly what tools/test.py and --resume rely on
    import iformer_mm  # noqa: F401
    return torch.load(path, map_location='cpu', weights_only=True)['meta']


@pytest.mark.slow
def test_mmpretrain_tools_train_resume_and_test(tmp_path):
    from demo.shapes import make_classification
    data_root = tmp_path / 'shapes'
    make_classification(data_root, num_train_per_class=TRAIN_IMAGES_PER_CLASS,
                        num_val_per_class=2, image_size=64, seed=0)
    config = _test_config(tmp_path, data_root)
    work_dir = tmp_path / 'work'

    start = time.time()
    _run('train.py', config, '--work-dir', work_dir)
    first = _meta(work_dir / 'epoch_1.pth')
    assert (first['epoch'], first['iter']) == (1, ITERS_PER_EPOCH)
    # simulate a crash during epoch 2: only epoch 1 was saved
    (work_dir / 'epoch_2.pth').unlink()
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'epoch_1.pth'))
    t_train = time.time() - start

    # second run: auto-resume from the last checkpoint and train one more epoch
    resumed = _run('train.py', config, '--work-dir', work_dir, '--resume')
    log = resumed.stdout + resumed.stderr
    assert re.search(rf'resumed epoch: 1, iter: {ITERS_PER_EPOCH}', log), log[-3000:]
    # the iteration counter continues: the first logged iteration of run 2 is in epoch 2
    assert re.search(rf'Epoch\(train\)\s+\[2\]\[\s*1/{ITERS_PER_EPOCH}\]', log), log[-3000:]
    assert not re.search(r'Epoch\(train\)\s+\[1\]', log)
    second = _meta(work_dir / 'epoch_2.pth')
    assert (second['epoch'], second['iter']) == (2, 2 * ITERS_PER_EPOCH)
    assert re.search(r'accuracy/top1: [\d.]+', log)  # val at the end of epoch 2
    t_resume = time.time() - start - t_train

    tested = _run('test.py', config, work_dir / 'epoch_2.pth', '--work-dir', tmp_path / 'test')
    out = tested.stdout + tested.stderr
    match = re.search(r'accuracy/top1: ([\d.]+)', out)
    assert match, out[-3000:]
    assert 0. <= float(match.group(1)) <= 100.
    print(f'train {t_train:.0f}s, resume {t_resume:.0f}s, '
          f'test {time.time() - start - t_train - t_resume:.0f}s')
