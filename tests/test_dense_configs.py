"""Every published detection / segmentation config builds from its real file and trains one step.

Checks per variant (T, S, M, L, L2) x (Mask R-CNN, Semantic FPN): the published hyperparameters,
the backbone equals ``IFormer(arch)`` (parameter count), one CPU training step at 128x128 has a
finite loss and gradients that reach the stem, and the outputs have the expected shapes.
The backbone ``init_cfg`` is set to None because no weights exist in tests.
"""
import math

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from .helpers import (DIMS, VARIANTS, build_model, det_batch, det_config, load_dense_config,
                           num_params, seg_batch, seg_config, train_step)
from iformer_mm import IFormer

# the published release files the backbones start from (written out, not read from the package)
RELEASE = 'https://github.com/ChuanyangZheng/iFormer/releases/download/v0.9/'
CHECKPOINTS = {'t': 'iFormer_t.pth', 's': 'iFormer_s.pth', 'm': 'iFormer_m_distill.pth',
               'l': 'iFormer_l_distill.pth', 'l2': 'iFormer_l2_distill.pth'}
SIZE = 128


def _check_backbone_cfg(cfg, variant):
    bb = cfg.model.backbone
    assert bb.type == 'IFormer' and bb.arch == variant
    assert tuple(bb.out_indices) == (0, 1, 2, 3)
    assert bb.window_size == 16 and bb.norm_eval is True and bb.drop_path_rate == 0.
    assert 'window_blocks' not in bb  # the published layout is the default
    assert cfg.custom_imports == dict(imports=['iformer_mm'], allow_failed_imports=False)


@pytest.mark.parametrize('variant', VARIANTS)
def test_det_config_hyperparameters(variant):
    cfg = load_dense_config(det_config(variant), backbone_init=None)
    raw = Config.fromfile(str(det_config(variant)))
    _check_backbone_cfg(cfg, variant)
    assert raw.model.backbone.init_cfg == dict(type='Pretrained',
                                               checkpoint=RELEASE + CHECKPOINTS[variant])
    assert cfg.model.neck.in_channels == DIMS[variant]
    assert (cfg.model.neck.out_channels, cfg.model.neck.num_outs) == (256, 5)
    assert cfg.default_scope == 'mmdet' and cfg.model.type == 'MaskRCNN'
    opt = cfg.optim_wrapper.optimizer
    assert dict(opt) == dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05)
    warmup, steps = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and (warmup.begin, warmup.end) == (0, 500)
    assert warmup.by_epoch is False
    assert math.isclose(opt.lr * warmup.start_factor, 1e-6, rel_tol=1e-9)  # starts at 1e-6
    assert steps.type == 'MultiStepLR' and list(steps.milestones) == [8, 11] and steps.gamma == .1
    assert cfg.train_cfg.max_epochs == 12
    assert cfg.train_dataloader.batch_size == 2 and cfg.auto_scale_lr.base_batch_size == 16
    assert cfg.train_dataloader.dataset.data_root == 'data/coco/'
    resize = [t for t in cfg.train_pipeline if t.type == 'Resize'][0]
    assert tuple(resize.scale) == (1333, 800)


