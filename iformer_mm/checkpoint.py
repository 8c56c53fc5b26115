"""Published-checkpoint support: safe loading, format detection and key conversion.

Three layouts reach us:

* published classification files ``iFormer_m.pth``: ``{'model': state_dict, 'args': Namespace,
  ...}`` with the published key names (``downsample_layers.0.2.conv_exp_bn1.c.weight``,
  ``stages.2.7.block.token_channel_mixer.m.q.bn.weight``, ``classifier.classifier.l.weight``);
* published detection / segmentation files: mmdet / mmseg checkpoints (``{'state_dict': ...}``)
  whose backbone keys are the published names under ``backbone.``;
* mm-format files written by our runners or by ``tools/convert_official.py``: ``backbone.`` +
  our names (``stages.2.7.attn.q.conv.weight``) and ``head.`` + our head names.

Everything is read with ``torch.load(weights_only=True)``; nothing pickled is executed.
"""
from __future__ import annotations

import os
import pickle
import re
import tempfile
import zipfile
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

import torch

from .safe_globals import allow_release_file_globals

StateDict = Dict[str, torch.Tensor]


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


# ----------------------------------------------------------------------------------------------
# Key names: published <-> ours
# ----------------------------------------------------------------------------------------------
# Module paths (without the ConvBN leaf 'c.weight' / 'bn.*'); '{s}', '{b}', '{i}' are indices.
_STEM_PATHS = [('downsample_layers.0.0', 'downsample_layers.0.conv1'),
               ('downsample_layers.0.2.conv_exp_bn1', 'downsample_layers.0.conv2'),
               ('downsample_layers.0.2.conv_pwl_bn2', 'downsample_layers.0.conv3')]
_BLOCK_PATHS = [('token_channel_mixer.m.0', 'dwconv'), ('token_channel_mixer.m.1', 'pwconv1'),
                ('token_channel_mixer.m.3', 'pwconv2'), ('token_channel_mixer.m.q', 'attn.q'),
                ('token_channel_mixer.m.k', 'attn.k'), ('token_channel_mixer.m.v_gate', 'attn.v_gate'),
                ('token_channel_mixer.m.proj', 'attn.proj'), ('channel_mixer.m.0', 'fc1'),
                ('channel_mixer.m.2', 'fc2'), ('cpe.m', 'conv')]
_HEAD_PATHS = [('classifier.classifier', 'head.classifier'),
               ('classifier.classifier_dist', 'head.classifier_dist')]
_OFFICIAL_BLOCK = re.compile(r'^stages\.(\d+)\.(\d+)\.block\.(.+)$')
_OUR_BLOCK = re.compile(r'^stages\.(\d+)\.(\d+)\.(.+)$')
_OFFICIAL_DOWN = re.compile(r'^downsample_layers\.([123])\.0$')
_OUR_DOWN = re.compile(r'^downsample_layers\.([123])$')


def _split_leaf(key: str) -> Tuple[str, str]:
    """'a.b.c.weight' -> ('a.b', 'c.weight'); gamma has no leaf module."""
    parts = key.split('.')
    if parts[-1] == 'gamma':
        return '.'.join(parts[:-1]), 'gamma'
    return '.'.join(parts[:-2]), '.'.join(parts[-2:])


def is_official_backbone_key(key: str) -> bool:
    return (key.startswith('downsample_layers.0.0.') or key.startswith('downsample_layers.0.2.')
            or bool(re.match(r'^downsample_layers\.[123]\.0\.', key))
            or bool(re.match(r'^stages\.\d+\.\d+\.block\.', key)))


def official_to_ours_key(key: str) -> str:
    """Rename one published backbone key to ours; raise KeyError if it is not one."""
    path, leaf = _split_leaf(key)
    leaf = {'c.weight': 'conv.weight', 'l.weight': 'fc.weight', 'l.bias': 'fc.bias'}.get(leaf, leaf)
    if leaf == 'gamma':  # stages.s.b.block.{token_channel_mixer,channel_mixer}.gamma
        m = re.match(r'^stages\.(\d+)\.(\d+)\.block\.(token_channel_mixer|channel_mixer)$', path)
        if m:
            return f'stages.{m.group(1)}.{m.group(2)}.gamma'
        raise KeyError(key)
    for official, ours in _STEM_PATHS + _HEAD_PATHS:
        if path == official:
            return f'{ours}.{leaf}'
    m = _OFFICIAL_DOWN.match(path)
    if m:
        return f'downsample_layers.{m.group(1)}.{leaf}'
    m = _OFFICIAL_BLOCK.match(path)
    if m:
        for official, ours in _BLOCK_PATHS:
            if m.group(3) == official:
                return f'stages.{m.group(1)}.{m.group(2)}.{ours}.{leaf}'
    raise KeyError(key)


