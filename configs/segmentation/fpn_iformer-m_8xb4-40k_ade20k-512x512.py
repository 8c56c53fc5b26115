# Semantic FPN 40k on ADE20K, iFormer-M backbone (windowed stage-2 attention, window 16).
# Backbone init: iFormer_m_distill.pth (distilled ImageNet-1k, 81.1 top-1, the best M release).
_base_ = ['./_base_/fpn_iformer_8xb4-40k_ade20k-512x512.py']

backbone_checkpoint = 'https://github.com/ChuanyangZheng/iFormer/releases/download/v0.9/iFormer_m_distill.pth'  # noqa: E501
model = dict(
    backbone=dict(arch='m', init_cfg=dict(checkpoint=backbone_checkpoint)),
    neck=dict(in_channels=[48, 96, 192, 384]))
