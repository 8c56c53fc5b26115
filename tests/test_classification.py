"""Classifiers from configs/classification: published files round-trip, parity with timm,
parameter counts, heads (loss, deploy), hard distillation with a tiny teacher."""
import time
from unittest import mock

import pytest
import timm
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from iformer_mm.checkpoint import safe_load
from iformer_mm.models.backbones.iformer_keys import ours_to_official
from iformer_mm.zoo.convert import convert_checkpoint
from iformer_mm.models.classifiers import build_teacher
from iformer_mm.models.heads import IFormerClsHead, IFormerDistillHead

from .helpers import (CONFIGS, PARAMS, PUBLISHED_KEYS, build_classifier, load_cls_config,
                      randomize_bn, timm_twin, write_release_file)


def _randomize(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights everywhere (head biases too) and random BN statistics."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('gamma'):
                p.uniform_(0.5, 1.5)
            elif name.endswith('bias') and name.startswith('head.'):
                p.normal_(0, 0.1)
    return randomize_bn(model, seed)


# T and distilled M (both head types) run by default; the larger ones take 20-60 s each on 2
# shared cores, so they are in the slow suite.
DEFAULT_VARIANTS = ('t', 'm_distilled')
VARIANT_PARAMS = [v if v in DEFAULT_VARIANTS else pytest.param(v, marks=pytest.mark.slow)
                  for v in CONFIGS]


@pytest.mark.parametrize('variant', VARIANT_PARAMS)
def test_release_file_converts_and_matches_timm(variant, tmp_path):
    """config -> random weights -> published file -> convert -> strict load -> logits == timm's
    (and == the deployed model's); key and parameter counts as published."""
    start = time.time()
    model = _randomize(build_classifier(variant), seed=1).eval()
    assert sum(p.numel() for p in model.parameters()) == PARAMS[variant]
    if 'distilled' in variant:
        assert model.teacher is None  # never built for eval

    src, dst = tmp_path / f'iFormer_{variant}.pth', tmp_path / f'{variant}_mm.pth'
    published = write_release_file(model, variant, src)
    assert len(published) == PUBLISHED_KEYS[variant]
    meta = convert_checkpoint(str(src), str(dst), arch=variant.replace('_distilled', ''))
    assert meta['arch'] == variant.replace('_distilled', '')
    assert meta['distilled'] == ('distilled' in variant)
    del model

    fresh = build_classifier(variant).eval()
    converted = torch.load(dst, map_location='cpu', weights_only=True)  # no allowlist needed
    fresh.load_state_dict(converted['state_dict'], strict=True)

    size = 128 if variant == 'h' else 224
    x = torch.randn(1, 3, size, size)
    ref = timm_twin(safe_load(str(src)), variant, num_classes=1000)
    with torch.no_grad():
        ours = fresh(x)
        theirs = ref(x)
        assert ours.shape == theirs.shape == (1, 1000)
        assert (ours - theirs).abs().max() <= 1e-4
        fresh.backbone.switch_to_deploy()
        fresh.head.switch_to_deploy()
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                       for m in fresh.modules())
        deployed = fresh(x)
    assert (deployed - theirs).abs().max() <= 1e-4
    print(f'{variant}: {time.time() - start:.1f}s')


def test_parameter_and_published_key_counts_of_all_configs():
    """Exact parameter counts and published key counts of the nine classifiers
    (weight init skipped: counts only)."""
    with mock.patch('torch.nn.init.trunc_normal_', lambda t, *args, **kwargs: t):
        for variant in CONFIGS:
            model = build_classifier(variant)
            assert sum(p.numel() for p in model.parameters()) == PARAMS[variant], variant
            assert len(ours_to_official(model.state_dict())) == PUBLISHED_KEYS[variant], variant
            del model


# ----------------------------------------------------------------------------------------------
# Heads
# ----------------------------------------------------------------------------------------------
def _samples(labels, num_classes, soft=False):
    samples = []
    for y in labels:
        s = DataSample().set_gt_label(int(y))
        if soft:
            score = torch.full((num_classes, ), 0.1 / (num_classes - 1))
            score[int(y)] = 0.9
            s.set_gt_score(score)
        samples.append(s)
    return samples


