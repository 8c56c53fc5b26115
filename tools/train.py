#!/usr/bin/env python
"""Train an iFormer mmpretrain / mmdet / mmseg config: ``python tools/train.py CONFIG [options]``."""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from iformer_mm.utils.cli import quiet_known_warnings  # noqa: E402

quiet_known_warnings()

from iformer_mm.apis.launch import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main('train'))
