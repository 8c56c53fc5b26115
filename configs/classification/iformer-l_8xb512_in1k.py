# iFormer-L, ImageNet-1k, 300 epochs, batch 4096 (8 GPUs x 512), drop path 0.1:
# 81.9 top-1 published.
# Published weights (evaluate: python tools/test.py CONFIG URL):
# https://github.com/ChuanyangZheng/iFormer/releases/download/v0.9/iFormer_l.pth
_base_ = ['./_base_/iformer_in1k.py']

model = dict(backbone=dict(arch='l', drop_path_rate=0.1), head=dict(in_channels=384))
