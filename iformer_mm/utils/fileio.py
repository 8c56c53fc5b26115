"""The one atomic writer: every file or folder iformer-mm produces appears whole or not at all.

Why: checkpoints, converted weights, exported models, datasets and reports are read by people and
scripts after long runs; a job killed mid-write must not leave a truncated file under the final
name (mmengine's own ``LocalBackend.put`` writes in place). So every write goes to a hidden
temporary sibling, is flushed and fsynced, and is renamed into place (``os.replace`` is atomic on
POSIX). Temporary files are created with mode ``0o666`` minus the umask, i.e. the mode a plain
``open(path, 'wb')`` gives (``tempfile.mkstemp`` would leave ``0o600``: unreadable for the other
users of a shared machine). Standard library only, so every part of the package can use it.

A process killed outright (SIGKILL, out of memory) cannot remove its temporary. So temporaries are
named ``.{name}.{host}-{pid}.{token}.tmp`` (``host``: a short hash of the host name) and the next
write of the same ``name`` in that folder removes the ones whose process is gone
(:func:`remove_stale_temps`); :func:`prepare_out_dir` does it for every name in the output folder.
Only this host's entries of dead processes are removed: never a live process's, nor another
host's on a shared filesystem (its processes cannot be checked from here).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import socket
import tempfile
from typing import IO, Iterator, List, Optional, Tuple, Union

PathLike = Union[str, 'os.PathLike[str]']

__all__ = ['OutputError', 'atomic_open', 'atomic_write_bytes', 'atomic_write_text',
           'atomic_path', 'out_dir_problem', 'prepare_out_dir', 'remove_created',
           'remove_stale_temps']


class OutputError(ValueError):
    """The output location cannot be used; the message names it and why."""


_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
#: ``.{name}.{host}-{pid}.{token}.tmp``: a temporary of :func:`atomic_open` / :func:`atomic_path`
_TEMP_RE = re.compile(r'\.(?P<name>.+)\.(?P<host>[0-9a-f]{6})-(?P<pid>[0-9]+)\.[0-9a-z_]+\.tmp')


def _temp_prefix(name: str) -> str:
    """Start of the temporaries' names for ``name``, naming this host and process."""
    return f'.{name}.{_HOST}-{os.getpid()}.'


