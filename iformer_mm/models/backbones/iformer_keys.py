"""Key names of the iFormer backbone and head in the layouts people have; variant detection;
strict loading.

timm keeps ``checkpoint_filter_fn`` beside its model; this is our equivalent, both ways and for
three layouts, from one table (:data:`_BLOCK_PARTS`, :data:`_OTHER_PARTS`):

* ``'ours'``: our readable module names, ``stages.2.7.attn.q.conv.weight``,
  ``head.classifier.fc.weight``;
* ``'official'``: the release files of the official repository,
  ``stages.2.7.block.token_channel_mixer.m.q.c.weight``, ``classifier.classifier.l.weight``;
* ``'timm'``: timm's ``iformer_*`` (its ``state_dict()``, the Hugging Face Hub files),
  ``stages.2.blocks.7.mixer.module.q.c.weight``, ``head.head.l.weight``; ``features_only``
  models write ``stages_2.`` for ``stages.2.``.

A name alone does not always tell the module: timm's ``mixer.module.0`` is a ConvBlock's depthwise
conv or an FFN's first conv, and a release file keeps an FFN's layer scale in ``channel_mixer``,
every other block's in ``token_channel_mixer``. The block's kind is then read off its other keys.

:class:`~.iformer.IFormer` renames release and timm keys on ``load_state_dict`` (a pre-hook,
:func:`prepare_backbone_state`), so every loader accepts them, and refuses there weights that
cannot be this backbone's (no iFormer key at all, another variant) instead of leaving it random.
Variant detection reads dims and depths off the weights, so a file of another variant is named
as such instead of failing with hundreds of shape mismatches. Generic file handling (safe
loading, containers) is :mod:`iformer_mm.checkpoint`.
"""
from __future__ import annotations

import re
from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional, Pattern, Tuple, TypeVar

import torch

from ...checkpoint import CheckpointError, StateDict, find_state_dict, preview_keys, safe_load
from .iformer_arch import ARCH_SETTINGS

V = TypeVar('V')

# ----------------------------------------------------------------------------------------------
# Key names in every layout
# ----------------------------------------------------------------------------------------------
KEY_LAYOUTS = ('ours', 'official', 'timm')
#: a block's path in each layout ({s}: stage, {b}: block index in the stage)
_BLOCK = ('stages.{s}.{b}', 'stages.{s}.{b}.block', 'stages.{s}.blocks.{b}')
#: (block kind, module below the block in each layout); '' is the block itself: its layer scale
_BLOCK_PARTS = (
    ('conv', 'dwconv', 'token_channel_mixer.m.0', 'mixer.module.0'),
    ('conv', 'pwconv1', 'token_channel_mixer.m.1', 'mixer.module.1'),
    ('conv', 'pwconv2', 'token_channel_mixer.m.3', 'mixer.module.3'),
    ('conv', '', 'token_channel_mixer', 'mixer'),
    ('attn', 'attn.q', 'token_channel_mixer.m.q', 'mixer.module.q'),
    ('attn', 'attn.k', 'token_channel_mixer.m.k', 'mixer.module.k'),
    ('attn', 'attn.v_gate', 'token_channel_mixer.m.v_gate', 'mixer.module.v_gate'),
    ('attn', 'attn.proj', 'token_channel_mixer.m.proj', 'mixer.module.proj'),
    ('attn', '', 'token_channel_mixer', 'mixer'),
    ('ffn', 'fc1', 'channel_mixer.m.0', 'mixer.module.0'),
    ('ffn', 'fc2', 'channel_mixer.m.2', 'mixer.module.2'),
    ('ffn', '', 'channel_mixer', 'mixer'),
    ('cpe', 'conv', 'cpe.m', 'cpe.module'),
)
#: modules outside the blocks, in each layout ({i}: downsampling layer 1..3)
_OTHER_PARTS = (
    ('downsample_layers.0.conv1', 'downsample_layers.0.0', 'stem.conv1'),
    ('downsample_layers.0.conv2', 'downsample_layers.0.2.conv_exp_bn1', 'stem.conv2'),
    ('downsample_layers.0.conv3', 'downsample_layers.0.2.conv_pwl_bn2', 'stem.conv3'),
    ('downsample_layers.{i}', 'downsample_layers.{i}.0', 'stages.{i}.downsample'),
    ('head.classifier', 'classifier.classifier', 'head.head'),
    ('head.classifier_dist', 'classifier.classifier_dist', 'head.head_dist'),
)
#: parameters of a ConvBN / BN+Linear: ours -> the published spelling (official and timm agree)
_LEAVES = {'conv.weight': 'c.weight', 'fc.weight': 'l.weight', 'fc.bias': 'l.bias'}
_THEIR_LEAVES = {theirs: ours for ours, theirs in _LEAVES.items()}
_BN_LEAVES = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
_FEATURES_ONLY = re.compile(r'^stages_(\d+)\.')  # timm's features_only: stages_2. = stages.2.
#: the prefixes of our backbone's keys (trainable or deployed) and of our classifier head
_OUR_PREFIXES = ('downsample_layers.', 'stages.', 'head.')


