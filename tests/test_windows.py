"""Windowed stage-2 attention of the dense-prediction backbones (acceptance test).

Reference: timm's ``iformer_*`` with the same (published-format) weights, whose stage-2 blocks
are driven here through the published windowing, written independently of ours:
zero-pad right/bottom to a multiple of 16 at the input of the first stage-2 SHMA block, cut
16x16 windows (B*nW, C, 16, 16), run the following blocks per window, stitch the windows and
crop after the SHMA of the last windowed block; stage 3 stays global. Published layouts:
M windows SHMA 1-4 (all), L SHMA 1-7 of 8, L2 SHMA 1-10 of 11.
Our backbone is loaded through ``init_cfg`` from a published ``{'model': ...}`` file.
"""
import copy

import pytest
import torch
from timm.models.iformer import SHMABlock as TimmSHMABlock

from iformer_mm import IFormer
from iformer_mm.models.backbones.iformer_keys import ours_to_official

from .helpers import randomize_bn, timm_twin

WINDOW = 16
PUBLISHED_WINDOWED_SHMA = {'m': 4, 'l': 7, 'l2': 10}
TOL = 1e-4
SEEDS = {'m': 1, 'l': 2, 'l2': 3}


# ---------------------------------------------------------------------------- reference
def ref_partition(x: torch.Tensor, ws: int):
    """Zero-pad right/bottom, then list the windows batch-major, row-major: (B*nW, C, ws, ws)."""
    B, C, H, W = x.shape
    Hp, Wp = -(-H // ws) * ws, -(-W // ws) * ws
    canvas = x.new_zeros(B, C, Hp, Wp)
    canvas[:, :, :H, :W] = x
    windows = [canvas[b, :, i:i + ws, j:j + ws]
               for b in range(B) for i in range(0, Hp, ws) for j in range(0, Wp, ws)]
    return torch.stack(windows), (B, C, H, W, Hp, Wp)


def ref_merge(windows: torch.Tensor, geometry) -> torch.Tensor:
    B, C, H, W, Hp, Wp = geometry
    ws = windows.shape[-1]
    canvas = windows.new_zeros(B, windows.shape[1], Hp, Wp)
    k = 0
    for b in range(B):
        for i in range(0, Hp, ws):
            for j in range(0, Wp, ws):
                canvas[b, :, i:i + ws, j:j + ws] = windows[k]
                k += 1
    return canvas[:, :, :H, :W]


@torch.no_grad()
def reference_features(timm_model, x: torch.Tensor, windowed_shma: int):
    """Four stage outputs of the published dense backbone (windowed_shma=0: global)."""
    x = timm_model.stem(x)
    outs = []
    for s, stage in enumerate(timm_model.stages):
        x = stage.downsample(x)
        shma = [i for i, b in enumerate(stage.blocks) if isinstance(b, TimmSHMABlock)]
        start = shma[0] if s == 2 and windowed_shma else -1
        end = shma[windowed_shma - 1] if s == 2 and windowed_shma else -1
        geometry = None
        for i, block in enumerate(stage.blocks):
            if i == start:
                x, geometry = ref_partition(x, WINDOW)
            x = block(x)
            if i == end:
                x = ref_merge(x, geometry)
        outs.append(x)
    return outs


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope='module')
def published(tmp_path_factory):
    """variant -> (published file, timm reference, our dense backbone loaded from the file).

    Built lazily and once per module (construction of L / L2 takes seconds)."""
    cache = {}

    def get(variant):
        if variant not in cache:
            torch.manual_seed(SEEDS[variant])
            source = randomize_bn(IFormer(variant), seed=SEEDS[variant])
            path = tmp_path_factory.mktemp(f'iformer_{variant}') / f'iFormer_{variant}.pth'
            torch.save({'model': ours_to_official(source.state_dict()), 'epoch': 1}, path)
            del source
            cache[variant] = (path, timm_twin(path, variant), dense_backbone(path, variant))
        return cache[variant]
    return get


