"""The deployed (fused) backbone's fast paths give the same outputs as timm and the unfused model.

Covers: the oneDNN fused-kernel path (grad off), the standard-op deployed path (grad on, exports),
channels_last in / out, windowed attention with padding, weight-cache invalidation, models built
under inference_mode, and the unfused training path (outputs and gradients vs timm).
"""
import copy

import pytest
import torch

from .helpers import randomize_bn, timm_twin
from iformer_mm.models.backbones import fused_cpu_ops
from iformer_mm.models.backbones.iformer import IFormer

TOL = 1e-4


def _max_diff(a, b) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def _pair(arch: str, seed: int = 0):
    torch.manual_seed(seed)
    ours = randomize_bn(IFormer(arch, out_indices=(0, 1, 2, 3)), seed).eval()
    return ours, timm_twin(ours, arch)


def _timm_features(ref, x):
    with torch.no_grad():
        return ref.forward_intermediates(x, intermediates_only=True)


@pytest.mark.parametrize('arch', ['t', 'm', pytest.param('h', marks=pytest.mark.slow)])
def test_every_inference_path_matches_timm(arch):
    ours, ref = _pair(arch)
    x = torch.randn(2, 3, 160, 192)
    expected = _timm_features(ref, x)
    with torch.no_grad():
        assert _max_diff(ours(x), expected) <= TOL                         # unfused
    ours.switch_to_deploy()
    assert fused_cpu_ops.fused_kernels_available()
    with torch.no_grad():
        fast = ours(x)                                                      # oneDNN kernels
        assert all(t.is_contiguous() for t in fast)                         # format follows input
        assert _max_diff(fast, expected) <= TOL
        cl = ours(x.contiguous(memory_format=torch.channels_last))
        assert all(t.is_contiguous(memory_format=torch.channels_last) for t in cl)
        assert _max_diff(cl, expected) <= TOL
    std = ours(x)                                                           # grad on: plain ops
    assert std[0].requires_grad
    assert _max_diff([t.detach() for t in std], expected) <= TOL
    fused_cpu_ops.set_fused_kernels(False)
    try:
        with torch.no_grad():
            assert _max_diff(ours(x), expected) <= TOL
    finally:
        fused_cpu_ops.set_fused_kernels(True)


def test_onednn_matmul_attention_matches_timm():
    # 16x18 = 288 tokens in stage 3: above ONEDNN_MATMUL_MIN_TOKENS, batch of two images
    from iformer_mm.models.backbones import iformer_fused
    ours, ref = _pair('t', seed=4)
    x = torch.randn(2, 3, 256, 288)
    assert 16 * 18 >= iformer_fused.ONEDNN_MATMUL_MIN_TOKENS
    expected = _timm_features(ref, x)
    ours.switch_to_deploy()
    with torch.no_grad():
        assert _max_diff(ours(x), expected) <= TOL
        assert _max_diff(ours(x[:1]), [e[:1] for e in expected]) <= TOL  # batch 1: no stacking


def test_windowed_paths_agree_with_padding():
    torch.manual_seed(0)
    model = randomize_bn(IFormer('t', out_indices=(0, 1, 2, 3), window_size=16)).eval()
    x = torch.randn(1, 3, 200, 264)  # stage 2 is 13x17: padded to 16x32, two windows
    with torch.no_grad():
        expected = model(x)
        deployed = copy.deepcopy(model)
        deployed.switch_to_deploy()
        assert _max_diff(deployed(x), expected) <= TOL
        assert _max_diff(deployed(x.contiguous(memory_format=torch.channels_last)), expected) <= TOL
    assert _max_diff([t.detach() for t in deployed(x)], expected) <= TOL


def test_equal_qk_and_v_dims_and_layer_scale():
    # head-dim reduction 1 (as H): q, k and v have the same width; layer scale folded on deploy
    arch = dict(dims=(16, 32, 64, 96), depths=(1, 1, 5, 3), num_attn=(0, 0, 1, 1),
                attn_head_dim_reduction=(0, 0, 1, 1), conv_ratio=2, ffn_ratio=2, layer_scale_init_value=0.5)
    torch.manual_seed(0)
    model = randomize_bn(IFormer(arch, out_indices=(0, 1, 2, 3))).eval()
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        expected = model(x)
        model.switch_to_deploy()
        assert _max_diff(model(x), expected) <= TOL


def test_packed_weights_follow_new_weights():
    torch.manual_seed(0)
    a = randomize_bn(IFormer('t'), 1).eval()
    b = randomize_bn(IFormer('t'), 2).eval()
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        want = b(x)
        a.switch_to_deploy()
        b.switch_to_deploy()
        a(x)  # packs a's weights
        a.load_state_dict(b.state_dict())  # in-place copy: version counters move
        assert _max_diff(a(x), want) <= TOL


