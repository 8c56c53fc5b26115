"""One deploy state: ``IFormer(deploy=True)`` builds the fused structure that ``switch_to_deploy()``
leaves, so a saved fused model loads back strictly and computes the same outputs (backbone, plain
classifier, mmpretrain heads and classifier)."""
import copy

import pytest
import torch

from iformer_mm.checkpoint import CheckpointError
from iformer_mm.models.backbones.iformer import IFormer
from iformer_mm.models.backbones.iformer_keys import check_backbone_state
from iformer_mm.models.plain_classifier import IFormerClassifier

from .helpers import randomize_bn

TOL = 1e-5


def _max_diff(a, b) -> float:
    a = (a,) if isinstance(a, torch.Tensor) else a
    b = (b,) if isinstance(b, torch.Tensor) else b
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def _shapes(sd):
    return {k: tuple(v.shape) for k, v in sd.items()}


def _every_deploy_flag(model):
    return {type(m).__name__: m.deploy for m in model.modules() if hasattr(m, 'deploy')}


@pytest.mark.parametrize('arch,kwargs', [
    ('t', {}),
    ('m', dict(window_size=16)),
    (dict(dims=(16, 32, 64, 96), depths=(1, 1, 5, 3), num_attn=(0, 0, 1, 1), attn_head_dim_reduction=(0, 0, 1, 1),
          conv_ratio=2, ffn_ratio=2, layer_scale_init_value=0.5), {}),  # layer scale, R = 1
])
def test_saved_fused_backbone_loads_strictly_into_deploy_true(tmp_path, arch, kwargs):
    torch.manual_seed(0)
    trained = randomize_bn(IFormer(arch, out_indices=(0, 1, 2, 3), **kwargs)).eval()
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        expected = trained(x)
    fused = copy.deepcopy(trained)
    fused.switch_to_deploy()
    torch.save(fused.state_dict(), tmp_path / 'fused.pth')

    built = IFormer(arch, out_indices=(0, 1, 2, 3), deploy=True, **kwargs).eval()
    assert _shapes(built.state_dict()) == _shapes(fused.state_dict())
    assert set(_every_deploy_flag(built).values()) == {True}
    assert _every_deploy_flag(built) == _every_deploy_flag(fused)
    built.load_state_dict(torch.load(tmp_path / 'fused.pth', weights_only=True), strict=True)
    with torch.no_grad():
        assert _max_diff(built(x), expected) <= 1e-4        # fused kernels (CPU, no grad)
        assert _max_diff(built(x), fused(x)) == 0.0
    assert _max_diff([t.detach() for t in built(x)], expected) <= 1e-4   # standard ops


def test_switch_to_deploy_is_idempotent_and_one_flag():
    model = randomize_bn(IFormer('t', out_indices=(0, 1, 2, 3))).eval()
    assert set(_every_deploy_flag(model).values()) == {False}
    model.switch_to_deploy()
    state = copy.deepcopy(model.state_dict())
    model.switch_to_deploy()
    assert set(_every_deploy_flag(model).values()) == {True}
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())


@pytest.mark.parametrize('distilled', [False, True])
def test_plain_classifier_round_trip(tmp_path, distilled):
    torch.manual_seed(0)
    model = randomize_bn(IFormerClassifier('t', num_classes=7, distilled=distilled)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
    model.switch_to_deploy()
    built = IFormerClassifier('t', num_classes=7, distilled=distilled, deploy=True).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        assert _max_diff(built(x), expected) <= 1e-4


@pytest.mark.parametrize('head', ['IFormerClsHead', 'IFormerDistillHead'])
def test_mmpretrain_classifier_round_trip(head):
    pytest.importorskip('mmpretrain')
    from mmpretrain.registry import MODELS
    cfg = dict(type='ImageClassifier', backbone=dict(type='IFormer', arch='t'),
               neck=dict(type='GlobalAveragePooling'),
               head=dict(type=head, num_classes=5, in_channels=256))
    torch.manual_seed(0)
    model = randomize_bn(MODELS.build(cfg)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x, mode='tensor')
    model.backbone.switch_to_deploy()
    model.head.switch_to_deploy()
    deployed = copy.deepcopy(cfg)
    deployed['backbone']['deploy'] = True
    deployed['head']['deploy'] = True
    built = MODELS.build(deployed).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        assert _max_diff(built(x, mode='tensor'), expected) <= 1e-4


def test_loading_trainable_weights_into_a_deployed_model_says_so():
    trainable = IFormer('t').state_dict()
    with pytest.raises(CheckpointError, match='trainable .not fused. but the model is deployed'):
        check_backbone_state(IFormer('t', deploy=True), trainable, 'ckpt.pth')
    fused = IFormer('t', deploy=True).state_dict()
    with pytest.raises(CheckpointError, match='deployed .fused. but the model is not'):
        check_backbone_state(IFormer('t'), fused, 'ckpt.pth')
