"""Checkpoint files: safe loading, the one state_dict finder, atomic saving.

Three containers reach us:

* published classification files ``iFormer_m.pth``: ``{'model': state_dict, 'args': Namespace,
  ...}`` (format ``'official'``);
* mmdet / mmseg / mmpretrain checkpoints, ours and the published dense ones, and timm's training
  checkpoints: ``{'state_dict': ..., 'meta': ...}`` (format ``'mm'``);
* a bare state_dict (format ``'raw'``): what timm's ``model.state_dict()`` and the Hugging Face
  Hub files (``model.safetensors``, ``pytorch_model.bin``) hold.

PyTorch files are read with ``torch.load(weights_only=True)``, safetensors files with
``safetensors`` (no pickle at all); nothing pickled is executed. The format is told by the file's
first bytes, not its name. A URL or ``hf-hub:`` name instead of a path is fetched once into its
cache (:mod:`.download`), so every loader that reads through :func:`safe_load` takes all three.
Every part of the package that needs the weights inside a loaded file (model loading,
conversion, the distillation teacher, mmengine's checkpoint loader) asks :func:`find_state_dict`;
which key names (release, ours, timm) they are in is the model's business
(:mod:`iformer_mm.models.backbones.iformer_keys`).
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from typing import Dict, List, Sequence, Tuple

import torch

from ..utils.fileio import atomic_open, atomic_path
from .download import resolve_checkpoint
from .files import CheckpointError, checkpoint_format, file_problem, header_problem
from .safe_globals import allow_release_file_globals

StateDict = Dict[str, torch.Tensor]

__all__ = ['CheckpointError', 'LAYOUTS', 'StateDict', 'safe_load', 'find_state_dict',
           'preview_keys', 'atomic_torch_save', 'atomic_safetensors_save']


# ----------------------------------------------------------------------------------------------
# Safe loading
# ----------------------------------------------------------------------------------------------
def safe_load(path: str) -> dict:
    """``torch.load(weights_only=True)`` with only the release-file allowlist, or a safetensors
    file's tensors as a dict; clear errors.

    ``path`` may be an http(s) URL or an ``hf-hub:`` name: it is downloaded once into its cache
    and read from there.
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
        raise CheckpointError(f'{path} is not a PyTorch checkpoint or safetensors file ({problem})')
    if checkpoint_format(head) == 'safetensors':
        return _load_safetensors(path)
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


def _load_safetensors(path: str) -> dict:
    """The tensors of a safetensors file (no pickle involved), checked complete first."""
    problem = file_problem(path)
    if problem:
        raise CheckpointError(f'{path} is not a complete safetensors file ({problem})')
    from safetensors.torch import load_file
    try:
        return load_file(path, device='cpu')
    except Exception as e:  # safetensors raises its own SafetensorError on a damaged file
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise CheckpointError(f'{path} is a damaged safetensors file ({first})') from None


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


def _check_output_folder(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise CheckpointError(f'output folder does not exist: {folder}')
    if not os.access(folder, os.W_OK):
        raise CheckpointError(f'output folder is not writable: {folder}')


def atomic_torch_save(obj: object, path: str) -> None:
    """``torch.save`` through the atomic writer: never a half-written checkpoint.

    The output folder must exist and be writable; the error names it otherwise.
    """
    _check_output_folder(path)
    with atomic_open(path, 'wb') as f:
        torch.save(obj, f)


def atomic_safetensors_save(state_dict: StateDict, path: str) -> None:
    """A state_dict as a safetensors file (what timm and the Hub read), through the atomic writer.

    The output folder must exist and be writable; the error names it otherwise.
    """
    from safetensors.torch import save_file
    _check_output_folder(path)
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in state_dict.items()}, tmp,
                  metadata={'format': 'pt'})
