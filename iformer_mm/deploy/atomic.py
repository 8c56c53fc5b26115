"""Atomic artifacts: write into a hidden temp path next to the target, rename on success.

Why: an interrupted or failed export must never leave a half-written ``.onnx`` / ``.mlpackage``
(a directory) where a user or a script would pick it up. Folders we had to create for the
output are removed again when the export fails, so a failure leaves nothing behind.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import Iterator, List


class OutputError(ValueError):
    """The output location cannot be used; the message names it and why."""


def prepare_out_dir(out_dir: str) -> List[str]:
    """Create ``out_dir`` if needed and check that it is writable.

    Returns the folders that were created (so a failed export can remove them). Fails before
    any work is done, with the offending path in the message.
    """
    out_dir = os.path.abspath(os.fspath(out_dir))
    missing = []
    probe = out_dir
    while not os.path.exists(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if os.path.exists(probe) and not os.path.isdir(probe):
        raise OutputError(f'--out-dir {out_dir} cannot be used: {probe} is a file, not a folder')
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        remove_created(missing)
        raise OutputError(f'--out-dir {out_dir} cannot be created ({e.strerror or e})') from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        remove_created(missing)
        raise OutputError(f'--out-dir {out_dir} is not writable')
    return missing


def remove_created(folders: List[str]) -> None:
    """Remove folders made by :func:`prepare_out_dir` (deepest first), if still empty."""
    for folder in folders:  # deepest first, as prepare_out_dir lists them
        with contextlib.suppress(OSError):
            os.rmdir(folder)


@contextlib.contextmanager
def atomic_path(final_path: str) -> Iterator[str]:
    """Yield a temp path (file or folder) in the target's folder; rename it to ``final_path``
    when the block succeeds (replacing an existing artifact), delete it when it fails."""
    final_path = os.path.abspath(os.fspath(final_path))
    folder, name = os.path.split(final_path)
    tmp_dir = tempfile.mkdtemp(prefix=f'.tmp-{name}-', dir=folder)
    tmp = os.path.join(tmp_dir, name)
    try:
        yield tmp
        if not os.path.exists(tmp):
            raise OutputError(f'the exporter did not write {tmp}')
        _replace(tmp, final_path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _replace(src: str, dst: str) -> None:
    """os.replace that also works for folders (an existing .mlpackage is a folder)."""
    if os.path.isdir(dst) and not os.path.islink(dst):
        backup = tempfile.mkdtemp(prefix='.old-', dir=os.path.dirname(dst))
        os.replace(dst, os.path.join(backup, 'old'))
        try:
            os.replace(src, dst)
        except BaseException:
            os.replace(os.path.join(backup, 'old'), dst)
            raise
        finally:
            shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(src, dst)


def atomic_write_text(path: str, text: str) -> None:
    """Write a small text file (JSON, README) atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as f:
            f.write(text)
