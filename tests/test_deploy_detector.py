"""The whole Mask / Faster R-CNN deployed: ``tools/deploy.py --task detector``.

* The export wrapper (:mod:`iformer_mm.deploy.detector`) plus the host step
  (:mod:`iformer_mm.deploy.postprocess`) equal mmdet's own ``predict(rescale=True)`` on images of
  every shape (landscape, portrait, 2:1, odd sizes): boxes, scores, labels and pasted masks,
  also with ``class_agnostic`` NMS.
* ONNX Runtime and OpenVINO run one dynamic-shape artifact with only standard ops
  (``NonMaxSuppression``, ``RoiAlign``) and match PyTorch on every shape they are given.
* A fixed-size artifact (``--resolution``) keeps the aspect ratio (resize + pad, never stretch).
* Zero detections come back as zero rows, not a crash; a blank picture through an artifact
  that detects things; bad input is one line, exit 2, nothing written; ``tools/infer.py
  --artifact`` prints the boxes PyTorch prints.

``tools/test.py CONFIG ARTIFACT`` against mmdet's own ``tools/test.py`` is
``tests/test_deployed_test_tool.py``. Default suite: iFormer-T with random weights at the demo
config's 128-px scale on a generated COCO set of mixed shapes. Slow: the ``make demo`` detector
(trained here) for the accuracy / int8 figures, and the published-size M.
"""
import json
import pickle

import numpy as np
import pytest
import torch

from benchmarks.agreement import last_metrics, random_checkpoint
from demo.shapes import make_coco
from iformer_mm.deploy import cli
from iformer_mm.deploy.artifact import report_path
from iformer_mm.deploy.build import build_export_model
from iformer_mm.deploy.detections import compare_top, instances
from iformer_mm.deploy.inputs import InputSource, fit
from iformer_mm.deploy.mm_model import build_mm_model
from iformer_mm.deploy.postprocess import detections_sample
from iformer_mm.deploy.predict import Predictor, torch_session
from iformer_mm.deploy.targets import TARGETS
from iformer_mm.utils.configs import load_config
from iformer_mm.utils.scope import toolbox_scope

from .helpers import REPO, run_tool, toolbox_test_tool

DET_CONFIG = str(REPO / 'configs/detection/mask-rcnn_iformer-t_fpn_3e_shapes.py')
RUNTIMES = ('onnxruntime', 'openvino')
#: real-ratio image sizes (W x H) small enough for the default suite: landscape, portrait, 2:1,
#: 1:2, odd; the demo config resizes them keeping the ratio to fit 128 x 128
MIXED_SIZES = '160x120,120x160,200x100,100x200,107x160,125x83'


def _deploy(argv, capsys):
    rc = cli.main(argv + ['--json'])
    captured = capsys.readouterr()
    assert rc == 0, captured.err[-2000:]
    return json.loads(captured.out)


@pytest.fixture(scope='module')
def coco(tmp_path_factory):
    """Six validation images of six shapes (COCO layout, generated)."""
    root = tmp_path_factory.mktemp('coco')
    make_coco(root, num_train=4, num_val=6, seed=0, sizes=MIXED_SIZES)
    return root


@pytest.fixture(scope='module')
def detector(tmp_path_factory):
    """The demo Mask R-CNN config (iFormer-T, 5 classes, 128 px), saved as mmdet does."""
    return confident_detector(DET_CONFIG, tmp_path_factory.mktemp('det') / 'det.pth')


def confident_detector(config, path, seed=0):
    """Random weights (random BN statistics) whose box classifier is sharpened, so the model has
    detections above the visualisers' 0.3 score threshold on every image (the benchmark's own
    :func:`benchmarks.agreement.random_checkpoint`); returns (model, checkpoint path)."""
    random_checkpoint(config, 'detector', str(path), seed)
    return build_mm_model(load_config(config), 'detector', str(path)), str(path)


def _faster_rcnn_config(folder):
    """The demo config without its mask branch (a Faster R-CNN), class-agnostic NMS in both
    stages (the setting most often changed from mmdet's default)."""
    path = folder / 'faster.py'
    path.write_text(f"_base_ = [{DET_CONFIG!r}]\n"
                    "model = dict(roi_head=dict(mask_roi_extractor=None, mask_head=None),\n"
                    "             test_cfg=dict(rpn=dict(nms=dict(class_agnostic=True)),\n"
                    "                           rcnn=dict(nms=dict(class_agnostic=True))))\n")
    return str(path)


