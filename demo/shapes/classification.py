"""Classification set in the ImageNet / ImageFolder layout (``make_classification``)::

    root/train/<class>/<class>_00000.png      root/meta/train.txt  ("<class>/<file> <label>")
    root/val/<class>/<class>_00000.png        root/meta/val.txt

Both splits load with mmpretrain 1.2.0's standard ``ImageNet`` type::

    dict(type='ImageNet', data_root=root, split='train' | 'val',
         metainfo=dict(classes=SHAPE_CLASSES))

``metainfo`` is required: without it ``ImageNet`` carries the 1000 ImageNet names.
``split`` picks up ``meta/<split>.txt``. The folder names are sorted, so the labels
match a plain folder scan: ``dict(type='CustomDataset', data_root=root,
data_prefix='train')`` (no ``ann_file``) gives the same samples and class names.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict

import numpy as np
from PIL import Image, ImageDraw

from iformer_mm.utils.fileio import PathLike, atomic_write_text
from .classes import SHAPE_CLASSES
from .draw import background, image_rng, paint, place, rasterize, shape_colour, to_uint8
from .publish import publish, save_image
from .validate import MAX_IMAGES_PER_SPLIT, OWNED, check_arguments


def _classification_image(rng: np.random.Generator, label: int, size: int) -> np.ndarray:
    """One centred-ish shape of class ``label`` on a textured background."""
    img = background(rng, (size, size))
    _clutter(img, rng, size)
    radius = rng.uniform(0.22, 0.42) * size
    cx, cy = rng.uniform(radius, size - 1 - radius, 2)
    outline = place(SHAPE_CLASSES[label], (cx, cy), radius, rng.uniform(0, 2 * math.pi))
    paint(img, rasterize(outline, (size, size)), shape_colour(rng, img), rng)
    return to_uint8(img)


def _clutter(img: np.ndarray, rng: np.random.Generator, size: int) -> None:
    """0-2 thin random strokes, so edges alone do not give the class away."""
    for _ in range(int(rng.integers(0, 3))):
        canvas = Image.new('L', (size, size), 0)
        ends = [tuple(p) for p in rng.uniform(0, size - 1, (2, 2)).tolist()]
        ImageDraw.Draw(canvas).line(ends, fill=1, width=max(1, size // 48))
        img[np.asarray(canvas, dtype=bool)] = rng.uniform(0, 255, 3)


def _build_classification(staging: Path, counts: Dict[str, int], size: int,
                          seed: int) -> Dict[str, Any]:
    """Write both splits under ``staging``; returns the summary (paths into ``staging``)."""
    splits: Dict[str, Any] = {}
    for split, per_class in counts.items():
        lines = []
        for label, name in enumerate(SHAPE_CLASSES):
            (staging / split / name).mkdir(parents=True)
            for i in range(per_class):
                index = label * MAX_IMAGES_PER_SPLIT + i
                rel = f'{name}/{name}_{i:05d}.png'
                save_image(_classification_image(image_rng(seed, 'cls', split, index), label, size),
                           staging / split / rel)
                lines.append(f'{rel} {label}')
        atomic_write_text(staging / 'meta' / f'{split}.txt', '\n'.join(lines) + '\n',
                          make_dirs=True)
        splits[split] = dict(
            images=per_class * len(SHAPE_CLASSES), img_dir=staging / split,
            ann_file=staging / 'meta' / f'{split}.txt',
            dataset=dict(type='ImageNet', data_root=staging, split=split,
                         metainfo=dict(classes=list(SHAPE_CLASSES))))
    return dict(task='classification', root=staging, classes=list(SHAPE_CLASSES),
                image_size=size, seed=seed, splits=splits)


def make_classification(root: PathLike, num_train_per_class: int = 40, num_val_per_class: int = 10,
                        image_size: int = 64, seed: int = 0) -> Dict[str, Any]:
    """Write an ImageNet-layout shape classification set; returns a summary dict.

    Why: lets mmpretrain's real ``ImageNet`` dataset + ``Accuracy`` metric run in tests.
    Load with ``dict(type='ImageNet', data_root=root, split='train'|'val',
    metainfo=dict(classes=SHAPE_CLASSES))`` (see the module docstring).
    """
    args = check_arguments('cls', root, num_train_per_class, num_val_per_class, image_size, seed)
    counts = {'train': args['num_train'], 'val': args['num_val']}
    return publish(args['root'], OWNED['cls'],
                   lambda st: _build_classification(st, counts, args['image_size'], args['seed']))
