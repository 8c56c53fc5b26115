"""Random input sizes (odd ones included) through windowed and global backbones, fused and not."""
import math
import random

import pytest
import torch

from iformer_mm.models.backbones.iformer import IFormer

from .helpers import randomize_bn


def expected_size(n: int, stride_log2: int) -> int:
    for _ in range(stride_log2):  # every stride-2 conv here maps n -> ceil(n / 2)
        n = math.ceil(n / 2)
    return n


@pytest.mark.parametrize('window_size', [0, 16])
@pytest.mark.parametrize('fused', [False, True])
def test_random_shapes(window_size, fused):
    rng = random.Random(1234 + window_size + fused)
    torch.manual_seed(0)
    model = randomize_bn(IFormer('t', out_indices=(0, 1, 2, 3), window_size=window_size)).eval()
    if fused:
        model.switch_to_deploy()
    sizes = [(rng.randrange(32, 701), rng.randrange(32, 701)) for _ in range(6)] + [(33, 701), (699, 35)]
    with torch.no_grad():
        for h, w in sizes:
            outs = model(torch.randn(1, 3, h, w))
            for i, out in enumerate(outs):
                assert out.shape == (1, model.dims[i], expected_size(h, i + 2), expected_size(w, i + 2)), (h, w, i)
                assert torch.isfinite(out).all(), (h, w, i)
