"""A local file backend whose writes are atomic: a killed job never leaves a half-written checkpoint.

mmengine's ``LocalBackend.put`` opens the final path and writes into it, so a process killed while
saving leaves a truncated ``iter_N.pth`` that ``--resume`` then fails on. ``AtomicLocalBackend``
writes to a temporary file in the same folder and renames it into place (``os.replace`` is atomic
on POSIX). ``iformer_mm.launch`` selects it for the CheckpointHook (``backend_args=dict(backend=
'atomic_local')``) unless a config chooses another backend; configs can also name it themselves.
"""
from __future__ import annotations

import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Union

from mmengine.fileio import register_backend
from mmengine.fileio.backends import LocalBackend

BACKEND_NAME = 'atomic_local'


def atomic_write_bytes(data: bytes, filepath: Union[str, Path]) -> None:
    """Write ``data`` to a temporary sibling of ``filepath``, fsync it, then rename."""
    filepath = os.fspath(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.tmp-', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise


class AtomicLocalBackend(LocalBackend):
    """LocalBackend with atomic ``put`` / ``put_text``."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write_bytes(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        atomic_write_bytes(obj.encode(encoding), filepath)


register_backend(BACKEND_NAME, AtomicLocalBackend, force=True)