class _Part(NamedTuple):
    kind: Optional[str]          # block kind; None outside the blocks
    scale: bool                  # the block's layer scale (a parameter ``gamma``, no module)
    paths: Tuple[str, ...]       # format templates, one per layout
    patterns: Tuple[Pattern, ...]


def _pattern(template: str) -> Pattern:
    pattern = re.escape(template)
    for name, group in (('s', r'\d+'), ('b', r'\d+'), ('i', '[123]')):
        pattern = pattern.replace(re.escape('{%s}' % name), f'(?P<{name}>{group})')
    return re.compile(pattern)


def _parts() -> Tuple[_Part, ...]:
    rows = [(kind, tuple(block + (f'.{sub}' if sub else '') for block, sub in zip(_BLOCK, subs)))
            for kind, *subs in _BLOCK_PARTS]
    rows += [(None, paths) for paths in _OTHER_PARTS]
    return tuple(_Part(kind, kind is not None and paths[0] == _BLOCK[0], paths,
                       tuple(map(_pattern, paths))) for kind, paths in rows)


_PARTS = _parts()


def _split(key: str, layout: str) -> Optional[Tuple[str, str]]:
    """(module path, parameter in our spelling) of a key of ``layout``; None if the parameter is
    none of iFormer's."""
    if layout == 'timm':
        key = _FEATURES_ONLY.sub(r'stages.\1.', key)
    names = key.split('.')
    if names[-1] == 'gamma':
        return '.'.join(names[:-1]), 'gamma'
    leaf = '.'.join(names[-2:])
    if len(names) > 2 and names[-2] == 'bn' and names[-1] in _BN_LEAVES:
        return '.'.join(names[:-2]), leaf
    spelled = leaf if layout == 'ours' else _THEIR_LEAVES.get(leaf)
    if len(names) > 2 and spelled in _LEAVES:
        return '.'.join(names[:-2]), spelled
    return None


def _matches(key: str, layout: str) -> List[Tuple[_Part, Dict[str, str], str]]:
    """Every (part, index groups, parameter) that ``key`` of ``layout`` can be."""
    split = _split(key, layout)
    if split is None:
        return []
    path, leaf = split
    col = KEY_LAYOUTS.index(layout)
    found = []
    for part in _PARTS:
        if part.scale == (leaf == 'gamma'):
            m = part.patterns[col].fullmatch(path)
            if m:
                found.append((part, m.groupdict(), leaf))
    return found


def key_layout(key: str) -> Optional[str]:
    """The layout whose name ``key`` is (release and timm names first), or None."""
    for layout in ('official', 'timm', 'ours'):
        if _matches(key, layout):
            return layout
    return None


def _block_kinds(keys: Iterable[str], layout: str) -> Dict[Tuple[str, str], str]:
    """(stage, block) -> the block's kind, for every block one of whose keys tells it."""
    kinds = {}
    for key in keys:
        found = {(g['s'], g['b'], part.kind) for part, g, _ in _matches(key, layout) if part.kind}
        if len({kind for _, _, kind in found}) == 1:
            s, b, kind = found.pop()
            kinds[(s, b)] = kind
    return kinds


