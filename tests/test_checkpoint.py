"""Published checkpoints: key conversion, format detection, strict loading, safety."""
import argparse
import os
import pickle

import numpy as np
import pytest
import torch

from iformer_mm.checkpoint import CheckpointError, atomic_safetensors_save, atomic_torch_save, safe_load
from iformer_mm.models.backbones.iformer_keys import guess_variant, official_to_ours_key, ours_to_official
from iformer_mm.models.backbones.iformer import IFormer

from .helpers import randomize_bn

# spec key counts include the 7 head keys (BN1d: 5, Linear: 2)
BACKBONE_KEYS = {'t': 451 - 7, 's': 505 - 7, 'm': 547 - 7, 'l': 697 - 7, 'l2': 973 - 7, 'h': 1442 - 7}


def release_file(path, state_dict, arch='m'):
    """A file laid out like the published release files, numpy metadata included."""
    torch.save({'model': state_dict, 'optimizer': {'state': {}}, 'epoch': 299,
                'scaler': {'scale': np.float64(65536.0)},
                'args': argparse.Namespace(model=f'iFormer_{arch}', lr=np.float64(4e-3),
                                           input_size=224, drop_path=np.float32(0.1))}, path)
    return path


@pytest.mark.parametrize('arch', list(BACKBONE_KEYS))
def test_key_conversion_round_trip(arch):
    model = IFormer(arch)
    official = ours_to_official(model.state_dict())
    assert len(official) == BACKBONE_KEYS[arch]
    assert all(k.startswith(('downsample_layers.', 'stages.')) for k in official)
    assert {official_to_ours_key(k) for k in official} == set(model.state_dict())
    if arch == 'h':
        assert sum(k.endswith('channel_mixer.gamma') for k in official) == 67
        assert 'stages.2.13.block.channel_mixer.gamma' not in official  # 13 = ConvBlock in H
        assert 'stages.2.16.block.channel_mixer.gamma' in official  # 16 = FFN of group 1


def test_published_file_loads_through_init_cfg(tmp_path):
    torch.manual_seed(0)
    src = randomize_bn(IFormer('m')).eval()
    path = release_file(tmp_path / 'iFormer_m.pth', ours_to_official(src.state_dict()))
    model = IFormer('m', init_cfg=dict(type='Pretrained', checkpoint=str(path))).eval()
    model.init_weights()
    for k, v in src.state_dict().items():
        assert torch.equal(v, model.state_dict()[k]), k


def test_mm_formats_load(tmp_path):
    src = randomize_bn(IFormer('t'))
    sd = src.state_dict()
    layouts = {
        'mm_prefixed': {'state_dict': {**{f'backbone.{k}': v for k, v in sd.items()},
                                       'head.fc.weight': torch.zeros(2, 2)}},
        'mm_bare': {'state_dict': dict(sd)},
        'raw': dict(sd),
        'published_det': {'state_dict': {**{f'backbone.{k}': v for k, v in ours_to_official(sd).items()},
                                         'neck.lateral_convs.0.conv.weight': torch.zeros(1)},
                          'meta': {'epoch': 12}},
    }
    for name, obj in layouts.items():
        torch.save(obj, tmp_path / f'{name}.pth')
        model = IFormer('t', init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / f'{name}.pth')))
        model.init_weights()
        assert all(torch.equal(v, model.state_dict()[k]) for k, v in sd.items()), name


def test_published_names_load_via_plain_load_state_dict():
    """The pre-hook renames published keys under any prefix, e.g. a detector's 'backbone.'."""
    src = randomize_bn(IFormer('t'))
    wrapper = torch.nn.Module()
    wrapper.backbone = IFormer('t')
    official = {f'backbone.{k}': v for k, v in ours_to_official(src.state_dict()).items()}
    wrapper.load_state_dict(official, strict=True)
    assert torch.equal(wrapper.backbone.stages[2][7].attn.q.conv.weight, src.stages[2][7].attn.q.conv.weight)


def test_wrong_variant_is_named(tmp_path):
    path = release_file(tmp_path / 'iFormer_l.pth', ours_to_official(IFormer('l').state_dict()), 'l')
    assert guess_variant(IFormer('l').state_dict()) == 'l'
    model = IFormer('m', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(CheckpointError, match=r'holds an iFormer-L backbone .*model is iFormer-M'):
        model.init_weights()


def test_missing_keys_are_listed(tmp_path):
    sd = ours_to_official(IFormer('t').state_dict())
    del sd['stages.2.7.block.token_channel_mixer.m.q.c.weight']
    path = release_file(tmp_path / 'partial.pth', sd, 't')
    model = IFormer('t', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(CheckpointError, match=r'missing keys: stages\.2\.7\.attn\.q\.conv\.weight'):
        model.init_weights()


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


def test_malicious_pickle_is_refused_and_not_run(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'model': {'x': torch.zeros(1)}, 'payload': _Exploit(marker)}, path)
    with pytest.raises(CheckpointError, match=r'refusing to load .*evil\.pth.*(system|posix)'):
        safe_load(path)
    model = IFormer('t', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(CheckpointError, match='refusing to load'):
        model.init_weights()
    # torch.load's default stays safe after importing iformer_mm (our allowlist is narrow)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    assert not marker.exists()


@pytest.mark.parametrize('kind, message', [
    ('missing', 'checkpoint not found'),
    ('empty', 'empty'),
    ('text', 'not a PyTorch checkpoint'),
    ('truncated', 'truncated or not a PyTorch checkpoint'),
    ('folder', 'not a file'),
    ('list', 'holds a list'),
    ('safetensors_truncated', r'not a complete safetensors file \(it is truncated or damaged'),
    ('safetensors_header', 'safetensors header is damaged'),
])
def test_bad_files_get_clear_errors(tmp_path, kind, message):
    path = tmp_path / 'bad.pth'
    if kind == 'empty':
        path.write_bytes(b'')
    elif kind == 'text':
        path.write_text('not a checkpoint\n' * 10)
    elif kind == 'truncated':
        torch.save({'model': IFormer('t').state_dict()}, path)
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
    elif kind == 'folder':
        path.mkdir()
    elif kind == 'list':
        torch.save([torch.zeros(1)], path)
    elif kind.startswith('safetensors'):  # told by the content, whatever the name
        from safetensors.torch import save
        data = save({'stem.conv1.c.weight': torch.zeros(16, 3, 5, 5)})
        length = int.from_bytes(data[:8], 'little')
        path.write_bytes(data[:-10] if kind == 'safetensors_truncated' else
                         data[:8] + b'{' + b' ' * (length - 1) + data[8 + length:])
    with pytest.raises(CheckpointError, match=message):
        safe_load(path)


def test_safetensors_files_round_trip_without_pickle(tmp_path):
    state = {'stem.conv1.c.weight': torch.randn(16, 3, 5, 5), 'head.head.l.bias': torch.arange(3.)}
    path = tmp_path / 'model.bin'  # the content decides, not the name
    atomic_safetensors_save(state, path)
    loaded = safe_load(path)
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], v) for k, v in state.items())
    assert list(tmp_path.iterdir()) == [path]


def test_atomic_save_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / 'ckpt.pth'
    with pytest.raises(Exception):
        atomic_torch_save({'bad': lambda: None}, out)  # lambdas cannot be pickled
    assert list(tmp_path.iterdir()) == []
    atomic_torch_save({'ok': torch.ones(1)}, out)
    assert safe_load(out)['ok'].item() == 1
    with pytest.raises(CheckpointError, match='output folder does not exist'):
        atomic_torch_save({}, tmp_path / 'nope' / 'x.pth')
