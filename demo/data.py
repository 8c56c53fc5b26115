"""The demo's datasets: generated once under ``--data-root``, reused while they match the spec.

Why a spec check and not just "exists": the measured demo numbers hold for one dataset (image
count, size, seed). A folder written earlier by ``tools/make_shapes.py`` with other settings is
regenerated (the generator only ever replaces folders carrying its own marker file, so real data
is never touched; foreign data makes it refuse with an error naming the folder).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional

from . import shapes

#: files each generator must have written for a folder to count as present
_REQUIRED = {
    'cls': ('meta/train.txt', 'meta/val.txt', 'train', 'val'),
    'coco': ('annotations/instances_train2017.json', 'annotations/instances_val2017.json',
             'train2017', 'val2017'),
    'ade': ('ADEChallengeData2016/images/training', 'ADEChallengeData2016/images/validation',
            'ADEChallengeData2016/annotations/training',
            'ADEChallengeData2016/annotations/validation'),
}


@dataclass(frozen=True)
class DataSpec:
    """One synthetic dataset: generator key, folder under the data root, counts, size, seed.

    For ``kind='cls'`` the counts are per class (as in ``make_classification``).
    """
    kind: str
    subdir: str
    num_train: int
    num_val: int
    image_size: int
    seed: int = 0

    def total(self, split: str) -> int:
        """Images in ``split`` as the generator's summary counts them."""
        per = self.num_train if split == 'train' else self.num_val
        return per * len(shapes.SHAPE_CLASSES) if self.kind == 'cls' else per

    def generate(self, root: Path) -> Dict[str, Any]:
        if self.kind == 'cls':
            return shapes.make_classification(root, self.num_train, self.num_val,
                                              self.image_size, self.seed)
        make = {'coco': shapes.make_coco, 'ade': shapes.make_ade20k}[self.kind]
        return make(root, self.num_train, self.num_val, self.image_size, self.seed)


def written_spec(root: Path) -> Optional[Dict[str, Any]]:
    """The generator's marker summary in ``root``; None if it is missing or unreadable."""
    try:
        return json.loads((root / shapes.MARKER_NAME).read_text())
    except (OSError, ValueError):
        return None


def mismatch(spec: DataSpec, root: Path) -> Optional[str]:
    """Why ``root`` does not hold ``spec``'s dataset (None if it does)."""
    marker = written_spec(root)
    if marker is None:
        return 'not generated yet'
    missing = [p for p in _REQUIRED[spec.kind] if not (root / p).exists()]
    if missing:
        return f'missing {missing}'
    splits = marker.get('splits', {})
    found = dict(image_size=marker.get('image_size'), seed=marker.get('seed'),
                 train=splits.get('train', {}).get('images'),
                 val=splits.get('val', {}).get('images'))
    wanted = dict(image_size=spec.image_size, seed=spec.seed, train=spec.total('train'),
                  val=spec.total('val'))
    diff = [f'{k} {found[k]} (demo uses {wanted[k]})' for k in wanted if found[k] != wanted[k]]
    return ', '.join(diff) if diff else None


def ensure_data(spec: DataSpec, data_root: Path, log: Callable[[str], None] = print) -> Path:
    """Return ``data_root / spec.subdir`` holding ``spec``'s dataset, generating it if needed."""
    root = Path(data_root) / spec.subdir
    reason = mismatch(spec, root)
    if reason is None:
        log(f'data: reusing {root}')
        return root
    log(f'data: writing {root} ({reason})')
    spec.generate(root)
    return root


def background_scores(root: Path) -> Dict[str, float]:
    """mIoU and pixel accuracy (fractions) of predicting 'background' everywhere on ADE val.

    With that predictor only background has a non-zero IoU (its pixel share); mmseg's
    ``IoUMetric`` averages over the classes present in the ground truth or the prediction.
    """
    import numpy as np
    from PIL import Image
    folder = Path(root) / 'ADEChallengeData2016' / 'annotations' / 'validation'
    counts = np.zeros(256, dtype=np.int64)
    for png in sorted(folder.glob('*.png')):
        with Image.open(png) as img:
            counts += np.bincount(np.asarray(img).reshape(-1), minlength=256)
    # reduce_zero_label: png value v -> class v - 1 (0 = ignore is never written)
    labels = counts[1:1 + len(shapes.ADE_CLASSES)]
    share = float(labels[0]) / max(int(labels.sum()), 1)
    return {'mIoU': share / max(int((labels > 0).sum()), 1), 'aAcc': share}
