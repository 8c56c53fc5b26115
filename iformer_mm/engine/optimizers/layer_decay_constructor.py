"""Layer-wise learning-rate decay for models with an iFormer backbone.

Why: mmdet's and mmseg's layer-decay constructors only know ConvNeXt / BEiT parameter names.
This one asks the backbone itself (``IFormer.get_layer_depth``), so it works unchanged in
mmdet, mmseg and mmpretrain: it is registered in mmengine's root ``OPTIM_WRAPPER_CONSTRUCTORS``.

Usage (any runner config)::

    optim_wrapper = dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.05),
        constructor='IFormerLayerDecayOptimWrapperConstructor',
        paramwise_cfg=dict(decay_rate=0.9))

A parameter at layer ``i`` of ``n`` (stem 0, backbone block k -> k + 1, everything outside the
backbone -> n - 1) gets ``lr = base_lr * decay_rate ** (n - i - 1)``. 1-D parameters (norms,
biases), any ``*.bias`` and layer-scale ``gamma`` get no weight decay. Frozen parameters
(``requires_grad=False``) are left out of the optimizer.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor

from ...registry import OPTIM_WRAPPER_CONSTRUCTORS

_ALLOWED_KEYS = ('decay_rate', 'backbone')


def is_no_decay_param(name: str, param: nn.Parameter) -> bool:
    """Norm weights/biases, conv/linear biases and layer scales are not weight-decayed."""
    leaf = name.rsplit('.', 1)[-1]
    return param.ndim <= 1 or leaf == 'bias' or leaf == 'gamma'


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class IFormerLayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise LR decay driven by the backbone's ``get_layer_depth``.

    ``paramwise_cfg`` keys:
        decay_rate (float, required): in (0, 1]; 1.0 disables the decay.
        backbone (str): name of the backbone attribute of the model (default ``'backbone'``).
    """

    def _validate_cfg(self) -> None:
        cfg = self.paramwise_cfg
        if not isinstance(cfg, dict):
            raise TypeError(f'paramwise_cfg must be a dict, got {type(cfg).__name__}')
        unknown = sorted(set(cfg) - set(_ALLOWED_KEYS))
        if unknown:
            raise ValueError(f'IFormerLayerDecayOptimWrapperConstructor: unknown paramwise_cfg '
                             f'keys {unknown}; allowed: {list(_ALLOWED_KEYS)}')
        rate = cfg.get('decay_rate')
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1:
            raise ValueError(f'paramwise_cfg.decay_rate must be a number in (0, 1], got {rate!r}')
        if self.base_lr is None:
            raise ValueError('IFormerLayerDecayOptimWrapperConstructor needs optimizer.lr '
                             f'(got optimizer config {self.optimizer_cfg})')

    def _backbone(self, model: nn.Module) -> Tuple[nn.Module, str]:
        attr = self.paramwise_cfg.get('backbone', 'backbone')
        backbone = getattr(model, attr, None)
        if backbone is None or not callable(getattr(backbone, 'get_layer_depth', None)):
            raise ValueError(f'{type(model).__name__}.{attr} is '
                             f'{type(backbone).__name__ if backbone is not None else "missing"}; '
                             'layer-wise decay needs a backbone with get_layer_depth() '
                             '(e.g. IFormer)')
        return backbone, attr + '.'

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '',
                   is_dcn_module: Optional[float] = None) -> None:
        """Fill ``params`` with one group per (layer, decay / no decay), ordered by layer."""
        backbone, bb_prefix = self._backbone(module)
        rate = float(self.paramwise_cfg['decay_rate'])
        base_wd = self.base_wd or 0.
        groups: Dict[Tuple[int, bool], dict] = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            layer_id, num_layers = backbone.get_layer_depth(name, bb_prefix)
            decay = not is_no_decay_param(name, param)
            key = (layer_id, decay)
            if key not in groups:
                scale = rate ** (num_layers - layer_id - 1)
                groups[key] = dict(params=[], lr=self.base_lr * scale,
                                   weight_decay=base_wd if decay else 0.,
                                   layer_id=layer_id, lr_scale=scale)
            groups[key]['params'].append(param)
        for key in sorted(groups):
            params.append(groups[key])
        print_log(f'layer-wise lr decay {rate}: {len(groups)} param groups over '
                  f'{len({k[0] for k in groups})} layers', logger='current')
