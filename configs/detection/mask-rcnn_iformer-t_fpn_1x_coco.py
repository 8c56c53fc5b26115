# Mask R-CNN 1x, iFormer-T backbone (windowed stage-2 attention, window 16).
# Backbone init: iFormer_t.pth (ImageNet-1k, 74.1 top-1; no distilled T was released).
_base_ = ['./_base_/mask-rcnn_iformer_fpn_1x_coco.py']

backbone_checkpoint = 'https://github.com/ChuanyangZheng/iFormer/releases/download/v0.9/iFormer_t.pth'  # noqa: E501
model = dict(
    backbone=dict(arch='t', init_cfg=dict(checkpoint=backbone_checkpoint)),
    neck=dict(in_channels=[32, 64, 128, 256]))
