"""The whole Mask / Faster R-CNN deployed: ``tools/deploy.py --task detector``.

* The export wrapper (:mod:`iformer_mm.deploy.detector`) plus the host step
  (:mod:`iformer_mm.deploy.detections`) equal mmdet's own ``predict(rescale=True)``: boxes,
  scores, labels and pasted masks, on real pipeline inputs.
* ONNX Runtime and OpenVINO run the one-file artifact with only standard ops
  (``NonMaxSuppression``, ``RoiAlign``), match PyTorch detection by detection and score the same
  COCO bbox / segm mAP through mmdet's ``CocoMetric``.
* Zero detections come back as zero rows, not a crash; bad input is one line, exit 2, nothing
  written; ``tools/infer.py --artifact`` gives the same predictions as PyTorch.

Default suite: iFormer-T with random weights at 128 px on a 2-image generated COCO set. Slow: the
``make demo`` detector (trained here) for the accuracy / int8 figures, and the published-size M.
"""
import json
import time

import numpy as np
import pytest
import torch

from demo.shapes import make_coco
from iformer_mm.deploy import cli
from iformer_mm.deploy.build import build_export_model
from iformer_mm.deploy.detections import match_detections, to_det_sample
from iformer_mm.deploy.inputs import InputSource
from iformer_mm.deploy.mm_model import build_mm_model
from iformer_mm.deploy.targets import TARGETS
from iformer_mm.utils.configs import load_config
from iformer_mm.utils.scope import toolbox_scope

from .helpers import REPO, randomize_bn, run_tool

DET_CONFIG = str(REPO / 'configs/detection/mask-rcnn_iformer-t_fpn_3e_shapes.py')
RUNTIMES = ('onnxruntime', 'openvino')


def _deploy(argv, capsys):
    rc = cli.main(argv + ['--json'])
    captured = capsys.readouterr()
    assert rc == 0, captured.err[-2000:]
    return json.loads(captured.out)


def _save(model, path):
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': {'classes': ('circle', 'cross', 'square', 'star',
                                                      'triangle')}}}, path)
    return str(path)


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp('coco')
    make_coco(root, num_train=4, num_val=2, image_size=128, seed=0)
    return root


@pytest.fixture(scope='module')
def detector(tmp_path_factory):
    """The demo Mask R-CNN config (iFormer-T, 5 classes, 128 px), random weights (random BN
    statistics), saved as mmdet does."""
    torch.manual_seed(0)
    model = randomize_bn(build_mm_model(load_config(DET_CONFIG), 'detector'), 3).eval()
    return model, _save(model, tmp_path_factory.mktemp('det') / 'det.pth')


def _faster_rcnn_config(folder):
    """The demo config without its mask branch: a Faster R-CNN."""
    path = folder / 'faster.py'
    path.write_text(f"_base_ = [{DET_CONFIG!r}]\n"
                    "model = dict(roi_head=dict(mask_roi_extractor=None, mask_head=None))\n")
    return str(path)


def _samples(em, root):
    return InputSource(em).from_dataset(data_root=str(root) + '/')


def _mmdet(model, sample):
    from mmdet.structures import DetDataSample
    with toolbox_scope('mmdet'), torch.no_grad():
        return model.predict(sample.inputs, [DetDataSample(metainfo=sample.meta)],
                             rescale=True)[0].pred_instances


@pytest.mark.parametrize('kind', ['mask', 'faster'])
def test_wrapper_and_host_step_equal_mmdet_predict(detector, coco, kind, tmp_path):
    _, ckpt = detector
    config = DET_CONFIG if kind == 'mask' else _faster_rcnn_config(tmp_path)
    if kind == 'faster':
        torch.manual_seed(1)
        model = randomize_bn(build_mm_model(load_config(config), 'detector'), 3).eval()
        ckpt = _save(model, tmp_path / 'faster.pth')
    em = build_export_model('t', 'detector', ckpt, config)
    assert em.output_names == (('boxes', 'scores', 'labels', 'masks') if kind == 'mask'
                               else ('boxes', 'scores', 'labels'))
    # the reference: the same weights, built and run by mmdet, not fused
    ref_model = build_mm_model(load_config(config), 'detector', ckpt)
    total = 0
    for sample in _samples(em, coco):
        with torch.no_grad():
            outputs = [o.numpy() for o in em.model(sample.inputs)]
        got = to_det_sample(outputs, sample.meta).pred_instances
        want = _mmdet(ref_model, sample)
        assert len(got) == len(want) > 0
        total += len(got)
        assert np.abs(got.bboxes.numpy() - want.bboxes.numpy()).max() < 1e-3
        assert np.abs(got.scores.numpy() - want.scores.numpy()).max() < 1e-5
        assert (got.labels == want.labels).all()
        if kind == 'mask':
            assert got.masks.shape == want.masks.shape
            assert (got.masks == want.masks).float().mean() > 0.999
    assert total > 4


