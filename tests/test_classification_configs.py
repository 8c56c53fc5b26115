"""configs/classification reproduce the published ImageNet recipe (docs/architecture.md)."""
import pytest
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from .helpers import CONFIGS, build_classifier, load_cls_config

DIMS = {'t': 256, 's': 320, 'm': 384, 'l': 384, 'l2': 512, 'h': 768}
DROP_PATH = {'t': 0., 's': 0., 'm': 0., 'l': 0.1, 'l2': 0., 'h': 0.6}


@pytest.mark.parametrize('variant', list(CONFIGS))
def test_recipe(variant):
    cfg = load_cls_config(variant)
    arch = variant.replace('_distilled', '')
    distilled = variant != arch
    assert cfg.custom_imports == dict(imports=['iformer_mm'], allow_failed_imports=False)
    assert cfg.default_scope == 'mmpretrain'

    # model
    model = cfg.model
    assert model.type == ('IFormerDistiller' if distilled else 'IFormerImageClassifier')
    assert model.backbone == dict(type='IFormer', arch=arch, out_indices=(3, ),
                                  drop_path_rate=DROP_PATH[arch])
    assert model.neck == dict(type='GlobalAveragePooling')
    assert model.head.type == ('IFormerDistillHead' if distilled else 'IFormerClsHead')
    assert (model.head.num_classes, model.head.in_channels) == (1000, DIMS[arch])
    assert model.head.loss == dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')
    assert model.train_cfg.augments == [dict(type='Mixup', alpha=0.8), dict(type='CutMix', alpha=1.0)]
    if distilled:
        assert model.head.distill_weight == 0.5
        assert model.teacher.arch == 'regnety_160'

    # data: ImageNet folder layout, published augmentation
    batch = 128 if arch == 'h' else 512
    train = cfg.train_dataloader
    assert train.batch_size == batch
    assert (train.dataset.type, train.dataset.data_root, train.dataset.split) == (
        'ImageNet', 'data/imagenet', 'train')
    steps = {t['type']: t for t in train.dataset.pipeline}
    assert steps['RandomResizedCrop']['scale'] == 224
    assert steps['RandomResizedCrop']['interpolation'] == 'bicubic'
    assert steps['RandomFlip']['prob'] == 0.5
    ra = steps['RandAugment']
    assert (ra['policies'], ra['num_policies'], ra['magnitude_level'], ra['magnitude_std']) == (
        'timm_increasing', 2, 9, 0.5)
    assert steps['RandomErasing']['erase_prob'] == 0.25
    test = {t['type']: t for t in cfg.test_dataloader.dataset.pipeline}
    assert (test['ResizeEdge']['scale'], test['ResizeEdge']['interpolation']) == (256, 'bicubic')
    assert test['CenterCrop']['crop_size'] == 224
    assert cfg.val_dataloader.dataset.split == 'val'

    # schedule
    epochs = 450 if arch == 'l2' else 300
    lr, base_batch = (8e-3, 1024) if arch == 'h' else (4e-3, 4096)
    assert cfg.train_cfg.max_epochs == epochs
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay) == ('AdamW', lr, 0.05)
    assert cfg.auto_scale_lr.base_batch_size == base_batch == 8 * batch
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.end, warmup.by_epoch, warmup.convert_to_iter_based) == (
        'LinearLR', 20, True, True)
    assert warmup.start_factor * lr == pytest.approx(1e-6)
    assert (cosine.type, cosine.begin, cosine.eta_min, cosine.convert_to_iter_based) == (
        'CosineAnnealingLR', 20, 1e-6, True)
    assert 'end' not in cosine  # the runner sets it to max_epochs
    hooks = [h.type for h in cfg.get('custom_hooks', [])]
    if arch == 'h':
        ema = cfg.custom_hooks[0]
        assert (ema.type, ema.momentum, ema.update_buffers) == ('EMAHook', 1e-4, True)
    else:
        assert 'EMAHook' not in hooks


def test_no_weight_decay_on_norms_biases_and_layer_scale():
    """Only conv / linear weights decay (published: no decay for 1-D params, biases, gamma)."""
    init_default_scope('mmpretrain')
    cfg = load_cls_config('t')
    cfg.model.backbone.layer_scale_init_value = 1e-6  # T has no layer scale; H does
    model = build_classifier('t', cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {id(p) for g in wrapper.optimizer.param_groups if g['weight_decay'] > 0
             for p in g['params']}
    for name, p in model.named_parameters():
        should_decay = p.dim() > 1 and not name.endswith('gamma')
        assert (id(p) in decay) == should_decay, name
        if should_decay:
            assert name.endswith('weight') and p.dim() in (2, 4)
    assert any(n.endswith('gamma') for n, _ in model.named_parameters())
    assert all(g['weight_decay'] in (0., 0.05) for g in wrapper.optimizer.param_groups)