def ours_to_official_key(key: str, ffn_blocks: Iterable[str] = ()) -> str:
    """Inverse of :func:`official_to_ours_key` (``ffn_blocks``: 'stages.s.b' prefixes of FFNs,
    needed only for layer-scale ``gamma`` keys, whose published name depends on the block type)."""
    path, leaf = _split_leaf(key)
    leaf = {'conv.weight': 'c.weight', 'fc.weight': 'l.weight', 'fc.bias': 'l.bias'}.get(leaf, leaf)
    if leaf == 'gamma':
        m = re.match(r'^stages\.(\d+)\.(\d+)$', path)
        if m:
            mixer = 'channel_mixer' if path in set(ffn_blocks) else 'token_channel_mixer'
            return f'stages.{m.group(1)}.{m.group(2)}.block.{mixer}.gamma'
        raise KeyError(key)
    for official, ours in _STEM_PATHS + _HEAD_PATHS:
        if path == ours:
            return f'{official}.{leaf}'
    m = _OUR_DOWN.match(path)
    if m:
        return f'downsample_layers.{m.group(1)}.0.{leaf}'
    m = _OUR_BLOCK.match(path)
    if m:
        for official, ours in _BLOCK_PATHS:
            if m.group(3) == ours:
                return f'stages.{m.group(1)}.{m.group(2)}.block.{official}.{leaf}'
    raise KeyError(key)


