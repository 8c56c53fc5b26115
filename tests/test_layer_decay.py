"""IFormerLayerDecayOptimWrapperConstructor: per-layer learning rates, weight-decay exemptions."""
import pytest
import torch.nn as nn
from mmengine.optim import build_optim_wrapper
from mmengine.optim.scheduler import LinearLR

from iformer_mm import IFormer
from iformer_mm.engine import IFormerLayerDecayOptimWrapperConstructor

from .helpers import DET_DIR, SEG_DIR, build_model, load_dense_config

LR, WD, RATE = 2e-4, 0.05, 0.8


class TinyDetector(nn.Module):
    """backbone + neck + head, the attribute layout of mmdet / mmseg models."""

    def __init__(self, **backbone_kwargs):
        super().__init__()
        self.backbone = IFormer('t', out_indices=(0, 1, 2, 3), **backbone_kwargs)
        self.neck = nn.Conv2d(256, 16, 1)
        self.head = nn.Linear(16, 3)


def _build(model, rate=RATE, **paramwise):
    cfg = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=LR, weight_decay=WD),
               constructor='IFormerLayerDecayOptimWrapperConstructor',
               paramwise_cfg=dict(decay_rate=rate, **paramwise))
    return build_optim_wrapper(model, cfg)


def _group_of(optim_wrapper, model):
    """{param name: its param group}."""
    by_id = {id(p): g for g in optim_wrapper.optimizer.param_groups for p in g['params']}
    return {n: by_id.get(id(p)) for n, p in model.named_parameters()}


def test_lr_follows_decay_rate_power_exactly():
    model = TinyDetector()
    groups = _group_of(_build(model), model)
    n = model.backbone.num_layers
    assert n == sum((2, 2, 16, 6)) + 2
    expected_layers = {
        'backbone.downsample_layers.0.conv1.conv.weight': 0,    # stem
        'backbone.stages.0.0.dwconv.conv.weight': 1,            # first block
        'backbone.downsample_layers.2.conv.weight': 2 + 2 + 1,  # with the first block of stage 2
        'backbone.stages.2.7.attn.q.conv.weight': 2 + 2 + 7 + 1,
        'backbone.stages.3.5.fc2.conv.weight': n - 2,           # last block
        'neck.weight': n - 1,                                   # everything outside the backbone
        'head.weight': n - 1,
    }
    for name, layer_id in expected_layers.items():
        assert groups[name]['layer_id'] == layer_id, name
        assert groups[name]['lr'] == LR * RATE ** (n - layer_id - 1), name
    assert groups['head.weight']['lr'] == LR
    assert groups['backbone.stages.3.5.fc2.conv.weight']['lr'] == LR * RATE
    assert groups['backbone.downsample_layers.0.conv1.conv.weight']['lr'] == LR * RATE ** (n - 1)


def test_every_trainable_param_once_and_no_decay_for_1d_bias_gamma():
    model = TinyDetector(layer_scale_init_value=1e-6, frozen_stages=1)
    optim_wrapper = _build(model)
    all_params = [p for g in optim_wrapper.optimizer.param_groups for p in g['params']]
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(all_params) == len({id(p) for p in all_params}) == len(trainable)
    groups = _group_of(optim_wrapper, model)
    assert groups['backbone.stages.0.0.dwconv.conv.weight'] is None  # frozen by frozen_stages=1
    no_decay = ['backbone.stages.2.0.dwconv.bn.weight', 'backbone.stages.2.0.dwconv.bn.bias',
                'backbone.stages.2.0.gamma', 'backbone.stages.2.14.gamma', 'neck.bias', 'head.bias']
    decay = ['backbone.stages.2.0.dwconv.conv.weight', 'backbone.stages.2.14.fc1.conv.weight',
             'neck.weight', 'head.weight']
    assert tuple(model.backbone.stages[2][0].gamma.shape) == (1, 128, 1, 1)
    for name in no_decay:
        assert groups[name]['weight_decay'] == 0., name
    for name in decay:
        assert groups[name]['weight_decay'] == WD, name


def test_schedulers_keep_the_layer_ratios():
    model = TinyDetector()
    optim_wrapper = _build(model)
    scheduler = LinearLR(optim_wrapper.optimizer, start_factor=0.005, by_epoch=False, end=10)
    for _ in range(3):
        optim_wrapper.optimizer.step()
        scheduler.step()
    groups = optim_wrapper.optimizer.param_groups
    factor = groups[-1]['lr'] / LR  # the top group has lr_scale 1
    assert groups[-1]['lr_scale'] == 1 and 0.005 < factor < 1
    for group in groups:
        assert group['lr'] == pytest.approx(LR * group['lr_scale'] * factor, rel=1e-9)


def test_decay_rate_one_is_uniform():
    model = TinyDetector()
    assert {g['lr'] for g in _build(model, rate=1.0).optimizer.param_groups} == {LR}


@pytest.mark.parametrize('paramwise, message', [
    (dict(), 'decay_rate must be a number in (0, 1], got None'),
    (dict(decay_rate=1.5), 'got 1.5'),
    (dict(decay_rate=0), 'got 0'),
    (dict(decay_rate=0.9, custom_keys={}), "unknown paramwise_cfg keys ['custom_keys']"),
])
def test_bad_paramwise_cfg_is_named(paramwise, message):
    cfg = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=LR))
    with pytest.raises(ValueError) as err:
        IFormerLayerDecayOptimWrapperConstructor(cfg, paramwise)
    assert message in str(err.value)


def test_model_without_iformer_backbone_is_refused():
    model = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(ValueError, match='Sequential.backbone is missing; layer-wise decay needs'):
        _build(model)


def test_toolbox_registries_find_it():
    from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS as DET
    from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS as SEG
    name = 'IFormerLayerDecayOptimWrapperConstructor'
    assert DET.get(name) is SEG.get(name) is IFormerLayerDecayOptimWrapperConstructor


@pytest.mark.parametrize('path', [
    DET_DIR / 'mask-rcnn_iformer-m_fpn_layer-decay_1x_coco.py',
    SEG_DIR / 'fpn_iformer-m_layer-decay_8xb4-40k_ade20k-512x512.py',
])
def test_layer_decay_configs_build_the_optimizer(path):
    cfg = load_dense_config(path)
    model = build_model(cfg)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = _group_of(optim_wrapper, model)
    n, rate = model.backbone.num_layers, cfg.optim_wrapper.paramwise_cfg.decay_rate
    assert n == 34  # iFormer-M: 32 blocks + stem + "after the backbone"
    stem = groups['backbone.downsample_layers.0.conv1.conv.weight']
    assert stem['lr'] == cfg.optim_wrapper.optimizer.lr * rate ** (n - 1)
    head_param = next(n for n in groups if not n.startswith('backbone.'))
    assert groups[head_param]['lr'] == cfg.optim_wrapper.optimizer.lr
