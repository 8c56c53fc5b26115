"""mmpretrain heads with the published iFormer classifier layout (BatchNorm1d + Linear).

``IFormerClsHead`` is the plain head; ``IFormerDistillHead`` adds the second (distillation)
classifier of the DeiT-style distilled models: during training it returns both logits, at
inference their average. Both fuse to a single Linear with :meth:`switch_to_deploy`.
"""
from __future__ import annotations

from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ..norm_linear import BNLinear, average_linears


def _check_positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{name} must be a positive int, got {value!r}')
    return value


@MODELS.register_module()
class IFormerClsHead(ClsHead):
    """Pooled features -> BatchNorm1d -> Linear (published ``classifier.classifier``).

    Args:
        num_classes: number of classes.
        in_channels: channels of the pooled feature (the last iFormer stage's dim).
        loss: mmpretrain loss config, e.g. ``dict(type='LabelSmoothLoss', label_smooth_val=0.1,
            mode='original')``; accepts the soft targets of Mixup / CutMix.
        topk, cal_acc, init_cfg: as in :class:`mmpretrain.models.heads.ClsHead`.
        deploy: build the fused head directly (one Linear), as :meth:`switch_to_deploy` leaves it,
            so a saved deployed classifier loads strictly (inference only).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 topk: Union[int, Tuple[int]] = (1, ),
                 cal_acc: bool = False,
                 deploy: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(loss=loss, topk=topk, cal_acc=cal_acc, init_cfg=init_cfg)
        self.num_classes = _check_positive('num_classes', num_classes)
        self.in_channels = _check_positive('in_channels', in_channels)
        self.deploy = bool(deploy)
        self.classifier: nn.Module = (nn.Linear(in_channels, num_classes) if self.deploy
                                      else BNLinear(in_channels, num_classes))

    def pre_logits(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        x = feats[-1]
        if x.dim() != 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} expects pooled features of shape (N, {self.in_channels}), '
                f'got {tuple(x.shape)}; use neck=dict(type="GlobalAveragePooling") and '
                f'in_channels = the last stage dim')
        return x

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.pre_logits(feats))

    def switch_to_deploy(self) -> None:
        """Fold the BatchNorm1d into the Linear (inference only; idempotent)."""
        if self.deploy:
            return
        self.classifier = self.classifier.fuse()
        self.deploy = True


@MODELS.register_module()
class IFormerDistillHead(IFormerClsHead):
    """Two BN+Linear classifiers (``classifier``, ``classifier_dist``) for hard distillation.

    Training forward returns ``(cls_logits, dist_logits)``; eval forward returns their average,
    as the published distilled models do. :meth:`loss` needs the teacher's logits (passed by
    :class:`~iformer_mm.models.classifiers.IFormerDistiller`) and returns
    ``loss_cls = (1 - distill_weight) * loss(cls, target)`` and
    ``loss_dist = distill_weight * distill_loss(dist, teacher_logits.argmax(1))``.

    Args:
        distill_loss: loss on the teacher's hard labels (published: plain cross-entropy).
        distill_weight: weight of the distillation term (published: 0.5).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 distill_loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 distill_weight: float = 0.5,
                 topk: Union[int, Tuple[int]] = (1, ),
                 cal_acc: bool = False,
                 deploy: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(num_classes, in_channels, loss=loss, topk=topk, cal_acc=cal_acc,
                         deploy=deploy, init_cfg=init_cfg)
        if not 0. <= float(distill_weight) <= 1.:
            raise ValueError(f'distill_weight must be in [0, 1], got {distill_weight!r}')
        self.distill_weight = float(distill_weight)
        # deployed: the two classifiers are one averaged Linear (``classifier``)
        self.classifier_dist: Optional[nn.Module] = (
            None if self.deploy else BNLinear(in_channels, num_classes))
        self.distill_loss_module = (distill_loss if isinstance(distill_loss, nn.Module)
                                    else MODELS.build(distill_loss))

    def forward_both(self, feats: Tuple[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """(cls_logits, dist_logits) regardless of train/eval mode."""
        if self.deploy:
            raise RuntimeError('this IFormerDistillHead was fused by switch_to_deploy(); it has '
                               'one averaged classifier and cannot return both logits or train')
        x = self.pre_logits(feats)
        return self.classifier(x), self.classifier_dist(x)

    def forward(self, feats: Tuple[torch.Tensor]
                ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        if self.deploy:
            return self.classifier(self.pre_logits(feats))
        cls_score, dist_score = self.forward_both(feats)
        if self.training:
            return cls_score, dist_score
        return (cls_score + dist_score) / 2

    def loss(self, feats: Tuple[torch.Tensor], data_samples: List[DataSample],
             teacher_logits: Optional[torch.Tensor] = None, **kwargs) -> dict:
        if teacher_logits is None:
            raise ValueError('IFormerDistillHead.loss needs teacher_logits: train it inside '
                             "model=dict(type='IFormerDistiller', teacher=dict(arch=..., "
                             "checkpoint=...)), or use IFormerClsHead to train without a teacher")
        cls_score, dist_score = self.forward_both(feats)
        if teacher_logits.shape != dist_score.shape:
            raise ValueError(f'teacher logits have shape {tuple(teacher_logits.shape)}, expected '
                             f'{tuple(dist_score.shape)} (batch, num_classes={self.num_classes}); '
                             'set the teacher num_classes to the head num_classes')
        losses = super()._get_loss(cls_score, data_samples, **kwargs)
        teacher_labels = teacher_logits.argmax(dim=1)
        loss_dist = self.distill_loss_module(dist_score, teacher_labels,
                                             avg_factor=dist_score.size(0))
        losses['loss'] = (1. - self.distill_weight) * losses['loss']
        losses['loss_dist'] = self.distill_weight * loss_dist
        losses['loss_cls'] = losses.pop('loss')
        return losses

    def switch_to_deploy(self) -> None:
        """Fuse both classifiers and average them into one Linear (inference only)."""
        if self.deploy:
            return
        self.classifier = average_linears(self.classifier.fuse(), self.classifier_dist.fuse())
        self.classifier_dist = None
        self.deploy = True
