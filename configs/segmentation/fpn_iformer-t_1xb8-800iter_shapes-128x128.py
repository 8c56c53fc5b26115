# Semantic FPN + iFormer-T on the generated shapes ADE20K-layout set (background + 5 shapes,
# 128 px), on CPU. Used by `make demo` (tools/demo.py). By hand:
#   python tools/make_shapes.py seg --num-train 400 --num-val 50
#   python tools/train.py configs/classification/iformer-t_1xb32_shapes.py   # backbone weights
#   python tools/train.py configs/segmentation/fpn_iformer-t_1xb8-800iter_shapes-128x128.py
#
# What differs from the ADE20K recipe it inherits:
# * data: ADE20K layout under data/shapes/ade, 6 classes (mmseg's ADE20KDataset only accepts ADE's
#   150 names, so BaseSegDataset reads the same files), 400 train / 50 val images of 128 px;
#   the recipe's pipeline at 128 px: resize x0.75-1.5, 128x128 crops, flip, photometric distortion;
# * init: the backbone starts from the shapes classifier (the demo's first task), as the
#   recipe's starts from the ImageNet classifier; frozen BN statistics (norm_eval) as published;
# * schedule: 800 iterations, batch 8 on one process, AdamW lr 1e-3 (the FPN and head train from
#   scratch), 20-iteration warmup then the recipe's poly decay.
_base_ = ['./fpn_iformer-t_8xb4-40k_ade20k-512x512.py']

data_root = 'data/shapes/ade/ADEChallengeData2016'
# demo.shapes.ADE_CLASSES / ADE_PALETTE
classes = ('background', 'circle', 'cross', 'square', 'star', 'triangle')
palette = [[0, 0, 0], [220, 20, 60], [0, 130, 200], [60, 180, 75], [255, 225, 25], [145, 30, 180]]
crop_size = (128, 128)
max_iters = 800
# `tools/train.py` writes the classifier here; the demo passes its own path
backbone_checkpoint = 'work_dirs/iformer-t_1xb32_shapes/epoch_4.pth'

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=dict(checkpoint=backbone_checkpoint, prefix='backbone.')),
    decode_head=dict(num_classes=len(classes)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(512, 128), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(512, 128), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
dataset = dict(
    type='BaseSegDataset',
    data_root=data_root,
    img_suffix='.jpg',
    seg_map_suffix='.png',
    reduce_zero_label=True,
    metainfo=dict(classes=classes, palette=palette))
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=train_pipeline, **dataset))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=test_pipeline, **dataset))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', eta_min=1e-6, power=0.9, begin=20, end=max_iters, by_epoch=False),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
auto_scale_lr = dict(base_batch_size=8)

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
randomness = dict(seed=0, deterministic=True)
load_from = None
