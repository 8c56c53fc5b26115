"""Generic checkpoint files: safe (``weights_only``) loading, format detection, atomic saving.

Three layouts reach us:

* published classification files ``iFormer_m.pth``: ``{'model': state_dict, 'args': Namespace,
  ...}`` (format ``'official'``);
* mmdet / mmseg / mmpretrain checkpoints, ours and the published dense ones:
  ``{'state_dict': ..., 'meta': ...}`` (format ``'mm'``);
* a bare state_dict (format ``'raw'``).

Everything is read with ``torch.load(weights_only=True)``; nothing pickled is executed. A URL
instead of a path is fetched once into the torch hub cache (:mod:`iformer_mm.zoo.download`), so
every loader that reads through :func:`safe_load` takes both. What the keys inside mean (published vs our names, which variant) is the model's business:
:mod:`iformer_mm.models.backbones.iformer_keys`.
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from typing import Dict, List, Tuple

import torch

from .checkpoint_file import CheckpointError, header_problem
from .fileio import atomic_open
from .safe_globals import allow_release_file_globals
from .zoo.download import resolve_checkpoint

StateDict = Dict[str, torch.Tensor]

__all__ = ['CheckpointError', 'StateDict', 'safe_load', 'find_state_dict', 'preview_keys',
           'atomic_torch_save']


# ----------------------------------------------------------------------------------------------
# Safe loading
# ----------------------------------------------------------------------------------------------
def safe_load(path: str) -> dict:
    """``torch.load(weights_only=True)`` with only the release-file allowlist; clear errors.

    ``path`` may be an http(s) URL: it is downloaded once into the cache and read from there.
    """
    path = resolve_checkpoint(os.fspath(path))
    if not os.path.exists(path):
        raise CheckpointError(f'checkpoint not found: {path}')
    if not os.path.isfile(path):
        raise CheckpointError(f'checkpoint path is not a file: {path}')
    if os.path.getsize(path) == 0:
        raise CheckpointError(f'checkpoint is empty (0 bytes): {path}')
    with open(path, 'rb') as f:
        head = f.read(16)
    # reject anything else before unpickling, where errors would be arbitrary or talk about
    # weights_only
    problem = header_problem(head)
    if problem:
        raise CheckpointError(f'{path} is not a PyTorch checkpoint ({problem})')
    try:
        with allow_release_file_globals():
            obj = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r'GLOBAL ([\w.]+)', str(e))
        if found:
            raise CheckpointError(
                f'refusing to load {path}: it needs {found.group(1)}, which is not on the safe-'
                'loading allowlist (weights_only=True; nothing in the file was executed). If you '
                'trust the file, re-save its tensors with torch.save(state_dict) and load that.'
            ) from None
        raise CheckpointError(f'{path} is not a PyTorch checkpoint (it does not unpickle as one)') from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f'{path} is truncated or not a PyTorch checkpoint ({first})') from None
    except Exception as e:  # the weights-only unpickler raises IndexError/KeyError on junk
        raise CheckpointError(f'{path} is not a PyTorch checkpoint ({type(e).__name__})') from None
    if not isinstance(obj, dict):
        raise CheckpointError(f'{path} holds a {type(obj).__name__}, not a checkpoint dict')
    return obj


def preview_keys(keys: List[str], n: int = 8) -> str:
    """The first ``n`` keys and how many more, for error messages."""
    shown = ', '.join(keys[:n])
    return shown + (f', ... ({len(keys) - n} more)' if len(keys) > n else '')


def find_state_dict(ckpt: dict, source: str = 'checkpoint') -> Tuple[StateDict, str]:
    """Return (state_dict, format) where format is 'official', 'mm' or 'raw'."""
    if isinstance(ckpt.get('model'), dict):
        return ckpt['model'], 'official'
    if isinstance(ckpt.get('state_dict'), dict):
        return ckpt['state_dict'], 'mm'
    if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return ckpt, 'raw'
    raise CheckpointError(f'{source} has no model weights: expected a "model" (published) or '
                          f'"state_dict" (mm) entry, found keys {preview_keys(sorted(map(str, ckpt)))}')


def atomic_torch_save(obj: object, path: str) -> None:
    """``torch.save`` through the atomic writer: never a half-written checkpoint.

    The output folder must exist and be writable; the error names it otherwise.
    """
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise CheckpointError(f'output folder does not exist: {folder}')
    if not os.access(folder, os.W_OK):
        raise CheckpointError(f'output folder is not writable: {folder}')
    with atomic_open(path, 'wb') as f:
        torch.save(obj, f)
