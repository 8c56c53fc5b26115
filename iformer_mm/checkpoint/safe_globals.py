"""Allowlists for ``torch.load(weights_only=True)``: load checkpoints without running pickled code.

torch >= 2.6 loads with ``weights_only=True`` by default. mmengine 0.10.7 checkpoints (what the
runner writes for ``--resume`` and what every toolbox ``tools/test.py`` reads) contain a few plain
Python/numpy objects that are not on torch's default allowlist, so loading them fails with an
``UnpicklingError``. Rather than turning ``weights_only`` off, we allowlist exactly the types
mmengine stores, process-wide, when ``iformer_mm`` is imported (``custom_imports`` imports it before
any checkpoint is read). Published iFormer release files additionally contain an
``argparse.Namespace``; that one is allowed only inside :func:`release_file_globals`.
"""
from __future__ import annotations

import argparse
import contextlib
import pickle
from typing import Iterator, List

import numpy as np
import torch


def _numpy_globals() -> List[object]:
    """numpy scalars, arrays and dtypes, under both the numpy 1.x and 2.x module paths."""
    try:
        multiarray = np._core.multiarray  # numpy >= 2
    except AttributeError:  # pragma: no cover - numpy 1.x
        multiarray = np.core.multiarray
    entries: List[object] = [np.ndarray, np.dtype]
    for name in ('scalar', '_reconstruct'):
        fn = getattr(multiarray, name)
        entries += [(fn, f'numpy.core.multiarray.{name}'), (fn, f'numpy._core.multiarray.{name}')]
    # numpy >= 1.25 pickles dtypes through their classes (numpy.dtypes.Float64DType, ...)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        entries += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return entries


_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_method(obj: object, name: str) -> object:
    """Stands in for ``getattr`` while unpickling: only HistoryBuffer's statistics methods.

    mmengine's ``HistoryBuffer`` pickles its ``statistics_methods`` dict, whose values are the
    functions ``HistoryBuffer.min/max/current/mean``, stored as ``getattr(HistoryBuffer, 'min')``.
    Allowlisting the real ``getattr`` would let a file reach any attribute, so this narrower
    function is registered under that name instead.
    """
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_STATISTICS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({getattr(obj, "__name__", type(obj).__name__)}, {name!r}) while '
        f'loading a checkpoint: only HistoryBuffer.{_HISTORY_BUFFER_STATISTICS} are allowed')


def mmengine_checkpoint_globals() -> List[object]:
    """Types in checkpoints written by the mmengine 0.10 runner, measured with
    ``torch.serialization.get_unsafe_globals_in_checkpoint`` (see tests/test_safe_globals.py)."""
    from mmengine.logging.history_buffer import HistoryBuffer
    return _numpy_globals() + [HistoryBuffer,
                               (_history_buffer_method, 'builtins.getattr'),
                               (_history_buffer_method, '__builtin__.getattr')]


def release_file_globals() -> List[object]:
    """Types found in the published iFormer ``.pth`` files: numpy scalars and the args Namespace."""
    return _numpy_globals() + [argparse.Namespace]


def register_mmengine_checkpoint_globals() -> None:
    """Allowlist mmengine's checkpoint types process-wide (idempotent)."""
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())


@contextlib.contextmanager
def allow_release_file_globals() -> Iterator[None]:
    """Temporarily allow what a published release file needs, nothing more.

    Not ``torch.serialization.safe_globals``: on exit it removes every entry it added, including
    ones that were registered process-wide before (the numpy types), which broke later loads.
    """
    before = list(torch.serialization.get_safe_globals())
    torch.serialization.add_safe_globals(release_file_globals())
    try:
        yield
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(before)
