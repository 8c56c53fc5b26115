"""mmengine's ``load_checkpoint`` on our caches, our safe loader and every iFormer key layout.

Why: ``load_from``, mmpretrain's ``get_model(..., pretrained=...)``, the Inferencers' weights and
``init_cfg=dict(type='Pretrained', checkpoint=...)`` on non-iFormer modules all read through
mmengine's ``CheckpointLoader``. Its own loaders know neither ``hf-hub:`` names nor safetensors,
download with torch hub (which caches an HTML error page like a checkpoint), unpickle without the
release files' allowlist, and hand a release or timm iFormer file to the model as it is: nothing
would load and the model would stay random, with a list of missing keys in the log.

:func:`register_checkpoint_loader` (run by ``import iformer_mm``) makes :func:`load_from_iformer_mm`
mmengine's loader for local paths, ``http(s)://`` and ``hf-hub:`` (its other schemes stay): the
file goes through :func:`~iformer_mm.checkpoint.download.resolve_on_rank_zero_first` (one cache,
atomic, verified; rank 0 first) and :func:`~iformer_mm.checkpoint.safe_load`; an iFormer
state_dict in the release or timm layout is handed to the model in the mm layout of our configs
(``backbone.*``, ``head.*``), every other checkpoint as it is. What still cannot be this
backbone's is refused by the backbone itself when it is loaded
(:func:`~iformer_mm.models.backbones.iformer_keys.prepare_backbone_state`).
"""
from __future__ import annotations

import os
from typing import Optional

from ..checkpoint import (CheckpointError, find_state_dict, resolve_on_rank_zero_first,
                          safe_load)
from ..checkpoint.hub import HUB_PREFIX
from ..models.backbones.iformer_keys import to_mm_state

__all__ = ['load_from_iformer_mm', 'mm_checkpoint', 'register_checkpoint_loader']

#: what each foreign layout is called in the ``meta`` of a converted checkpoint
_FORMATS = {'official': 'published iFormer', 'timm': 'timm iFormer'}


def load_from_iformer_mm(filename: str, map_location: Optional[object] = None,
                         model_dir: Optional[str] = None) -> dict:
    """The checkpoint at ``filename`` (path, URL or Hub name) as the model takes it.

    ``map_location`` is accepted for mmengine's interface; tensors are always read onto the CPU
    (``load_state_dict`` copies them to the model's device). ``model_dir`` overrides the URL
    cache.
    """
    path = resolve_on_rank_zero_first(os.path.expanduser(filename), model_dir)
    return mm_checkpoint(safe_load(path), filename)


def mm_checkpoint(ckpt: dict, source: str) -> dict:
    """``ckpt`` for a model of our configs: a bare iFormer state_dict in the release or timm
    layout becomes ``{'state_dict': mm keys, 'meta'}``; every other checkpoint stays as it is."""
    try:
        state_dict, _ = find_state_dict(ckpt, source=source)
        if any(k.startswith('backbone.') for k in state_dict):
            return ckpt  # an mm checkpoint: release names under backbone. are the backbone's
        converted, layout = to_mm_state(state_dict, source)
    except CheckpointError:  # not an iFormer file
        return ckpt
    if layout not in _FORMATS:  # our own names: as it is
        return ckpt
    return {'state_dict': converted, 'meta': {'source': source, 'format': _FORMATS[layout]}}


def register_checkpoint_loader() -> None:
    """Make mmengine read local paths, http(s) URLs and Hub names through
    :func:`load_from_iformer_mm` (idempotent)."""
    from mmengine.runner import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes=('', 'http://', 'https://', HUB_PREFIX),
                                     loader=load_from_iformer_mm, force=True)
