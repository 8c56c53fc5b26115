"""Writing a dataset: fixed-setting image files, JSON, and the staged swap into ``root``.

Why staging: a generator builds everything in a hidden folder inside ``root`` and moves its entries
into place only at the end, so an error leaves no half-written dataset. The marker file
``MARKER_NAME`` records the summary (paths relative to ``root``) and is what later runs check
before replacing anything, so real data without it is never deleted.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Sequence

import numpy as np
from PIL import Image

from iformer_mm.utils.fileio import atomic_write_text

MARKER_NAME = '.synthetic_shapes.json'


def save_image(img: np.ndarray, path: Path) -> None:
    """PNG for lossless label maps / classification, JPEG (fixed settings) for photos.

    Fixed encoder settings keep the bytes identical for the same seed. Images are only written
    inside the staging folder, which is moved into place as a whole, so a plain save suffices.
    """
    pil = Image.fromarray(img)
    if path.suffix == '.jpg':
        pil.save(path, format='JPEG', quality=92, optimize=False, progressive=False)
    else:
        pil.save(path, format='PNG', optimize=False, compress_level=6)


def write_json(path: Path, obj: Any) -> None:
    """Compact ASCII JSON plus a newline, written atomically (parents created)."""
    atomic_write_text(path, json.dumps(obj, separators=(',', ':'), ensure_ascii=True) + '\n',
                      make_dirs=True)


def publish(root: Path, owned: Sequence[str],
            build: Callable[[Path], Dict[str, Any]]) -> Dict[str, Any]:
    """Build into a staging dir inside ``root`` then swap the owned entries into place.

    ``build`` writes under the staging dir it is given and returns a summary whose ``Path``
    values point into it. On any error the staging dir (and ``root`` itself, if this call
    created it and it is still empty) is removed, so nothing half-written is left behind.
    Returns the summary with its paths moved to ``root``.
    """
    created_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix='.staging-', dir=root))
    try:
        summary = build(staging)
        for name in owned:
            target = root / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(staging / name, target)
        write_json(root / MARKER_NAME, _relative_summary(summary, staging))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created_root and root.is_dir() and not any(root.iterdir()):
            root.rmdir()
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return _absolute_summary(summary, staging, root)


def _relative_summary(summary: Dict[str, Any], staging: Path) -> Dict[str, Any]:
    """The marker stores paths relative to root, so it is identical across locations."""
    return _map_paths(summary, lambda p: os.path.relpath(p, staging))


def _absolute_summary(summary: Dict[str, Any], staging: Path, root: Path) -> Dict[str, Any]:
    """The returned summary points at the published files under ``root`` (as strings)."""
    return _map_paths(summary, lambda p: str(root / os.path.relpath(p, staging)))


def _map_paths(obj: Any, fn: Callable[[Path], str]) -> Any:
    """Apply ``fn`` to every ``Path`` value in nested dicts / lists."""
    if isinstance(obj, dict):
        return {k: (fn(v) if isinstance(v, Path) else _map_paths(v, fn)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_map_paths(v, fn) for v in obj]
    return obj
