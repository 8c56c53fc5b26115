"""Backbone swap: the iFormer block pasted into unmodified mmdet / mmseg configs.

``configs/swap_examples/*`` inherit the toolboxes' own configs and replace only the backbone and
the in_channels that read it. Checks: nothing else differs from the original config; the model
builds, one CPU training step on synthetic samples has a finite loss and gradients in the
backbone, and inference returns results of the right shape.
"""
import copy
import math

import pytest
import torch
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.optim import build_optim_wrapper

from .helpers import SWAP_DIR, build_model, det_batch, load_dense_config, seg_batch, train_step

T_DIMS = [32, 64, 128, 256]
SWAPS = {
    'retinanet_iformer-t_fpn_1x_coco.py': 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
    'cascade-mask-rcnn_iformer-t_fpn_1x_coco.py':
        'mmdet::cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py',
    'upernet_iformer-t_4xb4-80k_ade20k-512x512.py':
        'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py',
}
# what the swap is allowed to change (paths into the config dict)
CHANGED = [('custom_imports',), ('model', 'backbone'), ('model', 'neck', 'in_channels'),
           ('model', 'pretrained'), ('model', 'decode_head', 'in_channels'),
           ('model', 'auxiliary_head', 'in_channels')]
SIZE = 128


def _strip_scope(obj):
    """Inheriting across packages ('mmdet::') tags dicts with '_scope_'; not a change."""
    if isinstance(obj, dict):
        return {k: _strip_scope(v) for k, v in obj.items() if k != '_scope_'}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_strip_scope(v) for v in obj)
    return obj


def _without_changed(cfg: Config) -> dict:
    d = _strip_scope(copy.deepcopy(cfg.to_dict()))
    for path in CHANGED:
        node = d
        for key in path[:-1]:
            node = node.get(key, {})
        node.pop(path[-1], None)
    return d


@pytest.mark.parametrize('name', sorted(SWAPS))
def test_swap_changes_only_the_backbone(name):
    swapped = Config.fromfile(str(SWAP_DIR / name))
    original = get_config(SWAPS[name])  # the toolbox's own file, resolved by package
    assert _without_changed(swapped) == _without_changed(original)
    bb = swapped.model.backbone
    assert (bb.type, bb.arch, tuple(bb.out_indices)) == ('IFormer', 't', (0, 1, 2, 3))
    assert 'depth' not in bb and 'style' not in bb  # ResNet arguments deleted
    if 'neck' in swapped.model:
        assert swapped.model.neck.in_channels == T_DIMS
    if 'decode_head' in swapped.model:
        assert swapped.model.pretrained is None
        assert swapped.model.decode_head.in_channels == T_DIMS
        aux = swapped.model.auxiliary_head
        assert aux.in_channels == T_DIMS[aux.in_index]


def _step_and_check(model, cfg, data):
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    log_vars, grads = train_step(model, optim_wrapper, data)
    assert math.isfinite(log_vars['loss']), log_vars
    backbone_grads = [g for n, g in grads.items() if n.startswith('backbone.')]
    assert len(backbone_grads) == sum(1 for _ in model.backbone.parameters())
    assert grads['backbone.downsample_layers.0.conv1.conv.weight'].abs().sum() > 0
    assert grads['backbone.stages.3.5.fc2.conv.weight'].abs().sum() > 0
    return log_vars


@pytest.mark.parametrize('name', ['retinanet_iformer-t_fpn_1x_coco.py',
                                  'cascade-mask-rcnn_iformer-t_fpn_1x_coco.py'])
def test_det_swap_trains_and_predicts(name):
    cfg = load_dense_config(SWAP_DIR / name)
    model = build_model(cfg)
    log_vars = _step_and_check(model, cfg, det_batch(SIZE, SIZE))
    assert 'loss_cls' in log_vars or 's0.loss_cls' in log_vars
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(det_batch(SIZE, SIZE, seed=1), False)
        pred = model(**data, mode='predict')[0].pred_instances
    assert pred.bboxes.ndim == 2 and pred.bboxes.shape[1] == 4
    assert len(pred.scores) == len(pred.labels) == len(pred.bboxes)
    if 'mask' in name:
        assert tuple(pred.masks.shape[1:]) == (SIZE, SIZE)


def test_seg_swap_trains_and_predicts():
    cfg = load_dense_config(SWAP_DIR / 'upernet_iformer-t_4xb4-80k_ade20k-512x512.py')
    cfg.model.data_preprocessor.size = (SIZE, SIZE)
    model = build_model(cfg)
    # two images: the pyramid-pooling branch has a 1x1 BN input per image in training
    log_vars = _step_and_check(model, cfg, seg_batch(SIZE, SIZE, num_images=2))
    assert 'decode.loss_ce' in log_vars and 'aux.loss_ce' in log_vars
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(seg_batch(SIZE, SIZE, seed=1), False)
        result = model(**data, mode='predict')[0]
    assert tuple(result.seg_logits.data.shape) == (150, SIZE, SIZE)
    assert tuple(result.pred_sem_seg.data.shape) == (1, SIZE, SIZE)