@pytest.mark.parametrize('target', RUNTIMES)
def test_fp32_artifact_has_standard_ops_matches_and_scores_the_same(detector, coco, target,
                                                                   tmp_path, capsys):
    model, ckpt = detector
    report = _deploy(['--model', 't', '--task', 'detector', '--target', target, '--config',
                      DET_CONFIG, '--checkpoint', ckpt, '--val-data', str(coco) + '/',
                      '--out-dir', str(tmp_path)], capsys)
    assert report['resolution'] == [128, 128]  # the config's test scale
    assert report['outputs'] == {'boxes': [20, 4], 'scores': [20], 'labels': [20],
                                 'masks': [20, 28, 28]}
    ops = report['ops']
    nms, roi = (('NonMaxSuppression', 'RoiAlign') if target == 'onnxruntime'
                else ('NonMaxSuppression', 'ROIAlign'))
    assert ops.get(nms, 0) == 2 and ops.get(roi, 0) == 8, ops  # RPN + RoI NMS; 4 levels x 2
    p = report['parity']  # random weights: few scores reach 0.3, so every detection is checked
    assert p['detections_matched'] == p['detections_checked']
    assert p['all_detections_matched'] == p['all_detections_checked'] > 0, p
    acc = report['accuracy']
    assert acc['metric'] == 'coco' and acc['pytorch_fp32']['images'] == 2
    assert acc['detections_matched'] == acc['detections_checked']
    assert acc['all_detections_matched'] == acc['all_detections_checked'] > 0, acc
    for key in ('bbox_mAP', 'segm_mAP'):
        assert abs(acc['delta_points'][key]) <= 0.3, acc
    if target == 'onnxruntime':
        import onnx
        proto = onnx.load(report['path'])
        assert {n.domain for n in proto.graph.node} <= {'', 'ai.onnx'}  # no custom-op library
    # a fresh session of the written file, on an image of the set
    session = TARGETS[target].session(report['path'], 1, 'fp32')
    em = build_export_model('t', 'detector', ckpt, DET_CONFIG)
    sample = _samples(em, coco)[0]
    with torch.no_grad():
        want = [o.numpy() for o in em.model(sample.inputs)]
    m = match_detections(want, session(sample.inputs.numpy()), min_score=0.0)
    assert m['matched'] == m['checked'] > 0 and m['max_mask_diff'] < 1e-3, m


def test_zero_detections_are_zero_rows_not_a_crash(tmp_path, coco, detector, capsys):
    """score_thr 1.0: no box survives, in PyTorch and in both runtimes."""
    _, ckpt = detector
    config = tmp_path / 'none.py'
    config.write_text(f"_base_ = [{DET_CONFIG!r}]\n"
                      "model = dict(test_cfg=dict(rcnn=dict(score_thr=1.0)))\n")
    blank = torch.zeros(1, 3, 128, 128)
    for target in RUNTIMES:
        report = _deploy(['--model', 't', '--task', 'detector', '--target', target, '--config',
                          str(config), '--checkpoint', ckpt, '--out-dir',
                          str(tmp_path / target)], capsys)
        got = TARGETS[target].session(report['path'], 1, 'fp32')(blank.numpy())
        assert [g.shape for g in got] == [(20, 4), (20,), (20,), (20, 28, 28)]
        assert not np.any(got[1]) and not np.any(got[0]) and not np.any(got[3])
        sample = to_det_sample(got, dict(img_shape=(128, 128), ori_shape=(100, 90),
                                         scale_factor=(1.28, 1.42)))
        assert len(sample.pred_instances) == 0 and sample.pred_instances.masks.shape == (0, 100, 90)


