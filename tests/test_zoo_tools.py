"""The tools with weights by URL (a loopback server, an empty TORCH_HOME), and quiet command lines.

* tools/train.py (and mmdet's own tools/train.py, slow) on the detection demo config whose
  backbone ``init_cfg`` is a URL: one download into the cache, strict load (lr 0: the trained
  backbone still equals the served file), no second download;
* tools/test.py CONFIG URL on classification: the served weights are evaluated (their head
  predicts one class for every image, so the metric and every dumped prediction show it);
* a tool started with a bad argument prints its own one-line error and no third-party banner.
"""
import pickle
from pathlib import Path

import pytest
import torch

from demo.shapes import make_classification, make_coco
from iformer_mm.models.backbones.iformer_keys import extract_backbone_state, ours_to_official

from .helpers import (REPO, build_classifier, closed_port_url, release_file, run_tool,
                      tiny_cls_config, tiny_det_config)

SITE = Path(__import__('mmdet').__file__).resolve().parents[1]
MMDET_TRAIN = SITE / 'mmdet' / '.mim' / 'tools' / 'train.py'


@pytest.fixture(scope='module')
def t_backbone_release(tmp_path_factory):
    """(backbone state under our names, bytes of a release-format iFormer-T file)."""
    model, path = release_file(tmp_path_factory.mktemp('release'), seed=1)
    return model.backbone.state_dict(), path.read_bytes()


def _det_config_with_url(folder: Path, url: str) -> Path:
    """The tiny detection demo config, backbone from ``url``, lr 0 (weights stay as loaded)."""
    make_coco(folder / 'coco', num_train=2, num_val=1, image_size=128, seed=0)
    base = tiny_det_config(folder, folder / 'coco', max_epochs=1)
    path = folder / 'det_url.py'
    path.write_text(f"_base_ = ['{base}']\n"
                    f"model = dict(backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained', checkpoint='{url}')))\n"
                    "optim_wrapper = dict(optimizer=dict(lr=0., weight_decay=0.))\n")
    return path


def _assert_backbone_is(checkpoint: Path, expected: dict) -> None:
    saved = extract_backbone_state(torch.load(checkpoint, map_location='cpu')['state_dict'])
    assert set(saved) == set(expected)
    for k, v in expected.items():
        assert torch.equal(saved[k], v), k


def test_train_downloads_the_backbone_once(loopback, torch_home, t_backbone_release, tmp_path):
    state, data = t_backbone_release
    cfg = _det_config_with_url(tmp_path, loopback.add('iFormer_t.pth', data))
    for run in ('first', 'second'):
        work = tmp_path / run
        run_tool('tools/train.py', cfg, '--work-dir', work, '--no-validate', threads=2)
        assert loopback.requests['iFormer_t.pth'] == 1, run  # the second run reads the cache
        _assert_backbone_is(work / 'epoch_1.pth', state)
    assert (torch_home / 'hub' / 'checkpoints' / 'iFormer_t.pth').read_bytes() == data


@pytest.mark.slow
def test_mmdet_own_train_tool_downloads_through_our_loader(loopback, torch_home,
                                                          t_backbone_release, tmp_path):
    state, data = t_backbone_release
    cfg = _det_config_with_url(tmp_path, loopback.add('iFormer_t.pth', data))
    for run in ('first', 'second'):
        run_tool(MMDET_TRAIN, cfg, '--work-dir', tmp_path / run, cwd=tmp_path, threads=2)
        assert loopback.requests['iFormer_t.pth'] == 1, run
        _assert_backbone_is(tmp_path / run / 'epoch_1.pth', state)


def test_test_tool_evaluates_a_url(loopback, torch_home, tmp_path):
    make_classification(tmp_path / 'data', num_train_per_class=1, num_val_per_class=4,
                        image_size=32, seed=0)
    cfg = tiny_cls_config(tmp_path, tmp_path / 'data')
    from mmengine.config import Config
    model = build_classifier('t', Config.fromfile(str(cfg)).model)
    with torch.no_grad():  # the head answers class 2 whatever the image
        model.head.classifier.fc.weight.zero_()
        model.head.classifier.fc.bias.copy_(torch.tensor([0., 0., 5., 0., 0.]))
    release = tmp_path / 'iFormer_t.pth'
    torch.save({'model': ours_to_official(model.state_dict()), 'epoch': 299}, release)
    url = loopback.add('iFormer_t.pth', release.read_bytes())
    preds = tmp_path / 'preds.pkl'
    proc = run_tool('tools/test.py', cfg, url, '--work-dir', tmp_path / 'work', '--out', preds)
    log = proc.stdout + proc.stderr
    assert 'accuracy/top1: 20.0000' in log, log[-2000:]  # 4 of the 20 images are class 2
    labels = [int(p['pred_label']) for p in pickle.loads(preds.read_bytes())]
    assert labels == [2] * 20
    assert (torch_home / 'hub' / 'checkpoints' / 'iFormer_t.pth').is_file()


@pytest.mark.parametrize('case', ['test_offline_url', 'infer_missing_image'])
def test_a_bad_argument_prints_one_line_and_no_banner(case, tmp_path, torch_home):
    """The configs are loaded first (where mmengine's pkg_resources notice used to appear)."""
    cls_cfg = REPO / 'configs/classification/iformer-t_8xb512_in1k.py'
    if case == 'test_offline_url':
        make_classification(tmp_path / 'data', num_train_per_class=1, num_val_per_class=1,
                            image_size=32, seed=0)
        url = closed_port_url('iFormer_t.pth')
        args = [REPO / 'tools/test.py', tiny_cls_config(tmp_path, tmp_path / 'data'), url]
        expected = (f'test.py: error: cannot download {url}: [Errno 111] Connection refused; tried to '
                    f'cache it at {torch_home}/hub/checkpoints/iFormer_t.pth; offline? download '
                    'the file elsewhere and place it there by hand, or pass a local path instead '
                    'of the URL')
    else:
        args = [REPO / 'tools/infer.py', tmp_path / 'nope.jpg', '--config', cls_cfg, '--weights', 'x.pth']
        expected = f'infer.py: error: image not found: {tmp_path}/nope.jpg'
    proc = run_tool(*args, check=False, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == expected + '\n', proc.stderr
