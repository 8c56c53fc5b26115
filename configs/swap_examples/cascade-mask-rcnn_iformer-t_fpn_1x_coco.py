# Backbone swap: mmdet's own, unmodified Cascade Mask R-CNN R-50 1x config with iFormer-T.
# Only the backbone and the neck's in_channels (= iFormer dims) change.
_base_ = 'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['iformer_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='IFormer',
        arch='t',
        out_indices=(0, 1, 2, 3),
        window_size=16,
        norm_eval=True,
        init_cfg=dict(type='Pretrained',  # downloaded once into the torch hub cache
                      checkpoint='https://github.com/ChuanyangZheng/iFormer/releases/download/v0.9/iFormer_t.pth')),  # noqa: E501
    neck=dict(in_channels=[32, 64, 128, 256]))
