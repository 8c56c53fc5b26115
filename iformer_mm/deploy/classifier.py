"""A plain-PyTorch iFormer classifier for export and benchmarks (no mmpretrain needed).

Why a separate wrapper: exporting must not depend on mmpretrain (the mm head classes subclass its
``ClsHead``). The parameter names match the mm classifier, so mm-format checkpoints load as they
are: ``backbone.*`` (:class:`~iformer_mm.models.backbones.iformer.IFormer`), ``head.classifier.{bn,
fc}.*`` and, for distilled models, ``head.classifier_dist.{bn,fc}.*``.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
import torch.nn as nn

from ..models.backbones.iformer import IFormer


class NormLinear(nn.Module):
    """BatchNorm1d -> Linear (the published classifier layer); :meth:`fuse` gives one Linear."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(in_features)
        self.fc = nn.Linear(in_features, num_classes)
        nn.init.trunc_normal_(self.fc.weight, std=.02)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(x))

    @torch.no_grad()
    def fuse(self) -> nn.Linear:
        bn, fc = self.bn, self.fc
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused = nn.Linear(fc.in_features, fc.out_features, device=fc.weight.device,
                          dtype=fc.weight.dtype)
        fused.weight.copy_(fc.weight * scale)
        fused.bias.copy_(fc.bias + fc.weight @ (bn.bias - bn.running_mean * scale))
        return fused


class ClassifierHead(nn.Module):
    """Pooled features -> logits; distilled heads average their two classifiers at inference."""

    def __init__(self, in_features: int, num_classes: int, distilled: bool = False):
        super().__init__()
        self.classifier: nn.Module = NormLinear(in_features, num_classes)
        self.classifier_dist: Optional[nn.Module] = (
            NormLinear(in_features, num_classes) if distilled else None)

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        logits = self.classifier(x)
        if self.classifier_dist is None:
            return logits
        dist = self.classifier_dist(x)
        return (logits, dist) if self.training else (logits + dist) / 2

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        if not isinstance(self.classifier, NormLinear):
            return
        fused = self.classifier.fuse()
        if self.classifier_dist is not None:
            dist = self.classifier_dist.fuse()
            fused.weight.add_(dist.weight).div_(2)
            fused.bias.add_(dist.bias).div_(2)
            self.classifier_dist = None
        self.classifier = fused


class IFormerClassifier(nn.Module):
    """IFormer backbone -> global average pool -> BN+Linear head (logits)."""

    def __init__(self, arch: str = 't', num_classes: int = 1000, distilled: bool = False,
                 **backbone_kwargs):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'num_classes must be a positive int, got {num_classes!r}')
        backbone_kwargs.setdefault('out_indices', (3,))
        self.backbone = IFormer(arch, **backbone_kwargs)
        self.head = ClassifierHead(self.backbone.dims[-1], num_classes, distilled)
        self.num_classes = num_classes
        self.distilled = distilled

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        return self.head(self.backbone(x)[-1].mean((2, 3)))

    def switch_to_deploy(self) -> None:
        """Fuse backbone and head (inference only; outputs equal the eval-mode model)."""
        self.backbone.switch_to_deploy()
        self.head.switch_to_deploy()
