"""BatchNorm1d + Linear, the published iFormer classifier layer, and its fusion into one Linear."""
from __future__ import annotations

import torch
import torch.nn as nn


class BNLinear(nn.Module):
    """``fc(bn(x))``. Children are named ``bn`` and ``fc`` so that the published
    ``classifier.classifier.{bn,l}`` keys map onto ``head.classifier.{bn,fc}``
    (see :mod:`iformer_mm.checkpoint`)."""

    def __init__(self, in_features: int, out_features: int, std: float = 0.02):
        super().__init__()
        self.bn = nn.BatchNorm1d(in_features)
        self.fc = nn.Linear(in_features, out_features)
        nn.init.trunc_normal_(self.fc.weight, std=std)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(x))

    @torch.no_grad()
    def fuse(self) -> nn.Linear:
        """One Linear computing ``fc(bn_eval(x))``: BN (with running stats) folded in."""
        bn, fc = self.bn, self.fc
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)   # (in,)
        shift = bn.bias - bn.running_mean * scale                  # (in,)
        fused = nn.Linear(fc.in_features, fc.out_features,
                          device=fc.weight.device, dtype=fc.weight.dtype)
        fused.weight.copy_(fc.weight * scale[None, :])
        fused.bias.copy_(fc.bias + fc.weight @ shift)
        return fused


@torch.no_grad()
def average_linears(a: nn.Linear, b: nn.Linear) -> nn.Linear:
    """One Linear whose output is ``(a(x) + b(x)) / 2`` (distilled heads at inference)."""
    if a.weight.shape != b.weight.shape:
        raise ValueError(f'cannot average Linear layers of shapes {tuple(a.weight.shape)} and '
                         f'{tuple(b.weight.shape)}; expected equal shapes')
    out = nn.Linear(a.in_features, a.out_features, device=a.weight.device, dtype=a.weight.dtype)
    out.weight.copy_((a.weight + b.weight) / 2)
    out.bias.copy_((a.bias + b.bias) / 2)
    return out
