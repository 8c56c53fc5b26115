# iFormer-L distilled, ImageNet-1k: DeiT-style hard distillation from a RegNetY-160 teacher,
# loss = 0.5 * CE(cls, mixed target) + 0.5 * CE(dist, teacher.argmax): 82.7 top-1 published.
# The teacher is read only when training starts (from model.teacher.checkpoint, DeiT's
# regnety_160-a5fe301d.pth); evaluation and inference do not need it.
# Published weights (evaluate: python tools/test.py CONFIG URL):
# https://github.com/ChuanyangZheng/iFormer/releases/download/v0.9/iFormer_l_distill.pth
_base_ = ['./iformer-l_8xb512_in1k.py']

teacher_checkpoint = 'https://dl.fbaipublicfiles.com/deit/regnety_160-a5fe301d.pth'
model = dict(
    type='IFormerDistiller',
    head=dict(type='IFormerDistillHead', distill_weight=0.5),
    teacher=dict(arch='regnety_160', checkpoint=teacher_checkpoint))
