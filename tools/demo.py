#!/usr/bin/env python
"""Train + evaluate iFormer-T on generated data for all three tasks: ``python tools/demo.py``.

See ``python tools/demo.py --help`` and demo/ (not part of the installed package).
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from iformer_mm.utils.cli import quiet_known_warnings  # noqa: E402

quiet_known_warnings()

from demo import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