def _prepared(em, root):
    return InputSource(em).from_dataset(data_root=str(root) + '/')


def _mmdet(model, prepared):
    with toolbox_scope('mmdet'), torch.no_grad():
        return model.predict(prepared.inputs, [prepared.data_sample.clone()])[0]


def _assert_same_detections(got, want, top=10):
    """The acceptance rule: the top detections equal (label, box IoU, score, mask IoU)."""
    r = compare_top(instances(want), instances(got), top=top)
    assert r['compared'] == min(top, len(want.pred_instances)) > 0, r
    assert r['matched'] == r['compared'], r
    return r


@pytest.mark.parametrize('kind', ['mask', 'faster_class_agnostic'])
def test_wrapper_and_host_step_equal_mmdet_predict_on_every_shape(detector, coco, kind, tmp_path):
    """Mask R-CNN; and Faster R-CNN with class-agnostic NMS in the RPN and the R-CNN."""
    _, ckpt = detector
    config = DET_CONFIG
    if kind != 'mask':
        config = _faster_rcnn_config(tmp_path)
        _, ckpt = confident_detector(config, tmp_path / 'faster.pth', seed=1)
    em = build_export_model('t', 'detector', ckpt, config)
    assert em.spec.geometry.dynamic and em.spec.input_names == ('image', 'img_shape')
    assert em.output_names == (('boxes', 'scores', 'labels', 'masks') if kind == 'mask'
                               else ('boxes', 'scores', 'labels'))
    # the reference: the same weights, built and run by mmdet, not fused
    ref_model = build_mm_model(load_config(config), 'detector', ckpt)
    predictor = Predictor(em.spec, torch_session(em.model))
    shapes = set()
    for prepared in _prepared(em, coco):
        shapes.add(tuple(prepared.meta['ori_shape']))
        got, want = predictor(prepared, prepared.data_sample.clone()), _mmdet(ref_model, prepared)
        assert len(got.pred_instances) == len(want.pred_instances) > 0
        _assert_same_detections(got, want, top=len(want.pred_instances))
        if kind == 'mask':
            assert got.pred_instances.masks.shape == want.pred_instances.masks.shape
    assert {h > w for h, w in shapes} == {True, False}  # portrait and landscape were seen


@pytest.fixture(scope='module')
def artifacts(detector, tmp_path_factory):
    """The default (dynamic) fp32 artifact of the detector per runtime, with its report."""
    _, ckpt = detector
    out = {}
    for target in RUNTIMES:
        folder = tmp_path_factory.mktemp(target)
        assert cli.main(['--model', 't', '--task', 'detector', '--target', target, '--config',
                         DET_CONFIG, '--checkpoint', ckpt, '--out-dir', str(folder)]) == 0
        (path,) = [p for p in folder.iterdir() if p.suffix != '.json']
        with open(report_path(str(path))) as f:
            out[target] = json.load(f)
    return out


@pytest.mark.parametrize('target', RUNTIMES)
def test_dynamic_artifact_has_standard_ops_and_matches_pytorch_on_every_shape(
        detector, coco, artifacts, target):
    _, ckpt = detector
    report = artifacts[target]
    assert report['dynamic'] and report['spec']['geometry']['dynamic']
    assert report['inputs'] == {'image': [1, 3, 'height', 'width'], 'img_shape': [2]}
    assert report['outputs'] == {'boxes': [20, 4], 'scores': [20], 'labels': [20],
                                 'masks': [20, 28, 28]}
    assert report['parity']['input_shapes'] == [[128, 128], [96, 64], [64, 96]]
    ops = report['ops']
    nms, roi = (('NonMaxSuppression', 'RoiAlign') if target == 'onnxruntime'
                else ('NonMaxSuppression', 'ROIAlign'))
    assert ops.get(nms, 0) == 2 and ops.get(roi, 0) == 8, ops  # RPN + RoI NMS; 4 levels x 2
    p = report['parity']
    assert p['detections_matched'] == p['detections_checked'] > 0, p
    if target == 'onnxruntime':
        import onnx
        proto = onnx.load(report['path'])
        assert {n.domain for n in proto.graph.node} <= {'', 'ai.onnx'}  # no custom-op library
    # a fresh session of the written file: a portrait image runs at mmdet's own input size (not
    # shrunk into a landscape input) and gives PyTorch's detections (every image of the mixed
    # set: test_tools_test_on_the_artifact_gives_what_mmdet_tools_test_gives)
    em = build_export_model('t', 'detector', ckpt, DET_CONFIG)
    session = TARGETS[target].session(report['path'], 1, 'fp32')
    artifact, reference = Predictor(em.spec, session), Predictor(em.spec, torch_session(em.model))
    portrait = next(p for p in _prepared(em, coco) if p.meta['ori_shape'][0] > p.meta['ori_shape'][1])
    (image, img_shape), meta = fit(portrait, em.spec).arrays, portrait.meta
    assert image.shape[2:] == tuple(portrait.inputs.shape[2:]) and image.shape[2] > image.shape[3]
    assert tuple(img_shape) == tuple(meta['img_shape'])
    _assert_same_detections(artifact(portrait, portrait.data_sample.clone()),
                            reference(portrait, portrait.data_sample.clone()))
    # a blank picture through the artifact that detects things above: rows, no crash
    blank = session(np.zeros((1, 3, 96, 128), np.float32), np.array([90, 128]))
    assert [g.shape for g in blank] == [(20, 4), (20,), (20,), (20, 28, 28)]