@pytest.mark.parametrize('variant', VARIANTS)
def test_seg_config_hyperparameters(variant):
    cfg = load_dense_config(seg_config(variant), backbone_init=None)
    raw = Config.fromfile(str(seg_config(variant)))
    _check_backbone_cfg(cfg, variant)
    assert raw.model.backbone.init_cfg == dict(type='Pretrained',
                                               checkpoint=RELEASE + CHECKPOINTS[variant])
    assert cfg.model.pretrained is None
    assert cfg.model.neck.in_channels == DIMS[variant]
    assert (cfg.model.neck.out_channels, cfg.model.neck.num_outs) == (256, 4)
    head = cfg.model.decode_head
    assert (head.type, head.channels, head.dropout_ratio, head.num_classes) == \
        ('FPNHead', 128, .1, 150)
    assert cfg.default_scope == 'mmseg' and tuple(cfg.model.data_preprocessor.size) == (512, 512)
    opt = cfg.optim_wrapper.optimizer
    assert dict(opt) == dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4)
    (poly,) = cfg.param_scheduler
    assert (poly.type, poly.power, poly.eta_min, poly.end, poly.by_epoch) == \
        ('PolyLR', .9, 1e-6, 40000, False)
    assert cfg.train_cfg.max_iters == 40000
    assert cfg.train_dataloader.batch_size == 4 and cfg.auto_scale_lr.base_batch_size == 32
    assert cfg.train_dataloader.dataset.data_root == 'data/ade/ADEChallengeData2016'
    types = {t.type: t for t in cfg.train_pipeline}
    assert tuple(types['RandomResize'].scale) == (2048, 512)
    assert tuple(types['RandomResize'].ratio_range) == (0.5, 2.0)
    assert tuple(types['RandomCrop'].crop_size) == (512, 512)
    assert 'PhotoMetricDistortion' in types


@pytest.mark.parametrize('variant', VARIANTS)
def test_det_config_trains_one_step(variant):
    cfg = load_dense_config(det_config(variant))
    model = build_model(cfg)
    assert num_params(model.backbone) == num_params(IFormer(variant))
    assert model.backbone.window_size == 16 and model.backbone.norm_eval
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    log_vars, grads = train_step(model, optim_wrapper, det_batch(SIZE, SIZE))
    assert math.isfinite(log_vars['loss'])
    assert {'loss_rpn_cls', 'loss_cls', 'loss_bbox', 'loss_mask'} <= set(log_vars)
    stem = grads['backbone.downsample_layers.0.conv1.conv.weight']
    assert torch.isfinite(stem).all() and stem.abs().sum() > 0
    # norm_eval: BN statistics stay frozen while training
    assert not any(m.training for m in model.backbone.modules()
                   if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))

    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(det_batch(SIZE, SIZE), False)
        feats = model.extract_feat(data['inputs'])
        results = model(**data, mode='predict')
    assert [tuple(f.shape) for f in feats] == [(1, 256, SIZE // s, SIZE // s)
                                               for s in (4, 8, 16, 32, 64)]
    pred = results[0].pred_instances
    assert pred.bboxes.shape[1] == 4 and len(pred.masks) == len(pred.bboxes)


@pytest.mark.parametrize('variant', VARIANTS)
def test_seg_config_trains_one_step(variant):
    cfg = load_dense_config(seg_config(variant))
    cfg.model.data_preprocessor.size = (SIZE, SIZE)  # 512 crops are the real setting
    model = build_model(cfg)
    assert num_params(model.backbone) == num_params(IFormer(variant))
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    log_vars, grads = train_step(model, optim_wrapper, seg_batch(SIZE, SIZE))
    assert math.isfinite(log_vars['loss']) and 'decode.loss_ce' in log_vars
    stem = grads['backbone.downsample_layers.0.conv1.conv.weight']
    assert torch.isfinite(stem).all() and stem.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(seg_batch(SIZE, SIZE), False)
        logits = model(**data, mode='tensor')
        results = model(**data, mode='predict')
    assert tuple(logits.shape) == (1, 150, SIZE // 4, SIZE // 4)
    assert tuple(results[0].seg_logits.data.shape) == (150, SIZE, SIZE)
    assert tuple(results[0].pred_sem_seg.data.shape) == (1, SIZE, SIZE)


def test_seg_syncbn_reverted_by_runner_on_one_process(tmp_path):
    """mmseg's base head uses SyncBN; mmengine's runner makes it plain BN when not distributed."""
    from mmengine.runner import Runner
    cfg = load_dense_config(seg_config('t'))
    assert cfg.model.decode_head.norm_cfg.type == 'SyncBN'
    cfg.work_dir = str(tmp_path)
    runner = Runner.from_cfg(cfg)
    kinds = {type(m).__name__ for m in runner.model.modules()}
    assert 'SyncBatchNorm' not in kinds and 'BatchNorm2d' in kinds
