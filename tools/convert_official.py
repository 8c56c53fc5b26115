#!/usr/bin/env python
"""Convert a published iFormer checkpoint to an mm-format file: ``tools/convert.py --to mm``.

    python tools/convert_official.py iFormer_m.pth iformer-m_in1k.pth [--arch m] [--ema]

Kept under its first name; it takes every option of tools/convert.py, --to defaults to mm.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from iformer_mm.utils.cli import quiet_known_warnings  # noqa: E402

quiet_known_warnings()

PROG = 'convert_official.py'


def main(argv=None) -> int:
    from iformer_mm.zoo.convert_cli import main as convert_main
    return convert_main(argv, prog=PROG, default_to='mm')


if __name__ == '__main__':
    sys.exit(main())
