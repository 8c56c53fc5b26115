"""Run a piece of code in one toolbox's registries, whatever ran before it in the process.

Why: mmengine's default scope is process-global. After an mmseg model was built, an mmpretrain
pipeline looks ``ResizeEdge`` up in ``mmseg::transform`` and fails. Every entry point that
builds models, datasets or pipelines for a given toolbox wraps that work in
:func:`toolbox_scope`, which registers the toolbox's modules and restores the previous scope.
"""
from __future__ import annotations

import contextlib
import importlib
from typing import Iterator

TOOLBOXES = ('mmpretrain', 'mmdet', 'mmseg')


@contextlib.contextmanager
def toolbox_scope(name: str) -> Iterator[None]:
    """Build and run inside ``name``'s registries (``mmpretrain``, ``mmdet`` or ``mmseg``)."""
    if name not in TOOLBOXES:
        raise ValueError(f'unknown toolbox scope {name!r}; expected one of {list(TOOLBOXES)}')
    from mmengine.registry import DefaultScope
    importlib.import_module(f'{name}.utils').register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope(name):
        yield