def _new_names(keys: Iterable[str], src: str, dst: str) -> Dict[str, Optional[str]]:
    """Each key of layout ``src`` -> its name in layout ``dst`` (None: not an iFormer key of
    ``src``, or one whose block kind the other keys do not tell)."""
    keys = list(keys)
    kinds = _block_kinds(keys, src)
    col = KEY_LAYOUTS.index(dst)
    out: Dict[str, Optional[str]] = {}
    for key in keys:
        names = set()
        for part, groups, leaf in _matches(key, src):
            if part.kind and kinds.get((groups['s'], groups['b']), part.kind) != part.kind:
                continue
            spelled = leaf if dst == 'ours' else _LEAVES.get(leaf, leaf)
            names.add(part.paths[col].format(**groups) + '.' + spelled)
        out[key] = names.pop() if len(names) == 1 else None
    return out


def rename_keys(state_dict: Mapping[str, V], src: str, dst: str,
                source: str = 'checkpoint') -> Dict[str, V]:
    """Every key from layout ``src`` to ``dst``; a CheckpointError lists keys that are not
    iFormer keys of ``src``."""
    names = _new_names(state_dict, src, dst)
    unknown = [k for k, new in names.items() if new is None]
    if unknown:
        raise CheckpointError(f'{source}: {len(unknown)} keys are not iFormer keys in the {src} '
                              f'layout: {preview_keys(unknown)}')
    return {names[k]: v for k, v in state_dict.items()}


def names_layout(keys: Iterable[str], source: str = 'checkpoint') -> str:
    """``'official'`` or ``'timm'`` if any key is such a name, else ``'ours'``; mixing refused."""
    found = {layout for layout in map(key_layout, keys) if layout in ('official', 'timm')}
    if len(found) > 1:
        raise CheckpointError(f'{source} mixes release (official) and timm key names')
    return found.pop() if found else 'ours'


def official_to_ours_key(key: str) -> str:
    """Rename one release-file key to ours; raise KeyError if it is not one."""
    new = _new_names([key], 'official', 'ours')[key]
    if new is None:
        raise KeyError(key)
    return new


def ours_to_official(state_dict: Mapping[str, V]) -> Dict[str, V]:
    """mm-format (``backbone.`` / ``head.``) or bare backbone keys -> the release layout."""
    return from_mm_state(state_dict, 'official')


def to_mm_state(state_dict: Mapping[str, torch.Tensor],
                source: str = 'checkpoint') -> Tuple[StateDict, str]:
    """Weights in any layout -> the mm layout of our configs, and the layout their names were in.

    An mm checkpoint (keys under ``backbone.``: ours, or the published mmdet / mmseg files with
    release names there) keeps every key; only its backbone keys are renamed to ours. A bare
    state_dict (a release file's ``'model'``, timm's, our backbone's) must hold iFormer keys only:
    backbone keys go under ``backbone.``, the classifier to ``head.classifier`` /
    ``head.classifier_dist``. CheckpointError lists the keys that are none.
    """
    if any(k.startswith('backbone.') for k in state_dict):
        backbone = {k[len('backbone.'):]: v for k, v in state_dict.items()
                    if k.startswith('backbone.')}
        layout = names_layout(backbone, source)
        if layout != 'ours':
            backbone = rename_keys(backbone, layout, 'ours', f'{source} (under backbone.)')
        out = {f'backbone.{k}': v for k, v in backbone.items()}
        out.update((k, v) for k, v in state_dict.items() if not k.startswith('backbone.'))
        return out, layout
    layout = names_layout(state_dict, source)
    if layout == 'ours':
        unknown = [k for k in state_dict if not k.startswith(_OUR_PREFIXES)]
        if unknown:
            raise CheckpointError(f'{source}: {len(unknown)} keys are not iFormer keys: '
                                  f'{preview_keys(unknown)}')
        renamed = dict(state_dict)
    else:
        renamed = rename_keys(state_dict, layout, 'ours', source)
    return {(k if k.startswith('head.') else f'backbone.{k}'): v for k, v in renamed.items()}, layout


def from_mm_state(state_dict: Mapping[str, V], layout: str) -> Dict[str, V]:
    """Our names (mm ``backbone.*`` / ``head.*``, or a bare backbone) -> ``layout``'s, bare.

    Everything else of a detector or segmentor (neck, heads) is left out: timm and the official
    classifier hold backbone and classifier only.
    """
    if any(k.startswith('backbone.') for k in state_dict):
        state_dict = {k[len('backbone.'):] if k.startswith('backbone.') else k: v
                      for k, v in state_dict.items()
                      if k.startswith(('backbone.', 'head.'))}
    return rename_keys(state_dict, 'ours', layout)


