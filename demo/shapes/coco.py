"""Instance segmentation set in the COCO 2017 layout (``make_coco``) for mmdet 3.3.0's
``CocoDataset`` (``metainfo=dict(classes=COCO_CLASSES)``) and ``CocoMetric``::

    root/train2017/000000000001.jpg   root/annotations/instances_train2017.json
    root/val2017/000000000001.jpg     root/annotations/instances_val2017.json

Fully visible objects get polygon segmentations; objects partly hidden by a later
one, and a random ~10% of the others, get compressed RLE (``iscrowd=0``, ``counts``
as str) of their visible pixels. ``bbox`` (xywh) and ``area`` come from pycocotools
on the written segmentation, so they agree with what ``annToMask`` decodes.
Note: mmdet's ``LoadAnnotations(poly2mask=False)`` marks RLE instances as ignored;
use the default ``poly2mask=True`` to train on them.

Images are square (``image_size``) unless ``sizes`` is given (:mod:`.sizes`): a preset such as
``'coco'`` (640x480, 480x640, 640x427, ..., 2:1, 1:2, odd sizes) or ``(w, h)`` pairs that image
``i`` cycles through. Each image's ``width`` / ``height`` and its masks (RLE ``size`` is
``[h, w]``) follow its own size.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from iformer_mm.utils.fileio import PathLike
from .classes import COCO_CLASSES
from .draw import HW, SceneObject, image_rng, scene, visible_masks
from .publish import publish, save_image, write_json
from .sizes import Size, image_hw, size_summary
from .validate import OWNED, check_arguments

_RLE_FRACTION = 0.1  # share of fully visible COCO objects written as RLE anyway


def _polygon_segmentation(outline: np.ndarray) -> List[List[float]]:
    """The outline as one COCO polygon (rounded to 0.01 px to keep the JSON small)."""
    return [[round(float(v), 2) for v in outline.reshape(-1)]]


def _rle_segmentation(mask: np.ndarray) -> Dict[str, Any]:
    """Compressed RLE of ``mask`` with ``counts`` as str, so it is JSON-serialisable."""
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(s) for s in rle['size']], 'counts': rle['counts'].decode('ascii')}


def _segmentation_stats(segmentation: Any, hw: HW) -> Tuple[float, List[float]]:
    """Area and xywh bbox exactly as pycocotools decodes the written segmentation."""
    from pycocotools import mask as mask_utils
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, *hw))
    else:
        rle = dict(segmentation, counts=segmentation['counts'].encode('ascii'))
    area = float(mask_utils.area(rle))
    bbox = [round(float(v), 2) for v in mask_utils.toBbox(rle)]
    return area, bbox


def _coco_annotations(rng: np.random.Generator, objects: Sequence[SceneObject], hw: HW,
                      image_id: int, first_ann_id: int) -> List[Dict[str, Any]]:
    """Polygons for fully visible objects, RLE of the visible part for occluded (or random) ones."""
    visible = visible_masks([m for _, _, m in objects])
    anns = []
    for (label, outline, full), vis in zip(objects, visible):
        occluded = int(vis.sum()) < int(full.sum())
        as_rle = rng.random() < _RLE_FRACTION or occluded
        if vis.sum() < 4:
            continue
        segmentation = _rle_segmentation(vis) if as_rle else _polygon_segmentation(outline)
        area, bbox = _segmentation_stats(segmentation, hw)
        if area <= 0 or bbox[2] < 1 or bbox[3] < 1:
            continue
        anns.append(dict(id=first_ann_id + len(anns), image_id=image_id, category_id=label + 1,
                         segmentation=segmentation, area=area, bbox=bbox, iscrowd=0))
    return anns


def _coco_split(staging: Path, split: str, count: int, size: int, sizes: Optional[Sequence[Size]],
                seed: int) -> Dict[str, Any]:
    """Images + annotation dict for one split; returns the COCO dict."""
    img_dir = staging / f'{split}2017'
    img_dir.mkdir(parents=True)
    images, annotations = [], []
    for i in range(count):
        rng = image_rng(seed, 'coco', split, i)
        hw = image_hw(i, size, sizes)
        img, objects = scene(rng, hw, max_objects=4)
        file_name = f'{i + 1:012d}.jpg'
        save_image(img, img_dir / file_name)
        images.append(dict(id=i + 1, file_name=file_name, width=hw[1], height=hw[0]))
        annotations += _coco_annotations(rng, objects, hw, i + 1, len(annotations) + 1)
    categories = [dict(id=k + 1, name=name, supercategory='shape')
                  for k, name in enumerate(COCO_CLASSES)]
    return dict(info=dict(description='iformer_mm synthetic shapes', version='1.0'),
                licenses=[], images=images, annotations=annotations, categories=categories)


def _build_coco(staging: Path, counts: Dict[str, int], size: int, sizes: Optional[Sequence[Size]],
                seed: int) -> Dict[str, Any]:
    """Write both splits under ``staging``; returns the summary (paths into ``staging``)."""
    splits: Dict[str, Any] = {}
    for split, count in counts.items():
        coco = _coco_split(staging, split, count, size, sizes, seed)
        ann_file = staging / 'annotations' / f'instances_{split}2017.json'
        write_json(ann_file, coco)
        n_rle = sum(isinstance(a['segmentation'], dict) for a in coco['annotations'])
        splits[split] = dict(
            images=count, annotations=len(coco['annotations']), rle_annotations=n_rle,
            img_dir=staging / f'{split}2017', ann_file=ann_file,
            dataset=dict(type='CocoDataset', data_root=staging,
                         ann_file=f'annotations/instances_{split}2017.json',
                         data_prefix=dict(img=f'{split}2017/'),
                         metainfo=dict(classes=list(COCO_CLASSES))))
    return dict(task='coco_instance', root=staging, classes=list(COCO_CLASSES),
                **size_summary(size, sizes), seed=seed, splits=splits)


def make_coco(root: PathLike, num_train: int = 64, num_val: int = 16, image_size: int = 128,
              seed: int = 0, sizes: Union[None, str, Sequence[Size]] = None) -> Dict[str, Any]:
    """Write a COCO-2017-layout instance segmentation set; returns a summary dict.

    Why: lets mmdet's real ``CocoDataset`` and pycocotools-backed ``CocoMetric`` (bbox and
    segm) run in tests. Several shapes per image, polygon and RLE masks (module docstring).
    ``sizes`` (a preset name such as ``'coco'``, ``'WxH,WxH,...'`` or ``(w, h)`` pairs) gives the
    images real aspect ratios in place of the square ``image_size``.
    """
    args = check_arguments('coco', root, num_train, num_val, image_size, seed, sizes)
    counts = {'train': args['num_train'], 'val': args['num_val']}
    return publish(args['root'], OWNED['coco'], lambda st: _build_coco(
        st, counts, args['image_size'], args['sizes'], args['seed']))
