"""Fixtures for the whole suite (helpers that tests import live in helpers.py)."""
import os
import sys
from pathlib import Path

import pytest

# before torch loads OpenMP: spinning threads starve each other on 2 shared cores
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import torch  # noqa: E402

_REPO = str(Path(__file__).resolve().parents[1])
if _REPO not in sys.path:  # the checkout under test, also when not pip-installed
    sys.path.insert(0, _REPO)

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _no_leftover_default_scope():
    """mmengine's DefaultScope is process-wide: a test that built an mmseg runner would make the
    next test build mmpretrain heads from mmseg's registry. Each test starts without one."""
    from mmengine.registry import DefaultScope
    saved = DefaultScope._instance_dict.copy()
    DefaultScope._instance_dict.clear()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)


@pytest.fixture
def loopback():
    """A started :class:`tests.helpers.LoopbackServer` (127.0.0.1 only)."""
    from .helpers import LoopbackServer
    with LoopbackServer() as server:
        yield server


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty TORCH_HOME for this test (and the tools it starts): the download cache is
    ``torch_home / 'hub' / 'checkpoints'``."""
    home = tmp_path / 'torch_home'
    home.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(home))
    return home
