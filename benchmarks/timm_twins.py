"""timm's ``iformer_*`` holding the weights of one of our models: the other side of ours-vs-timm.

Why: a speed ratio means something only if both sides compute the same network. Our weights go
through the published key layout (``iformer_keys.ours_to_official``) and timm's own
``checkpoint_filter_fn`` and load *strictly*, so a timm model that lacked or renamed a parameter
(a different head, a missing block) fails here instead of being timed. The benchmark then also
checks that both compute the same loss on the same batch.

timm has no stage-level windowed backbone (its SHMA can window itself, which is a different
computation: the published dense backbones window the whole residual stream, RepCPE and FFN
included). :class:`TimmWindowedBackbone` drives timm's own blocks through the same partition /
merge as ours, so the dense comparison measures the blocks, with identical windowing on both sides.
"""
from __future__ import annotations

from typing import Tuple

import torch
import torch.nn as nn

from iformer_mm.models.backbones.iformer import IFormer, window_merge, window_partition
from iformer_mm.models.backbones.iformer_keys import ours_to_official
from iformer_mm.models.plain_classifier import IFormerClassifier


def create_timm_iformer(arch: str, num_classes: int = 1000) -> nn.Module:
    """timm's ``iformer_{arch}`` (random weights): the one baseline every benchmark compares to."""
    import timm
    return timm.create_model(f'iformer_{arch}', num_classes=num_classes)


def _load_strict(ref: nn.Module, ours: nn.Module) -> nn.Module:
    from timm.models.iformer import checkpoint_filter_fn
    ref.load_state_dict(checkpoint_filter_fn(ours_to_official(ours.state_dict()), ref), strict=True)
    return ref


def timm_classifier(ours: IFormerClassifier, arch: str) -> nn.Module:
    """timm ``iformer_{arch}`` with ``ours``' backbone and BN+Linear head (strict load)."""
    if ours.distilled:
        raise ValueError('distilled classifiers are not compared: their training forward returns '
                         'two logits in ours and one in timm')
    ref = create_timm_iformer(arch, ours.num_classes)
    return _load_strict(ref, ours).train(ours.training)


class TimmWindowedBackbone(nn.Module):
    """timm's stem and stages as a four-output dense backbone, with the published windowing.

    Stage 2 is partitioned into ``window_size`` windows at the input of the first windowed SHMA
    block and merged after the last one (what :class:`~iformer_mm.models.backbones.iformer.
    IFormerStage` does for ours), with the same partition / merge functions. ``norm_eval`` keeps
    every BatchNorm in eval mode while training (the published dense setting).
    """

    def __init__(self, model: nn.Module, window_size: int, windowed_blocks: Tuple[int, int],
                 norm_eval: bool):
        super().__init__()
        self.model = model
        self.window_size = window_size
        self.window_start, self.window_end = windowed_blocks
        self.norm_eval = norm_eval

    def train(self, mode: bool = True) -> 'TimmWindowedBackbone':
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = self.model.stem(x)
        outs = []
        for s, stage in enumerate(self.model.stages):
            x = stage.downsample(x)
            geometry = None
            for i, block in enumerate(stage.blocks):
                if s == 2 and self.window_size > 0 and i == self.window_start:
                    x, geometry = window_partition(x, self.window_size)
                x = block(x)
                if geometry is not None and i == self.window_end:
                    x = window_merge(x, geometry)
                    geometry = None
            outs.append(x)
        return tuple(outs)


def timm_dense_backbone(ours: IFormer, arch: str) -> TimmWindowedBackbone:
    """timm's blocks with ``ours``' weights, windowed and frozen-BN like ``ours``.

    ``ours`` must return all four stages (``out_indices=(0, 1, 2, 3)``).
    """
    if ours.out_indices != (0, 1, 2, 3):
        raise ValueError(f'the dense backbone must return all four stages, got out_indices '
                         f'{ours.out_indices}')
    stage = ours.stages[2]
    ref = _load_strict(create_timm_iformer(arch, 0), ours)
    windowed = (stage.window_start, stage.window_end) if stage.window_size > 0 else (-1, -1)
    backbone = TimmWindowedBackbone(ref, stage.window_size, windowed, ours.norm_eval)
    return backbone.train(ours.training)
