# Backbone swap: mmseg's own, unmodified UPerNet R-50 80k ADE20K config with iFormer-T.
# Only the backbone and the heads' in_channels (= iFormer dims) change; `pretrained=None`
# removes the ResNet weights URL that mmseg's base model passes to the backbone.
_base_ = 'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['iformer_mm'], allow_failed_imports=False)

model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='IFormer',
        arch='t',
        out_indices=(0, 1, 2, 3),
        window_size=16,
        norm_eval=True,
        init_cfg=dict(type='Pretrained',  # downloaded once into the torch hub cache
                      checkpoint='https://github.com/ChuanyangZheng/iFormer/releases/download/v0.9/iFormer_t.pth')),  # noqa: E501
    decode_head=dict(in_channels=[32, 64, 128, 256]),  # iFormer-T dims, all four stages
    auxiliary_head=dict(in_channels=128))              # dims[2] (the head reads stage 2)
