# Mask R-CNN 1x, iFormer-M, with layer-wise learning-rate decay (NOT a published setting: an
# option for fine-tuning). Layer i of n (stem 0, backbone block k -> k + 1, neck and heads n - 1)
# trains at lr 2e-4 * decay_rate ** (n - i - 1); norms, biases and layer scales get no weight decay.
# iFormer-M has n = 34 layers, so with 0.9 the stem trains at 2e-4 * 0.9**33 ~ 6.2e-6.
_base_ = ['./mask-rcnn_iformer-m_fpn_1x_coco.py']

optim_wrapper = dict(
    constructor='IFormerLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(decay_rate=0.9))
