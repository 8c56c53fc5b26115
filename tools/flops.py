#!/usr/bin/env python
"""Parameters (unfused classifier) and GMACs (fused, attention matmuls counted) of iFormer variants.

    python tools/flops.py                      # table, all variants at 224
    python tools/flops.py --json --models t m  # JSON rows {"model", "resolution", "params", "gmacs"}
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from iformer_mm.utils.cli import quiet_known_warnings  # noqa: E402

quiet_known_warnings()

from iformer_mm.flops import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
