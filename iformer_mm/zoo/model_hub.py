"""iFormer's model names in mmpretrain's ``ModelHub``: ``get_model('iformer-m_in1k')`` and friends.

mmpretrain resolves a model name (``get_model``, ``list_models``, ``inference_model``, the
Inferencers) through ``ModelHub``, which only knows the metafiles it was given. ``import iformer_mm``
calls :func:`register_with_mmpretrain`, which hands it our classification metafile (the dense
models are mmdet / mmseg models; mmpretrain would build them in the wrong toolbox). The metafile
is found by :func:`iformer_mm.utils.configs.index_root` (the wheel's ``iformer_mm/.mim/``, or
the repository root of a checkout or editable install).
"""
from __future__ import annotations

import os
from typing import Tuple

from ..utils.configs import CONFIGS, index_root
from .releases import CLASSIFIERS

__all__ = ['register_with_mmpretrain']

_CLS_METAFILE = os.path.join(CONFIGS, 'classification', 'metafile.yml')


def register_with_mmpretrain() -> Tuple[str, ...]:
    """Register the classification models with mmpretrain's ModelHub; return their names.

    Idempotent. Does nothing (returns ``()``) when mmpretrain is not installed or the metafile
    is not shipped.
    """
    root = index_root()
    try:
        from mmpretrain.apis.model import ModelHub
    except ImportError:
        return ()
    if root is None:
        return ()
    names = tuple(model.name for model in CLASSIFIERS)  # the metafile is generated from them
    if not all(ModelHub.has(n) for n in names):  # registered already: a repeated call
        ModelHub.register_model_index(os.path.join(root, _CLS_METAFILE), config_prefix=root)
    return names