@pytest.mark.parametrize('config, needle', [
    ('configs/swap_examples/retinanet_iformer-t_fpn_1x_coco.py', 'two-stage'),
    ('configs/swap_examples/cascade-mask-rcnn_iformer-t_fpn_1x_coco.py', 'CascadeRoIHead'),
])
def test_a_detector_it_does_not_reproduce_is_refused(config, needle, tmp_path, capsys):
    out = tmp_path / 'out'
    rc = cli.main(['--model', 't', '--task', 'detector', '--target', 'onnxruntime', '--config',
                   str(REPO / config), '--resolution', '128', '--out-dir', str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and needle in err[0], err
    assert not out.exists()


@pytest.mark.parametrize('argv, needle', [
    (['--config', 'configs/detection/mask-rcnn_iformer-m_fpn_1x_coco.py', '--model', 'm'],
     'holds an iFormer-T backbone'),
    (['--config', DET_CONFIG, '--model', 't', '--resolution', '130'], 'multiple of 32'),
    (['--config', DET_CONFIG, '--model', 'm'], 'builds an iFormer-T detector, not iFormer-M'),
])
def test_bad_detector_input_is_one_line_and_writes_nothing(detector, argv, needle, tmp_path,
                                                           capsys):
    _, ckpt = detector
    out = tmp_path / 'out'
    argv = [str(REPO / a) if a.startswith('configs/') else a for a in argv]
    rc = cli.main(['--task', 'detector', '--target', 'onnxruntime', '--checkpoint', ckpt,
                   '--out-dir', str(out)] + argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and needle in err[0], err
    assert not out.exists()


def test_infer_artifact_prints_what_pytorch_prints(detector, coco, tmp_path, capsys):
    """tools/infer.py --artifact: the same objects, scores and boxes as --weights."""
    from iformer_mm.apis import inference
    _, ckpt = detector
    report = _deploy(['--model', 't', '--task', 'detector', '--target', 'onnxruntime',
                      '--config', DET_CONFIG, '--checkpoint', ckpt, '--out-dir',
                      str(tmp_path / 'a')], capsys)
    images = sorted(str(p) for p in (coco / 'val2017').glob('*.jpg'))
    lines = {}
    for mode, extra in (('pytorch', ['--config', DET_CONFIG, '--weights', ckpt]),
                        ('artifact', ['--artifact', report['path']])):
        assert inference.main(images + extra + ['--out-dir', str(tmp_path / mode)]) == 0
        out = capsys.readouterr().out.replace(str(tmp_path / mode), 'OUT')
        lines[mode] = [line for line in out.splitlines() if '.jpg: ' in line]  # not mmengine's
        assert len(list((tmp_path / mode).glob('*.png'))) == len(images)
    assert lines['pytorch'] == lines['artifact'] and len(lines['artifact']) == 2, lines
    rc = inference.main(images + ['--artifact', str(tmp_path / 'a' / 'missing.onnx'),
                                  '--out-dir', str(tmp_path / 'x')])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and 'missing.onnx does not exist' in err[0], err


def test_dense_part_for_executorch_equals_mmdet_and_whole_detector_is_refused(detector, coco,
                                                                                tmp_path, capsys):
    """ExecuTorch gets the detector's dense part (backbone + FPN + RPN convs), equal to mmdet's
    own ``extract_feat`` + ``rpn_head`` outputs; asking it for the whole detector is one line."""
    model, ckpt = detector
    report = _deploy(['--model', 't', '--task', 'detector-dense', '--target', 'executorch',
                      '--config', DET_CONFIG, '--checkpoint', ckpt, '--out-dir',
                      str(tmp_path / 'o')], capsys)
    assert list(report['outputs'])[:2] == ['fpn_0', 'fpn_1'] and 'rpn_reg_4' in report['outputs']
    (sample, *_) = _samples(build_export_model('t', 'detector-dense', ckpt, DET_CONFIG), coco)
    got = TARGETS['executorch'].session(report['path'], 1)(sample.inputs.numpy())
    with toolbox_scope('mmdet'), torch.no_grad():
        feats = model.extract_feat(sample.inputs)
        cls, reg = model.rpn_head(feats)
    want = list(feats) + list(cls) + list(reg)
    assert len(got) == len(want) == 15
    assert max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want)) < 1e-3
    capsys.readouterr()
    rc = cli.main(['--model', 't', '--task', 'detector', '--target', 'executorch', '--config',
                   DET_CONFIG, '--out-dir', str(tmp_path / 'x')])
    err = capsys.readouterr().err
    assert rc == 2 and 'use --task detector-dense' in err and err.count('\n') == 1
    assert not (tmp_path / 'x').exists()


# -- slow: the demo-trained detector, and the published-size M --------------------------------
@pytest.fixture(scope='module')
def demo_detector(tmp_path_factory):
    """``make demo``'s classifier then Mask R-CNN (seed 0), trained here on generated data."""
    base = tmp_path_factory.mktemp('demo-det')
    run_tool(REPO / 'tools' / 'demo.py', '--tasks', 'det', '--out-dir', base / 'out',
             '--data-root', base / 'data', cwd=base, threads=2, timeout=3600)
    return dict(data=base / 'data' / 'coco', ckpt=str(base / 'out' / 'work_dirs' / 'det' /
                                                      'epoch_3.pth'))


@pytest.mark.slow
@pytest.mark.parametrize('precision', ['fp32', 'int8'])
@pytest.mark.parametrize('target', RUNTIMES)
def test_demo_detector_map_in_the_runtime(demo_detector, target, precision, tmp_path, capsys):
    data = demo_detector['data']
    argv = ['--model', 't', '--task', 'detector', '--target', target, '--precision', precision,
            '--config', DET_CONFIG, '--checkpoint', demo_detector['ckpt'], '--val-data',
            str(data) + '/', '--latency', '20', '--threads', '2', '--out-dir', str(tmp_path)]
    if precision == 'int8':
        argv += ['--calib-data', str(data / 'train2017'), '--calib-size', '100']
    report = _deploy(argv, capsys)
    acc = report['accuracy']
    print(f"{target} {precision}: " + ', '.join(
        f"{k} {acc['pytorch_fp32'][k]:.4f} -> {acc['artifact'][k]:.4f}" for k in
        ('bbox_mAP', 'segm_mAP')) + f", {report['latency']['median_ms']:.1f} ms")
    assert acc['pytorch_fp32']['bbox_mAP'] > 0.3  # it learned
    limit = 0.3 if precision == 'fp32' else 1.0
    for key in ('bbox_mAP', 'segm_mAP'):
        assert abs(acc['delta_points'][key]) <= limit, acc
    if precision == 'fp32':
        assert acc['detections_matched'] == acc['detections_checked'] > 0, acc
    blank = np.zeros((1, 3, 128, 128), np.float32)
    got = TARGETS[target].session(report['path'], 1, precision)(blank)
    assert [g.shape[0] for g in got] == [20] * 4  # a blank picture: rows, no crash


@pytest.mark.slow
@pytest.mark.parametrize('target', RUNTIMES)
def test_published_size_m_detector_exports_and_runs(target, tmp_path, capsys):
    """The COCO recipe's M Mask R-CNN at its test size (1333x800 -> 800x1344), random weights;
    latency of the artifact next to mmdet's own PyTorch inference at that size."""
    config = str(REPO / 'configs/detection/mask-rcnn_iformer-m_fpn_1x_coco.py')
    torch.manual_seed(0)
    model = randomize_bn(build_mm_model(load_config(config), 'detector'), 3).eval()
    ckpt = str(tmp_path / 'm.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    report = _deploy(['--model', 'm', '--task', 'detector', '--target', target, '--config',
                      config, '--checkpoint', ckpt, '--latency', '3', '--threads', '2',
                      '--out-dir', str(tmp_path / 'o')], capsys)
    assert report['resolution'] == [800, 1344]
    assert report['outputs']['boxes'] == [100, 4] and report['outputs']['masks'] == [100, 28, 28]
    assert report['parity']['detections_matched'] == report['parity']['detections_checked']
    from mmdet.structures import DetDataSample
    x = torch.randn(1, 3, 800, 1344)
    meta = dict(img_shape=(800, 1344), ori_shape=(800, 1344), batch_input_shape=(800, 1344),
                scale_factor=(1.0, 1.0))
    torch.set_num_threads(2)
    with toolbox_scope('mmdet'), torch.no_grad():
        model.predict(x, [DetDataSample(metainfo=meta)])
        t0 = time.perf_counter()
        for _ in range(3):
            model.predict(x, [DetDataSample(metainfo=meta)])
        torch_ms = (time.perf_counter() - t0) / 3 * 1e3
    print(f"M detector 800x1344 {target} fp32: {report['latency']['median_ms']:.0f} ms, "
          f"mmdet PyTorch {torch_ms:.0f} ms (2 threads)")