def extract_backbone_state(state_dict: Mapping[str, torch.Tensor], prefix: Optional[str] = None,
                           source: str = 'checkpoint') -> StateDict:
    """Backbone weights under our names, from any layout (:func:`to_mm_state`).

    ``prefix`` (e.g. ``'backbone.'``, mmengine's ``init_cfg`` prefix) takes the keys under it;
    by default the layout decides (``backbone.*`` of an mm checkpoint, all but the classifier of
    a bare state_dict).
    """
    if prefix:
        state_dict = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if not state_dict:
            return {}
    mm, _ = to_mm_state(state_dict, source)
    return {k[len('backbone.'):]: v for k, v in mm.items() if k.startswith('backbone.')}


def prepare_backbone_state(model: torch.nn.Module, state_dict: Dict[str, torch.Tensor],
                           prefix: str) -> None:
    """``load_state_dict`` pre-hook of :class:`~.iformer.IFormer`, whichever loader runs it.

    In place: release and timm names under ``prefix`` become ours, and a whole classifier /
    detector state_dict loaded into the bare backbone gives its ``backbone.*`` keys. Then weights
    that cannot be this backbone's are refused (CheckpointError) rather than left as missing
    keys of a random model: no key reaching it, another variant, shapes that differ, fused
    weights for an unfused model (or the reverse). Missing or extra keys alone are left to the
    loader's own ``strict``.
    """
    layouts = {k[len(prefix):]: key_layout(k[len(prefix):]) for k in state_dict
               if k.startswith(prefix)}
    for layout in ('official', 'timm'):
        theirs = [k for k, found in layouts.items() if found == layout]
        for bare, new in _new_names(theirs, layout, 'ours').items():
            if new is not None:
                state_dict[prefix + new] = state_dict.pop(prefix + bare)
    own = model.state_dict()
    nested = prefix + 'backbone.'
    if not any(k[len(prefix):] in own for k in state_dict if k.startswith(prefix)):
        for key in [k for k in state_dict if k.startswith(nested)]:
            state_dict[prefix + key[len(nested):]] = state_dict.pop(key)
    bare = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    where = f"the checkpoint loaded into '{prefix[:-1]}'" if prefix else 'the checkpoint loaded'
    if not bare:
        raise CheckpointError(f'{where} has no iFormer backbone weights (no key under '
                              f"'{prefix}'; the keys: {preview_keys(sorted(state_dict))})")
    reached = [k for k in bare if k in own]
    if not reached or any(own[k].shape != bare[k].shape for k in reached):
        check_backbone_state(model, bare, where)


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


def is_deployed_state(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether backbone weights under our names are the deployed (fused) form: no BatchNorm."""
    return not any(k.endswith('.bn.running_mean') for k in state_dict)


def check_backbone_state(model: torch.nn.Module, state_dict: Mapping[str, torch.Tensor],
                         source: str) -> None:
    """Raise a CheckpointError naming the variant, or the missing/unexpected keys, on mismatch.

    Weights without a single key of our backbone's (``downsample_layers.*``, ``stages.*``) are
    named as such: no iFormer backbone weights.
    """
    if not any(k.startswith(_OUR_PREFIXES[:2]) for k in state_dict):
        raise CheckpointError(f'{source} has no iFormer backbone weights (the keys: '
                              f'{preview_keys(sorted(state_dict)) or "none"})')
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
    deployed_weights = is_deployed_state(state_dict)
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
    """Load a checkpoint of any layout (release, mm, timm; ``.pth`` / ``.bin`` / ``.safetensors``)
    strictly into an :class:`IFormer` backbone."""
    ckpt = safe_load(path)
    state_dict, _ = find_state_dict(ckpt, source=path)
    backbone = extract_backbone_state(state_dict, prefix, source=path)
    if not backbone:
        raise CheckpointError(f'{path} has no backbone weights'
                              + (f' under prefix {prefix!r}' if prefix else ''))
    check_backbone_state(model, backbone, path)
    model.load_state_dict(backbone, strict=True)
