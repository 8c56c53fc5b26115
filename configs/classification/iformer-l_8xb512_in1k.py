# iFormer-L, ImageNet-1k, 300 epochs, batch 4096 (8 GPUs x 512), drop path 0.1:
# 81.9 top-1 published.
_base_ = ['./_base_/iformer_in1k.py']

model = dict(backbone=dict(arch='l', drop_path_rate=0.1), head=dict(in_channels=384))
