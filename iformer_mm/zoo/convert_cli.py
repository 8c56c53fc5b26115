"""``tools/convert.py`` (and its first name, ``tools/convert_official.py``): the command line of
:func:`~.convert.convert_checkpoint`.

Bad input of any kind (unknown layout, missing or junk file, fused weights, another variant,
unwritable destination) is one line ``PROG: error: ...`` on stderr, exit status 2, nothing
written (:mod:`iformer_mm.utils.cli`).
"""
from __future__ import annotations

import argparse
from typing import List, Optional

from ..models.backbones.iformer_arch import ARCH_SETTINGS, parse_model_name
from ..utils.cli import ToolParser, error_exit
from .convert import TARGETS, convert_checkpoint

PROG = 'convert.py'


def build_parser(prog: str = PROG, default_to: Optional[str] = None) -> argparse.ArgumentParser:
    """``default_to`` None: ``--to`` is required (``convert.py``); else its default."""
    p = ToolParser(prog=prog, description='Convert an iFormer checkpoint into the layout of our '
                                          'configs (mm), of timm, or of the official release.')
    p.add_argument('src', help='a release .pth, an mm checkpoint (classifier, detector, '
                               'segmentor) or a timm state_dict (.pth / .bin / .safetensors): a '
                               'path, an http(s) URL or hf-hub:ORG/REPO[@REVISION]')
    p.add_argument('dst', help='output file, written atomically (--to timm: .safetensors or .pth)')
    p.add_argument('--to', choices=TARGETS, required=default_to is None, default=default_to,
                   help='mm: {state_dict, meta} for our configs; timm: a state_dict timm.create_model'
                        "(..., checkpoint_path=DST) loads (a detector's / segmentor's backbone "
                        "alone); official: {'model': ...} in the release layout"
                        + (f' (default {default_to})' if default_to else ''))
    p.add_argument('--arch', help='expected variant (t, s, m, l, l2, h): refuse other ones')
    p.add_argument('--ema', action='store_true',
                   help="convert the 'model_ema' weights of a release file instead of 'model'")
    return p


def _timm_hint(meta: dict, dst: str) -> str:
    """How timm loads what ``--to timm`` wrote."""
    name = f"iformer_{meta['arch'] or '<variant>'}" + ('_distilled' if meta['distilled'] else '')
    classes = meta['num_classes']
    extra = '' if classes == 1000 else f', num_classes={classes or 0}'
    return f"load it with timm.create_model('{name}'{extra}, checkpoint_path='{dst}')"


def main(argv: Optional[List[str]] = None, prog: str = PROG,
         default_to: Optional[str] = None) -> int:
    args = build_parser(prog, default_to).parse_args(argv)
    try:
        if args.arch is not None:
            try:
                parse_model_name(args.arch)
            except ValueError:
                raise ValueError(f'--arch {args.arch!r} is not an iFormer variant; expected one '
                                 f'of {", ".join(ARCH_SETTINGS)} (or iformer-m / iFormer_m '
                                 'spellings)') from None
        meta = convert_checkpoint(args.src, args.dst, to=args.to, arch=args.arch,
                                  use_ema=args.ema)
    except (ValueError, OSError) as e:  # CheckpointError is a ValueError
        return error_exit(prog, e)
    arch = f"iFormer-{meta['arch'].upper()}" if meta.get('arch') else 'custom iFormer'
    print(f"{args.src} ({meta['format']}, {arch}) -> {args.dst} ({args.to} layout)")
    if args.to == 'timm':
        print(_timm_hint(meta, args.dst))
    return 0