@pytest.fixture(scope='module')
def mmdet_reference(detector, coco, tmp_path_factory):
    """mmdet's own tools/test.py on the checkpoint: its --out pickle and metrics."""
    _, ckpt = detector
    folder = tmp_path_factory.mktemp('mmdet_test')
    proc = run_tool(toolbox_test_tool('mmdet'), DET_CONFIG, ckpt, '--out', folder / 'ref.pkl',
                    '--work-dir', folder / 'work', *_coco_options(coco), cwd=folder, threads=2)
    return pickle.loads((folder / 'ref.pkl').read_bytes()), last_metrics(proc.stdout + proc.stderr)


def _coco_options(root):
    return ['--cfg-options', f'test_dataloader.dataset.data_root={root}/',
            f'test_evaluator.ann_file={root}/annotations/instances_val2017.json']


@pytest.mark.parametrize('target', ['onnxruntime', pytest.param('openvino', marks=pytest.mark.slow)])
def test_tools_test_on_the_artifact_gives_what_mmdet_tools_test_gives(
        coco, artifacts, mmdet_reference, target, tmp_path):
    """``tools/test.py CONFIG ARTIFACT --out`` (with ``--show-dir``) against mmdet's own
    ``tools/test.py CONFIG CHECKPOINT --out``: per image the top-10 detections, and the mAPs."""
    want, ref_metrics = mmdet_reference
    proc = run_tool('tools/test.py', DET_CONFIG, artifacts[target]['path'], '--out',
                    tmp_path / 'ours.pkl', '--work-dir', tmp_path / 'work', '--show-dir', 'shown',
                    *_coco_options(coco), threads=2)
    ours = last_metrics(proc.stdout + proc.stderr)
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert abs(ref_metrics[key] - ours[key]) <= 0.001, (ref_metrics, ours)
    got = {d['img_id']: d for d in pickle.loads((tmp_path / 'ours.pkl').read_bytes())}
    assert sorted(got) == sorted(d['img_id'] for d in want) and len(want) == 6
    for image in want:
        r = compare_top(image['pred_instances'], got[image['img_id']]['pred_instances'])
        assert r['compared'] == 10 and r['matched'] == 10, (image['ori_shape'], r)
        assert len(got[image['img_id']]['pred_instances']['scores']) == len(
            image['pred_instances']['scores'])
    assert {h > w for h, w in (d['ori_shape'] for d in want)} == {True, False}
    # --show-dir: one drawn picture per image, under the run's timestamped folder
    assert len(list((tmp_path / 'work').glob('2*/shown/*.jpg'))) == 6


def test_fixed_resolution_keeps_the_aspect_ratio(detector, coco):
    """--resolution: a portrait image is shrunk to fit and padded, both axes by one factor."""
    _, ckpt = detector
    em = build_export_model('t', 'detector', ckpt, DET_CONFIG, resolution=(64, 96))
    assert not em.spec.geometry.dynamic and 'fixed 64x96' in em.spec.geometry.describe()
    predictor = Predictor(em.spec, torch_session(em.model))
    for prepared in _prepared(em, coco):
        outputs, meta = predictor.outputs(prepared)
        h, w = prepared.meta['img_shape']
        f = min(64 / h, 96 / w, 1.0)
        assert tuple(meta['img_shape']) == (min(64, int(h * f + 0.5)), min(96, int(w * f + 0.5)))
        sx = meta['scale_factor'][0] / prepared.meta['scale_factor'][0]
        sy = meta['scale_factor'][1] / prepared.meta['scale_factor'][1]
        assert abs(sx - sy) < 0.02 and abs(sx - f) < 0.02  # never stretched
        assert outputs[0].shape == (20, 4)