def ours_to_official(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """mm-format (``backbone.`` / ``head.``) or bare backbone keys -> the published layout."""
    bare = {(k[len('backbone.'):] if k.startswith('backbone.') else k): v
            for k, v in state_dict.items()}
    ffn_blocks = {k.rsplit('.fc1.', 1)[0] for k in bare if '.fc1.' in k}
    return {ours_to_official_key(k, ffn_blocks): v for k, v in bare.items()}


def official_to_mm(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    """Published classifier state_dict -> mm classifier keys (``backbone.*``, ``head.*``)."""
    out: StateDict = {}
    unknown = []
    for key, value in state_dict.items():
        try:
            new = official_to_ours_key(key)
        except KeyError:
            unknown.append(key)
            continue
        out[new if new.startswith('head.') else f'backbone.{new}'] = value
    if unknown:
        raise CheckpointError(f'{len(unknown)} keys are not iFormer keys: {_preview(unknown)}')
    return out


def rename_official_keys_inplace(state_dict: Dict[str, torch.Tensor], prefix: str) -> int:
    """Rename published backbone keys under ``prefix`` to ours, in place; return how many.

    Used as a ``load_state_dict`` pre-hook on :class:`IFormer`, so any loader (mmengine's
    runner, ``load_from``, ``init_cfg``, plain ``load_state_dict``) accepts published names.
    """
    keys = [k for k in state_dict if k.startswith(prefix) and is_official_backbone_key(k[len(prefix):])]
    for key in keys:
        state_dict[prefix + official_to_ours_key(key[len(prefix):])] = state_dict.pop(key)
    return len(keys)


# ----------------------------------------------------------------------------------------------
# Safe loading
# ----------------------------------------------------------------------------------------------
def safe_load(path: str) -> dict:
    """``torch.load(weights_only=True)`` with only the release-file allowlist; clear errors."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f'checkpoint not found: {path}')
    if not os.path.isfile(path):
        raise CheckpointError(f'checkpoint path is not a file: {path}')
    if os.path.getsize(path) == 0:
        raise CheckpointError(f'checkpoint is empty (0 bytes): {path}')
    with open(path, 'rb') as f:
        head = f.read(4)
    # torch writes a zip archive (before 1.6: a pickle starting with PROTO 0x80); reject anything
    # else before unpickling, where errors would be arbitrary or talk about weights_only
    if not (head.startswith(b'PK\x03\x04') or head[:1] == b'\x80'):
        raise CheckpointError(f'{path} is not a PyTorch checkpoint (neither a zip archive nor a '
                              f'pickle: it starts with {head!r})')
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


def _preview(keys: List[str], n: int = 8) -> str:
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
                          f'"state_dict" (mm) entry, found keys {_preview(sorted(map(str, ckpt)))}')


def extract_backbone_state(state_dict: Mapping[str, torch.Tensor],
                           prefix: Optional[str] = None) -> StateDict:
    """Backbone weights under our names, from any supported layout.

    ``prefix`` (e.g. 'backbone.') selects a sub-module; by default 'backbone.' is used when present,
    otherwise everything except classifier heads.
    """
    if prefix is None:
        prefix = 'backbone.' if any(k.startswith('backbone.') for k in state_dict) else ''
    out: StateDict = {}
    for key, value in state_dict.items():
        if not key.startswith(prefix):
            continue
        key = key[len(prefix):]
        if key.startswith(('classifier.', 'head.')):
            continue
        out[official_to_ours_key(key) if is_official_backbone_key(key) else key] = value
    return out


# ----------------------------------------------------------------------------------------------
# Variant detection and strict loading
# ----------------------------------------------------------------------------------------------
def describe_backbone_state(state_dict: Mapping[str, torch.Tensor]) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """(dims, depths) implied by backbone weights under our names."""
    dims = []
    stem = state_dict.get('downsample_layers.0.conv3.conv.weight')
    dims.append(int(stem.shape[0]) if stem is not None else -1)
    for i in range(1, 4):
        w = state_dict.get(f'downsample_layers.{i}.conv.weight')
        dims.append(int(w.shape[0]) if w is not None else -1)
    depths = [0, 0, 0, 0]
    for key in state_dict:
        m = re.match(r'^stages\.(\d)\.(\d+)\.', key)
        if m:
            s, b = int(m.group(1)), int(m.group(2))
            depths[s] = max(depths[s], b + 1)
    return tuple(dims), tuple(depths)


def guess_variant(state_dict: Mapping[str, torch.Tensor]) -> Optional[str]:
    """Name of the published variant whose dims and depths match these weights, if any."""
    from .models.backbones.iformer import ARCH_SETTINGS
    dims, depths = describe_backbone_state(state_dict)
    for name, arch in ARCH_SETTINGS.items():
        if tuple(arch['dims']) == dims and tuple(arch['depths']) == depths:
            return name
    return None


def check_backbone_state(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor],
                         source: str) -> None:
    """Raise a CheckpointError naming the variant, or the missing/unexpected keys, on mismatch."""
    own = model.state_dict()
    mismatched = [k for k in state_dict if k in own and own[k].shape != state_dict[k].shape]
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if not (mismatched or missing or unexpected):
        return
    their = guess_variant(state_dict)
    ours = getattr(model, 'arch_name', None)
    dims, depths = describe_backbone_state(state_dict)
    if (mismatched or missing or unexpected) and their is not None and (
            ours is None or their != str(ours).lower()):
        raise CheckpointError(
            f'{source} holds an iFormer-{their.upper()} backbone (dims {dims}, depths {depths}) but '
            f'the model is iFormer-{str(ours).upper()} (dims {tuple(model.dims)}, depths '
            f'{tuple(model.depths)}); use arch={their!r} or the matching checkpoint')
    parts = []
    if mismatched:
        parts.append('shape mismatch: ' + _preview(
            [f'{k} {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}' for k in mismatched], 4))
    if missing:
        parts.append(f'missing keys: {_preview(missing)}')
    if unexpected:
        parts.append(f'unexpected keys: {_preview(unexpected)}')
    raise CheckpointError(f'{source} does not match the backbone ({"; ".join(parts)})')


def load_backbone_weights(model: torch.nn.Module, path: str, prefix: Optional[str] = None) -> None:
    """Load a published or mm checkpoint strictly into an :class:`IFormer` backbone."""
    ckpt = safe_load(path)
    state_dict, _ = find_state_dict(ckpt, source=path)
    backbone = extract_backbone_state(state_dict, prefix)
    if not backbone:
        raise CheckpointError(f'{path} has no backbone weights'
                              + (f' under prefix {prefix!r}' if prefix else ''))
    check_backbone_state(model, backbone, path)
    model.load_state_dict(backbone, strict=True)


# ----------------------------------------------------------------------------------------------
# Atomic writes
# ----------------------------------------------------------------------------------------------
def atomic_torch_save(obj: object, path: str) -> None:
    """torch.save to a temporary file in the same folder, then rename: never a half-written file."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CheckpointError(f'output folder does not exist: {folder}')
    if not os.access(folder, os.W_OK):
        raise CheckpointError(f'output folder is not writable: {folder}')
    fd, tmp = tempfile.mkstemp(prefix='.tmp-', suffix='.pth', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