def dense_backbone(path, variant):
    """The published dense setting, weights through init_cfg (window_blocks left at default)."""
    model = IFormer(variant, out_indices=(0, 1, 2, 3), window_size=WINDOW, norm_eval=True,
                    init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    model.init_weights()
    return model.eval()


def max_diff(ours, ref):
    assert [tuple(o.shape) for o in ours] == [tuple(r.shape) for r in ref]
    return max((o - r).abs().max().item() for o, r in zip(ours, ref))


def _image(h, w, batch=1, seed=0):
    return torch.randn(batch, 3, h, w, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------- tests
def test_reference_windowing_is_a_partition():
    """The reference partition/merge round-trips, pads with zeros and orders windows row-major."""
    x = _image(20, 37, batch=2)
    windows, geometry = ref_partition(x, WINDOW)
    assert windows.shape == (2 * 2 * 3, 3, WINDOW, WINDOW)
    assert torch.equal(windows[1], x[0, :, :16, 16:32])
    assert windows[5][:, 4:].abs().sum() == 0  # bottom-right window of image 0: mostly padding
    assert torch.equal(ref_merge(windows, geometry), x)


@pytest.mark.parametrize('variant', ['m', 'l', 'l2'])
@pytest.mark.parametrize('size', [(224, 320), (512, 512)], ids=['224x320', '512x512'])
def test_windowed_backbone_matches_published_windowing(published, variant, size):
    _, ref, model = published(variant)
    assert model.window_blocks == PUBLISHED_WINDOWED_SHMA[variant]
    x = _image(*size)
    with torch.no_grad():
        ours = model(x)
    expected = reference_features(ref, x, PUBLISHED_WINDOWED_SHMA[variant])
    assert max_diff(ours, expected) <= TOL
    # and windowing matters at this size: the global reference is different
    assert max_diff(ours[2:], reference_features(ref, x, 0)[2:]) > 1e-3


def test_batch_of_two_windows_per_image(published):
    _, ref, model = published('m')
    x = _image(224, 320, batch=2, seed=3)
    with torch.no_grad():
        ours = model(x)
        single = model(x[1:])
    assert max_diff(ours, reference_features(ref, x, 4)) <= TOL
    assert max_diff([o[1:] for o in ours], single) <= TOL


@pytest.mark.parametrize('variant', ['m', 'l'])
def test_one_window_equals_global(published, variant):
    """256x256 input -> 16x16 at stride 16 = exactly one window: windowed == global."""
    _, ref, model = published(variant)
    x = _image(256, 256)
    with torch.no_grad():
        a = model(x)
        model.set_window(0)
        try:
            b = model(x)
        finally:
            model.set_window(WINDOW)
    assert model.window_blocks == PUBLISHED_WINDOWED_SHMA[variant]
    assert max_diff(a, b) <= 1e-5
    assert max_diff(a, reference_features(ref, x, 0)) <= TOL


@pytest.mark.parametrize('size', [(200, 333), (97, 130)])
def test_odd_sizes_pad_and_crop(published, size):
    """Stage 2 of 200x333 is 13x21: padded to 16x32 inside, cropped back to 13x21."""
    _, ref, model = published('m')
    x = _image(*size)
    with torch.no_grad():
        ours = model(x)
    global_shapes = [tuple(f.shape) for f in reference_features(ref, x, 0)]
    assert [tuple(f.shape) for f in ours] == global_shapes
    assert max_diff(ours, reference_features(ref, x, 4)) <= TOL


def test_fused_windowed_backbone_matches_published_windowing(published):
    """switch_to_deploy() (what latency runs and exports use) keeps the windowing."""
    _, ref, model = published('m')
    fused = copy.deepcopy(model)
    fused.switch_to_deploy()
    x = _image(224, 320, seed=7)
    with torch.no_grad():
        ours = fused(x)
    assert max_diff(ours, reference_features(ref, x, PUBLISHED_WINDOWED_SHMA['m'])) <= TOL


def test_whole_windows_export_without_an_alias():
    """A map of whole windows (at 512, stage 2 is 32x32) is not cropped: a slice keeping
    everything exports as ``aten.alias``, which ExecuTorch's XNNPACK delegate does not take (the
    dense backbone ran as two partitions with a copy between them)."""
    model = IFormer('t', out_indices=(0, 1, 2, 3), window_size=WINDOW).eval()
    model.switch_to_deploy()
    graph = torch.export.export(model, (_image(256, 256),)).graph
    ops = {str(n.target) for n in graph.nodes if n.op == 'call_function'}
    assert not any('alias' in op for op in ops), ops
