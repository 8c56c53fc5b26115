# Mask R-CNN 1x, iFormer-L2 backbone (windowed stage-2 attention, window 16).
# Backbone init: iFormer_l2_distill.pth (distilled ImageNet-1k, 83.9 top-1; the only L2 release).
_base_ = ['./_base_/mask-rcnn_iformer_fpn_1x_coco.py']

model = dict(
    backbone=dict(arch='l2', init_cfg=dict(checkpoint='checkpoints/iFormer_l2_distill.pth')),
    neck=dict(in_channels=[64, 128, 256, 512]))
