"""Published detection / segmentation checkpoints load as they are.

The iFormer release ships mmdet / mmseg checkpoints whose backbone keys are the *published* names
under ``backbone.`` (``backbone.stages.2.7.block.token_channel_mixer.m.q.c.weight``) and whose
neck / head keys are standard. We write such a file from a randomly initialised model (BN
statistics randomised) and check that mmengine's ``load_checkpoint`` (what ``load_from`` and the
toolboxes' ``tools/test.py`` use) and the backbone ``init_cfg`` give outputs identical to the
model the file was written from.
"""
import pytest
import torch
from mmengine.runner import load_checkpoint

from iformer_mm import IFormer
from iformer_mm.checkpoint import CheckpointError
from iformer_mm.models.backbones.iformer_keys import ours_to_official

from .helpers import (build_model, det_batch, det_config, load_dense_config, randomize_bn,
                      seg_batch, seg_config)

SIZE = 128


def published_dense_checkpoint(model: torch.nn.Module, toolbox: str) -> dict:
    """mmdet/mmseg file layout with published backbone key names."""
    state = model.state_dict()
    backbone = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    out = {k: v for k, v in state.items() if not k.startswith('backbone.')}
    out.update({f'backbone.{k}': v for k, v in ours_to_official(backbone).items()})
    return {'meta': {f'{toolbox}_version': '3.3.0' if toolbox == 'mmdet' else '1.2.2',
                     'epoch': 12, 'iter': 87960}, 'state_dict': out}


def _source_model(cfg, seed):
    torch.manual_seed(seed)
    return randomize_bn(build_model(cfg), seed=seed).eval()


def _write(tmp_path, model, toolbox):
    ckpt = published_dense_checkpoint(model, toolbox)
    assert 'backbone.stages.2.7.block.token_channel_mixer.m.q.c.weight' in ckpt['state_dict']
    assert not any(k.startswith('backbone.stages.2.7.attn') for k in ckpt['state_dict'])
    path = tmp_path / f'{toolbox}_published.pth'
    torch.save(ckpt, path)
    return path


def _assert_same_state(a: torch.nn.Module, b: torch.nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope='module')
def det_models():
    cfg = load_dense_config(det_config('t'))
    cfg.model.test_cfg.rcnn.score_thr = 0.  # an untrained head scores ~1/81: keep detections
    cfg.model.test_cfg.rcnn.max_per_img = 20
    return cfg, _source_model(cfg, seed=1), _source_model(cfg, seed=2)


def test_published_det_checkpoint_via_load_checkpoint(tmp_path, det_models):
    _, source, target = det_models
    path = _write(tmp_path, source, 'mmdet')
    load_checkpoint(target, str(path), map_location='cpu', strict=True)
    _assert_same_state(source, target)
    target.eval()
    with torch.no_grad():
        data = source.data_preprocessor(det_batch(SIZE, SIZE, seed=5), False)
        feats_a, feats_b = source.extract_feat(data['inputs']), target.extract_feat(data['inputs'])
        pred_a = source(**data, mode='predict')[0].pred_instances
        pred_b = target(**data, mode='predict')[0].pred_instances
    assert all(torch.equal(a, b) for a, b in zip(feats_a, feats_b))
    assert len(pred_a) > 0
    for key in ('bboxes', 'scores', 'labels', 'masks'):
        assert torch.equal(pred_a[key], pred_b[key]), key


def test_published_det_checkpoint_as_backbone_init(tmp_path, det_models):
    """``init_cfg=dict(type='Pretrained', checkpoint=<published mmdet file>)``: backbone only."""
    _, source, _ = det_models
    path = _write(tmp_path, source, 'mmdet')
    backbone = IFormer('t', out_indices=(0, 1, 2, 3), window_size=16,
                       init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    backbone.init_weights()
    backbone.eval()
    x = torch.randn(1, 3, 160, 224)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(source.backbone(x), backbone(x)))


def test_published_det_checkpoint_of_other_variant_is_named(tmp_path):
    m = IFormer('m')
    state = {f'backbone.{k}': v for k, v in ours_to_official(m.state_dict()).items()}
    state['neck.lateral_convs.0.conv.weight'] = torch.zeros(256, 48, 1, 1)
    path = tmp_path / 'mask_rcnn_iformer_m.pth'
    torch.save({'state_dict': state, 'meta': {}}, path)
    backbone = IFormer('t', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(CheckpointError, match='iFormer-M backbone'):
        backbone.init_weights()


def test_published_seg_checkpoint_via_load_checkpoint(tmp_path):
    cfg = load_dense_config(seg_config('t'))
    cfg.model.data_preprocessor.size = (SIZE, SIZE)
    source, target = _source_model(cfg, seed=3), _source_model(cfg, seed=4)
    path = _write(tmp_path, source, 'mmseg')
    load_checkpoint(target, str(path), map_location='cpu', strict=True)
    _assert_same_state(source, target)
    target.eval()
    with torch.no_grad():
        data = source.data_preprocessor(seg_batch(SIZE, SIZE), False)
        a = source(**data, mode='predict')[0]
        b = target(**data, mode='predict')[0]
    assert torch.equal(a.seg_logits.data, b.seg_logits.data)
    assert torch.equal(a.pred_sem_seg.data, b.pred_sem_seg.data)
