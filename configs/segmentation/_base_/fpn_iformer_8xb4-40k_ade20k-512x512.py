# Semantic FPN on ADE20K with an iFormer backbone, as published (mmseg 1.2):
# FPN(in = iFormer dims, out 256, 4 levels) + FPNHead(channels 128, dropout 0.1, 150 classes),
# AdamW lr 2e-4 / wd 1e-4, poly (power 0.9) to 1e-6 over 40k iterations, batch 32 = 8 GPUs x 4,
# 512x512 crops of images resized to (2048, 512) x ratio 0.5-2, PhotoMetricDistortion.
# Backbone: windowed stage-2 attention (window 16), frozen BN statistics, no drop path.
# mmseg's base head uses SyncBN; mmengine's runner turns it back into BN when not distributed,
# so these configs also run in one process on CPU. Variant files set arch, checkpoint, in_channels.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    'mmseg::_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',
]
custom_imports = dict(imports=['iformer_mm'], allow_failed_imports=False)

crop_size = (512, 512)
backbone_checkpoint = 'https://github.com/ChuanyangZheng/iFormer/releases/download/v0.9/iFormer_t.pth'  # noqa: E501
model = dict(
    pretrained=None,  # the ResNet base sets 'open-mmlab://resnet50_v1c'; iFormer uses init_cfg
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='IFormer',
        arch='t',
        out_indices=(0, 1, 2, 3),
        window_size=16,
        norm_eval=True,
        drop_path_rate=0.,
        init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=256, num_outs=4),
    decode_head=dict(channels=128, dropout_ratio=0.1, num_classes=150))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4),
    clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-6, power=0.9, begin=0, end=40000, by_epoch=False),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000, val_interval=4000)

# 8 GPUs x 4 images; `auto_scale_lr.enable=True` rescales lr for other total batch sizes
train_dataloader = dict(batch_size=4)
auto_scale_lr = dict(enable=False, base_batch_size=32)
