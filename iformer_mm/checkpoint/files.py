"""What a checkpoint file looks like on disk, checked without unpickling or loading it.

Two formats are read: PyTorch's (``torch.save``: a zip archive, before torch 1.6 a pickle) and
safetensors (timm's and the Hugging Face Hub's ``model.safetensors``: an 8-byte header length, a
JSON header, raw tensor bytes). The safe loader (:mod:`.load`) refuses junk before it is loaded;
the downloader (:mod:`.download`) refuses an HTML error page or a cut-off transfer before it
renames the file into the cache. Both use these checks and raise :class:`CheckpointError`.
Standard library only.
"""
from __future__ import annotations

import json
import os
import zipfile
from typing import Optional

__all__ = ['CheckpointError', 'DownloadError', 'checkpoint_format', 'header_problem',
           'file_problem']

_ZIP_MAGIC = b'PK\x03\x04'
_PICKLE_PROTO = b'\x80'
_SAFETENSORS_MAX_HEADER = 100 << 20  # safetensors' own limit on the JSON header


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


class DownloadError(CheckpointError):
    """A checkpoint URL or Hub name that could not be fetched; the message says what to do."""


def checkpoint_format(head: bytes) -> Optional[str]:
    """``'torch'`` or ``'safetensors'`` if these first bytes (>= 9) can start such a file."""
    if head.startswith(_ZIP_MAGIC) or head[:1] == _PICKLE_PROTO:
        return 'torch'
    if len(head) >= 9 and head[8:9] == b'{' and \
            0 < int.from_bytes(head[:8], 'little') <= _SAFETENSORS_MAX_HEADER:
        return 'safetensors'
    return None


def header_problem(head: bytes) -> Optional[str]:
    """Why these first bytes cannot start a checkpoint, or None if they can."""
    if checkpoint_format(head):
        return None
    if head.lstrip().startswith(b'<'):  # an error or login page served instead of the file
        return f'it is an HTML/XML page, not a checkpoint (it starts with {head[:15]!r})'
    return f'neither a zip archive, a pickle nor safetensors: it starts with {head[:4]!r}'


def file_problem(path: str) -> Optional[str]:
    """Why the file at ``path`` is not a complete checkpoint, or None.

    For zip archives (every torch >= 1.6 file) the central directory at the end of the file is
    read; for safetensors the header, whose offsets give the exact file size. A transfer cut off
    anywhere fails either check, so a truncated download is caught without loading the tensors.
    Legacy pickles can only be checked by loading them.
    """
    size = os.path.getsize(path)
    if size == 0:
        return 'it is empty (0 bytes)'
    with open(path, 'rb') as f:
        head = f.read(16)
    problem = header_problem(head)
    if problem:
        return problem
    if checkpoint_format(head) == 'safetensors':
        return _safetensors_problem(path, size)
    if not head.startswith(_ZIP_MAGIC):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as e:
        return f'it is truncated or damaged ({size} bytes; {e})'
    if not any(n == 'data.pkl' or n.endswith('/data.pkl') for n in names):
        return 'it is a zip archive without data.pkl, not a torch.save() file'
    return None


def _safetensors_problem(path: str, size: int) -> Optional[str]:
    """Whether the header parses and its last tensor ends exactly at the end of the file."""
    with open(path, 'rb') as f:
        length = int.from_bytes(f.read(8), 'little')
        if 8 + length > size:
            return f'it is truncated ({size} bytes; its safetensors header alone needs {8 + length})'
        try:
            header = json.loads(f.read(length))
            end = max((int(t['data_offsets'][1]) for name, t in header.items()
                       if name != '__metadata__'), default=0)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return 'its safetensors header is damaged'
    if 8 + length + end != size:
        return (f'it is truncated or damaged ({size} bytes; its safetensors header announces '
                f'{8 + length + end})')
    return None
