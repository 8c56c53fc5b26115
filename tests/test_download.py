"""Weights by URL (iformer_mm.zoo.download, the mmengine URL loader), on a loopback HTTP server.

Everything is served from 127.0.0.1; the cache is an empty TORCH_HOME per test. Checked: one
download into ``torch.hub.get_dir()/checkpoints`` and none after; local paths unchanged; a
cut-off transfer, an HTML page and a 404 refused with one line naming the URL and the cache
path, leaving nothing in the cache; the final name never exists before the file is complete;
the safe loader, ``init_cfg`` and mmengine's ``load_checkpoint`` all take URLs.
"""
import os
import threading
import time

import pytest
import torch
import torch.hub

from iformer_mm.checkpoint import CheckpointError, safe_load
from iformer_mm.models.backbones.iformer import IFormer
from iformer_mm.models.backbones.iformer_keys import ours_to_official
from iformer_mm.checkpoint.download import DownloadError, cache_dir, resolve_checkpoint

from .helpers import closed_port_url, release_file


@pytest.fixture(scope='module')
def t_release(tmp_path_factory):
    """(our backbone, bytes of a release-format iFormer-T classifier file)."""
    model, path = release_file(tmp_path_factory.mktemp('release'), seed=0)
    return model, path.read_bytes()


def _cache_entries(torch_home):
    folder = torch_home / 'hub' / 'checkpoints'
    return sorted(os.listdir(folder)) if folder.exists() else []


def test_url_is_downloaded_once_into_the_torch_hub_cache(loopback, torch_home, t_release):
    _, data = t_release
    url = loopback.add('iFormer_t.pth', data)
    assert cache_dir() == os.path.join(torch.hub.get_dir(), 'checkpoints')
    assert cache_dir() == str(torch_home / 'hub' / 'checkpoints')  # honours TORCH_HOME
    path = resolve_checkpoint(url)
    assert path == str(torch_home / 'hub' / 'checkpoints' / 'iFormer_t.pth')
    assert open(path, 'rb').read() == data and os.stat(path).st_mode & 0o044  # readable by others
    assert resolve_checkpoint(url) == path and loopback.requests['iFormer_t.pth'] == 1
    assert _cache_entries(torch_home) == ['iFormer_t.pth']  # no temporary leftovers
    local = str(torch_home / 'somewhere' / 'x.pth')
    assert resolve_checkpoint(local) == local  # local paths unchanged (not even checked)


def test_progress_bar_only_when_asked(loopback, torch_home, t_release, capsys):
    url = loopback.add('iFormer_t.pth', t_release[1])
    resolve_checkpoint(url)  # stderr is not a terminal under pytest: no bar
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and url in err and '\r' not in err
    resolve_checkpoint(url, folder=str(torch_home / 'other'), progress=True)
    err = capsys.readouterr().err
    assert '\r' in err and '100%' in err


@pytest.mark.parametrize('case', ['truncated', 'html', 'missing', 'offline'])
def test_bad_downloads_are_refused_and_leave_nothing(loopback, torch_home, t_release, case):
    data = t_release[1]
    if case == 'truncated':
        url = loopback.add('iFormer_t.pth', data, truncate_at=len(data) // 2)
        expected = f'stopped after {len(data) // 2} of {len(data)} bytes'
    elif case == 'html':
        url = loopback.add('iFormer_t.pth', b'<!DOCTYPE html><html><body>Rate limit</body></html>',
                           content_type='text/html')
        expected = 'HTML'
    elif case == 'missing':
        url = loopback.url('iFormer_t.pth')
        expected = 'HTTP 404'
    else:
        url = closed_port_url('iFormer_t.pth')
        expected = 'refused'
    dst = str(torch_home / 'hub' / 'checkpoints' / 'iFormer_t.pth')
    with pytest.raises(DownloadError) as err:
        safe_load(url)
    message = str(err.value)
    assert isinstance(err.value, CheckpointError)  # every CLI reports it as one line
    assert expected in message and url in message and '\n' not in message, message
    if case != 'truncated':
        assert f'tried to cache it at {dst}' in message and 'by hand' in message, message
    assert _cache_entries(torch_home) == []
    if case in ('truncated', 'html'):
        loopback.add('iFormer_t.pth', data)  # the server recovers: the next try works
        assert safe_load(url)['epoch'] == 299 and _cache_entries(torch_home) == ['iFormer_t.pth']


def test_a_stalled_download_never_shows_a_final_file(loopback, torch_home, t_release):
    """Killed at any moment before the end, a download leaves no file under the cached name."""
    data = t_release[1]
    url = loopback.add('iFormer_t.pth', data, pause_at=len(data) // 3)
    done = {}
    worker = threading.Thread(target=lambda: done.setdefault('path', resolve_checkpoint(url)))
    worker.start()
    folder = torch_home / 'hub' / 'checkpoints'
    deadline = time.time() + 60
    while not (folder.exists() and os.listdir(folder)) and time.time() < deadline:
        time.sleep(0.01)
    entries = os.listdir(folder)
    assert entries and all(e.startswith('.iFormer_t.pth.') for e in entries), entries
    assert not (folder / 'iFormer_t.pth').exists()
    loopback.resume.set()
    worker.join(60)
    assert done['path'] == str(folder / 'iFormer_t.pth') and os.listdir(folder) == ['iFormer_t.pth']


def test_loaders_take_urls(loopback, torch_home, t_release):
    """safe_load (release allowlist), init_cfg (strict), mmengine's load_checkpoint (converted)."""
    from mmengine.runner import load_checkpoint
    from mmpretrain.registry import MODELS
    model, data = t_release
    url = loopback.add('iFormer_t.pth', data)

    backbone = IFormer('t', init_cfg=dict(type='Pretrained', checkpoint=url))
    backbone.init_weights()
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, backbone.state_dict()[k]), k

    classifier = MODELS.build(dict(
        type='ImageClassifier', backbone=dict(type='IFormer', arch='t'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='IFormerClsHead', num_classes=1000, in_channels=256)))
    ckpt = load_checkpoint(classifier, url, map_location='cpu', strict=True)
    assert ckpt['meta']['format'] == 'published iFormer'
    for k, v in model.state_dict().items():
        assert torch.equal(v, classifier.state_dict()[k]), k
    assert loopback.requests['iFormer_t.pth'] == 1  # three loaders, one download


def test_wrong_file_from_a_url_is_named(loopback, torch_home):
    """A URL of another variant's weights: the strict loader names the variant."""
    torch.manual_seed(0)
    other = IFormer('s')
    path = torch_home / 'other.pth'
    torch.save({'model': ours_to_official(other.state_dict())}, path)
    url = loopback.add('iFormer_s.pth', path.read_bytes())
    with pytest.raises(CheckpointError, match='holds an iFormer-S backbone'):
        IFormer('t', init_cfg=dict(type='Pretrained', checkpoint=url)).init_weights()