def test_heads_are_registered_and_validate():
    head = MODELS.build(dict(type='IFormerClsHead', num_classes=7, in_channels=16))
    assert isinstance(head, IFormerClsHead)
    assert {k.split('.')[1] for k in head.state_dict()} == {'bn', 'fc'}
    dist = MODELS.build(dict(type='IFormerDistillHead', num_classes=7, in_channels=16))
    assert isinstance(dist, IFormerDistillHead)
    assert sorted({'.'.join(k.split('.')[:2]) for k in dist.state_dict()}) == [
        'classifier.bn', 'classifier.fc', 'classifier_dist.bn', 'classifier_dist.fc']
    with pytest.raises(ValueError, match='num_classes must be a positive int, got 0'):
        IFormerClsHead(num_classes=0, in_channels=16)
    with pytest.raises(ValueError, match=r'expects pooled features of shape \(N, 16\)'):
        head((torch.randn(2, 16, 3, 3), ))


@pytest.mark.parametrize('distilled', [False, True])
def test_head_deploy_fuses_to_one_linear(distilled):
    torch.manual_seed(0)
    cls = IFormerDistillHead if distilled else IFormerClsHead
    head = randomize_bn(cls(num_classes=10, in_channels=32)).eval()
    feats = (torch.randn(4, 32) * 3, )
    with torch.no_grad():
        before = head(feats)
        if distilled:
            c, d = head.forward_both(feats)
            assert torch.allclose(before, (c + d) / 2)
        head.switch_to_deploy()
        head.switch_to_deploy()  # idempotent
        after = head(feats)
    assert isinstance(head.classifier, torch.nn.Linear)
    assert set(head.state_dict()) == {'classifier.weight', 'classifier.bias'}
    assert (after - before).abs().max() <= 1e-5 * before.abs().max()


def test_distill_head_train_returns_both_eval_returns_average():
    torch.manual_seed(0)
    head = IFormerDistillHead(num_classes=5, in_channels=8)
    feats = (torch.randn(3, 8), )
    head.train()
    cls_score, dist_score = head(feats)
    head.eval()
    assert torch.allclose(head(feats), (head.forward_both(feats)[0] + head.forward_both(feats)[1]) / 2)
    assert cls_score.shape == dist_score.shape == (3, 5)
    with pytest.raises(ValueError, match='needs teacher_logits'):
        head.loss(feats, _samples([0, 1, 2], 5))


