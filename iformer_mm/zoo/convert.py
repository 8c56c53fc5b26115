"""iFormer checkpoints from any layout into any layout (``tools/convert.py``).

Targets (``to``):

* ``'mm'``: ``{'state_dict': {backbone.*, head.*}, 'meta'}``, loadable strictly into the
  ``configs/classification`` models (``load_from`` / ``tools/test.py``); an mmdet / mmseg
  checkpoint keeps every key, only its backbone keys are renamed to ours.
* ``'timm'``: a bare state_dict in timm's layout, as safetensors when the destination ends in
  ``.safetensors``: ``timm.create_model('iformer_m', checkpoint_path=DST)`` loads a classifier
  strictly; the backbone of an mmdet / mmseg checkpoint is written alone (``num_classes=0``).
* ``'official'``: ``{'model': state_dict}`` in the release layout, what the official
  repository's model loads (``model.load_state_dict(ckpt['model'])``).

Sources: release files, mm checkpoints, timm's state_dicts and training checkpoints
(``.pth`` / ``.bin`` / ``.safetensors``), by path, URL or ``hf-hub:`` name. Fused (deployed)
weights are refused: they cannot be unfused, and timm and the official model hold the trainable
form. Optimizer state, epoch counters and the pickled ``args`` are dropped: the output holds
tensors and plain Python values only (``torch.load(weights_only=True)``, no allowlist).
"""
from __future__ import annotations

import argparse
import numbers
import os
from typing import Any, Dict, Optional

from ..checkpoint import (CheckpointError, StateDict, atomic_safetensors_save, atomic_torch_save,
                          find_state_dict, preview_keys, safe_load)
from ..models.backbones.iformer import IFormer
from ..models.backbones.iformer_arch import parse_model_name
from ..models.backbones.iformer_keys import (check_backbone_state, describe_backbone_state,
                                            from_mm_state, guess_variant, is_deployed_state,
                                            to_mm_state)
from ..version import __version__

__all__ = ['TARGETS', 'convert_checkpoint']

#: what ``convert_checkpoint(..., to=...)`` writes
TARGETS = ('mm', 'timm', 'official')


def _plain(value: Any) -> Any:
    """numpy scalars / Namespaces / tuples -> JSON-like Python values (for ``meta``)."""
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, argparse.Namespace):
        value = vars(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, 'item') and getattr(value, 'ndim', None) == 0:  # numpy / torch 0-d
        return _plain(value.item())
    return str(value)


def _check_variant(backbone: StateDict, arch: Optional[str], src: str) -> Optional[str]:
    """Return the detected variant; raise if ``arch`` is given and differs."""
    found = guess_variant(backbone)
    if arch is None:
        return found
    wanted = parse_model_name(arch)[0]
    if found != wanted:
        dims, depths = describe_backbone_state(backbone)
        seen = (f'iFormer-{found.upper()}' if found is not None
                else f'no published variant (dims {dims}, depths {depths})')
        raise CheckpointError(f'{src} looks like {seen}, not iFormer-{wanted.upper()} '
                              f'(--arch {arch}); pass --arch {found or "<custom>"} or the right file')
    return found


def _weights(ckpt: dict, src: str, use_ema: bool):
    """(state_dict, the entry it was found in) of a loaded checkpoint."""
    if not use_ema:
        return find_state_dict(ckpt, src)
    if not isinstance(ckpt.get('model_ema'), dict):
        have = ', '.join(k for k in ('model', 'state_dict') if isinstance(ckpt.get(k), dict))
        raise CheckpointError(f"{src} has no 'model_ema' weights (it has: {have or 'neither'});"
                              " --ema applies to published classification files with one")
    return find_state_dict(ckpt, src, entries=('model_ema',))


