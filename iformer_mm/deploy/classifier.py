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
from ..models.norm_linear import BNLinear, average_linears


class ClassifierHead(nn.Module):
    """Pooled features -> logits; distilled heads average their two classifiers at inference."""

    def __init__(self, in_features: int, num_classes: int, distilled: bool = False):
        super().__init__()
        self.classifier: nn.Module = BNLinear(in_features, num_classes)
        self.classifier_dist: Optional[nn.Module] = (
            BNLinear(in_features, num_classes) if distilled else None)

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        logits = self.classifier(x)
        if self.classifier_dist is None:
            return logits
        dist = self.classifier_dist(x)
        return (logits, dist) if self.training else (logits + dist) / 2

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        if not isinstance(self.classifier, BNLinear):
            return
        fused = self.classifier.fuse()
        if self.classifier_dist is not None:
            fused = average_linears(fused, self.classifier_dist.fuse())
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
