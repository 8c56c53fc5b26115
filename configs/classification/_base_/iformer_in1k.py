# iFormer on ImageNet-1k as published (shared by all variant files; they set arch, head
# in_channels and what differs: drop path, epochs, lr, batch, EMA, distillation).
# Recipe: 300 epochs, batch 4096 = 8 GPUs x 512, AdamW lr 4e-3 / wd 0.05 (no decay on norms,
# biases, 1-D params and layer scale), cosine per iteration to 1e-6 after a 20-epoch linear
# warmup (per iteration), RandomResizedCrop 224 bicubic + flip + RandAugment m9 mstd0.5
# (rand-m9-mstd0.5-inc1), RandomErasing 0.25, Mixup 0.8 / CutMix 1.0, label smoothing 0.1, fp32.
# Test: resize short edge 256 bicubic, center crop 224.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['iformer_mm'], allow_failed_imports=False)

model = dict(
    # mmpretrain's ImageClassifier that `inference_model` also recognises when built from a config
    type='IFormerImageClassifier',
    backbone=dict(type='IFormer', arch='t', out_indices=(3, ), drop_path_rate=0.),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='IFormerClsHead',
        num_classes=1000,
        in_channels=256,
        # Mixup/CutMix soft targets are smoothed like timm's mixup_target(smoothing=0.1)
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
        topk=(1, 5)),
    train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]),
)

# ---------------------------------------------------------------- data (ImageNet folder layout)
# data/imagenet/{train,val}/ + meta/{train,val}.txt, mmpretrain `ImageNet` dataset type.
train_dataloader = dict(
    batch_size=512,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    dataset=dict(data_root='data/imagenet', split='train'))
val_dataloader = dict(
    batch_size=256,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    dataset=dict(data_root='data/imagenet', split='val'))
test_dataloader = val_dataloader

# ---------------------------------------------------------------- schedule
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=4e-3, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999)),
    paramwise_cfg=dict(
        norm_decay_mult=0.,
        bias_decay_mult=0.,
        flat_decay_mult=0.,
        # layer scale has shape (1, C, 1, 1), so flat_decay_mult does not cover it
        custom_keys={
            '_delete_': True,
            '.gamma': dict(decay_mult=0.)
        }),
)

param_scheduler = [
    # start_factor = 1e-6 / 4e-3: the warmup starts at lr 1e-6
    dict(type='LinearLR', start_factor=2.5e-4, by_epoch=True, begin=0, end=20,
         convert_to_iter_based=True),
    # `end` defaults to train_cfg.max_epochs, so variants only change max_epochs
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=20,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=300, val_interval=1)

# lr 4e-3 is for a total batch of 4096; `--auto-scale-lr` rescales it for other batch sizes
auto_scale_lr = dict(base_batch_size=4096)

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
