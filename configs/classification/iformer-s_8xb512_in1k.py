# iFormer-S, ImageNet-1k, 300 epochs, batch 4096 (8 GPUs x 512): 78.8 top-1 published.
# Published weights (evaluate: python tools/test.py CONFIG URL):
# https://github.com/ChuanyangZheng/iFormer/releases/download/v0.9/iFormer_s.pth
_base_ = ['./_base_/iformer_in1k.py']

model = dict(backbone=dict(arch='s', drop_path_rate=0.), head=dict(in_channels=320))
