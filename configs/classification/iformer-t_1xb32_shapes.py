# iFormer-T on the generated shapes classification set (5 classes, 64 px), from scratch on CPU.
# Used by `make demo` (tools/demo.py); also trains with `tools/train.py` after
# `python tools/make_shapes.py cls --num-train 1000 --num-val 40` (the demo writes it if missing).
#
# Only data, resolution, schedule and init differ from the ImageNet recipe it inherits:
# * data: ImageNet folder layout under data/shapes/cls, 5 classes, 5000 train / 200 val images of
#   64 px (no resizing);
#   augmentation is the recipe's horizontal flip only: RandomResizedCrop can cut the one shape out
#   of a 64-px image, and RandAugment / RandomErasing / Mixup / CutMix are regularisers for a
#   300-epoch ImageNet run that slow a 20-epoch run down;
# * schedule: 4 epochs x 157 iterations, batch 32 on one process, AdamW lr 1e-3 (measured: 2e-3
#   learns slower from the random init), 50-iteration warmup + cosine;
# * init: random (no checkpoint exists for this data).
_base_ = ['./iformer-t_8xb512_in1k.py']

data_root = 'data/shapes/cls'
classes = ('circle', 'cross', 'square', 'star', 'triangle')  # demo.shapes.SHAPE_CLASSES
img_size = 64
max_epochs = 4

model = dict(
    backbone=dict(init_cfg=None),
    head=dict(num_classes=len(classes), topk=(1, )),
    train_cfg=None)  # no Mixup / CutMix
data_preprocessor = dict(num_classes=len(classes))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=img_size, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    pin_memory=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=100,
    num_workers=0,
    persistent_workers=False,
    pin_memory=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))  # top-5 of 5 classes is always 100%
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    # `end` defaults to the last iteration
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=False, begin=50),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
auto_scale_lr = dict(base_batch_size=32)

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0, deterministic=True)
load_from = None
