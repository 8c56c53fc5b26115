"""Semantic segmentation set in the ADE20K layout (``make_ade20k``) for mmseg 1.2.2::

    root/ADEChallengeData2016/images/{training,validation}/ADE_{train,val}_00000001.jpg
    root/ADEChallengeData2016/annotations/{training,validation}/ADE_..._00000001.png

Label PNGs are single-channel uint8: 0 = ignore (never written), 1 = background,
2 + k = ``SHAPE_CLASSES[k]``. After ``reduce_zero_label=True`` (k -> k-1, 0 -> 255)
labels are indices into ``ADE_CLASSES = ('background',) + SHAPE_CLASSES``.
mmseg's ``ADE20KDataset`` refuses ``metainfo`` classes that are not ADE's own
(``get_label_map`` raises), so a config with these class names uses::

    dict(type='BaseSegDataset', data_root=root + '/ADEChallengeData2016',
         data_prefix=dict(img_path='images/training',
                          seg_map_path='annotations/training'),
         img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True,
         metainfo=dict(classes=ADE_CLASSES, palette=ADE_PALETTE))

``ADE20KDataset`` *without* a ``metainfo`` override also reads the files and yields
the same label values (under ADE's 150 names).

Images are square (``image_size``) unless ``sizes`` is given (:mod:`.sizes`): a preset such as
``'ade20k'`` (683x512, 512x683, 1024x256, 256x1024, ..., odd sizes) or ``(w, h)`` pairs that
image ``i`` cycles through; each label PNG has its image's height and width.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np

from iformer_mm.utils.fileio import PathLike
from .classes import ADE_CLASSES, ADE_PALETTE
from .draw import HW, SceneObject, image_rng, scene
from .publish import publish, save_image
from .sizes import Size, image_hw, size_summary
from .validate import OWNED, check_arguments


def _label_map(objects: Sequence[SceneObject], hw: HW) -> np.ndarray:
    """uint8 ``hw`` map: 1 = background, 2 + k = shape class k, later objects on top; no 0s."""
    labels = np.ones(hw, dtype=np.uint8)
    for label, _, mask in objects:
        labels[mask] = label + 2
    return labels


def _build_ade20k(staging: Path, counts: Dict[str, int], size: int,
                  sizes: Optional[Sequence[Size]], seed: int) -> Dict[str, Any]:
    """Write both splits under ``staging``; returns the summary (paths into ``staging``)."""
    base = staging / 'ADEChallengeData2016'
    splits: Dict[str, Any] = {}
    for split, count in counts.items():
        folder, prefix = ('training', 'train') if split == 'train' else ('validation', 'val')
        img_dir, ann_dir = base / 'images' / folder, base / 'annotations' / folder
        img_dir.mkdir(parents=True)
        ann_dir.mkdir(parents=True)
        for i in range(count):
            hw = image_hw(i, size, sizes)
            img, objects = scene(image_rng(seed, 'ade', split, i), hw, max_objects=4)
            stem = f'ADE_{prefix}_{i + 1:08d}'
            save_image(img, img_dir / f'{stem}.jpg')
            save_image(_label_map(objects, hw), ann_dir / f'{stem}.png')
        splits[split] = dict(
            images=count, img_dir=img_dir, ann_dir=ann_dir,
            dataset=dict(type='BaseSegDataset', data_root=base,
                         data_prefix=dict(img_path=f'images/{folder}',
                                          seg_map_path=f'annotations/{folder}'),
                         img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True,
                         metainfo=dict(classes=list(ADE_CLASSES),
                                       palette=[list(c) for c in ADE_PALETTE])))
    return dict(task='ade20k_semantic', root=staging, data_root=base, classes=list(ADE_CLASSES),
                palette=[list(c) for c in ADE_PALETTE], **size_summary(size, sizes), seed=seed,
                splits=splits,
                label_convention='png value 0 = ignore (never written), 1 = background, '
                                 '2+k = SHAPE_CLASSES[k]; load with reduce_zero_label=True')


def make_ade20k(root: PathLike, num_train: int = 64, num_val: int = 16, image_size: int = 128,
                seed: int = 0, sizes: Union[None, str, Sequence[Size]] = None) -> Dict[str, Any]:
    """Write an ADE20K-layout semantic segmentation set; returns a summary dict.

    Why: lets mmseg's real dataset loading (``reduce_zero_label=True``) and ``IoUMetric``
    run in tests. Label convention and the dataset config to use: module docstring.
    ``sizes`` (a preset name such as ``'ade20k'``, ``'WxH,WxH,...'`` or ``(w, h)`` pairs) gives
    the images real aspect ratios in place of the square ``image_size``.
    """
    args = check_arguments('ade', root, num_train, num_val, image_size, seed, sizes)
    counts = {'train': args['num_train'], 'val': args['num_val']}
    return publish(args['root'], OWNED['ade'], lambda st: _build_ade20k(
        st, counts, args['image_size'], args['sizes'], args['seed']))