@pytest.mark.parametrize('target', ['onnxruntime', pytest.param('openvino', marks=pytest.mark.slow)])
def test_zero_detections_are_zero_rows_not_a_crash(tmp_path, coco, detector, target, capsys):
    """score_thr 1.0: no box survives, in PyTorch and in the runtime."""
    _, ckpt = detector
    config = tmp_path / 'none.py'
    config.write_text(f"_base_ = [{DET_CONFIG!r}]\n"
                      "model = dict(test_cfg=dict(rcnn=dict(score_thr=1.0)))\n")
    blank = torch.zeros(1, 3, 128, 96)
    report = _deploy(['--model', 't', '--task', 'detector', '--target', target, '--config',
                      str(config), '--checkpoint', ckpt, '--out-dir',
                      str(tmp_path / target)], capsys)
    got = TARGETS[target].session(report['path'], 1, 'fp32')(blank.numpy(),
                                                              np.array([128, 90]))
    assert [g.shape for g in got] == [(20, 4), (20,), (20,), (20, 28, 28)]
    assert not np.any(got[1]) and not np.any(got[0]) and not np.any(got[3])
    sample = detections_sample(got, dict(img_shape=(128, 90), ori_shape=(100, 70),
                                          scale_factor=(1.28, 1.28)))
    assert len(sample.pred_instances) == 0 and sample.pred_instances.masks.shape == (0, 100, 70)


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


def test_infer_artifact_prints_what_pytorch_prints(detector, coco, artifacts, tmp_path, capsys):
    """tools/infer.py --artifact: the same objects, scores and boxes as --weights."""
    from iformer_mm.apis import inference
    _, ckpt = detector
    report = artifacts['onnxruntime']
    images = sorted(str(p) for p in (coco / 'val2017').glob('*.jpg'))
    lines = {}
    for mode, extra in (('pytorch', ['--config', DET_CONFIG, '--weights', ckpt]),
                        ('artifact', ['--artifact', report['path']])):
        assert inference.main(images + extra + ['--out-dir', str(tmp_path / mode)]) == 0
        out = capsys.readouterr().out.replace(str(tmp_path / mode), 'OUT')
        lines[mode] = [line for line in out.splitlines() if '.jpg: ' in line]  # not mmengine's
        assert len(list((tmp_path / mode).glob('*.png'))) == len(images)
    assert lines['pytorch'] == lines['artifact'] and len(lines['artifact']) == len(images), lines
    assert all(' 0 objects' not in line and '[' in line for line in lines['artifact']), lines
    rc = inference.main(images + ['--artifact', str(tmp_path / 'missing.onnx'),
                                  '--out-dir', str(tmp_path / 'x')])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and 'missing.onnx does not exist' in err[0], err


