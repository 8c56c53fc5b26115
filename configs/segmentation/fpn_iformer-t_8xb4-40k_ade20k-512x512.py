# Semantic FPN 40k on ADE20K, iFormer-T backbone (windowed stage-2 attention, window 16).
# Backbone init: iFormer_t.pth (ImageNet-1k, 74.1 top-1; no distilled T was released).
_base_ = ['./_base_/fpn_iformer_8xb4-40k_ade20k-512x512.py']

backbone_checkpoint = 'https://github.com/ChuanyangZheng/iFormer/releases/download/v0.9/iFormer_t.pth'  # noqa: E501
model = dict(
    backbone=dict(arch='t', init_cfg=dict(checkpoint=backbone_checkpoint)),
    neck=dict(in_channels=[32, 64, 128, 256]))
