"""The whole Semantic FPN segmentor as one exportable module: image -> full-size class logits.

Why a wrapper and not mmseg's ``EncoderDecoder`` itself: its forward takes data samples and
returns them; an on-device runtime needs one tensor in, one tensor out. :class:`SegmentorForExport`
runs exactly what ``EncoderDecoder.encode_decode`` runs for one image (backbone -> FPN neck ->
FPNHead -> bilinear resize to the input size), on the fused backbone, with the neck / head
ConvModules' BatchNorms folded into their convs (``mmcv.cnn.fuse_conv_bn``), so outputs compare
1:1 with ``encode_decode``. ``output='argmax'`` returns the class map instead (int32).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

SEG_OUTPUTS = ('logits', 'argmax')


class SegmentorForExport(nn.Module):
    """``encode_decode`` of an mmseg EncoderDecoder for a fixed-size image, as a plain module."""

    def __init__(self, segmentor: nn.Module, output: str = 'logits'):
        super().__init__()
        if output not in SEG_OUTPUTS:
            raise ValueError(f'segmentor output must be one of {SEG_OUTPUTS}, got {output!r}')
        self.backbone = segmentor.backbone
        self.neck = segmentor.neck if getattr(segmentor, 'with_neck', False) else None
        self.decode_head = segmentor.decode_head
        self.align_corners = bool(segmentor.decode_head.align_corners)
        self.output = output
        self.num_classes = int(segmentor.decode_head.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(x)
        if self.neck is not None:
            feats = self.neck(feats)
        logits = self.decode_head(feats)
        logits = F.interpolate(logits, size=(int(x.shape[2]), int(x.shape[3])), mode='bilinear',
                               align_corners=self.align_corners)
        return logits.argmax(1).to(torch.int32) if self.output == 'argmax' else logits
