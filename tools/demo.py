#!/usr/bin/env python
"""Train + evaluate iFormer-T on generated data for all three tasks: ``python tools/demo.py``.

See ``python tools/demo.py --help`` and :mod:`iformer_mm.demo`.
"""
import os.path as osp
import sys
import warnings

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
# mmengine 0.10 imports pkg_resources, whose deprecation notice would precede every message
warnings.filterwarnings('ignore', message='pkg_resources is deprecated', category=UserWarning)

from iformer_mm.demo import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
