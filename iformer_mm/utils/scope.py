"""The mm default scope a toolbox needs, set for one block and restored after it.

Why: mmengine's default scope is process-global and decides which toolbox's registries build a
transform or a model. The toolboxes set it and never restore it (``DetInferencer`` and
``MMSegInferencer`` call ``init_default_scope``; mmpretrain's Inferencer uses whatever is
current), so in one process serving several toolboxes the second one built fails, e.g. measured:
``ImageClassificationInferencer`` after an mmseg model raises "ResizeEdge is not in the
mmseg::transform registry". Our entry points (inference, deployment pipelines and datasets)
build and run each toolbox's objects inside :func:`toolbox_scope`, which also registers that
toolbox's modules.
"""
from __future__ import annotations

import contextlib
import importlib
from typing import Iterator

__all__ = ['TOOLBOXES', 'toolbox_scope']

TOOLBOXES = ('mmpretrain', 'mmdet', 'mmseg')


@contextlib.contextmanager
def toolbox_scope(scope: str) -> Iterator[None]:
    """Make ``scope`` ('mmpretrain', 'mmdet', 'mmseg') the default scope inside the block.

    Whatever the block sets (a toolbox calling ``init_default_scope``) is undone on exit; the
    scope that was current before is current again.
    """
    if scope not in TOOLBOXES:
        raise ValueError(f'unknown toolbox scope {scope!r}; expected one of {list(TOOLBOXES)}')
    from mmengine.registry import DefaultScope
    importlib.import_module(f'{scope}.utils').register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope(scope):
        yield
