"""The published iFormer variants and how users name them.

One place for: the architecture table (:data:`ARCH_SETTINGS`), the validation of custom arch
dicts, the model-name parser every entry point uses (``'iformer-m'``, ``'iFormer_m'``, ``'M'``,
``'iformer_m_distill'``), and the input-resolution rule of the export and analysis tools.
Kept apart from the model file so that the checkpoint key tables (:mod:`.iformer_keys`) can
detect variants without importing the network.
"""
from __future__ import annotations

import copy
import re
import warnings
from typing import Dict, Tuple, Union

__all__ = ['ARCH_SETTINGS', 'REQUIRED_ARCH_KEYS', 'RENAMED_ARCH_KEYS', 'NUM_STAGES', 'parse_model_name',
           'valid_model_names', 'resolve_arch', 'parse_resolution', 'check_resolution',
           'RESOLUTION_MULTIPLE', 'RESOLUTION_RANGE']

# depths: blocks per stage as published (RepCPE, SHMABlock and FFN each count as one block).
# num_attn: [RepCPE, SHMABlock, FFN] groups per stage; the remaining blocks of a stage with
#   attention are ConvBlocks, all but one before the groups and one after them.
# attn_head_dim_reduction: SHMA head-dim reduction R per stage (attention dim = dim // R), timm's
#   name; earlier versions of this package called it attn_ratio, which in timm is another thing
#   (the value expansion), so that spelling is only accepted with a warning.
# window_blocks: stage-2 SHMA blocks that run in windows in the published dense backbones.
ARCH_SETTINGS: Dict[str, dict] = {
    't': dict(dims=(32, 64, 128, 256), depths=(2, 2, 16, 6), num_attn=(0, 0, 3, 2),
              attn_head_dim_reduction=(0, 0, 2, 4), conv_ratio=3, ffn_ratio=2, layer_scale_init_value=0.,
              window_blocks=3),
    's': dict(dims=(32, 64, 176, 320), depths=(2, 2, 19, 6), num_attn=(0, 0, 3, 2),
              attn_head_dim_reduction=(0, 0, 2, 4), conv_ratio=4, ffn_ratio=3, layer_scale_init_value=0.,
              window_blocks=3),
    'm': dict(dims=(48, 96, 192, 384), depths=(2, 2, 22, 6), num_attn=(0, 0, 4, 2),
              attn_head_dim_reduction=(0, 0, 2, 4), conv_ratio=4, ffn_ratio=3, layer_scale_init_value=0.,
              window_blocks=4),
    'l': dict(dims=(48, 96, 256, 384), depths=(2, 2, 33, 6), num_attn=(0, 0, 8, 2),
              attn_head_dim_reduction=(0, 0, 2, 4), conv_ratio=4, ffn_ratio=3, layer_scale_init_value=0.,
              window_blocks=7),
    'l2': dict(dims=(64, 128, 256, 512), depths=(3, 3, 46, 9), num_attn=(0, 0, 11, 3),
               attn_head_dim_reduction=(0, 0, 2, 4), conv_ratio=4, ffn_ratio=3, layer_scale_init_value=0.,
               window_blocks=10),
    'h': dict(dims=(96, 192, 384, 768), depths=(5, 5, 60, 18), num_attn=(0, 0, 15, 6),
              attn_head_dim_reduction=(0, 0, 1, 1), conv_ratio=4, ffn_ratio=4, layer_scale_init_value=1e-6,
              window_blocks=14),
}
REQUIRED_ARCH_KEYS = ('dims', 'depths', 'num_attn', 'attn_head_dim_reduction', 'conv_ratio',
                      'ffn_ratio')
#: old spelling -> key (accepted in custom arch dicts with a FutureWarning)
RENAMED_ARCH_KEYS = {'attn_ratio': 'attn_head_dim_reduction'}
NUM_STAGES = 4


def valid_model_names() -> str:
    """The accepted spellings, for error and help texts."""
    return ', '.join(ARCH_SETTINGS) + " (also 'iformer-m', 'iFormer_m', and a '_distill' suffix)"


def parse_model_name(name: str) -> Tuple[str, bool]:
    """``'iFormer_m_distill'`` -> ``('m', True)``; ``'iformer-m'`` -> ``('m', False)``.

    Unknown names raise a ValueError that lists the valid ones.
    """
    key = str(name).strip().lower().replace('-', '_')
    distilled = False
    for suffix in ('_distilled', '_distill'):
        if key.endswith(suffix):
            key, distilled = key[:-len(suffix)], True
    if key.startswith('iformer_'):
        key = key[len('iformer_'):]
    if key not in ARCH_SETTINGS:
        raise ValueError(f'unknown model {name!r}; expected one of {valid_model_names()}')
    return key, distilled