def test_packed_weights_follow_input_shape_and_threads():
    """Packings are per input shape and thread count (a packing for another shape is slow)."""
    from iformer_mm.models.backbones import fused_cpu_ops as ops
    if not ops.fused_kernels_available():
        pytest.skip('oneDNN fused kernels not available')
    torch.manual_seed(0)
    ref = randomize_bn(IFormer('t'), 1).eval()
    model = copy.deepcopy(ref)
    model.switch_to_deploy()
    stem_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    threads = torch.get_num_threads()
    shapes = [(1, 3, 96, 96), (2, 3, 64, 128), (1, 3, 96, 96), (1, 3, 160, 64)]
    try:
        with torch.no_grad():
            for i, shape in enumerate(shapes):
                torch.set_num_threads(1 + i % 2)
                x = torch.randn(shape)
                assert _max_diff(model(x), ref(x)) <= TOL, shape
                cache = ops._PACKED[stem_conv][None]
                assert (torch.Size(shape), 1 + i % 2) in cache
                assert len(cache) <= ops.PACKED_PER_SLICE
    finally:
        torch.set_num_threads(threads)


def test_model_built_under_inference_mode():
    with torch.inference_mode():
        model = IFormer('t').eval()
        model.switch_to_deploy()
        out = model(torch.randn(1, 3, 64, 64))
    assert out[0].shape == (1, 256, 2, 2)


def test_training_path_matches_timm_outputs_and_gradients():
    ours, ref = _pair('t', seed=3)
    ours.train()
    ref.train()
    x = torch.randn(2, 3, 96, 96)
    out = ours(x)
    want = ref.forward_intermediates(x, intermediates_only=True)
    assert _max_diff([o.detach() for o in out], [w.detach() for w in want]) <= TOL
    sum(o.square().mean() for o in out).backward()
    sum(w.square().mean() for w in want).backward()
    pairs = [(ours.downsample_layers[0].conv1.conv.weight, ref.stem.conv1.c.weight),
             (ours.stages[2][7].attn.q.conv.weight,
              ref.stages[2].blocks[7].mixer.module.q.c.weight),
             (ours.stages[3][1].attn.v_gate.conv.weight,
              ref.stages[3].blocks[1].mixer.module.v_gate.c.weight)]
    for mine, theirs in pairs:
        scale = float(theirs.grad.abs().max())
        assert float((mine.grad - theirs.grad).abs().max()) <= 1e-4 * max(scale, 1.0)


def _spy_on_kernels(monkeypatch):
    """Count the calls of every registered fused kernel (the kernels still compute)."""
    import collections
    calls = collections.Counter()
    for cls, kernel in list(fused_cpu_ops.FUSED_KERNELS.items()):
        def spy(block, x, kernel=kernel, cls=cls):
            calls[cls] += 1
            return kernel(block, x)
        monkeypatch.setitem(fused_cpu_ops.FUSED_KERNELS, cls, spy)
    return calls


@pytest.mark.parametrize('window_size', [0, 16])
def test_every_block_type_of_the_published_variants_reaches_its_fused_kernel(monkeypatch,
                                                                            window_size):
    from iformer_mm.models.backbones.iformer_arch import ARCH_SETTINGS
    calls = _spy_on_kernels(monkeypatch)
    for arch in ARCH_SETTINGS:
        model = IFormer(arch, out_indices=(0, 1, 2, 3), window_size=window_size).eval()
        model.switch_to_deploy()
        run = [*model.downsample_layers, *(block for stage in model.stages for block in stage)]
        calls.clear()
        with torch.no_grad():
            model(torch.randn(1, 3, 64, 64))
        assert calls, f'{arch}: the fused path did not run'
        for block_type in {type(b) for b in run}:
            assert calls[block_type] == sum(type(b) is block_type for b in run), (arch, block_type)


def test_a_block_without_a_fused_kernel_is_refused_not_run_unfused():
    from iformer_mm.models.backbones.iformer import ConvBlock

    class RenamedConvBlock(ConvBlock):
        pass

    model = IFormer('t').eval()
    model.switch_to_deploy()
    model.stages[0][0].__class__ = RenamedConvBlock
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad(), pytest.raises(NotImplementedError,
                                        match=r'no fused CPU kernel for .*RenamedConvBlock'):
        model(x)
    with torch.no_grad(), fused_cpu_ops.fused_kernels(False):
        assert model(x)[0].shape == (1, 256, 2, 2)  # the standard-op path still runs it


def test_a_fused_kernel_that_disagrees_warns_once_and_the_model_runs_unfused(monkeypatch):
    """The self-check named neither the kernel nor the difference when the kernels computed
    something else: the model just ran unfused, in silence."""
    real = fused_cpu_ops.matmul_nt
    monkeypatch.setattr(fused_cpu_ops, 'matmul_nt', lambda a, b: real(a, b) + 1e-2)
    monkeypatch.setitem(fused_cpu_ops._state, 'available', None)  # restored: the real answer
    with pytest.warns(UserWarning) as record:
        assert not fused_cpu_ops.fused_kernels_available()
        assert not fused_cpu_ops.fused_kernels_available()  # cached: checked (and warned) once
        with torch.no_grad():
            assert not fused_cpu_ops.use_fused_kernels(torch.zeros(1, 3, 8, 8))
    assert len(record) == 1, [str(w.message) for w in record]
    message = str(record[0].message)
    assert 'disagree' in message and 'matmul_nt' in message and 'runs unfused' in message
    assert 'max abs difference 0.01 ' in message and 'conv+' not in message
