#!/usr/bin/env python
"""Convert an iFormer checkpoint between our (mm), timm's and the official release layout.

    python tools/convert.py iFormer_m.pth iformer-m_in1k.pth --to mm            # release -> mm
    python tools/convert.py hf-hub:timm/iformer_m.in1k iformer-m_in1k.pth --to mm
    python tools/convert.py work_dirs/x/epoch_300.pth iformer_m.safetensors --to timm
    python tools/convert.py mask_rcnn_epoch_12.pth iformer_m_backbone.pth --to official

SRC: a path, an http(s) URL or hf-hub:ORG/REPO[@REVISION] (.pth / .bin / .safetensors).
Bad input: exit code 2, one line on stderr, nothing written (see iformer_mm.zoo.convert).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from iformer_mm.utils.cli import quiet_known_warnings  # noqa: E402

quiet_known_warnings()

from iformer_mm.zoo.convert_cli import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
