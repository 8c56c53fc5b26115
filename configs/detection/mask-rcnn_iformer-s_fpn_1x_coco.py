# Mask R-CNN 1x, iFormer-S backbone (windowed stage-2 attention, window 16).
# Backbone init: iFormer_s.pth (ImageNet-1k, 78.8 top-1; no distilled S was released).
_base_ = ['./_base_/mask-rcnn_iformer_fpn_1x_coco.py']

model = dict(
    backbone=dict(arch='s', init_cfg=dict(checkpoint='checkpoints/iFormer_s.pth')),
    neck=dict(in_channels=[32, 64, 176, 320]))
