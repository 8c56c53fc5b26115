"""iFormer's model names in mmpretrain's ``ModelHub``: ``get_model('iformer-m_in1k')`` and friends.

mmpretrain resolves a model name (``get_model``, ``list_models``, ``inference_model``, the
Inferencers) through ``ModelHub``, which only knows the metafiles it was given. ``import iformer_mm``
calls :func:`register_with_mmpretrain`, which hands it our classification metafile (the dense
models are mmdet / mmseg models; mmpretrain would build them in the wrong toolbox). The metafile
is found where it is shipped: ``iformer_mm/.mim/`` in an installed wheel (as OpenMMLab packages
ship theirs), the repository root in a source checkout or editable install.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

from .releases import CLASSIFIERS

__all__ = ['index_root', 'register_with_mmpretrain']

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CLS_METAFILE = os.path.join('configs', 'classification', 'metafile.yml')


def index_root() -> Optional[str]:
    """The folder holding ``model-index.yml`` and ``configs/`` (None if neither place has it)."""
    for root in (os.path.join(_PACKAGE, '.mim'), os.path.dirname(_PACKAGE)):
        if os.path.isfile(os.path.join(root, _CLS_METAFILE)):
            return root
    return None


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
