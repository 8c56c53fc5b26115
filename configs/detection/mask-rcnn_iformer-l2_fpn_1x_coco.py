# Mask R-CNN 1x, iFormer-L2 backbone (windowed stage-2 attention, window 16).
# Backbone init: iFormer_l2_distill.pth (distilled ImageNet-1k, 83.9 top-1; the only L2 release).
_base_ = ['./_base_/mask-rcnn_iformer_fpn_1x_coco.py']

backbone_checkpoint = 'https://github.com/ChuanyangZheng/iFormer/releases/download/v0.9/iFormer_l2_distill.pth'  # noqa: E501
model = dict(
    backbone=dict(arch='l2', init_cfg=dict(checkpoint=backbone_checkpoint)),
    neck=dict(in_channels=[64, 128, 256, 512]))
