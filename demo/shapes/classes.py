"""Class names and palette of the shape datasets, in one place for generators, configs and demos.

Why one module: the classification folders, COCO category ids and ADE label values are all derived
from ``SHAPE_CLASSES``; keeping the derived tuples next to it stops them drifting apart.
"""
from __future__ import annotations

from typing import List, Tuple

#: Shape kinds. Sorted, because ImageFolder-style loaders number classes by sorted folder name.
SHAPE_CLASSES: Tuple[str, ...] = ('circle', 'cross', 'square', 'star', 'triangle')
#: COCO category names; category ``id`` is ``index + 1``.
COCO_CLASSES: Tuple[str, ...] = SHAPE_CLASSES
#: Semantic classes after ``reduce_zero_label`` (label PNG value = index + 1).
ADE_CLASSES: Tuple[str, ...] = ('background', ) + SHAPE_CLASSES
#: One RGB colour per entry of ``ADE_CLASSES``.
ADE_PALETTE: List[List[int]] = [[0, 0, 0], [220, 20, 60], [0, 130, 200], [60, 180, 75],
                                [255, 225, 25], [145, 30, 180]]
