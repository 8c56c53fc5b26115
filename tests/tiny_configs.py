"""Tiny, deterministic configs inheriting the real iFormer-T and demo configs (for tool tests)."""
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]


def tiny_cls_config(folder: Path, data_root: Path, max_iters: int = 6, ckpt_interval: int = 2) -> Path:
    """iFormer-T classification on a generated ImageFolder, 32 px, deterministic data pipeline.

    Random augmentation, mixup and drop path are off so that a resumed run must reproduce an
    uninterrupted one exactly (mmengine does not checkpoint RNG state).
    """
    pipeline = "[dict(type='LoadImageFromFile'), dict(type='PackInputs')]"
    text = f"""
_base_ = ['{REPO}/configs/classification/iformer-t_8xb512_in1k.py']
from iformer_mm.datasets.synthetic import SHAPE_CLASSES
model = dict(backbone=dict(drop_path_rate=0.), head=dict(num_classes=len(SHAPE_CLASSES), topk=(1, )),
             train_cfg=dict(_delete_=True))
data_preprocessor = dict(num_classes=len(SHAPE_CLASSES))
_data = dict(type='ImageNet', data_root='{data_root}', metainfo=dict(classes=SHAPE_CLASSES),
             pipeline={pipeline})
train_dataloader = dict(_delete_=True, batch_size=4, num_workers=0, persistent_workers=False,
                        sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(split='train', **_data))
val_dataloader = dict(_delete_=True, batch_size=8, num_workers=0, persistent_workers=False,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(split='val', **_data))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters={max_iters}, val_interval={max_iters})
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=4)]
default_hooks = dict(checkpoint=dict(interval={ckpt_interval}, by_epoch=False, max_keep_ckpts=-1),
                     logger=dict(interval=1))
log_processor = dict(window_size=1, by_epoch=False)
randomness = dict(seed=0, deterministic=True)
"""
    path = folder / 'tiny_cls.py'
    path.write_text(text)
    return path


def tiny_det_config(folder: Path, data_root: Path, max_epochs: int = 2,
                    test_cfg: Optional[dict] = None) -> Path:
    """The detection demo config (Mask R-CNN + iFormer-T, shapes COCO) on a tiny generated set.

    Only data, schedule and logging change (and ``model.test_cfg`` entries if given): the demo's
    random flip, RoI sampling and per-epoch validation stay, so exact resume depends on the
    checkpointed random state.
    """
    text = f"""
_base_ = ['{REPO}/configs/detection/mask-rcnn_iformer-t_fpn_3e_shapes.py']
data_root = '{data_root}/'
model = dict(backbone=dict(init_cfg=None), test_cfg={test_cfg or {}!r})
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs={max_epochs}, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=-1), logger=dict(interval=1))
log_processor = dict(window_size=1)
"""
    path = folder / 'tiny_det.py'
    path.write_text(text)
    return path


def tiny_seg_config(folder: Path, data_root: Path, max_iters: int = 4) -> Path:
    """The segmentation demo config (Semantic FPN + iFormer-T, shapes ADE20K layout), tiny run.

    Only data root, batch size, schedule and logging change; no backbone weights.
    """
    text = f"""
_base_ = ['{REPO}/configs/segmentation/fpn_iformer-t_1xb8-800iter_shapes-128x128.py']
model = dict(backbone=dict(init_cfg=None))
train_dataloader = dict(batch_size=2, dataset=dict(data_root='{data_root}'))
val_dataloader = dict(dataset=dict(data_root='{data_root}'))
test_dataloader = val_dataloader
train_cfg = dict(max_iters={max_iters}, val_interval={max_iters})
param_scheduler = [dict(type='PolyLR', eta_min=1e-6, power=0.9, begin=0, end={max_iters}, by_epoch=False)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={max_iters}))
"""
    path = folder / 'tiny_seg.py'
    path.write_text(text)
    return path