def _source_meta(ckpt: dict, state: StateDict, entry: str, layout: str) -> Dict[str, Any]:
    """What the source was, for the ``meta`` of an mm file and the tool's summary line."""
    if any(k.startswith('backbone.') for k in state):  # mmdet / mmseg / mmpretrain checkpoint
        meta = _plain(ckpt.get('meta') or {})
        meta = meta if isinstance(meta, dict) else {'source_meta': meta}
        backbone = sum(k.startswith('backbone.') for k in state)
        meta.update({'format': {'official': 'mmdet/mmseg', 'ours': 'mm (already converted)'}.get(
            layout, f'mm with {layout} backbone names'),
            'renamed_backbone_keys': 0 if layout == 'ours' else backbone})
        return meta
    weights = {'official': 'model', 'mm': 'state_dict'}.get(entry, entry)  # the entry's own name
    if layout == 'official':
        meta = {'format': 'published classification' if entry != 'raw' else 'published state_dict',
                'weights': weights}
    else:
        meta = {'format': {'timm': 'timm', 'ours': 'iFormer state_dict'}[layout],
                'weights': weights}
    if 'epoch' in ckpt:
        meta['source_epoch'] = _plain(ckpt['epoch'])
    if 'args' in ckpt:
        meta['source_args'] = _plain(ckpt['args'])
    return meta


def _refuse_deployed(backbone: StateDict, src: str, to: str) -> None:
    if is_deployed_state(backbone):
        example = next((k for k in backbone if k.endswith('qkvg.weight')), next(iter(backbone)))
        raise CheckpointError(
            f'{src} holds deployed (fused) weights (no BatchNorm statistics; e.g. {example}), '
            f'which --to {to} cannot use: timm, the official model and our configs hold the '
            'trainable form; convert the checkpoint saved before switch_to_deploy()')


def _write(state: StateDict, meta: Dict[str, Any], dst: str, to: str) -> None:
    if to == 'mm':
        atomic_torch_save({'state_dict': state, 'meta': meta}, dst)
        return
    out = from_mm_state(state, to)
    if to == 'official':
        atomic_torch_save({'model': out}, dst)
    elif dst.endswith('.safetensors'):
        atomic_safetensors_save(out, dst)
    else:
        atomic_torch_save(out, dst)


def convert_checkpoint(src: str, dst: str, to: str = 'mm', arch: Optional[str] = None,
                       use_ema: bool = False) -> Dict[str, Any]:
    """Convert ``src`` (path, URL or Hub name) into layout ``to`` at ``dst`` (written atomically);
    return the meta (for ``'mm'``: the one written).

    Raises :class:`CheckpointError` (a ValueError) for any unusable input, wrong variant, fused
    weights or unwritable destination; nothing is written then.
    """
    if to not in TARGETS:
        raise CheckpointError(f'unknown target layout {to!r}; expected one of {", ".join(TARGETS)}')
    if os.fspath(dst).endswith('.safetensors') and to != 'timm':
        raise CheckpointError(f'{dst}: --to {to} writes a .pth (a checkpoint dict); only --to '
                              'timm writes a bare state_dict as .safetensors')
    ckpt = safe_load(src)
    state, entry = _weights(ckpt, src, use_ema)
    mm, layout = to_mm_state(state, src)
    backbone = {k[len('backbone.'):]: v for k, v in mm.items() if k.startswith('backbone.')}
    if not backbone:
        raise CheckpointError(f'{src} has no iFormer backbone weights (the keys: '
                              f'{preview_keys(sorted(state))})')
    _refuse_deployed(backbone, src, to)
    variant = _check_variant(backbone, arch, src)
    if variant is not None:  # a published variant: every backbone key must be there
        check_backbone_state(IFormer(variant), backbone, src)
    head = {k: v for k, v in mm.items() if k.startswith('head.classifier')}
    meta = _source_meta(ckpt, state, entry, layout)
    meta.update({'arch': variant, 'source': os.path.basename(os.fspath(src)),
                 'converted_by': f'iformer_mm {__version__}',
                 'distilled': any(k.startswith('head.classifier_dist.') for k in head),
                 'num_classes': (int(head['head.classifier.fc.weight'].shape[0])
                                 if 'head.classifier.fc.weight' in head else None)})
    _write(mm, meta, dst, to)
    return meta
