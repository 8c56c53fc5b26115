"""The whole Semantic FPN segmentor as one exportable module: image -> full-size class logits.

Why a wrapper and not mmseg's ``EncoderDecoder`` itself: its forward takes data samples and
returns them; an on-device runtime needs one tensor in, one tensor out. :class:`SegmentorForExport`
runs exactly what ``EncoderDecoder.encode_decode`` runs for one image (backbone -> FPN neck ->
FPNHead -> bilinear resize to the input size), on the fused backbone, with the neck / head
ConvModules' BatchNorms folded into their convs (``mmcv.cnn.fuse_conv_bn``), so outputs compare
1:1 with ``encode_decode``. ``output='argmax'`` returns the class map instead (int32).
"""
from __future__ import annotations

import warnings
from typing import Optional

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


def build_segmentor(config, checkpoint: Optional[str] = None) -> nn.Module:
    """The config's mmseg model (SyncBN reverted to BN), weights from ``checkpoint``, eval mode.

    Without a checkpoint the backbone's own ``init_cfg`` is not followed (random weights), so
    an export never needs the release file on disk.
    """
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS
    from mmengine.runner import load_state_dict

    from ..checkpoint import CheckpointError, find_state_dict, safe_load
    from ..scope import toolbox_scope
    cfg = config.model.copy()
    cfg.setdefault('backbone', {})['init_cfg'] = None
    cfg['pretrained'] = None
    with toolbox_scope('mmseg'), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # mmseg's loss-construction notices: not about export
        model = revert_sync_batchnorm(MODELS.build(cfg))
    if checkpoint:
        state_dict, fmt = find_state_dict(safe_load(checkpoint), source=checkpoint)
        if fmt != 'mm' or not any(k.startswith('decode_head.') for k in state_dict):
            raise CheckpointError(f'{checkpoint} is not an mmseg segmentor checkpoint (no '
                                  'decode_head.* weights); --task segmentor needs one, e.g. '
                                  'a checkpoint written by tools/train.py on a segmentation config')
        missing = sorted(set(model.state_dict()) - set(state_dict))
        if missing:
            raise CheckpointError(f'{checkpoint} does not match the config\'s segmentor: '
                                  f'missing {missing[:5]}')
        load_state_dict(model, state_dict, strict=True)
    return model.eval()


@torch.no_grad()
def fuse_for_export(segmentor: nn.Module) -> nn.Module:
    """Fuse the backbone (``switch_to_deploy``) and fold BN into the neck / head convs."""
    from mmcv.cnn import fuse_conv_bn
    segmentor.backbone.switch_to_deploy()
    fuse_conv_bn(segmentor.neck)
    fuse_conv_bn(segmentor.decode_head)
    return segmentor
