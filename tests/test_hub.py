"""Checkpoints by Hugging Face Hub name (``hf-hub:ORG/REPO[@REVISION]``), through huggingface_hub.

huggingface_hub reads HF_ENDPOINT, HF_HUB_CACHE and HF_HUB_OFFLINE into
``huggingface_hub.constants`` when it is imported, and its functions read those attributes when
they run; the tests set them there (and in the environment), so nothing leaves 127.0.0.1:

* a Hub cache laid out as huggingface_hub lays it (``blobs/``, ``snapshots/COMMIT/``,
  ``refs/main``), offline: the name resolves there and loads, with timm's numbers, through
  ``init_cfg``, mmpretrain's ``get_model`` and deploy's classifier loader;
* a name missing from the cache offline: one line naming the repository and the cache folder,
  exit 2 from the tools with nothing written; a malformed name is named;
* a download through huggingface_hub from a loopback server answering as the Hub does (HEAD
  with ``X-Repo-Commit`` / ``ETag``, then GET) into the Hub cache, once;
* the zoo's Hub names are timm's pretrained tags of the same release files.
"""
import hashlib
import importlib.util
import os

import pytest
import torch
from timm.models import save_for_hf

from iformer_mm.checkpoint import DownloadError, resolve_checkpoint, safe_load
from iformer_mm.models.backbones.iformer import IFormer
from iformer_mm.models.plain_classifier import load_classifier
from iformer_mm.utils.scope import toolbox_scope
from iformer_mm.zoo.releases import CLASSIFIERS, HUB_NAMES, RELEASE_FILES, release_url

from .helpers import REPO, load_cls_config, random_timm_iformer

TOL = 1e-5
NAME = 'hf-hub:timm/iformer_t.in1k'


def _tool_main():
    spec = importlib.util.spec_from_file_location('convert_tool', REPO / 'tools' / 'convert.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


class Hub:
    """huggingface_hub pointed at a temporary cache, offline or at a loopback endpoint."""

    def __init__(self, cache, monkeypatch):
        from huggingface_hub import constants
        self.cache, self._patch, self._constants = cache, monkeypatch, constants
        monkeypatch.setattr(constants, 'HF_HUB_CACHE', str(cache))
        monkeypatch.setenv('HF_HUB_CACHE', str(cache))
        self.offline()

    def offline(self):
        self._patch.setattr(self._constants, 'HF_HUB_OFFLINE', True)
        self._patch.setenv('HF_HUB_OFFLINE', '1')

    def online(self, endpoint: str):
        self._patch.setattr(self._constants, 'HF_HUB_OFFLINE', False)
        self._patch.delenv('HF_HUB_OFFLINE', raising=False)
        self._patch.setattr(self._constants, 'ENDPOINT', endpoint)
        self._patch.setattr(self._constants, 'HUGGINGFACE_CO_URL_TEMPLATE',
                            endpoint + '/{repo_id}/resolve/{revision}/{filename}')
        self._patch.setenv('HF_ENDPOINT', endpoint)

    def snapshot(self, repo: str, commit: str) -> str:
        return str(self.cache / f'models--{repo.replace("/", "--")}' / 'snapshots' / commit)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    return Hub(tmp_path / 'hf_cache', monkeypatch)


def lay_out_cache(hub: Hub, repo: str, name: str, data: bytes) -> str:
    """Put ``data`` into the cache as huggingface_hub does; return the commit."""
    commit = hashlib.sha1(data).hexdigest()
    folder = hub.cache / f'models--{repo.replace("/", "--")}'
    blob = folder / 'blobs' / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)
    link = folder / 'snapshots' / commit / name
    link.parent.mkdir(parents=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    (folder / 'refs').mkdir()
    (folder / 'refs' / 'main').write_text(commit)
    return commit


def _hub_file(tmp_path, seed):
    """timm's iFormer-T and the bytes of its ``model.safetensors`` as timm saves it."""
    ref = random_timm_iformer('t', seed=seed)
    save_for_hf(ref, tmp_path / 'saved', safe_serialization=True)
    return ref, (tmp_path / 'saved' / 'model.safetensors').read_bytes()


def _classifier(pretrained):
    import mmpretrain
    with toolbox_scope('mmpretrain'):
        return mmpretrain.get_model(load_cls_config('t'), pretrained=pretrained).eval()


def _image():
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))