def resolve_arch(arch: Union[str, dict]) -> dict:
    """Return a validated arch dict (a copy) from a name or a user dict."""
    if isinstance(arch, str):
        try:
            return copy.deepcopy(ARCH_SETTINGS[parse_model_name(arch)[0]])
        except ValueError:
            raise ValueError(f'unknown iFormer arch {arch!r}; expected one of '
                             f"{list(ARCH_SETTINGS)} (also spelled 'iformer-m' or 'iFormer_m') "
                             f'or a dict with keys {list(REQUIRED_ARCH_KEYS)}') from None
    if not isinstance(arch, dict):
        raise TypeError(f'arch must be a name or a dict, got {type(arch).__name__}')
    arch = _renamed_keys(arch)
    missing = [k for k in REQUIRED_ARCH_KEYS if k not in arch]
    if missing:
        raise ValueError(f'custom iFormer arch is missing keys {missing}; '
                         f'required: {list(REQUIRED_ARCH_KEYS)}')
    arch.setdefault('layer_scale_init_value', 0.)
    for key in ('dims', 'depths', 'num_attn', 'attn_head_dim_reduction'):
        if len(arch[key]) != NUM_STAGES:
            raise ValueError(f'arch[{key!r}] must have {NUM_STAGES} entries, got {arch[key]}')
    for i, (depth, groups) in enumerate(zip(arch['depths'], arch['num_attn'])):
        if depth < 3 * groups:
            raise ValueError(f'stage {i}: depth {depth} cannot hold {groups} attention groups '
                             '(each group is 3 blocks: RepCPE, SHMABlock, FFN)')
        if groups and arch['attn_head_dim_reduction'][i] <= 0:
            raise ValueError(f'stage {i} has attention but attn_head_dim_reduction[{i}] is '
                             f"{arch['attn_head_dim_reduction'][i]}; expected a positive "
                             'head-dim reduction R (attention dim = dim // R)')
    arch.setdefault('window_blocks', arch['num_attn'][2])
    return arch


def _renamed_keys(arch: dict) -> dict:
    """A copy of a custom arch dict with old key spellings renamed (and a FutureWarning)."""
    arch = dict(arch)
    for old, new in RENAMED_ARCH_KEYS.items():
        if old not in arch:
            continue
        if new in arch:
            raise ValueError(f'custom iFormer arch has both {old!r} (old spelling) and {new!r}; '
                             f'keep {new!r} only')
        warnings.warn(f'iFormer arch key {old!r} is now {new!r} (the SHMA head-dim reduction R, '
                      f'attention dim = dim // R, as timm names it; timm\'s {old!r} is the value '
                      f'expansion): read as {new!r}; rename it in your config', FutureWarning,
                      stacklevel=4)
        arch[new] = arch.pop(old)
    return arch


# -- input resolutions of the export / analysis tools -------------------------------------------
RESOLUTION_MULTIPLE = 32           # the network stride
RESOLUTION_RANGE = (64, 2048)


def parse_resolution(value) -> Tuple[int, int]:
    """``'224'`` -> ``(224, 224)``; ``'256x320'`` -> ``(256, 320)`` (height x width), checked
    with :func:`check_resolution`."""
    text = str(value).strip().lower()
    m = re.fullmatch(r'(\d+)(?:x(\d+))?', text)
    if not m:
        raise ValueError(f'resolution {value!r} is not understood; expected N (square) or HxW, '
                         'e.g. 224, 512 or 256x320')
    h = int(m.group(1))
    w = int(m.group(2) or h)
    check_resolution(h, w)
    return h, w


def check_resolution(height: int, width: int) -> None:
    """Both sides a multiple of the network stride (32) in [64, 2048]."""
    lo, hi = RESOLUTION_RANGE
    for side, v in (('height', height), ('width', width)):
        if v % RESOLUTION_MULTIPLE or not lo <= v <= hi:
            raise ValueError(f'input {side} {v} is not allowed: iFormer exports need a multiple of '
                             f'{RESOLUTION_MULTIPLE} (the network stride) between {lo} and {hi}, '
                             'e.g. 224 (classifier) or 512 (backbone)')
