"""Image sizes of the COCO and ADE20K layouts: the square default or a cycle of ``(w, h)`` sizes.

Why: real COCO and ADE20K images are landscape, portrait, 2:1, 1:2, up to about 4:1 and of odd
sizes; a model or a deployed graph that mishandles one orientation passes every test on square
images. With ``sizes``, image ``i`` of a split is ``sizes[i % len(sizes)]`` (still a function of
``(seed, task, split, i)`` and the arguments only). Sizes are ``(width, height)``, the order of
mmcv / mmdet ``scale`` and of the CLI's ``WxH``.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

#: ``(width, height)`` of one image
Size = Tuple[int, int]

#: Named cycles of real-looking sizes (``tools/make_shapes.py --sizes coco``).
SIZE_PRESETS: Dict[str, Tuple[Size, ...]] = {
    # COCO 2017's most common sizes (640 long side), 2:1 and 1:2, odd sizes
    'coco': ((640, 480), (480, 640), (640, 427), (427, 640), (500, 375), (375, 500), (612, 612),
             (640, 360), (333, 500), (600, 300), (300, 600), (481, 359), (359, 481), (517, 389)),
    # ADE20K: 4:3 and 3:4 at 512 short side, panoramas up to 4:1 and 1:4, small and odd sizes
    'ade20k': ((683, 512), (512, 683), (1024, 256), (256, 1024), (640, 480), (480, 640),
               (400, 300), (300, 400), (512, 512), (768, 384), (384, 768), (711, 533),
               (333, 489), (913, 605)),
}


def image_hw(index: int, image_size: int, sizes: Optional[Sequence[Size]]) -> Tuple[int, int]:
    """``(height, width)`` of image ``index``: square ``image_size`` or its entry of ``sizes``."""
    if not sizes:
        return image_size, image_size
    width, height = sizes[index % len(sizes)]
    return height, width


def size_summary(image_size: int, sizes: Optional[Sequence[Size]]) -> Dict[str, Any]:
    """The summary (marker) fields naming the sizes written; square sets keep their old fields."""
    if not sizes:
        return dict(image_size=image_size)
    return dict(image_size=None, sizes=[list(s) for s in sizes])