def _temp_sibling(path: str) -> str:
    folder, name = os.path.split(path)
    return os.path.join(folder, f'{_temp_prefix(name)}{secrets.token_hex(4)}.tmp')


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host may still run (True when it cannot be told)."""
    if pid <= 0 or pid == os.getpid() or os.name != 'posix':
        return True  # kill(0, ...) means the process group; on Windows os.kill terminates
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: another user's live process
        return True
    return True


def remove_stale_temps(folder: PathLike, name: Optional[str] = None) -> List[str]:
    """Remove the temporaries in ``folder`` left by killed processes of this host.

    ``name``: only those of that final name (default: of every name). Best effort: an entry that
    cannot be removed stays. Returns the removed paths.
    """
    folder = os.fspath(folder)
    removed = []
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            match = _TEMP_RE.fullmatch(entry.name)
            if (match is None or match['host'] != _HOST or name not in (None, match['name'])
                    or _pid_alive(int(match['pid']))):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            if not os.path.lexists(entry.path):
                removed.append(entry.path)
    return removed


def _fsync_dir(folder: str) -> None:
    """Make the rename itself durable (best effort: not every filesystem allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = 'wb', encoding: str = None,
                make_dirs: bool = False) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; rename it to ``path`` on success.

    ``mode`` is ``'wb'`` or ``'w'`` (text, ``encoding`` default utf-8). On an exception the
    temporary file is removed and ``path`` is untouched. ``make_dirs`` creates missing parents.
    """
    if mode not in ('wb', 'w'):
        raise ValueError(f"atomic_open mode must be 'wb' or 'w', got {mode!r}")
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    if make_dirs:
        os.makedirs(folder, exist_ok=True)
    remove_stale_temps(folder, os.path.basename(path))
    tmp = _temp_sibling(path)
    # O_EXCL: never reuse someone else's file; 0o666 & ~umask: the mode open() would give
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, mode, **({} if mode == 'wb' else
                                    {'encoding': encoding or 'utf-8', 'newline': '\n'})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


def atomic_write_bytes(path: PathLike, data: bytes, make_dirs: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path, 'wb', make_dirs=make_dirs) as f:
        f.write(data)


def atomic_write_text(path: PathLike, text: str, make_dirs: bool = False) -> None:
    """Write ``text`` (utf-8, ``\\n`` line ends) to ``path`` atomically."""
    with atomic_open(path, 'w', make_dirs=make_dirs) as f:
        f.write(text)


@contextlib.contextmanager
def atomic_path(path: PathLike, make_dirs: bool = False) -> Iterator[str]:
    """Yield a temporary path for writers that take a path (exporters, image savers).

    The writer may create a file or a folder there (a Core ML ``.mlpackage`` is a folder). When
    the block succeeds it is fsynced (files) and renamed to ``path``, replacing an existing
    artifact; when it fails it is deleted and ``path`` is untouched. The writer creates the entry
    itself, so it gets the usual umask-derived mode. ``make_dirs`` creates missing parents.
    """
    path = os.path.abspath(os.fspath(path))
    folder, name = os.path.split(path)
    if make_dirs:
        os.makedirs(folder, exist_ok=True)
    remove_stale_temps(folder, name)
    tmp_dir = tempfile.mkdtemp(prefix=_temp_prefix(name), suffix='.tmp', dir=folder)
    tmp = os.path.join(tmp_dir, name)
    try:
        yield tmp
        if not os.path.lexists(tmp):
            raise OutputError(f'the writer did not create {tmp}')
        if os.path.isfile(tmp):
            with open(tmp, 'rb') as f:
                os.fsync(f.fileno())
        _replace(tmp, path)
        _fsync_dir(folder)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _replace(src: str, dst: str) -> None:
    """``os.replace`` that also replaces an existing folder (kept until the new one is in)."""
    if not (os.path.isdir(dst) and not os.path.islink(dst)):
        os.replace(src, dst)
        return
    backup = tempfile.mkdtemp(prefix='.old-', dir=os.path.dirname(dst))
    os.replace(dst, os.path.join(backup, 'old'))
    try:
        os.replace(src, dst)
    except BaseException:
        os.replace(os.path.join(backup, 'old'), dst)
        raise
    finally:
        shutil.rmtree(backup, ignore_errors=True)


def _nearest_existing(path: str) -> Tuple[str, List[str]]:
    """The deepest existing ancestor of ``path`` (or ``path``) and the missing folders below it,
    deepest first."""
    missing = []
    probe = path
    while not os.path.exists(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    return probe, missing


def _can_create_in(folder: str) -> bool:
    """Whether a file can really be created in ``folder`` (a probe file, removed again).

    Not ``os.access``: for root it says yes to every folder, also where nothing can be written
    (``/proc``, read-only mounts)."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def out_dir_problem(out_dir: PathLike, flag: str = '--out-dir') -> Optional[str]:
    """Why ``out_dir`` could not be created or written, or None; nothing is created."""
    path = os.path.abspath(os.fspath(out_dir))
    probe, _ = _nearest_existing(path)
    if os.path.exists(probe) and not os.path.isdir(probe):
        return f'{flag} {path} cannot be used: {probe} is a file, not a folder'
    if not _can_create_in(probe):
        return (f'{flag} {path} is not writable' if probe == path else
                f'{flag} {path} cannot be created: {probe} is not writable')
    return None


def prepare_out_dir(out_dir: PathLike, flag: str = '--out-dir') -> List[str]:
    """Create ``out_dir`` if needed and check that it is writable, before any work is done.

    Returns the folders it created, deepest first, so a failed run can remove them again with
    :func:`remove_created`. Errors name ``flag`` and the offending path. Temporaries that killed
    runs left in ``out_dir`` are removed (:func:`remove_stale_temps`).
    """
    out_dir = os.path.abspath(os.fspath(out_dir))
    problem = out_dir_problem(out_dir, flag)
    if problem:
        raise OutputError(problem)
    _, missing = _nearest_existing(out_dir)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        remove_created(missing)
        raise OutputError(f'{flag} {out_dir} cannot be created ({e.strerror or e})') from None
    if not _can_create_in(out_dir):
        remove_created(missing)
        raise OutputError(f'{flag} {out_dir} is not writable')
    remove_stale_temps(out_dir)
    return missing


def remove_created(folders: List[str]) -> None:
    """Remove folders made by :func:`prepare_out_dir` (deepest first), if still empty."""
    for folder in folders:
        with contextlib.suppress(OSError):
            os.rmdir(folder)
