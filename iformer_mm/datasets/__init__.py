"""Dataset helpers. Light on purpose: no OpenMMLab toolbox is imported here, so data can be
generated (e.g. by ``tools/make_shapes.py``) without loading mmdet / mmseg / mmpretrain."""
from .shapes import (ADE_CLASSES, ADE_PALETTE, COCO_CLASSES, MARKER_NAME, MAX_IMAGE_SIZE,
                     MIN_IMAGE_SIZE, SHAPE_CLASSES, check_arguments, make_ade20k,
                     make_classification, make_coco)

__all__ = [
    'SHAPE_CLASSES', 'COCO_CLASSES', 'ADE_CLASSES', 'ADE_PALETTE', 'MIN_IMAGE_SIZE',
    'MAX_IMAGE_SIZE', 'MARKER_NAME', 'check_arguments', 'make_classification', 'make_coco',
    'make_ade20k'
]
