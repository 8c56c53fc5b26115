"""The one atomic writer: whole files or nothing, and the mode a plain ``open()`` would give.

The mode bug this guards against: writers built on ``tempfile.mkstemp`` left every checkpoint at
0600 (unreadable for the other users of a shared machine) where mmengine's own writer gives 0644.
"""
import os
import secrets
import signal
import stat
import subprocess
import sys
from contextlib import contextmanager

import pytest
import torch

from iformer_mm.checkpoint import atomic_torch_save
from iformer_mm.engine.atomic_backend import AtomicLocalBackend
from iformer_mm.utils import fileio
from iformer_mm.utils.fileio import (atomic_open, atomic_path, atomic_write_bytes,
                                     atomic_write_text, prepare_out_dir)


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _plain_open_mode(folder, mask: int) -> int:
    with umask(mask):
        with open(folder / 'plain', 'wb') as f:
            f.write(b'x')
    return _mode(folder / 'plain')


WRITERS = {
    'atomic_write_bytes': lambda p: atomic_write_bytes(p, b'data'),
    'atomic_write_text': lambda p: atomic_write_text(p, 'data'),
    'atomic_torch_save': lambda p: atomic_torch_save({'w': torch.ones(2)}, p),
    'checkpoint backend (tools/train.py)': lambda p: AtomicLocalBackend().put(b'data', p),
    'atomic_path (exporters)': lambda p: _via_atomic_path(p),
}


def _via_atomic_path(path):
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as f:
            f.write(b'data')


@pytest.mark.parametrize('mask', [0o022, 0o077, 0o002])
@pytest.mark.parametrize('writer', list(WRITERS))
def test_written_files_get_the_plain_open_mode(tmp_path, writer, mask):
    expected = _plain_open_mode(tmp_path, mask)
    assert expected == 0o666 & ~mask
    target = tmp_path / 'out.bin'
    with umask(mask):
        WRITERS[writer](target)
    assert _mode(target) == expected, f'{writer}: {oct(_mode(target))} != {oct(expected)}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['out.bin', 'plain']


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / 'ckpt.pth'
    target.write_bytes(b'old')
    with pytest.raises(RuntimeError, match='killed'):
        with atomic_open(target, 'wb') as f:
            f.write(b'half of the new')
            raise RuntimeError('killed while writing')
    assert target.read_bytes() == b'old'
    assert [p.name for p in tmp_path.iterdir()] == ['ckpt.pth']


def test_text_mode_and_bad_mode(tmp_path):
    with atomic_open(tmp_path / 'a.txt', 'w') as f:
        f.write('héllo\n')
    assert (tmp_path / 'a.txt').read_text(encoding='utf-8') == 'héllo\n'
    with pytest.raises(ValueError, match="mode must be 'wb' or 'w', got 'a'"):
        with atomic_open(tmp_path / 'b.txt', 'a'):
            pass
    assert not (tmp_path / 'b.txt').exists()


def test_atomic_path_replaces_a_folder_artifact(tmp_path):
    target = tmp_path / 'model.mlpackage'
    target.mkdir()
    (target / 'old').write_text('old')
    with atomic_path(target) as tmp:
        os.mkdir(tmp)
        with open(os.path.join(tmp, 'new'), 'w') as f:
            f.write('new')
    assert sorted(os.listdir(target)) == ['new']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['model.mlpackage']


def test_make_dirs(tmp_path):
    atomic_write_text(tmp_path / 'a' / 'b' / 'c.json', '{}', make_dirs=True)
    assert (tmp_path / 'a' / 'b' / 'c.json').read_text() == '{}'
    with pytest.raises(FileNotFoundError):
        atomic_write_text(tmp_path / 'missing' / 'c.json', '{}')


# ----------------------------------------------------------------------------- killed writers
_KILLED_WRITER = '''
import importlib.util, os, signal, sys
spec = importlib.util.spec_from_file_location('fileio', sys.argv[1])
fileio = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fileio)
with fileio.atomic_path(sys.argv[2]) as tmp:
    with open(tmp, 'wb') as f:
        f.write(b'half an export')
    os.kill(os.getpid(), signal.SIGKILL)
'''


def _dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    proc = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def _temp_name(name: str, pid: int, host: str = fileio._HOST) -> str:
    return f'.{name}.{host}-{pid}.{secrets.token_hex(4)}.tmp'


def test_a_killed_atomic_path_leaves_a_temp_that_the_next_write_removes(tmp_path):
    target = tmp_path / 'model.onnx'
    proc = subprocess.run([sys.executable, '-c', _KILLED_WRITER, fileio.__file__, str(target)])
    assert proc.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith('.model.onnx.') and left[0].endswith('.tmp')
    assert (tmp_path / left[0] / 'model.onnx').read_bytes() == b'half an export'
    dead = _dead_pid()
    kept = [_temp_name('model.onnx', os.getppid()),  # a live process's write in progress
            _temp_name('model.onnx', dead, host='0' * 6),  # another host's: cannot be checked
            _temp_name('other.onnx', dead),  # another final name
            '.model.onnx.1a2b3c4d.tmp']  # the old naming: owner unknown
    stale_file = _temp_name('model.onnx', dead)  # an atomic_open temporary of a killed process
    for name in kept + [stale_file]:
        (tmp_path / name).write_bytes(b'x')
    _via_atomic_path(target)
    assert target.read_bytes() == b'data'
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ['model.onnx'])


def test_atomic_open_and_prepare_out_dir_remove_dead_processes_temps(tmp_path):
    dead = _dead_pid()
    live = _temp_name('a.json', os.getppid())
    for name in (_temp_name('a.json', dead), live):
        (tmp_path / name).write_bytes(b'x')
    atomic_write_text(tmp_path / 'a.json', '{}')
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(['a.json', live])
    out = tmp_path / 'out'
    out.mkdir()
    for name in ('x.onnx', 'y.pte'):
        (out / _temp_name(name, dead)).mkdir()
    (out / live).write_bytes(b'x')
    assert prepare_out_dir(out) == []
    assert [p.name for p in out.iterdir()] == [live]