def test_hub_name_loads_offline_from_the_hub_cache(hub, tmp_path):
    ref, data = _hub_file(tmp_path, seed=11)
    commit = lay_out_cache(hub, 'timm/iformer_t.in1k', 'model.safetensors', data)
    assert resolve_checkpoint(NAME) == os.path.join(hub.snapshot('timm/iformer_t.in1k', commit),
                                                    'model.safetensors')
    x = _image()
    with torch.no_grad():
        expected = ref(x)
        backbone = IFormer('t', out_indices=(0, 1, 2, 3),
                           init_cfg=dict(type='Pretrained', checkpoint=NAME))
        backbone.init_weights()
        for ours, theirs in zip(backbone.eval()(x), ref.forward_intermediates(x, intermediates_only=True)):
            assert (ours - theirs).abs().max() <= TOL
        assert (_classifier(NAME + '@main')(x, mode='tensor') - expected).abs().max() <= TOL
        assert (load_classifier('t', NAME).eval()(x) - expected).abs().max() <= TOL


def test_a_name_missing_from_the_cache_offline_is_one_line(hub, tmp_path, capsys):
    name = 'hf-hub:timm/iformer_s.in1k'
    with pytest.raises(DownloadError) as err:
        safe_load(name)
    message = str(err.value)
    assert '\n' not in message, message
    for needle in ('timm/iformer_s.in1k', str(hub.cache), 'HF_HUB_OFFLINE', 'model.safetensors'):
        assert needle in message, message
    convert = _tool_main()
    out = tmp_path / 'out'
    out.mkdir()
    assert convert([name, str(out / 's.pth'), '--to', 'mm']) == 2
    assert capsys.readouterr().err == f'convert.py: error: {message}\n'
    assert convert(['hf-hub:iformer_s', str(out / 's.pth'), '--to', 'mm']) == 2
    err = capsys.readouterr().err
    assert err.startswith("convert.py: error: 'hf-hub:iformer_s' is not a Hub name; expected "
                          'hf-hub:ORG/REPO') and err.count('\n') == 1, err
    assert list(out.iterdir()) == []


def test_hub_name_downloads_through_huggingface_hub(hub, loopback, tmp_path):
    ref, data = _hub_file(tmp_path, seed=12)
    commit = hashlib.sha1(data).hexdigest()
    route = 'timm/iformer_t.in1k/resolve/main/model.safetensors'
    loopback.add(route, data, headers={'X-Repo-Commit': commit,
                                       'ETag': f'"{hashlib.sha256(data).hexdigest()}"'})
    hub.online(loopback.url('').rstrip('/'))
    x = _image()
    with torch.no_grad():
        assert (_classifier(NAME)(x, mode='tensor') - ref(x)).abs().max() <= TOL
        cached = os.path.join(hub.snapshot('timm/iformer_t.in1k', commit), 'model.safetensors')
        assert open(cached, 'rb').read() == data and loopback.requests[route] == 1
        backbone = IFormer('t', init_cfg=dict(type='Pretrained', checkpoint=NAME))
        backbone.init_weights()  # the Hub is asked for the commit only: no second download
        assert loopback.requests[route] == 1
        assert torch.equal(backbone.stages[3][0].conv.conv.weight,
                           ref.stages[3].blocks[0].cpe.module.c.weight)


def test_the_zoo_hub_names_are_timms_tags_of_the_release_files():
    import timm
    files = [f for variant in RELEASE_FILES.values() for f in variant]
    assert sorted(HUB_NAMES) == sorted(files)
    for file_name, name in HUB_NAMES.items():
        tag = name[len('hf-hub:timm/'):]
        cfg = timm.models.get_pretrained_cfg(tag)
        assert cfg.hf_hub_id == f'timm/{tag}' and cfg.url == release_url(file_name), tag
    assert {m.hub_name for m in CLASSIFIERS} == set(HUB_NAMES.values())
