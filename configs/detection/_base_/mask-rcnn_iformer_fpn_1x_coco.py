# Mask R-CNN 1x on COCO with an iFormer backbone, as published (mmdet 3.3):
# FPN(in = iFormer dims, out 256, 5 levels), AdamW lr 2e-4 / wd 0.05, 500-iter linear warmup
# from 1e-6, lr x0.1 at epochs 8 and 11 of 12, batch 16 = 8 GPUs x 2 images, resize (1333, 800).
# The published backbones use windowed stage-2 attention (window 16), frozen BN statistics
# (norm_eval=True) and no drop path. Variant files set arch, checkpoint and neck in_channels.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    'mmdet::_base_/datasets/coco_instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
]
custom_imports = dict(imports=['iformer_mm'], allow_failed_imports=False)

backbone_checkpoint = 'https://github.com/ChuanyangZheng/iFormer/releases/download/v0.9/iFormer_t.pth'  # noqa: E501
model = dict(
    backbone=dict(
        _delete_=True,
        type='IFormer',
        arch='t',
        out_indices=(0, 1, 2, 3),
        window_size=16,
        norm_eval=True,
        drop_path_rate=0.,
        init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=256, num_outs=5))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05))

param_scheduler = [
    # start_factor = 1e-6 / 2e-4: the warmup starts at lr 1e-6
    dict(type='LinearLR', start_factor=0.005, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=12, val_interval=1)

# 8 GPUs x 2 images; `--auto-scale-lr` rescales lr for other total batch sizes
train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(enable=False, base_batch_size=16)
