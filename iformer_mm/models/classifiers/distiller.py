"""DeiT-style hard distillation as published for iFormer-M/L/L2 (teacher: RegNetY-160).

``loss = 0.5 * CE(cls, mixed target) + 0.5 * CE(dist, teacher(mixed input).argmax(1))``.

The teacher is deliberately *not* a submodule: it is not in ``state_dict()`` (checkpoints stay
loadable without it), not in ``parameters()`` (not optimised, not wrapped by DDP) and not built
until the first training loss, so evaluating a distilled checkpoint never needs its weights.
"""
from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn as nn
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..heads import IFormerDistillHead
from .image_classifier import ImageClassificationMetainfo
from .teacher import CONFIG_KEY, build_teacher

_TEACHER_KEYS = ('arch', 'checkpoint', 'num_classes')


@MODELS.register_module()
class IFormerDistiller(ImageClassificationMetainfo, ImageClassifier):
    """:class:`ImageClassifier` with an :class:`IFormerDistillHead` and a timm teacher.

    Args:
        teacher: ``dict(arch='regnety_160', checkpoint=PATH, num_classes=None)``; ``num_classes``
            defaults to the head's. ``None`` is allowed for evaluation-only configs.
        other args: as in :class:`mmpretrain.models.classifiers.ImageClassifier`.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 teacher: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(backbone=backbone, neck=neck, head=head, pretrained=pretrained,
                         train_cfg=train_cfg, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if not isinstance(self.head, IFormerDistillHead):
            raise TypeError(f'IFormerDistiller needs head=dict(type="IFormerDistillHead", ...), '
                            f'got {type(self.head).__name__}')
        self.teacher_cfg = self._check_teacher_cfg(teacher)
        object.__setattr__(self, '_teacher', None)  # hidden from nn.Module bookkeeping

    def _check_teacher_cfg(self, teacher: Optional[dict]) -> Optional[dict]:
        if teacher is None:
            return None
        if not isinstance(teacher, dict):
            raise TypeError(f'{CONFIG_KEY} must be a dict(arch=..., checkpoint=...), '
                            f'got {type(teacher).__name__}')
        unknown = sorted(set(teacher) - set(_TEACHER_KEYS))
        if unknown:
            raise ValueError(f'{CONFIG_KEY} has unknown keys {unknown}; allowed: '
                             f'{list(_TEACHER_KEYS)}')
        cfg = dict(arch='regnety_160', checkpoint=None, num_classes=None)
        cfg.update(teacher)
        if cfg['num_classes'] is None:
            cfg['num_classes'] = self.head.num_classes
        if cfg['num_classes'] != self.head.num_classes:
            raise ValueError(f"{CONFIG_KEY}.num_classes is {cfg['num_classes']} but the head "
                             f'predicts {self.head.num_classes} classes; they must match')
        return cfg

    @property
    def teacher(self) -> Optional[nn.Module]:
        """The teacher, once built (``None`` before the first training loss)."""
        return self._teacher

    def get_teacher(self, device: torch.device) -> nn.Module:
        """Build the teacher on first use (training only) and keep it on ``device``."""
        if self._teacher is None:
            if self.teacher_cfg is None:
                raise ValueError(f'{CONFIG_KEY} is not set: training IFormerDistiller needs '
                                 "teacher=dict(arch='regnety_160', checkpoint=PATH)")
            object.__setattr__(self, '_teacher', build_teacher(**self.teacher_cfg))
        teacher = self._teacher
        if next(teacher.parameters()).device != device:
            teacher.to(device)
        return teacher

    def loss(self, inputs: torch.Tensor, data_samples: List[DataSample]) -> dict:
        teacher = self.get_teacher(inputs.device)
        with torch.no_grad():
            teacher_logits = teacher(inputs).float()
        feats = self.extract_feat(inputs)
        return self.head.loss(feats, data_samples, teacher_logits=teacher_logits)
