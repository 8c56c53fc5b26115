# Mask R-CNN + iFormer-T on the generated shapes COCO set (5 classes, 128 px), on CPU.
# Used by `make demo` (tools/demo.py). By hand:
#   python tools/make_shapes.py det --num-train 400 --num-val 50
#   python tools/train.py configs/classification/iformer-t_1xb32_shapes.py   # backbone weights
#   python tools/train.py configs/detection/mask-rcnn_iformer-t_fpn_3e_shapes.py
#
# What differs from the COCO recipe it inherits:
# * data: COCO layout under data/shapes/coco, 5 classes, 400 train / 50 val images of 128 px,
#   kept at 128 px (the recipe resizes to 1333x800);
# * init: the backbone starts from the shapes classifier (the demo's first task), as the
#   recipe's starts from the ImageNet classifier; frozen BN statistics (norm_eval) as published;
# * schedule: 3 epochs x 100 iterations, batch 4 on one process, AdamW lr 1e-3 (the heads train
#   from scratch), 50-iteration warmup, x0.1 after epoch 2;
# * CPU budget: RoI sampling and per-image detections sized for <= 4 objects per 128-px image
#   (the recipe's 512 sampled RoIs and 1000 proposals are for COCO's ~7 objects per 800x1333
#   image; measured on 1 CPU thread: 3.8 s -> 1.3 s per batch of 4 at the first iterations,
#   and the mask head's cost grows with the positive RoIs as the RPN improves).
_base_ = ['./mask-rcnn_iformer-t_fpn_1x_coco.py']

data_root = 'data/shapes/coco/'
classes = ('circle', 'cross', 'square', 'star', 'triangle')  # demo.shapes.COCO_CLASSES
img_scale = (128, 128)
max_epochs = 3
# `tools/train.py` writes the classifier here; the demo passes its own path
backbone_checkpoint = 'work_dirs/iformer-t_1xb32_shapes/epoch_4.pth'

model = dict(
    backbone=dict(init_cfg=dict(checkpoint=backbone_checkpoint, prefix='backbone.')),
    roi_head=dict(
        bbox_head=dict(num_classes=len(classes)), mask_head=dict(num_classes=len(classes))),
    train_cfg=dict(rpn_proposal=dict(max_per_img=300), rcnn=dict(sampler=dict(num=32))),
    test_cfg=dict(rpn=dict(max_per_img=300), rcnn=dict(max_per_img=20)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        pipeline=train_pipeline,
        filter_cfg=dict(filter_empty_gt=True, min_size=8)))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, metainfo=dict(classes=classes), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[2], gamma=0.1),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
auto_scale_lr = dict(base_batch_size=4)

default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
randomness = dict(seed=0, deterministic=True)
load_from = None
