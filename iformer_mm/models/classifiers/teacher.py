"""The distillation teacher: a timm classifier with weights read safely from a file or URL.

Why a separate module: the teacher is built only when training starts (evaluation never needs
it) and must be loaded without unpickling arbitrary code, whatever format the file has (DeiT's
``{'model': ...}`` release files, mm ``{'state_dict': ...}`` files, or a raw state_dict).
"""
from __future__ import annotations

import inspect
import os
import sys
from typing import Callable, Mapping, Optional

import torch
import torch.nn as nn

from ...checkpoint import (CheckpointError, StateDict, find_state_dict, resolve_on_rank_zero_first,
                           safe_load)

CONFIG_KEY = 'model.teacher'


#: where teachers' files keep their weights: DeiT release files, mm, timm's train script
TEACHER_ENTRIES = ('model', 'state_dict', 'state_dict_ema', 'model_ema')


def _weights_in(ckpt: dict, path: str) -> StateDict:
    """The teacher's state_dict inside a loaded checkpoint, without a DDP ``module.`` prefix."""
    state, _ = find_state_dict(ckpt, f'teacher checkpoint {path}', entries=TEACHER_ENTRIES)
    if all(k.startswith('module.') for k in state):  # saved from a DDP-wrapped model
        state = {k[len('module.'):]: v for k, v in state.items()}
    return state


def _timm_filter(model: nn.Module) -> Optional[Callable[[StateDict], StateDict]]:
    """timm's own key filter for the model's family (e.g. pycls names for RegNet), if any."""
    module = sys.modules.get(type(model).__module__)
    for name in ('checkpoint_filter_fn', '_filter_fn'):
        fn = getattr(module, name, None)
        if callable(fn):
            takes_model = len(inspect.signature(fn).parameters) >= 2
            return (lambda sd: fn(sd, model)) if takes_model else fn
    return None


def _mismatch(model: nn.Module, state: Mapping[str, torch.Tensor]) -> str:
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [k for k in set(own) & set(state) if own[k].shape != state[k].shape]
    parts = []
    if missing:
        parts.append(f'{len(missing)} missing ({", ".join(missing[:4])})')
    if unexpected:
        parts.append(f'{len(unexpected)} unexpected ({", ".join(unexpected[:4])})')
    if shapes:
        parts.append('shape mismatch (' + ', '.join(
            f'{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}' for k in shapes[:4]) + ')')
    return '; '.join(parts)


def load_teacher_weights(model: nn.Module, path: str, arch: str = '?') -> None:
    """Strictly load ``path`` into the timm ``model`` (safe_load: weights_only allowlist)."""
    state = _weights_in(safe_load(path), path)
    problem = _mismatch(model, state)
    if problem:
        filt = _timm_filter(model)
        if filt is not None:
            try:
                filtered = filt(dict(state))
            except Exception:  # a filter for another layout: keep the first diagnosis
                filtered = None
            if filtered is not None and not _mismatch(model, filtered):
                state, problem = filtered, ''
    if problem:
        raise CheckpointError(f'teacher checkpoint {path} does not fit timm {arch!r} with '
                              f'num_classes={getattr(model, "num_classes", "?")}: {problem} '
                              f'(check {CONFIG_KEY}.arch / .num_classes)')
    model.load_state_dict(state, strict=True)


def build_teacher(arch: str, checkpoint: Optional[str], num_classes: int) -> nn.Module:
    """A frozen, eval-mode timm classifier with weights from ``checkpoint``."""
    import timm
    if not checkpoint:
        raise ValueError(f'{CONFIG_KEY}.checkpoint is not set: hard distillation needs the '
                         f'trained {arch!r} teacher weights (a local .pth path or a URL)')
    path = os.path.expanduser(os.fspath(checkpoint))
    path = resolve_on_rank_zero_first(path)  # a URL: downloaded once into the torch hub cache
    if not os.path.isfile(path):
        raise FileNotFoundError(f'teacher checkpoint not found: {path} (from '
                                f'{CONFIG_KEY}.checkpoint; download the {arch!r} teacher weights '
                                'there or point the config at them)')
    if not timm.is_model(arch):
        raise ValueError(f'{CONFIG_KEY}.arch {arch!r} is not a timm model name; expected e.g. '
                         "'regnety_160' (the published teacher)")
    model = timm.create_model(arch, pretrained=False, num_classes=num_classes)
    load_teacher_weights(model, path, arch)
    model.eval()
    model.requires_grad_(False)
    return model
