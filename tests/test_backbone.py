"""IFormer backbone: published architecture (vs timm), mm conventions, fusion, input checks."""
import pytest
import torch

from iformer_mm.models.backbones.iformer import IFormer, SHMABlock
from iformer_mm.models.backbones.iformer_arch import ARCH_SETTINGS

from .helpers import randomize_bn, timm_twin

ARCHS = ['t', 's', 'm', 'l', 'l2', 'h']


@pytest.mark.parametrize('arch', ARCHS)
def test_features_match_timm_and_fused(arch):
    torch.manual_seed(0)
    model = randomize_bn(IFormer(arch, out_indices=(0, 1, 2, 3))).eval()
    ref = timm_twin(model, arch)
    size = 160 if arch == 'h' else 224
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        ours = model(x)
        theirs = ref.forward_intermediates(x, intermediates_only=True)
        n_backbone = sum(p.numel() for p in model.parameters())
        n_timm = sum(p.numel() for n, p in ref.named_parameters() if not n.startswith('head'))
        assert n_backbone == n_timm
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert a.shape == b.shape == (1, model.dims[i], size // 2 ** (i + 2), size // 2 ** (i + 2))
            assert (a - b).abs().max() <= 1e-4, f'stage {i}'
        model.switch_to_deploy()
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        fused = model(x)
    for a, b in zip(ours, fused):
        assert (a - b).abs().max() <= 1e-5 * a.abs().max() + 1e-6


def test_layer_scale_folds_into_fused_convs():
    torch.manual_seed(0)
    model = randomize_bn(IFormer('t', layer_scale_init_value=0.5, drop_path_rate=0.2)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('gamma'):
                p.uniform_(0.2, 1.5)
    gammas = [n for n, _ in model.named_parameters() if n.endswith('gamma')]
    assert len(gammas) == sum(model.depths) - 5  # every block but the 5 RepCPE
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        before = model(x)[0]
        model.switch_to_deploy()
        after = model(x)[0]
    assert not any(n.endswith('gamma') for n, _ in model.named_parameters())
    assert (before - after).abs().max() <= 1e-5 * before.abs().max()


def test_h_defaults_to_published_layer_scale():
    model = IFormer('h')
    gammas = {n: p for n, p in model.named_parameters() if n.endswith('gamma')}
    assert len(gammas) == 67  # spec: H has 67 gamma keys
    assert all(torch.all(p == 1e-6) for p in gammas.values())
    assert not any(n.endswith('gamma') for n, _ in IFormer('m').named_parameters())


@pytest.mark.parametrize('name', ['m', 'M', 'iformer-m', 'iFormer_m', 'iformer_m_distill'])
def test_arch_spellings(name):
    assert IFormer(name).dims == ARCH_SETTINGS['m']['dims']


def test_unknown_arch_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown iFormer arch 'xl'.*'l2'"):
        IFormer('xl')


def test_custom_arch_dict():
    arch = dict(dims=(16, 32, 48, 64), depths=(1, 1, 5, 3), num_attn=(0, 0, 1, 1),
                attn_head_dim_reduction=(0, 0, 2, 2), conv_ratio=2, ffn_ratio=2)
    model = IFormer(arch, out_indices=(0, 1, 2, 3)).eval()
    outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [16, 32, 48, 64]
    kinds = [type(b).__name__ for b in model.stages[2]]
    assert kinds == ['ConvBlock', 'RepCPE', 'SHMABlock', 'FFN', 'ConvBlock']
    with pytest.raises(ValueError, match=r"missing keys \['ffn_ratio'\]"):
        IFormer({k: v for k, v in arch.items() if k != 'ffn_ratio'})
    with pytest.raises(ValueError, match='stage 2: depth 2 cannot hold 1 attention groups'):
        IFormer(dict(arch, depths=(1, 1, 2, 3)))


def test_out_indices_normalised_and_checked():
    model = IFormer('t', out_indices=(-1, 1)).eval()
    assert model.out_indices == (1, 3)
    outs = model(torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(1, 64, 8, 12), (1, 256, 2, 3)]
    with pytest.raises(ValueError, match='out_indices entry 4 is out of range'):
        IFormer('t', out_indices=(0, 4))


def test_frozen_stages_and_norm_eval():
    model = IFormer('t', frozen_stages=2)
    model.train()
    for i in range(2):
        assert all(not p.requires_grad for p in model.downsample_layers[i].parameters())
        assert all(not p.requires_grad for p in model.stages[i].parameters())
        assert not any(m.training for m in model.stages[i].modules())
    assert all(p.requires_grad for p in model.stages[2].parameters())
    assert model.stages[2].training
    with pytest.raises(ValueError, match=r'frozen_stages must be an int in \[-1, 4\].*got 5'):
        IFormer('t', frozen_stages=5)
    bn_eval = IFormer('t', norm_eval=True).train()
    bns = [m for m in bn_eval.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)
    # frozen statistics really stay put during a training forward
    before = bns[0].running_mean.clone()
    bn_eval(torch.randn(2, 3, 64, 64))
    assert torch.equal(before, bns[0].running_mean)


def test_with_cp_gives_same_gradients():
    torch.manual_seed(0)
    a = IFormer('t', out_indices=(0, 1, 2, 3))
    b = IFormer('t', out_indices=(0, 1, 2, 3), with_cp=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 64, 64)
    for m in (a, b):
        m.train()
        sum(o.square().mean() for o in m(x)).backward()
    for (n, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa.grad, pb.grad, atol=1e-6, rtol=1e-4), n


def test_drop_path_rates_follow_global_block_index():
    model = IFormer('t', drop_path_rate=0.3)
    total = sum(model.depths)
    expected = torch.linspace(0, 0.3, total).tolist()
    idx = 0
    for stage in model.stages:
        for block in stage:
            if hasattr(block, 'drop_path') and not isinstance(block.drop_path, torch.nn.Identity):
                assert block.drop_path.drop_prob == pytest.approx(expected[idx])
            idx += 1
    assert idx == total


def test_get_layer_depth():
    model = IFormer('t')
    n = sum(model.depths) + 2
    assert model.get_layer_depth('backbone.downsample_layers.0.conv1.conv.weight', 'backbone.') == (0, n)
    assert model.get_layer_depth('backbone.stages.0.0.dwconv.conv.weight', 'backbone.') == (1, n)
    assert model.get_layer_depth('backbone.stages.3.5.fc2.bn.bias', 'backbone.') == (n - 2, n)
    assert model.get_layer_depth('backbone.downsample_layers.2.conv.weight', 'backbone.')[0] == 5
    assert model.get_layer_depth('head.fc.weight', 'backbone.') == (n - 1, n)


def test_in_channels_and_input_errors():
    model = IFormer('t', in_channels=1).eval()
    assert model(torch.randn(1, 1, 64, 64))[0].shape == (1, 256, 2, 2)
    with pytest.raises(ValueError, match='in_channels=1 but the input has 3 channels'):
        model(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match='input 16x64 is smaller than the network stride 32'):
        model(torch.randn(1, 1, 16, 64))
    with pytest.raises(ValueError, match='4-D'):
        model(torch.randn(1, 64, 64))


def test_windowed_equals_global_on_one_window():
    torch.manual_seed(0)
    glob = randomize_bn(IFormer('m', out_indices=(0, 1, 2, 3))).eval()
    win = IFormer('m', out_indices=(0, 1, 2, 3), window_size=16).eval()
    win.load_state_dict(glob.state_dict())
    x = torch.randn(1, 3, 256, 256)  # stride 16 -> 16x16 tokens = one window
    with torch.no_grad():
        for a, b in zip(glob(x), win(x)):
            assert (a - b).abs().max() <= 1e-5
        x = torch.randn(1, 3, 320, 288)
        a, b = glob(x)[2], win(x)[2]
    assert a.shape == b.shape and (a - b).abs().max() > 1e-3  # windows really change the result


def test_window_options_validated():
    assert IFormer('l', window_size=16).window_blocks == 7
    assert IFormer('l2', window_size=16).window_blocks == 10
    assert IFormer('m', window_size=16).window_blocks == 4
    with pytest.raises(ValueError, match=r'window_blocks must be in \[1, 4\].*got 5'):
        IFormer('m', window_size=16, window_blocks=5)
    with pytest.raises(ValueError, match='window_size must be an int >= 0'):
        IFormer('m', window_size=-16)
    shma = [i for i, b in enumerate(IFormer('l').stages[2]) if isinstance(b, SHMABlock)]
    assert len(shma) == 8


def test_the_old_attn_ratio_spelling_is_read_with_a_warning_naming_the_new_key():
    from iformer_mm.models.backbones.iformer_arch import ARCH_SETTINGS
    arch = dict(ARCH_SETTINGS['t'])
    arch['attn_ratio'] = arch.pop('attn_head_dim_reduction')
    with pytest.warns(FutureWarning, match="'attn_ratio' is now 'attn_head_dim_reduction'"):
        old = IFormer(arch)
    assert [b.attn.attn_dim for b in old.stages[3] if hasattr(b, 'attn')] == [64, 64]  # 256 // 4
    with pytest.raises(ValueError, match="both 'attn_ratio' .* and 'attn_head_dim_reduction'"):
        IFormer(dict(arch, attn_head_dim_reduction=(0, 0, 2, 4)))
