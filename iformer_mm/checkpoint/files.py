"""What a PyTorch checkpoint file looks like on disk, checked without unpickling it.

The safe loader (:mod:`.load`) refuses junk before ``torch.load`` sees it; the downloader
(:mod:`.download`) refuses an HTML error page or a cut-off transfer before it renames the file
into the cache. Both use these checks and raise :class:`CheckpointError`. Standard library only.
"""
from __future__ import annotations

import os
import zipfile
from typing import Optional

__all__ = ['CheckpointError', 'header_problem', 'file_problem']

_ZIP_MAGIC = b'PK\x03\x04'
_PICKLE_PROTO = b'\x80'


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


def header_problem(head: bytes) -> Optional[str]:
    """Why these first bytes cannot start a PyTorch checkpoint, or None if they can.

    torch writes a zip archive (before 1.6: a pickle starting with the PROTO opcode 0x80).
    """
    if head.startswith(_ZIP_MAGIC) or head[:1] == _PICKLE_PROTO:
        return None
    if head.lstrip().startswith(b'<'):  # an error or login page served instead of the file
        return f'it is an HTML/XML page, not a checkpoint (it starts with {head[:15]!r})'
    return f'neither a zip archive nor a pickle: it starts with {head[:4]!r}'


def file_problem(path: str) -> Optional[str]:
    """Why the file at ``path`` is not a complete PyTorch checkpoint, or None.

    Reads the first bytes and, for zip archives (every torch >= 1.6 file), the central directory
    at the end of the file: a transfer cut off anywhere loses it, so a truncated download is
    caught without loading the tensors. Legacy pickles can only be checked by loading them.
    """
    size = os.path.getsize(path)
    if size == 0:
        return 'it is empty (0 bytes)'
    with open(path, 'rb') as f:
        head = f.read(16)
    problem = header_problem(head)
    if problem or not head.startswith(_ZIP_MAGIC):
        return problem
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as e:
        return f'it is truncated or damaged ({size} bytes; {e})'
    if not any(n == 'data.pkl' or n.endswith('/data.pkl') for n in names):
        return 'it is a zip archive without data.pkl, not a torch.save() file'
    return None
