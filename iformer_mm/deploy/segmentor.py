"""The whole Semantic FPN segmentor as one exportable module: image -> full-size class logits.

Why a wrapper and not mmseg's ``EncoderDecoder`` itself: its forward takes data samples and
returns them; an on-device runtime needs one tensor in, one tensor out. :class:`SegmentorForExport`
runs exactly what ``EncoderDecoder.encode_decode`` runs for one image (backbone -> FPN neck ->
FPNHead -> bilinear resize to the input size), on the fused backbone, with the neck / head
ConvModules' BatchNorms folded into their convs (``mmcv.cnn.fuse_conv_bn``), so outputs compare
1:1 with ``encode_decode``. ``output='argmax'`` returns the class map instead (int32). The output
size is read from the input (:func:`~iformer_mm.models.backbones.iformer.dims`), so a traced
graph serves every input size; so is every upsampling size inside the head: mmseg's ``Upsample``
computes its output size with Python ``int()``, which a trace records as a constant (an ONNX /
OpenVINO artifact would then be right at the export size only), so the wrapper's copy of the head
runs :class:`ShapeUpsample`, the same interpolation with the size taken from the input.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.backbones.iformer import dims
from .targets.base import DeployError

SEG_OUTPUTS = ('logits', 'argmax')


class ShapeUpsample(nn.Module):
    """mmseg ``Upsample(scale_factor=k)`` (integer ``k``) with the output size read from the
    input as a traced graph sees it (``k * H``, ``k * W``): equal in eager, dynamic when traced."""

    def __init__(self, factor: int, mode: str, align_corners):
        super().__init__()
        self.factor, self.mode, self.align_corners = factor, mode, align_corners

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = dims(x)[2:]
        return F.interpolate(x, size=(h * self.factor, w * self.factor), mode=self.mode,
                             align_corners=self.align_corners)


def traceable_head(head: nn.Module) -> nn.Module:
    """A copy of ``head`` whose mmseg ``Upsample`` modules are :class:`ShapeUpsample`."""
    head = copy.deepcopy(head)
    for parent in list(head.modules()):
        for name, child in list(parent.named_children()):
            if type(child).__name__ != 'Upsample' or not hasattr(child, 'scale_factor'):
                continue
            factor = child.scale_factor
            if child.size or not isinstance(factor, float) or factor != int(factor):
                raise DeployError(f'the decode head upsamples with size={child.size}, '
                                  f'scale_factor={factor}; the deployed segmentor reproduces '
                                  'integer scale factors only')
            setattr(parent, name, ShapeUpsample(int(factor), child.mode, child.align_corners))
    return head


class SegmentorForExport(nn.Module):
    """``encode_decode`` of an mmseg EncoderDecoder for a fixed-size image, as a plain module."""

    def __init__(self, segmentor: nn.Module, output: str = 'logits'):
        super().__init__()
        if output not in SEG_OUTPUTS:
            raise DeployError(f'segmentor output must be one of {SEG_OUTPUTS}, got {output!r}')
        self.backbone = segmentor.backbone
        self.neck = segmentor.neck if getattr(segmentor, 'with_neck', False) else None
        self.decode_head = traceable_head(segmentor.decode_head)
        self.align_corners = bool(segmentor.decode_head.align_corners)
        self.output = output
        self.num_classes = int(segmentor.decode_head.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(x)
        if self.neck is not None:
            feats = self.neck(feats)
        logits = self.decode_head(feats)
        logits = F.interpolate(logits, size=dims(x)[2:], mode='bilinear',
                               align_corners=self.align_corners)
        return logits.argmax(1).to(torch.int32) if self.output == 'argmax' else logits
