"""Argument checks shared by the generators and the CLI, run before anything is written.

Why separate: ``tools/make_shapes.py all`` validates all three requests first, so a bad value
for the last dataset does not leave the first two regenerated (all-or-nothing).
"""
from __future__ import annotations

import operator
import os
import re
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

from iformer_mm.utils.fileio import PathLike
from .publish import MARKER_NAME
from .sizes import SIZE_PRESETS, Size

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


def check_sizes(value: Any) -> Optional[Tuple[Size, ...]]:
    """``None`` (square images), a preset name, ``'WxH,WxH,...'`` or ``(w, h)`` pairs, as
    ``(w, h)`` tuples; both sides of every size in ``MIN_IMAGE_SIZE..MAX_IMAGE_SIZE``."""
    if value is None:
        return None
    if isinstance(value, str):
        pairs = SIZE_PRESETS.get(value.strip().lower()) or [_parse_wxh(t, value)
                                                             for t in value.split(',')]
    else:
        try:
            pairs = [tuple(map(_as_int, pair)) for pair in value]
        except TypeError:  # not a sequence of sequences
            pairs = []
        if not pairs or any(len(p) != 2 or None in p for p in pairs):
            raise ValueError(f'sizes must be a preset name, a WxH,WxH,... string or (width, '
                             f'height) integer pairs, got {value!r}')
    for width, height in pairs:
        for side, pixels in (('width', width), ('height', height)):
            if not MIN_IMAGE_SIZE <= pixels <= MAX_IMAGE_SIZE:
                raise ValueError(f'sizes must be between {MIN_IMAGE_SIZE} (minimum) and '
                                 f'{MAX_IMAGE_SIZE} pixels on both sides, got {side} {pixels} '
                                 f'in {width}x{height}')
    return tuple(pairs)


def _parse_wxh(token: str, value: str) -> Size:
    """One ``WxH`` item of a ``sizes`` string; the error names the presets and the format."""
    match = re.fullmatch(r'\s*(\d+)\s*[xX]\s*(\d+)\s*', token)
    if match is None:
        raise ValueError(f'sizes must be a preset ({", ".join(SIZE_PRESETS)}) or a comma list '
                         f'WxH,WxH,... such as 160x120,120x160; got {token.strip()!r} in {value!r}')
    return int(match[1]), int(match[2])


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
                    seed: Any, sizes: Any = None) -> Dict[str, Any]:
    """Validate one request without writing, so a CLI can check several before any write.

    ``task`` is ``'cls'``, ``'coco'`` or ``'ade'``; ``sizes`` (see :func:`check_sizes`) is for
    ``'coco'`` and ``'ade'`` only, classification images are square. Returns the normalised
    arguments.
    """
    if task not in OWNED:
        raise ValueError(f'task must be one of {sorted(OWNED)}, got {task!r}')
    if task == 'cls' and sizes is not None:
        raise ValueError('sizes is for the COCO and ADE20K layouts; classification images are '
                         'square (image_size)')
    train_name = 'num_train_per_class' if task == 'cls' else 'num_train'
    val_name = 'num_val_per_class' if task == 'cls' else 'num_val'
    return dict(num_train=_check_count(train_name, num_train),
                num_val=_check_count(val_name, num_val), image_size=_check_size(image_size),
                seed=_check_seed(seed), sizes=check_sizes(sizes),
                root=_check_root(root, OWNED[task]))
