# Mask R-CNN 1x, iFormer-L backbone (windowed stage-2 attention, window 16).
# Backbone init: iFormer_l_distill.pth (distilled ImageNet-1k, 82.7 top-1, the best L release).
_base_ = ['./_base_/mask-rcnn_iformer_fpn_1x_coco.py']

model = dict(
    backbone=dict(arch='l', init_cfg=dict(checkpoint='checkpoints/iFormer_l_distill.pth')),
    neck=dict(in_channels=[48, 96, 256, 384]))
