"""What to export: model names, tasks, resolutions, checkpoints -> a fused eval model.

Shared by the exporters; model names and resolutions are parsed by
:mod:`iformer_mm.models.backbones.iformer_arch`, as everywhere else.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch.nn as nn

from ..models.backbones.iformer import IFormer
from ..models.backbones.iformer_arch import parse_model_name
from ..models.backbones.iformer_keys import load_backbone_weights
from ..models.plain_classifier import IFormerClassifier, load_classifier

TASKS = ('classifier', 'backbone')
OUTPUT_NAMES: Dict[str, Tuple[str, ...]] = {
    'classifier': ('logits',),
    'backbone': ('feat_s4', 'feat_s8', 'feat_s16', 'feat_s32'),
}
INPUT_NAME = 'image'
DEFAULT_TASK = {224: 'classifier', 512: 'backbone'}
PUBLISHED_WINDOW_SIZE = 16


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f'unknown task {task!r}; expected one of {list(TASKS)}')
    return task


@dataclass
class ExportModel:
    """A fused, eval-mode model plus what the exporters need to describe it."""
    model: nn.Module
    arch: str
    task: str
    distilled: bool
    window_size: int
    num_classes: Optional[int]
    weights: str

    @property
    def output_names(self) -> Tuple[str, ...]:
        return OUTPUT_NAMES[self.task]

    def default_stem(self, height: int, width: int) -> str:
        distill = '_distill' if self.distilled else ''
        win = f'_win{self.window_size}' if self.task == 'backbone' and self.window_size else ''
        return f'iformer_{self.arch}{distill}_{self.task}{win}_{height}x{width}'


def build_export_model(name: str, task: str = 'classifier', checkpoint: Optional[str] = None,
                       window_size: Optional[int] = None) -> ExportModel:
    """Build, load, fuse and eval the model to export (random weights without a checkpoint).

    ``window_size`` (backbone only): None = the published dense backbone (16x16 windows in stage
    2), 0 = global attention everywhere.
    """
    arch, distilled = parse_model_name(name)
    check_task(task)
    if task == 'classifier':
        if window_size:
            raise ValueError('window_size applies to --task backbone only (the classifier uses '
                             f'global attention), got {window_size}')
        model = (load_classifier(arch, checkpoint, distilled) if checkpoint
                 else IFormerClassifier(arch, num_classes=1000, distilled=distilled))
        distilled, num_classes, window_size = model.distilled, model.num_classes, 0
    else:
        window_size = PUBLISHED_WINDOW_SIZE if window_size is None else window_size
        model = IFormer(arch, out_indices=(0, 1, 2, 3), window_size=window_size)
        if checkpoint:
            load_backbone_weights(model, checkpoint)
        num_classes = None
    model.eval()
    model.switch_to_deploy()
    return ExportModel(model=model, arch=arch, task=task, distilled=distilled,
                       window_size=window_size, num_classes=num_classes,
                       weights=str(checkpoint) if checkpoint else 'random (no checkpoint)')
