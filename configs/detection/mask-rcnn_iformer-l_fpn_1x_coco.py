# Mask R-CNN 1x, iFormer-L backbone (windowed stage-2 attention, window 16).
# Backbone init: iFormer_l_distill.pth (distilled ImageNet-1k, 82.7 top-1, the best L release).
_base_ = ['./_base_/mask-rcnn_iformer_fpn_1x_coco.py']

backbone_checkpoint = 'https://github.com/ChuanyangZheng/iFormer/releases/download/v0.9/iFormer_l_distill.pth'  # noqa: E501
model = dict(
    backbone=dict(arch='l', init_cfg=dict(checkpoint=backbone_checkpoint)),
    neck=dict(in_channels=[48, 96, 256, 384]))
