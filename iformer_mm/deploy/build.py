"""What to export: model names, tasks, resolutions, checkpoints -> a fused eval model.

Shared by the Core ML and ONNX exporters and the benchmark, so all accept the same spellings
(``iformer-m``, ``iFormer_m``, ``m``, ``iformer_m_distill``) and report the same errors.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn

from ..checkpoint import (CheckpointError, check_backbone_state, extract_backbone_state,
                          find_state_dict, is_official_backbone_key, load_backbone_weights,
                          official_to_mm, safe_load)
from ..models.backbones.iformer import ARCH_SETTINGS, IFormer
from .classifier import IFormerClassifier

TASKS = ('classifier', 'backbone')
OUTPUT_NAMES: Dict[str, Tuple[str, ...]] = {
    'classifier': ('logits',),
    'backbone': ('feat_s4', 'feat_s8', 'feat_s16', 'feat_s32'),
}
INPUT_NAME = 'image'
DEFAULT_TASK = {224: 'classifier', 512: 'backbone'}
RESOLUTION_MULTIPLE = 32
RESOLUTION_RANGE = (64, 2048)
PUBLISHED_WINDOW_SIZE = 16


def valid_model_names() -> str:
    names = sorted(ARCH_SETTINGS, key=list(ARCH_SETTINGS).index)
    return ', '.join(names) + " (also 'iformer-m', 'iFormer_m', and a '_distill' suffix)"


def parse_model_name(name: str) -> Tuple[str, bool]:
    """'iFormer_m_distill' -> ('m', True). Unknown names raise listing the valid ones."""
    key = str(name).strip().lower().replace('-', '_')
    distilled = False
    for suffix in ('_distilled', '_distill'):
        if key.endswith(suffix):
            key, distilled = key[:-len(suffix)], True
    if key.startswith('iformer_'):
        key = key[len('iformer_'):]
    if key not in ARCH_SETTINGS:
        raise ValueError(f'unknown model {name!r}; expected one of {valid_model_names()}')
    return key, distilled


def parse_resolution(value) -> Tuple[int, int]:
    """'224' -> (224, 224); '256x320' -> (256, 320) (height x width)."""
    text = str(value).strip().lower()
    m = re.fullmatch(r'(\d+)(?:x(\d+))?', text)
    if not m:
        raise ValueError(f'resolution {value!r} is not understood; expected N (square) or HxW, '
                         'e.g. 224, 512 or 256x320')
    h = int(m.group(1))
    return h, int(m.group(2) or h)


def check_resolution(height: int, width: int) -> None:
    """Both sides a multiple of the network stride (32) in [64, 2048]."""
    lo, hi = RESOLUTION_RANGE
    for side, v in (('height', height), ('width', width)):
        if v % RESOLUTION_MULTIPLE or not lo <= v <= hi:
            raise ValueError(f'input {side} {v} is not allowed: iFormer exports need a multiple of '
                             f'{RESOLUTION_MULTIPLE} (the network stride) between {lo} and {hi}, '
                             'e.g. 224 (classifier) or 512 (backbone)')


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


def _split_classifier_state(state_dict: Dict[str, torch.Tensor], fmt: str, source: str
                            ) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
    """(backbone state under our names, head state under ClassifierHead names)."""
    if fmt == 'official' or (fmt == 'raw' and any(is_official_backbone_key(k) for k in state_dict)):
        state_dict = official_to_mm(state_dict)
    head = {k[len('head.'):]: v for k, v in state_dict.items() if k.startswith('head.')}
    if 'classifier.fc.weight' not in head:
        raise CheckpointError(
            f'{source} has no classification head (expected head.classifier.fc.weight or the '
            "published classifier.classifier.l.weight); for detection / segmentation "
            "checkpoints use --task backbone")
    prefix = 'backbone.' if any(k.startswith('backbone.') for k in state_dict) else ''
    return extract_backbone_state(state_dict, prefix), head


def load_classifier(arch: str, path: str, distilled: bool = False) -> IFormerClassifier:
    """IFormerClassifier with weights from a published or mm-format classification checkpoint."""
    state_dict, fmt = find_state_dict(safe_load(path), source=path)
    backbone, head = _split_classifier_state(state_dict, fmt, path)
    distilled = distilled or any(k.startswith('classifier_dist.') for k in head)
    num_classes = int(head['classifier.fc.weight'].shape[0])
    model = IFormerClassifier(arch, num_classes=num_classes, distilled=distilled)
    check_backbone_state(model.backbone, backbone, path)
    model.backbone.load_state_dict(backbone, strict=True)
    try:
        model.head.load_state_dict(head, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f'{path}: classification head does not match '
                              f'(num_classes={num_classes}, distilled={distilled}): '
                              f'{str(e).splitlines()[0]}') from None
    return model


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
