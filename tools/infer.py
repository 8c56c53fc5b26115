#!/usr/bin/env python
"""Run a config on your own pictures: predictions printed, visualised PNGs written.

    python tools/infer.py demo.jpg photos/ --config CONFIG --weights PATH_OR_URL [--out-dir DIR]
Classification, detection or segmentation, from the config's default_scope (iformer_mm.apis.inference).
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from iformer_mm.utils.cli import quiet_known_warnings  # noqa: E402

quiet_known_warnings()

from iformer_mm.apis.inference import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
