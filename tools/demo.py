#!/usr/bin/env python
"""Train + evaluate iFormer-T on generated data for all three tasks: ``python tools/demo.py``.

See ``python tools/demo.py --help`` and :mod:`iformer_mm.demo`.
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from iformer_mm.cli_warnings import quiet_known_warnings  # noqa: E402

quiet_known_warnings()

from iformer_mm.demo import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
