"""The config's whole mm model (segmentor or detector), weights loaded, ready to wrap for export.

One builder for both dense tasks: build from the config inside the toolbox's scope (SyncBN
reverted to BN), refuse a checkpoint that is not this task's or not this variant's with a message
that says which it is, load strictly, eval mode. Without a checkpoint the backbone's own
``init_cfg`` is not followed (random weights), so an export never needs the release file on disk.
"""
from __future__ import annotations

import warnings
from typing import Optional

import torch
import torch.nn as nn

#: notices mmseg prints while it builds a Semantic FPN's losses (message starts)
BUILD_NOTICES = ('Default ``avg_non_ignore`` is False', '``build_loss`` would be deprecated soon')
#: task -> (toolbox scope, a key prefix only that task's checkpoints have, what to train it with)
TASK_MODELS = {
    'segmentor': ('mmseg', 'decode_head.', 'a segmentation config'),
    'detector': ('mmdet', 'roi_head.', 'a Mask / Faster R-CNN config'),
}


def build_mm_model(config, task: str, checkpoint: Optional[str] = None) -> nn.Module:
    """``config``'s model for ``task`` ('segmentor' / 'detector'), eval mode, weights loaded."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS
    from mmengine.runner import load_state_dict

    from ..checkpoint import CheckpointError, find_state_dict, safe_load
    from ..models.backbones.iformer_keys import check_backbone_state
    from ..utils.scope import toolbox_scope
    scope, prefix, trained_on = TASK_MODELS[task]
    cfg = config.model.copy()
    cfg.setdefault('backbone', {})['init_cfg'] = None
    if 'pretrained' in cfg or scope == 'mmseg':
        cfg['pretrained'] = None
    with toolbox_scope(scope), warnings.catch_warnings():
        for notice in BUILD_NOTICES:  # the toolboxes' loss-construction notices, by name
            warnings.filterwarnings('ignore', message=notice)
        model = revert_sync_batchnorm(MODELS.build(cfg))
    if checkpoint:
        ckpt = safe_load(checkpoint)
        state_dict, fmt = find_state_dict(ckpt, source=checkpoint)
        if fmt != 'mm' or not any(k.startswith(prefix) for k in state_dict):
            raise CheckpointError(f'{checkpoint} is not an {scope} {task} checkpoint (no '
                                  f'{prefix}* weights); --task {task} needs one, e.g. a '
                                  f'checkpoint written by tools/train.py on {trained_on}')
        backbone = {k[len('backbone.'):]: v for k, v in state_dict.items()
                    if k.startswith('backbone.')}
        check_backbone_state(model.backbone, backbone, checkpoint)
        own = model.state_dict()
        missing = sorted(set(own) - set(state_dict))
        mismatched = sorted(k for k in own if k in state_dict and own[k].shape != state_dict[k].shape)
        if missing or mismatched:
            raise CheckpointError(f"{checkpoint} does not match the config's {task}: "
                                  + (f'missing {missing[:5]}' if missing else
                                     f'other shapes for {mismatched[:5]} (another number of '
                                     'classes?)'))
        load_state_dict(model, state_dict, strict=True)
        # classes / palette the training run recorded (mmengine's runner saves them): what the
        # toolbox's Inferencer would draw with, carried into the deploy report
        meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
        if isinstance(meta.get('dataset_meta'), dict):
            model.dataset_meta = dict(meta['dataset_meta'])
    return model.eval()


@torch.no_grad()
def fuse_for_export(model: nn.Module) -> nn.Module:
    """Fuse the backbone (``switch_to_deploy``) and fold BN into every other part's convs."""
    from mmcv.cnn import fuse_conv_bn
    model.backbone.switch_to_deploy()
    for name, child in model.named_children():
        if name not in ('backbone', 'data_preprocessor'):
            fuse_conv_bn(child)
    return model
