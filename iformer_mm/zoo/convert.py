"""Published iFormer checkpoints -> mm-format files (``tools/convert_official.py``).

* Classification release files ``{'model': ..., 'args': Namespace, ...}`` become
  ``{'state_dict': {'backbone.*', 'head.*'}, 'meta': {...}}``, loadable strictly into the
  ``configs/classification`` models (``load_from`` / ``tools/test.py``).
* Published detection / segmentation files (mmdet / mmseg ``state_dict`` with the published
  backbone names under ``backbone.``) keep every key; only the backbone keys are renamed.

:func:`mm_loadable_checkpoint` is the quick form for loaders that only need the weights
(``tools/test.py``, ``tools/infer.py``): a path or URL in, a file mmengine's ``load_checkpoint``
reads out.

Optimizer state, epoch counters and the pickled ``args`` are dropped: the output holds tensors
and plain Python values only, so it loads with ``torch.load(weights_only=True)`` and no allowlist.
"""
from __future__ import annotations

import argparse
import numbers
import os
from typing import Any, Dict, Optional

from ..checkpoint import (CheckpointError, StateDict, atomic_torch_save, find_state_dict,
                          resolve_checkpoint, safe_load)
from ..models.backbones.iformer import IFormer
from ..models.backbones.iformer_arch import parse_model_name
from ..models.backbones.iformer_keys import (check_backbone_state, describe_backbone_state,
                                            extract_backbone_state, guess_variant,
                                            is_official_backbone_key, official_to_mm,
                                            official_to_ours_key)
from ..version import __version__


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


def _classification(state: StateDict, src: str, entry: str) -> Dict[str, Any]:
    try:
        mm = official_to_mm(state)
    except CheckpointError as e:
        raise CheckpointError(f'{src}: {e}') from None
    return {'state_dict': mm, 'meta': {
        'format': 'published classification', 'weights': entry,
        'distilled': any(k.startswith('head.classifier_dist.') for k in mm)}}


def _dense(ckpt: dict, state: StateDict, src: str) -> Dict[str, Any]:
    renamed, count, unknown = {}, 0, []
    for key, value in state.items():
        bare = key[len('backbone.'):] if key.startswith('backbone.') else None
        if bare is not None and is_official_backbone_key(bare):
            try:
                key, count = 'backbone.' + official_to_ours_key(bare), count + 1
            except KeyError:
                unknown.append(key)
        renamed[key] = value
    if unknown:
        raise CheckpointError(f'{src}: {len(unknown)} backbone keys are not iFormer keys: '
                              f'{", ".join(unknown[:6])}')
    if not any(k.startswith('backbone.') for k in renamed):
        raise CheckpointError(f'{src} has a state_dict without backbone.* keys; expected a '
                              'published classification file or an mmdet / mmseg checkpoint')
    meta = _plain(ckpt.get('meta') or {})
    meta = meta if isinstance(meta, dict) else {'source_meta': meta}
    meta.update({'format': 'mmdet/mmseg' if count else 'mm (already converted)',
                 'renamed_backbone_keys': count})
    return {'state_dict': renamed, 'meta': meta}


def convert_checkpoint(src: str, dst: str, arch: Optional[str] = None,
                       use_ema: bool = False) -> Dict[str, Any]:
    """Convert ``src`` to an mm-format file at ``dst`` (written atomically); return its meta.

    Raises :class:`CheckpointError` (a ValueError) for any unusable input, wrong variant or
    unwritable destination; nothing is written then.
    """
    ckpt = safe_load(src)
    if use_ema:
        if not isinstance(ckpt.get('model_ema'), dict):
            have = ', '.join(k for k in ('model', 'state_dict') if isinstance(ckpt.get(k), dict))
            raise CheckpointError(f"{src} has no 'model_ema' weights (it has: {have or 'neither'});"
                                  " --ema applies to published classification files with one")
        state, layout = find_state_dict(ckpt, src, entries=('model_ema',))
    else:
        state, layout = find_state_dict(ckpt, src)
    if layout == 'mm':
        out = _dense(ckpt, state, src)
    else:  # a release file's 'model' / 'model_ema', or a bare published state_dict
        out = _classification(state, src, 'model' if layout == 'official' else layout)
        if layout == 'raw':
            out['meta']['format'] = 'published state_dict'
        if 'epoch' in ckpt:
            out['meta']['source_epoch'] = _plain(ckpt['epoch'])
        if 'args' in ckpt:
            out['meta']['source_args'] = _plain(ckpt['args'])
    backbone = extract_backbone_state(out['state_dict'], 'backbone.')
    if not backbone:
        raise CheckpointError(f'{src} has no iFormer backbone weights')
    variant = _check_variant(backbone, arch, src)
    if variant is not None:  # a published variant: every backbone key must be there
        check_backbone_state(IFormer(variant), backbone, src)
    out['meta'].update({'arch': variant, 'source': os.path.basename(os.fspath(src)),
                        'converted_by': f'iformer_mm {__version__}'})
    atomic_torch_save(out, dst)
    return out['meta']


def mm_loadable_checkpoint(path_or_url: str, folder: str) -> str:
    """A file for mmengine's ``load_checkpoint`` / ``load_from``: ``path_or_url`` itself (a URL
    through the cache), or, for a published classification file, an mm-layout copy in ``folder``.
    """
    path = resolve_checkpoint(path_or_url)
    state_dict, fmt = find_state_dict(safe_load(path), source=path_or_url)
    if fmt != 'official':
        return path
    out = os.path.join(folder, 'converted_' + os.path.basename(path))
    atomic_torch_save({'state_dict': official_to_mm(state_dict), 'meta': {'source': path_or_url}}, out)
    return out