def test_cls_head_loss_with_label_smoothing_and_soft_targets():
    torch.manual_seed(0)
    head = IFormerClsHead(num_classes=5, in_channels=8, loss=dict(
        type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'))
    feats = (torch.randn(3, 8), )
    samples = _samples([0, 3, 4], 5, soft=True)
    loss = head.loss(feats, samples)['loss']
    target = torch.stack([s.gt_score for s in samples]) * 0.9 + 0.1 / 5
    expected = -(target * F.log_softmax(head(feats), dim=1)).sum(1).mean()
    assert torch.allclose(loss, expected, atol=1e-6)
    loss.backward()
    assert head.classifier.fc.weight.grad is not None


# ----------------------------------------------------------------------------------------------
# Hard distillation (tiny teacher)
# ----------------------------------------------------------------------------------------------
TEACHER = 'resnet10t'


def _tiny_distiller_cfg(teacher_ckpt, num_classes=5):
    cfg = load_cls_config('m_distilled').model
    cfg.backbone.update(arch='t')
    cfg.head.update(in_channels=256, num_classes=num_classes)
    cfg.teacher = dict(arch=TEACHER, checkpoint=str(teacher_ckpt), num_classes=num_classes)
    cfg.data_preprocessor = dict(num_classes=num_classes, mean=[123.675, 116.28, 103.53],
                                 std=[58.395, 57.12, 57.375], to_rgb=True)
    return cfg


@pytest.fixture(scope='module')
def teacher_files(tmp_path_factory):
    """A tiny trained-looking teacher saved DeiT-style ({'model': ...}) and as a raw state_dict."""
    folder = tmp_path_factory.mktemp('teacher')
    torch.manual_seed(3)
    teacher = timm.create_model(TEACHER, pretrained=False, num_classes=5)
    randomize_bn(teacher, seed=3)
    state = teacher.state_dict()
    torch.save({'model': state}, folder / 'deit_format.pth')
    torch.save(state, folder / 'raw.pth')
    return folder, state


def _batch(model, seed=0, n=4, size=64):
    g = torch.Generator().manual_seed(seed)
    data = dict(inputs=[torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)
                        for _ in range(n)],
                data_samples=[DataSample().set_gt_label(i % 5) for i in range(n)])
    torch.manual_seed(seed)  # mixup / cutmix draw
    return model.data_preprocessor(data, training=True)


def test_teacher_loads_deit_raw_and_ddp_formats(teacher_files, tmp_path):
    folder, state = teacher_files
    torch.save({'state_dict': {f'module.{k}': v for k, v in state.items()}}, tmp_path / 'ddp.pth')
    for path in (folder / 'deit_format.pth', folder / 'raw.pth', tmp_path / 'ddp.pth'):
        teacher = build_teacher(TEACHER, str(path), num_classes=5)
        assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
        assert all(torch.equal(teacher.state_dict()[k], v) for k, v in state.items())
    with pytest.raises(ValueError, match="'not_a_model' is not a timm model name"):
        build_teacher('not_a_model', str(folder / 'raw.pth'), num_classes=5)


def test_distillation_step_loss_is_half_ce_half_hard_teacher(teacher_files):
    folder, teacher_state = teacher_files
    model = MODELS.build(_tiny_distiller_cfg(folder / 'deit_format.pth')).train()
    assert model.teacher is None  # lazy: nothing built before training
    data = _batch(model)
    inputs, samples = data['inputs'], data['data_samples']
    assert 'gt_score' in samples[0]  # mixup / cutmix soft targets reached the head

    losses = model(inputs, samples, mode='loss')
    teacher = model.teacher
    assert teacher is not None and not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(teacher.state_dict()[k], v) for k, v in teacher_state.items())
    # teacher is not part of the student: not saved, not optimised
    assert not any('teacher' in k for k in model.state_dict())
    n_student = sum(p.numel() for p in model.parameters())
    assert n_student == sum(p.numel() for n, p in model.named_parameters()
                            if n.startswith(('backbone.', 'head.')))

    with torch.no_grad():  # manual: 0.5 * smoothed soft CE(cls) + 0.5 * CE(dist, argmax teacher)
        cls_score, dist_score = model.head(model.extract_feat(inputs))
        t_logits = teacher(inputs)
        target = torch.stack([s.gt_score for s in samples]) * 0.9 + 0.1 / 5
        ce_cls = -(target * F.log_softmax(cls_score, 1)).sum(1).mean()
        ce_dist = F.cross_entropy(dist_score, t_logits.argmax(1))
    assert torch.allclose(losses['loss_cls'], 0.5 * ce_cls, atol=1e-5)
    assert torch.allclose(losses['loss_dist'], 0.5 * ce_dist, atol=1e-5)

    # one optimiser step through mmengine's train_step: student moves, teacher does not
    from mmengine.optim import OptimWrapper
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    w_before = model.head.classifier_dist.fc.weight.detach().clone()
    t_before = next(teacher.parameters()).detach().clone()
    log = model.train_step(dict(inputs=[torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)
                                        for _ in range(4)],
                                data_samples=[DataSample().set_gt_label(i) for i in range(4)]),
                           optim)
    assert set(log) >= {'loss', 'loss_cls', 'loss_dist'}
    assert torch.allclose(log['loss'], log['loss_cls'] + log['loss_dist'])
    assert not torch.equal(w_before, model.head.classifier_dist.fc.weight)
    assert torch.equal(t_before, next(teacher.parameters()))


def test_distilled_eval_needs_no_teacher(tmp_path):
    """The published distilled config evaluates with the teacher file absent."""
    cfg = _tiny_distiller_cfg(tmp_path / 'absent.pth')
    model = MODELS.build(cfg).eval()
    data = _batch(model)
    with torch.no_grad():
        out = model.val_step(dict(inputs=[torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8)],
                                  data_samples=[DataSample().set_gt_label(1)]))
        logits = model(data['inputs'], mode='tensor')
    assert out[0].pred_score.shape == (5, ) and logits.shape == (4, 5)
    assert model.teacher is None


def test_missing_teacher_checkpoint_names_path_and_key(tmp_path):
    missing = tmp_path / 'regnety_160-a5fe301d.pth'
    model = MODELS.build(_tiny_distiller_cfg(missing)).train()
    data = _batch(model)
    with pytest.raises(FileNotFoundError) as err:
        model(data['inputs'], data['data_samples'], mode='loss')
    assert str(missing) in str(err.value) and 'model.teacher.checkpoint' in str(err.value)


def test_teacher_config_errors(tmp_path, teacher_files):
    folder, _ = teacher_files
    cfg = _tiny_distiller_cfg(folder / 'raw.pth')
    cfg.teacher['num_classes'] = 1000
    with pytest.raises(ValueError, match='num_classes is 1000 but the head predicts 5'):
        MODELS.build(cfg)
    cfg = _tiny_distiller_cfg(folder / 'raw.pth')
    cfg.teacher['arch'] = 'resnet18'  # other weights: strict load must fail, naming the arch
    model = MODELS.build(cfg).train()
    data = _batch(model)
    with pytest.raises(ValueError, match="does not fit timm 'resnet18'"):
        model(data['inputs'], data['data_samples'], mode='loss')
