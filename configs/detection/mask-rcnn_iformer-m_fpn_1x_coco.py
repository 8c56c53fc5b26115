# Mask R-CNN 1x, iFormer-M backbone (windowed stage-2 attention, window 16).
# Backbone init: iFormer_m_distill.pth (distilled ImageNet-1k, 81.1 top-1, the best M release).
_base_ = ['./_base_/mask-rcnn_iformer_fpn_1x_coco.py']

model = dict(
    backbone=dict(arch='m', init_cfg=dict(checkpoint='checkpoints/iFormer_m_distill.pth')),
    neck=dict(in_channels=[48, 96, 192, 384]))
