# iFormer-H, ImageNet-1k, 300 epochs, batch 1024 (8 GPUs x 128), AdamW lr 8e-3, drop path 0.6,
# layer scale 1e-6 (arch default), EMA 0.9999: 84.8 top-1 published.
# Published weights (evaluate: python tools/test.py CONFIG URL):
# https://github.com/ChuanyangZheng/iFormer/releases/download/v0.9/iFormer_h.pth
_base_ = ['./_base_/iformer_in1k.py']

model = dict(backbone=dict(arch='h', drop_path_rate=0.6), head=dict(in_channels=768))

train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=128)
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=8e-3))
param_scheduler = [
    # start_factor = 1e-6 / 8e-3: the warmup starts at lr 1e-6
    dict(type='LinearLR', start_factor=1.25e-4, by_epoch=True, begin=0, end=20,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=20,
         convert_to_iter_based=True),
]
# lr 8e-3 is for a total batch of 1024
auto_scale_lr = dict(base_batch_size=1024)

# EMA decay 0.9999 per iteration (mmengine momentum = 1 - decay) over all weights and BN
# statistics, like timm's ModelEma in the published code; validation uses the EMA weights
custom_hooks = [
    dict(type='EMAHook', momentum=1e-4, update_buffers=True, priority='ABOVE_NORMAL')
]
