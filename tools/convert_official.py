#!/usr/bin/env python
"""Convert a published iFormer checkpoint to an mm-format file.

    python tools/convert_official.py iFormer_m.pth iformer-m_in1k.pth [--arch m] [--ema]
    python tools/convert_official.py RELEASE_URL/iFormer_m.pth iformer-m_in1k.pth   # a URL works too

Classification release files become {'state_dict': {backbone.*, head.*}, 'meta'} for the
configs/classification models; published mmdet / mmseg files keep all keys with the backbone
keys renamed. Bad input: exit code 2, one line on stderr, nothing written (see
iformer_mm.zoo.convert).
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from iformer_mm.utils.cli import quiet_known_warnings  # noqa: E402

quiet_known_warnings()


PROG = 'convert_official.py'


def parse_args(argv=None) -> argparse.Namespace:
    from iformer_mm.utils.cli import ToolParser
    parser = ToolParser(prog=PROG, description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='published .pth (classification, detection or segmentation), '
                                    'or its URL (downloaded once into the torch hub cache)')
    parser.add_argument('dst', help='output .pth (written atomically)')
    parser.add_argument('--arch', help='expected variant (t, s, m, l, l2, h): refuse other ones')
    parser.add_argument('--ema', action='store_true',
                        help="convert the 'model_ema' weights instead of 'model'")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from iformer_mm.models.backbones.iformer_arch import ARCH_SETTINGS, parse_model_name
    from iformer_mm.utils.cli import error_exit
    from iformer_mm.zoo.convert import convert_checkpoint
    try:
        if args.arch is not None:
            try:
                parse_model_name(args.arch)
            except ValueError:
                raise ValueError(f'--arch {args.arch!r} is not an iFormer variant; expected one '
                                 f'of {", ".join(ARCH_SETTINGS)} (or iformer-m / iFormer_m '
                                 'spellings)') from None
        meta = convert_checkpoint(args.src, args.dst, arch=args.arch, use_ema=args.ema)
    except (ValueError, OSError) as e:  # CheckpointError is a ValueError
        return error_exit(PROG, e)
    arch = f"iFormer-{meta['arch'].upper()}" if meta.get('arch') else 'custom iFormer'
    print(f"{args.src} ({meta['format']}, {arch}) -> {args.dst}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
