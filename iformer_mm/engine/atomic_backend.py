"""A local file backend whose writes are atomic: a killed job never leaves a half-written checkpoint.

mmengine's ``LocalBackend.put`` opens the final path and writes into it, so a process killed while
saving leaves a truncated ``iter_N.pth`` that ``--resume`` then fails on. ``AtomicLocalBackend``
writes through the package's one atomic writer (:mod:`iformer_mm.utils.fileio`: temporary sibling,
fsync, rename; the file gets the usual umask-derived mode). ``iformer_mm.apis.launch`` selects it for the CheckpointHook (``backend_args=dict(backend=
'atomic_local')``) unless a config chooses another backend; configs can also name it themselves.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

from mmengine.fileio import register_backend
from mmengine.fileio.backends import LocalBackend

from ..utils.fileio import atomic_write_bytes

BACKEND_NAME = 'atomic_local'


class AtomicLocalBackend(LocalBackend):
    """LocalBackend with atomic ``put`` / ``put_text``."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write_bytes(filepath, obj, make_dirs=True)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        atomic_write_bytes(filepath, obj.encode(encoding), make_dirs=True)


register_backend(BACKEND_NAME, AtomicLocalBackend, force=True)
