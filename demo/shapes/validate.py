"""Argument checks shared by the generators and the CLI, run before anything is written.

Why separate: ``tools/make_shapes.py all`` validates all three requests first, so a bad value
for the last dataset does not leave the first two regenerated (all-or-nothing).
"""
from __future__ import annotations

import operator
import os
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

from iformer_mm.utils.fileio import PathLike
from .publish import MARKER_NAME

MIN_IMAGE_SIZE = 32
MAX_IMAGE_SIZE = 2048
MAX_IMAGES_PER_SPLIT = 100_000

#: Top-level entries under ``root`` that each task writes (and may replace).
OWNED: Dict[str, Tuple[str, ...]] = {
    'cls': ('train', 'val', 'meta'),
    'coco': ('train2017', 'val2017', 'annotations'),
    'ade': ('ADEChallengeData2016', ),
}


def _as_int(value: Any) -> Optional[int]:
    """``value`` as an int if it is an integer (not a bool), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _check_count(name: str, value: Any) -> int:
    """Reject non-integer, zero, negative or absurd image counts, naming the argument."""
    count = _as_int(value)
    if count is None:
        raise ValueError(f'{name} must be a positive integer, got {value!r}')
    if count < 1:
        raise ValueError(f'{name} must be a positive integer (>= 1), got {count}')
    if count > MAX_IMAGES_PER_SPLIT:
        raise ValueError(f'{name} must be at most {MAX_IMAGES_PER_SPLIT}, got {count}')
    return count


def _check_size(value: Any) -> int:
    """Reject sizes the shapes cannot be drawn legibly in (or that would be huge)."""
    size = _as_int(value)
    if size is None:
        raise ValueError(f'image_size must be an integer number of pixels, got {value!r}')
    if not MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE:
        raise ValueError(f'image_size must be between {MIN_IMAGE_SIZE} (minimum) and '
                         f'{MAX_IMAGE_SIZE} pixels, got {size}')
    return size


def _check_seed(value: Any) -> int:
    """Seeds feed numpy's SeedSequence, which needs a non-negative integer."""
    seed = _as_int(value)
    if seed is None or seed < 0:
        raise ValueError('seed must be a non-negative integer, got '
                         + (repr(value) if seed is None else str(seed)))
    return seed


def _check_root(root: PathLike, owned: Sequence[str]) -> Path:
    """Fail before writing if ``root`` cannot hold the dataset or holds foreign data."""
    if root is None or str(root) == '':
        raise ValueError('root must be a directory path, got an empty value')
    path = Path(root).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f'root {str(path)!r} exists and is not a directory')
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise NotADirectoryError(
            f'cannot create root {str(path)!r}: {str(existing)!r} is a file, not a directory')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f'cannot write root {str(path)!r}: {str(existing)!r} is not writable')
    if path.is_dir() and not (path / MARKER_NAME).is_file():
        clash = [name for name in owned if (path / name).exists()]
        if clash:
            raise FileExistsError(
                f'refusing to overwrite {clash} in {str(path)!r}: it has no {MARKER_NAME} '
                'marker, so it was not written by tools/make_shapes.py')
    return path


def _nearest_existing(path: Path) -> Path:
    """The closest ancestor (or ``path`` itself) that exists, to test writability."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(path.anchor)


def check_arguments(task: str, root: PathLike, num_train: Any, num_val: Any, image_size: Any,
                    seed: Any) -> Dict[str, Any]:
    """Validate one request without writing, so a CLI can check several before any write.

    ``task`` is ``'cls'``, ``'coco'`` or ``'ade'``. Returns the normalised arguments.
    """
    if task not in OWNED:
        raise ValueError(f'task must be one of {sorted(OWNED)}, got {task!r}')
    train_name = 'num_train_per_class' if task == 'cls' else 'num_train'
    val_name = 'num_val_per_class' if task == 'cls' else 'num_val'
    return dict(num_train=_check_count(train_name, num_train),
                num_val=_check_count(val_name, num_val), image_size=_check_size(image_size),
                seed=_check_seed(seed), root=_check_root(root, OWNED[task]))
