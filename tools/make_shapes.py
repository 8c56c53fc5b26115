#!/usr/bin/env python
"""Write the synthetic shape datasets (thin CLI over ``demo.shapes.cli``).

    python tools/make_shapes.py all                               # data/shapes/{cls,coco,ade}
    python tools/make_shapes.py det --num-train 400 --num-val 50  # data/shapes/coco only

Bad input exits with code 2 and one line on stderr, before anything is written.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from iformer_mm.utils.cli import quiet_known_warnings  # noqa: E402

quiet_known_warnings()

from demo.shapes.cli import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
