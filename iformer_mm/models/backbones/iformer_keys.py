"""Published <-> our key names of the iFormer backbone and head, variant detection, strict loading.

timm keeps ``checkpoint_filter_fn`` beside its model; this is our equivalent. The release files
use the published module names (``stages.2.7.block.token_channel_mixer.m.q.c.weight``), our
modules have readable ones (``stages.2.7.attn.q.conv.weight``); the tables below map one onto the
other, both ways. :class:`~.iformer.IFormer` renames published keys on ``load_state_dict`` through
:func:`rename_official_keys_inplace`, so every loader accepts them. Variant detection reads dims
and depths off the weights, so a file of another variant is named as such instead of failing
with hundreds of shape mismatches. Generic file handling (safe unpickling, format detection) is
:mod:`iformer_mm.checkpoint`.
"""
from __future__ import annotations

import re
from typing import Dict, Iterable, Mapping, Optional, Tuple

import torch

from ...checkpoint import CheckpointError, StateDict, find_state_dict, preview_keys, safe_load
from .iformer_arch import ARCH_SETTINGS

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


_LEAVES = [('c.weight', 'conv.weight'), ('l.weight', 'fc.weight'), ('l.bias', 'fc.bias')]


def _translate(key: str, to_ours: bool, ffn_blocks: Iterable[str] = ()) -> str:
    """Rename one backbone / head key between the published and our layout (either way)."""
    src, dst = (0, 1) if to_ours else (1, 0)
    path, leaf = _split_leaf(key)
    leaf = {pair[src]: pair[dst] for pair in _LEAVES}.get(leaf, leaf)
    if leaf == 'gamma':  # published: stages.s.b.block.{token_channel_mixer,channel_mixer}.gamma
        if to_ours:
            m = re.match(r'^stages\.(\d+)\.(\d+)\.block\.(token_channel_mixer|channel_mixer)$', path)
            if m:
                return f'stages.{m.group(1)}.{m.group(2)}.gamma'
        elif re.match(r'^stages\.\d+\.\d+$', path):
            mixer = 'channel_mixer' if path in set(ffn_blocks) else 'token_channel_mixer'
            return f'{path}.block.{mixer}.gamma'
        raise KeyError(key)
    for pair in _STEM_PATHS + _HEAD_PATHS:
        if path == pair[src]:
            return f'{pair[dst]}.{leaf}'
    m = (_OFFICIAL_DOWN if to_ours else _OUR_DOWN).match(path)
    if m:
        return f'downsample_layers.{m.group(1)}{"" if to_ours else ".0"}.{leaf}'
    m = (_OFFICIAL_BLOCK if to_ours else _OUR_BLOCK).match(path)
    if m:
        for pair in _BLOCK_PATHS:
            if m.group(3) == pair[src]:
                block = '' if to_ours else 'block.'
                return f'stages.{m.group(1)}.{m.group(2)}.{block}{pair[dst]}.{leaf}'
    raise KeyError(key)


def official_to_ours_key(key: str) -> str:
    """Rename one published backbone / head key to ours; raise KeyError if it is not one."""
    return _translate(key, to_ours=True)


def ours_to_official_key(key: str, ffn_blocks: Iterable[str] = ()) -> str:
    """Inverse of :func:`official_to_ours_key` (``ffn_blocks``: 'stages.s.b' prefixes of FFNs,
    needed only for layer-scale ``gamma`` keys, whose published name depends on the block type)."""
    return _translate(key, to_ours=False, ffn_blocks=ffn_blocks)


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
        raise CheckpointError(f'{len(unknown)} keys are not iFormer keys: {preview_keys(unknown)}')
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
def _out_channels(state_dict: Mapping[str, torch.Tensor], conv: str) -> int:
    """Output channels of the conv at ``conv`` (trainable ConvBN or deployed plain conv)."""
    for key in (f'{conv}.conv.weight', f'{conv}.weight'):
        if key in state_dict:
            return int(state_dict[key].shape[0])
    return -1


def describe_backbone_state(state_dict: Mapping[str, torch.Tensor]) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """(dims, depths) implied by backbone weights under our names (trainable or deployed)."""
    dims = [_out_channels(state_dict, 'downsample_layers.0.conv3')]
    dims += [_out_channels(state_dict, f'downsample_layers.{i}') for i in range(1, 4)]
    depths = [0, 0, 0, 0]
    for key in state_dict:
        m = re.match(r'^stages\.(\d)\.(\d+)\.', key)
        if m:
            s, b = int(m.group(1)), int(m.group(2))
            depths[s] = max(depths[s], b + 1)
    return tuple(dims), tuple(depths)


def guess_variant(state_dict: Mapping[str, torch.Tensor]) -> Optional[str]:
    """Name of the published variant whose dims and depths match these weights, if any."""
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
    deployed_model = bool(getattr(model, 'deploy', False))
    deployed_weights = not any(k.endswith('.bn.running_mean') for k in state_dict)
    if deployed_model != deployed_weights:
        parts.append('the weights are ' + ('deployed (fused)' if deployed_weights else
                                           'trainable (not fused)') + ' but the model is ' +
                     ('deployed: build it with deploy=False, load, then switch_to_deploy()'
                      if deployed_model else 'not: build it with deploy=True'))
    if mismatched:
        parts.append('shape mismatch: ' + preview_keys(
            [f'{k} {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}' for k in mismatched], 4))
    if missing:
        parts.append(f'missing keys: {preview_keys(missing)}')
    if unexpected:
        parts.append(f'unexpected keys: {preview_keys(unexpected)}')
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
