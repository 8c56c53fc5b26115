"""Small, seeded, learnable shape datasets in the on-disk formats OpenMMLab reads.

Why: tests and demos need to train and evaluate with the toolboxes' *real* dataset
classes and metrics, without downloading ImageNet / COCO / ADE20K. Every image is
drawn from a per-image random generator keyed by ``(seed, task, split, index)``, so
the same seed gives byte-identical annotation files and identical images, and image
``i`` does not change when more images are requested.

Layouts written (``root`` is the argument of each function; the full layout, the dataset
config to load it with and its caveats are in each format module's docstring):

- ``make_classification`` (:mod:`.classification`): ImageNet / ImageFolder layout,
  ``root/{train,val}/<class>/*.png`` + ``root/meta/{train,val}.txt``, for mmpretrain's
  ``ImageNet`` with ``metainfo=dict(classes=SHAPE_CLASSES)``.
- ``make_coco`` (:mod:`.coco`): COCO 2017 instances, ``root/{train,val}2017/*.jpg`` +
  ``root/annotations/instances_{train,val}2017.json`` (polygon and RLE masks), for mmdet's
  ``CocoDataset`` with ``metainfo=dict(classes=COCO_CLASSES)`` and ``CocoMetric``.
- ``make_ade20k`` (:mod:`.ade20k`): ADE20K, ``root/ADEChallengeData2016/{images,annotations}/
  {training,validation}/``, label PNG 1 = background, 2 + k = ``SHAPE_CLASSES[k]``, for mmseg's
  ``BaseSegDataset`` with ``reduce_zero_label=True`` and ``metainfo=dict(classes=ADE_CLASSES,
  palette=ADE_PALETTE)``.

``make_coco`` and ``make_ade20k`` write square ``image_size`` images unless ``sizes`` is given:
a preset (``'coco'``, ``'ade20k'``), ``'WxH,WxH,...'`` or ``(w, h)`` pairs, cycled over the
images (image ``i`` takes ``sizes[i % len(sizes)]``), so tests see landscape, portrait and odd
sizes as in the real datasets (:mod:`.sizes`).

Each function replaces only the entries it owns under ``root`` (listed above), and
only if ``root`` holds the marker file ``.synthetic_shapes.json`` from an earlier run
(or the entries do not exist yet), so it never deletes someone's real data. Output is
built in a staging folder inside ``root`` and moved into place at the end: an error
leaves no half-written dataset. Each function returns a summary whose
``summary['splits'][split]['dataset']`` is a ready dataset config (type, data_root, ...).

Modules: :mod:`.classes` (names, palette), :mod:`.validate` (argument checks),
:mod:`.draw` (pixels), :mod:`.sizes` (size presets), :mod:`.publish` (staging, marker, swap),
one module per format, and :mod:`.cli` (``tools/make_shapes.py``).
"""
from .ade20k import make_ade20k
from .classes import ADE_CLASSES, ADE_PALETTE, COCO_CLASSES, SHAPE_CLASSES
from .classification import make_classification
from .coco import make_coco
from .publish import MARKER_NAME
from .sizes import SIZE_PRESETS
from .validate import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, check_arguments, check_sizes

__all__ = [
    'SHAPE_CLASSES', 'COCO_CLASSES', 'ADE_CLASSES', 'ADE_PALETTE', 'MIN_IMAGE_SIZE',
    'MAX_IMAGE_SIZE', 'MARKER_NAME', 'SIZE_PRESETS', 'check_arguments', 'check_sizes',
    'make_classification', 'make_coco', 'make_ade20k'
]
