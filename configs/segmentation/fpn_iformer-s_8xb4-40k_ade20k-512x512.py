# Semantic FPN 40k on ADE20K, iFormer-S backbone (windowed stage-2 attention, window 16).
# Backbone init: iFormer_s.pth (ImageNet-1k, 78.8 top-1; no distilled S was released).
_base_ = ['./_base_/fpn_iformer_8xb4-40k_ade20k-512x512.py']

backbone_checkpoint = 'https://github.com/ChuanyangZheng/iFormer/releases/download/v0.9/iFormer_s.pth'  # noqa: E501
model = dict(
    backbone=dict(arch='s', init_cfg=dict(checkpoint=backbone_checkpoint)),
    neck=dict(in_channels=[32, 64, 176, 320]))