@pytest.mark.slow  # ~50 s (the ExecuTorch export)
def test_dense_part_for_executorch_equals_mmdet_and_whole_detector_is_refused(detector, coco,
                                                                                tmp_path, capsys):
    """ExecuTorch gets the detector's dense part (backbone + FPN + RPN convs), equal to mmdet's
    own ``extract_feat`` + ``rpn_head`` outputs; asking it for the whole detector is one line."""
    model, ckpt = detector
    report = _deploy(['--model', 't', '--task', 'detector-dense', '--target', 'executorch',
                      '--config', DET_CONFIG, '--checkpoint', ckpt, '--out-dir',
                      str(tmp_path / 'o')], capsys)
    assert list(report['outputs'])[:2] == ['fpn_0', 'fpn_1'] and 'rpn_reg_4' in report['outputs']
    assert not report['dynamic'] and report['resolution'] == [128, 128]
    em = build_export_model('t', 'detector-dense', ckpt, DET_CONFIG, target='executorch')
    (x,) = fit(_prepared(em, coco)[1], em.spec).tensors()  # a portrait image, padded to 128
    got = TARGETS['executorch'].session(report['path'], 1)(x.numpy())
    with toolbox_scope('mmdet'), torch.no_grad():
        feats = model.extract_feat(x)
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
    """The trained demo detector: the artifact's mAP on the demo's val set (deploy --val-data,
    mmdet's predict as the reference on the same inputs), and through tools/test.py on a
    mixed-shape set, image by image against mmdet's own tools/test.py."""
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
    limit = 0.1 if precision == 'fp32' else 1.0
    for key in ('bbox_mAP', 'segm_mAP'):
        assert abs(acc['delta_points'][key]) <= limit, acc
    if precision == 'fp32':
        assert acc['top_detections_matched'] == acc['top_detections_compared'] > 0, acc
    blank = np.zeros((1, 3, 128, 128), np.float32)
    got = TARGETS[target].session(report['path'], 1, precision)(blank, np.array([128, 128]))
    assert [g.shape[0] for g in got] == [20] * 4  # a blank picture: rows, no crash
    # the toolbox's own test loop, on images shaped as COCO's (the demo trained on squares)
    mixed = tmp_path / 'mixed'
    make_coco(mixed, num_train=1, num_val=12, seed=5, sizes='coco')
    options = ['--cfg-options', f'test_dataloader.dataset.data_root={mixed}/',
               f'test_evaluator.ann_file={mixed}/annotations/instances_val2017.json']
    ref = run_tool(toolbox_test_tool('mmdet'), DET_CONFIG, demo_detector['ckpt'], '--out',
                   tmp_path / 'ref.pkl', '--work-dir', tmp_path / 'r', *options, threads=2)
    ours = run_tool('tools/test.py', DET_CONFIG, report['path'], '--out', tmp_path / 'ours.pkl',
                    '--work-dir', tmp_path / 'o', *options, threads=2)
    ref_map, ours_map = (last_metrics(p.stdout + p.stderr) for p in (ref, ours))
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert abs(ref_map[key] - ours_map[key]) <= limit / 100, (ref_map, ours_map)
    if precision == 'fp32':
        want = pickle.loads((tmp_path / 'ref.pkl').read_bytes())
        got = {d['img_id']: d for d in pickle.loads((tmp_path / 'ours.pkl').read_bytes())}
        for image in want:
            r = compare_top(image['pred_instances'], got[image['img_id']]['pred_instances'])
            assert r['matched'] == r['compared'], (image['ori_shape'], r)


@pytest.mark.slow
@pytest.mark.parametrize('target', RUNTIMES)
def test_published_size_m_detector_equals_mmdet_on_coco_shaped_images(target, tmp_path, capsys):
    """The COCO recipe's M Mask R-CNN at its test scale (1333x800, keep ratio, padded to 32),
    random confident weights: one dynamic artifact; on COCO-shaped images (landscape, portrait,
    2:1) every detection mmdet's own tools/test.py gives, the artifact gives through ours."""
    config = str(REPO / 'configs/detection/mask-rcnn_iformer-m_fpn_1x_coco.py')
    ckpt = random_checkpoint(config, 'detector', str(tmp_path / 'm.pth'))
    report = _deploy(['--model', 'm', '--task', 'detector', '--target', target, '--config',
                      config, '--checkpoint', ckpt, '--latency', '3', '--threads', '2',
                      '--out-dir', str(tmp_path / 'o')], capsys)
    assert report['dynamic'] and report['resolution'] == [800, 1344]
    assert report['outputs']['boxes'] == [100, 4] and report['outputs']['masks'] == [100, 28, 28]
    assert report['parity']['detections_matched'] == report['parity']['detections_checked']
    coco = tmp_path / 'coco'
    make_coco(coco, num_train=1, num_val=3, seed=2, sizes='640x480,480x640,600x300')
    options = ['--cfg-options', f'test_dataloader.dataset.data_root={coco}/',
               f'test_evaluator.ann_file={coco}/annotations/instances_val2017.json']
    run_tool(toolbox_test_tool('mmdet'), config, ckpt, '--out', tmp_path / 'ref.pkl',
             '--work-dir', tmp_path / 'r', *options, threads=2)
    run_tool('tools/test.py', config, report['path'], '--out', tmp_path / 'ours.pkl',
             '--work-dir', tmp_path / 'w', *options, threads=2)
    want = pickle.loads((tmp_path / 'ref.pkl').read_bytes())
    got = {d['img_id']: d for d in pickle.loads((tmp_path / 'ours.pkl').read_bytes())}
    for image in want:  # every detection (max_per_img 100), not only the top 10
        n = len(image['pred_instances']['scores'])
        r = compare_top(image['pred_instances'], got[image['img_id']]['pred_instances'], top=n)
        assert n > 10 and r['matched'] == n, (image['ori_shape'], r)
