# Backbone swap: mmdet's own, unmodified RetinaNet R-50 1x config with iFormer-T in place of
# ResNet-50. Only the backbone and the neck's in_channels (= iFormer dims) change; everything
# else (optimizer included) is mmdet's. The same block works in any mmdet config with an FPN.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['iformer_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,                 # drop ResNet's arguments
        type='IFormer',
        arch='t',                      # t, s, m, l, l2, h
        out_indices=(0, 1, 2, 3),      # strides 4, 8, 16, 32
        window_size=16,                # windowed stage-2 attention, as the published detectors
        norm_eval=True,
        init_cfg=dict(type='Pretrained',  # downloaded once into the torch hub cache
                      checkpoint='https://github.com/ChuanyangZheng/iFormer/releases/download/v0.9/iFormer_t.pth')),  # noqa: E501
    neck=dict(in_channels=[32, 64, 128, 256]))  # iFormer-T dims
