"""The mm default scope a toolbox needs, set for one block and restored after it.

Why: mmengine's default scope is process-global and decides which toolbox's registries build a
transform or a model. The toolboxes set it and never restore it (``DetInferencer`` and
``MMSegInferencer`` call ``init_default_scope``; mmpretrain's Inferencer uses whatever is
current), so in one process serving several toolboxes the second one built fails, e.g. measured:
``ImageClassificationInferencer`` after an mmseg model raises "ResizeEdge is not in the
mmseg::transform registry". Our entry points build and run each toolbox's objects inside
:func:`toolbox_scope`.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

__all__ = ['toolbox_scope']


@contextlib.contextmanager
def toolbox_scope(scope: str) -> Iterator[None]:
    """Make ``scope`` ('mmpretrain', 'mmdet', 'mmseg') the default scope inside the block.

    Whatever the block sets (a toolbox calling ``init_default_scope``) is undone on exit; the
    scope that was current before is current again.
    """
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        yield
