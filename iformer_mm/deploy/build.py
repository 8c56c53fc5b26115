"""What to export: a :class:`~.spec.DeploySpec` -> a fused eval model to export, and its reference.

Tasks: ``classifier`` (logits), ``backbone`` (the four dense feature maps, published windowed
layout), ``segmentor`` (the whole Semantic FPN: backbone + neck + head + resize, see
:mod:`.segmentor`), ``detector`` (the whole Mask / Faster R-CNN: backbone + FPN + RPN + RoI
heads + NMS, see :mod:`.detector`) and ``detector-dense`` (its convolutional part). Inputs are
the normalised NCHW float tensor the toolbox's data preprocessor produces (the detector's also
its ``img_shape``); the spec carries the preprocessing into every report.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn as nn

from ..models.backbones.iformer import IFormer
from ..models.backbones.iformer_arch import parse_model_name
from ..models.backbones.iformer_keys import load_backbone_weights
from ..models.plain_classifier import IFormerClassifier, load_classifier
from .detector import DetectorDenseForExport, DetectorForExport
from .mm_model import build_mm_model, fuse_for_export
from .segmentor import SegmentorForExport
from .spec import (DETECTOR_TASKS, PUBLISHED_WINDOW_SIZE, TASKS, DeploySpec, Preprocess,
                   default_config, plan)
from .targets.base import DeployError

BACKBONE_OUTPUTS = ('feat_s4', 'feat_s8', 'feat_s16', 'feat_s32')
#: the image input's name in every artifact
INPUT_NAME = 'image'
__all__ = ['BACKBONE_OUTPUTS', 'INPUT_NAME', 'TASKS', 'ExportModel', 'Preprocess',
           'build_export_model', 'build_from_spec', 'default_config']


@dataclass
class ExportModel:
    """A fused, eval-mode model, its completed :class:`~.spec.DeploySpec` and its references."""
    model: nn.Module
    spec: DeploySpec
    weights: str
    cfg: Any = field(default=None, repr=False)  # the loaded config (mmengine Config)
    #: the toolbox's own model behind ``model`` (segmentor / detector; fused, same weights):
    #: the PyTorch reference for parity and accuracy figures
    mm_model: Optional[nn.Module] = field(default=None, repr=False)

    # what the exporters and the benchmarks read
    task = property(lambda self: self.spec.task)
    arch = property(lambda self: self.spec.arch)
    name = property(lambda self: self.spec.name)
    resolution = property(lambda self: self.spec.geometry.size)
    output_names = property(lambda self: self.spec.output_names)
    preprocess = property(lambda self: self.spec.preprocess)
    num_classes = property(lambda self: self.spec.num_classes)
    classes = property(lambda self: self.spec.classes)
    window_size = property(lambda self: self.spec.window_size)

    @property
    def input_shape(self) -> Tuple[int, int, int, int]:
        return (1, 3) + tuple(self.spec.geometry.size)

    def example_inputs(self, size: Optional[Tuple[int, int]] = None,
                       seed: int = 0) -> Tuple[torch.Tensor, ...]:
        """A random input of ``size`` (default: the spec's) in the artifact's input order."""
        h, w = size or self.spec.geometry.size
        image = torch.randn(1, 3, h, w, generator=torch.Generator().manual_seed(seed))
        if self.spec.task == 'detector':
            return image, torch.tensor([h, w], dtype=torch.int64)
        return (image,)

    def metadata(self) -> Dict[str, str]:
        return self.spec.metadata(self.weights)


def build_from_spec(spec: DeploySpec, cfg=None, checkpoint: Optional[str] = None) -> ExportModel:
    """Build, load, fuse and eval the model ``spec`` describes (random weights without a
    checkpoint); returns it with the spec completed from the model (classes, window, outputs)."""
    arch, task = spec.arch, spec.task
    mm_model = None
    if task == 'classifier':
        model = (load_classifier(arch, checkpoint, spec.distilled) if checkpoint
                 else IFormerClassifier(arch, num_classes=1000, distilled=spec.distilled))
        model.eval().switch_to_deploy()
        facts = dict(distilled=model.distilled, num_classes=model.num_classes, window_size=0,
                     output_names=('logits',))
    elif task == 'backbone':
        window = PUBLISHED_WINDOW_SIZE if spec.window_size is None else spec.window_size
        model = IFormer(arch, out_indices=(0, 1, 2, 3), window_size=window)
        if checkpoint:
            load_backbone_weights(model, checkpoint)
        model.eval().switch_to_deploy()
        facts = dict(window_size=window, output_names=BACKBONE_OUTPUTS)
    else:
        mm_model = build_mm_model(cfg, 'detector' if task in DETECTOR_TASKS else task, checkpoint)
        backbone = mm_model.backbone
        if backbone.arch_name != 'custom' and parse_model_name(str(backbone.arch_name))[0] != arch:
            raise DeployError(f'--config {spec.config} builds an iFormer-'
                              f'{str(backbone.arch_name).upper()} {task}, not iFormer-'
                              f'{arch.upper()} (--model {spec.name})')
        if spec.window_size is not None:
            backbone.set_window(spec.window_size)
        fuse_for_export(mm_model)
        if task == 'segmentor':
            model = SegmentorForExport(mm_model, spec.seg_output).eval()
            outputs = ('seg_logits',) if spec.seg_output == 'logits' else ('seg_map',)
        else:
            model = (DetectorForExport(mm_model) if task == 'detector'
                     else DetectorDenseForExport(mm_model)).eval()
            outputs = model.output_names
        facts = dict(window_size=backbone.window_size, num_classes=model.num_classes,
                     output_names=tuple(outputs))
    trained_meta = dict(getattr(mm_model, 'dataset_meta', None) or {})
    facts['classes'] = spec.classes or _list(trained_meta.get('classes'))
    facts['palette'] = _list(trained_meta.get('palette'))
    return ExportModel(model=model, spec=spec.completed(**facts), cfg=cfg, mm_model=mm_model,
                       weights=str(checkpoint) if checkpoint else 'random (no checkpoint)')


def build_export_model(name: str, task: str = 'classifier', checkpoint: Optional[str] = None,
                       config: Optional[str] = None, resolution: Optional[Tuple[int, int]] = None,
                       window_size: Optional[int] = None, seg_output: str = 'logits',
                       target: str = 'onnxruntime') -> ExportModel:
    """:func:`~.spec.plan` + :func:`build_from_spec` in one call (tests, benchmarks). Without
    ``resolution``, a segmentor / detector for a dynamic ``target`` has a dynamic input."""
    spec, cfg = plan(name, task, target, 'fp32', config, resolution, window_size, seg_output)
    return build_from_spec(spec, cfg, checkpoint)


def _list(value) -> Optional[list]:
    return [list(v) if isinstance(v, (list, tuple)) else v for v in value] if value else None
