#!/usr/bin/env python
"""Export a fused iFormer to Core ML: python tools/export_coreml.py --model iFormer_m --resolution 224"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from iformer_mm.utils.cli import quiet_known_warnings  # noqa: E402

quiet_known_warnings()

from iformer_mm.deploy.aliases import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main('coreml'))
