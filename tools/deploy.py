#!/usr/bin/env python
"""Deploy a fused iFormer to an on-device runtime, run it there and report:

    python tools/deploy.py --model iformer-m --task classifier --target executorch --precision int8 \
        --checkpoint CKPT --calib-data data/shapes/cls/train
See ``python tools/deploy.py --help`` and docs/deployment.md.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from iformer_mm.utils.cli import quiet_known_warnings  # noqa: E402

quiet_known_warnings()

from iformer_mm.deploy.cli import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
