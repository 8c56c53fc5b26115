"""Checkpoint files: safe (``weights_only``) loading, the one state_dict finder, atomic saving.

Three layouts reach us:

* published classification files ``iFormer_m.pth``: ``{'model': state_dict, 'args': Namespace,
  ...}`` (format ``'official'``);
* mmdet / mmseg / mmpretrain checkpoints, ours and the published dense ones:
  ``{'state_dict': ..., 'meta': ...}`` (format ``'mm'``);
* a bare state_dict (format ``'raw'``).

Everything is read with ``torch.load(weights_only=True)``; nothing pickled is executed. A URL
instead of a path is fetched once into the torch hub cache (:mod:`.download`), so every loader
that reads through :func:`safe_load` takes both. Every part of the package that needs the weights
inside a loaded file (model loading, conversion, the distillation teacher, mmengine's URL loader)
asks :func:`find_state_dict`.
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from typing import Dict, List, Sequence, Tuple

import torch

from ..utils.fileio import atomic_open
from .download import resolve_checkpoint
from .files import CheckpointError, header_problem
from .safe_globals import allow_release_file_globals

StateDict = Dict[str, torch.Tensor]

__all__ = ['CheckpointError', 'LAYOUTS', 'StateDict', 'safe_load', 'find_state_dict',
           'preview_keys', 'atomic_torch_save']


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


#: the entry each known layout keeps its weights under -> the layout's name
LAYOUTS = {'model': 'official', 'state_dict': 'mm'}


def find_state_dict(ckpt: dict, source: str = 'checkpoint',
                    entries: Sequence[str] = tuple(LAYOUTS)) -> Tuple[StateDict, str]:
    """The weights inside a loaded checkpoint, and the layout they were found in.

    ``entries`` are looked for in order (default: ``'model'`` of the published release files,
    then ``'state_dict'`` of mm checkpoints; e.g. ``('model_ema',)`` or a teacher's
    ``'state_dict_ema'``); a checkpoint that is itself a dict of tensors is ``'raw'``. The
    layout is :data:`LAYOUTS`' name for the entry (``'official'``, ``'mm'``), else the entry's
    own name. The weights must be a non-empty dict of tensors; CheckpointError names the
    problem otherwise.
    """
    for entry in entries:
        if isinstance(ckpt.get(entry), dict):
            state, layout = ckpt[entry], LAYOUTS.get(entry, entry)
            break
    else:
        if not (ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values())):
            wanted = ' or '.join(f'"{e}"' for e in entries)
            raise CheckpointError(f'{source} has no model weights: expected a {wanted} entry or a '
                                  f'dict of tensors, found keys {preview_keys(sorted(map(str, ckpt)))}')
        state, layout = ckpt, 'raw'
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not state or bad:
        where = 'the checkpoint' if layout == 'raw' else repr(entry)
        raise CheckpointError(f'{source}: {where} is not a state_dict of tensors' + (
            f' ({bad[0]!r} is a {type(state[bad[0]]).__name__})' if bad else ' (it is empty)'))
    return state, layout


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
