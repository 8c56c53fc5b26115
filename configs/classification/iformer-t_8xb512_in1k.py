# iFormer-T, ImageNet-1k, 300 epochs, batch 4096 (8 GPUs x 512): 74.1 top-1 published.
# Published weights (evaluate: python tools/test.py CONFIG URL):
# https://github.com/ChuanyangZheng/iFormer/releases/download/v0.9/iFormer_t.pth
_base_ = ['./_base_/iformer_in1k.py']

model = dict(backbone=dict(arch='t', drop_path_rate=0.), head=dict(in_channels=256))
