"""A plain-PyTorch iFormer classifier (no mmpretrain needed), for export, analysis and loading.

Why beside the mmpretrain heads (``heads/iformer_head.py``) and not instead of them: export,
FLOPs and benchmarks must work without mmpretrain, whose ``ClsHead`` the mm heads subclass. The
head here repeats the mm heads' forward on purpose (BN+Linear, distilled average); the layer
itself is shared (:mod:`.norm_linear`). Parameter names match the mm classifier, so mm-format
checkpoints load as they are: ``backbone.*`` (:class:`~.backbones.iformer.IFormer`),
``head.classifier.{bn,fc}.*`` and, for distilled models, ``head.classifier_dist.{bn,fc}.*``;
:func:`load_classifier` also takes the published release files and timm's.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn as nn

from ..checkpoint import CheckpointError, find_state_dict, safe_load
from .backbones.iformer import IFormer
from .backbones.iformer_keys import check_backbone_state, to_mm_state
from .norm_linear import BNLinear, average_linears


class ClassifierHead(nn.Module):
    """Pooled features -> logits; distilled heads average their two classifiers at inference.

    ``deploy=True`` builds the fused form (one Linear) that :meth:`switch_to_deploy` leaves.
    """

    def __init__(self, in_features: int, num_classes: int, distilled: bool = False,
                 deploy: bool = False):
        super().__init__()
        self.deploy = bool(deploy)
        if self.deploy:
            self.classifier: nn.Module = nn.Linear(in_features, num_classes)
            self.classifier_dist: Optional[nn.Module] = None
        else:
            self.classifier = BNLinear(in_features, num_classes)
            self.classifier_dist = BNLinear(in_features, num_classes) if distilled else None

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        logits = self.classifier(x)
        if self.classifier_dist is None:
            return logits
        dist = self.classifier_dist(x)
        return (logits, dist) if self.training else (logits + dist) / 2

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        if self.deploy:
            return
        fused = self.classifier.fuse()
        if self.classifier_dist is not None:
            fused = average_linears(fused, self.classifier_dist.fuse())
            self.classifier_dist = None
        self.classifier = fused
        self.deploy = True


class IFormerClassifier(nn.Module):
    """IFormer backbone -> global average pool -> BN+Linear head (logits).

    ``deploy=True`` builds backbone and head fused (a saved deployed ``state_dict`` loads
    strictly).
    """

    def __init__(self, arch: str = 't', num_classes: int = 1000, distilled: bool = False,
                 deploy: bool = False, **backbone_kwargs):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'num_classes must be a positive int, got {num_classes!r}')
        backbone_kwargs.setdefault('out_indices', (3,))
        self.backbone = IFormer(arch, deploy=deploy, **backbone_kwargs)
        self.head = ClassifierHead(self.backbone.dims[-1], num_classes, distilled, deploy)
        self.num_classes = num_classes
        self.distilled = distilled

    def forward(self, x: torch.Tensor) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        # keepdim + flatten: the global-average-pool form export runtimes delegate (XNNPACK)
        return self.head(self.backbone(x)[-1].mean((2, 3), keepdim=True).flatten(1))

    def switch_to_deploy(self) -> None:
        """Fuse backbone and head (inference only; outputs equal the eval-mode model)."""
        self.backbone.switch_to_deploy()
        self.head.switch_to_deploy()


def _split_classifier_state(state_dict: Dict[str, torch.Tensor], source: str
                            ) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
    """(backbone state under our names, head state under ClassifierHead names), any layout."""
    mm, _ = to_mm_state(state_dict, source)
    head = {k[len('head.'):]: v for k, v in mm.items() if k.startswith('head.')}
    if 'classifier.fc.weight' not in head:
        raise CheckpointError(
            f'{source} has no classification head (expected head.classifier.fc.weight, the '
            "published classifier.classifier.l.weight or timm's head.head.l.weight); for "
            "detection / segmentation checkpoints use --task backbone")
    return {k[len('backbone.'):]: v for k, v in mm.items() if k.startswith('backbone.')}, head


def load_classifier(arch: str, path: str, distilled: bool = False) -> IFormerClassifier:
    """IFormerClassifier with weights from a classification checkpoint of any layout (release,
    mm, timm)."""
    state_dict, _ = find_state_dict(safe_load(path), source=path)
    backbone, head = _split_classifier_state(state_dict, path)
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
