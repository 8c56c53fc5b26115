# Semantic FPN 40k, iFormer-M, with layer-wise learning-rate decay (NOT a published setting: an
# option for fine-tuning). Layer i of n (stem 0, backbone block k -> k + 1, neck and head n - 1)
# trains at lr 2e-4 * decay_rate ** (n - i - 1); norms, biases and layer scales get no weight decay.
_base_ = ['./fpn_iformer-m_8xb4-40k_ade20k-512x512.py']

optim_wrapper = dict(
    constructor='IFormerLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(decay_rate=0.9))
