"""tools/deploy.py: every target's artifact runs in its own runtime and equals PyTorch.

fp32 artifacts are re-run here in a fresh runtime session and compared with the *unfused*
PyTorch model (so fusion and export are checked together, independently of the tool's own
report); ExecuTorch must delegate the whole classifier to XNNPACK in one partition; the whole
Semantic FPN segmentor equals mmseg's ``encode_decode``; int8 artifacts are calibrated on real
images and run; bad input is one line, exit 2, nothing written. The int8 accuracy on
demo-trained models is the slow test at the end.
"""
import json
import os

import numpy as np
import pytest
import torch

from iformer_mm.deploy import cli
from iformer_mm.utils.configs import load_config
from iformer_mm.deploy.mm_model import build_mm_model
from iformer_mm.deploy.targets import TARGETS
from iformer_mm.models.backbones.iformer import IFormer
from iformer_mm.models.plain_classifier import IFormerClassifier

from .helpers import REPO, randomize_bn, run_tool

TOL = 1e-4
RUNNABLE = [name for name, t in TARGETS.items() if t.runs_here]
SEG_CONFIG = str(REPO / 'configs/segmentation/fpn_iformer-t_1xb8-800iter_shapes-128x128.py')
CLS_CONFIG = str(REPO / 'configs/classification/iformer-t_1xb32_shapes.py')


def _deploy(argv, capsys):
    """tools/deploy.py in-process with --json; returns the report (the tool must exit 0)."""
    rc = cli.main(argv + ['--json'])
    captured = capsys.readouterr()
    assert rc == 0, captured.err[-2000:]
    return json.loads(captured.out)


def _run_artifact(report, x):
    """A fresh session of the written artifact (not the one the tool used)."""
    session = TARGETS[report['target']].session(report['path'], 1, report['precision'])
    return session(x.numpy())


def _max_diff(got, want) -> float:
    want = (want,) if isinstance(want, torch.Tensor) else want
    return max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want))


@pytest.fixture(scope='module')
def classifiers(tmp_path_factory):
    """Random T and M classifiers (randomised BN statistics) saved as mm checkpoints."""
    folder = tmp_path_factory.mktemp('ckpt')
    out = {}
    for arch, seed in (('t', 0), ('m', 1)):
        torch.manual_seed(seed)
        model = randomize_bn(IFormerClassifier(arch, num_classes=10), seed).eval()
        path = folder / f'{arch}.pth'
        torch.save({'state_dict': model.state_dict()}, path)  # backbone.* / head.* (mm layout)
        out[arch] = (model, str(path))
    return out


@pytest.mark.parametrize('target', RUNNABLE)
@pytest.mark.parametrize('arch', ['t', pytest.param('m', marks=pytest.mark.slow)])
def test_fp32_classifier_equals_pytorch(classifiers, target, arch, tmp_path, capsys):
    model, ckpt = classifiers[arch]
    report = _deploy(['--model', arch, '--target', target, '--checkpoint', ckpt,
                      '--resolution', '96', '--out-dir', str(tmp_path)], capsys)
    assert report['outputs'] == {'logits': [1, 10]} and report['precision'] == 'fp32'
    assert report['max_abs_diff_vs_torch'] <= TOL
    x = torch.randn(2, 3, 96, 96)[:1]
    with torch.no_grad():
        want = model(x)
    assert _max_diff(_run_artifact(report, x), want) <= TOL
    stem = f'iformer_{arch}_classifier_96x96_{target}_fp32'
    assert sorted(os.listdir(tmp_path)) == sorted([stem + TARGETS[target].suffix, stem + '.json'])
    saved = json.loads((tmp_path / f'{stem}.json').read_text())
    assert saved['preprocess']['mean'] == [123.675, 116.28, 103.53]
    assert saved['versions'][TARGETS[target].packages[0]]
    if target == 'executorch':
        assert report['xnnpack_partitions'] == 1 and report['fully_delegated'], report
        # every depthwise conv runs on XNNPACK's depthwise kernels (a 7x7 as three row bands),
        # none as the ~20x slower grouped IGEMM: only the stem / downsampling convs are IGEMMs
        dw = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
        nodes = {o['op_type']: o['nodes'] for o in report['profile']['ops']}
        want_dw = sum(3 if m.kernel_size == (7, 7) else 1 for m in dw)
        assert nodes['Convolution (NHWC, F32) DWConv'] == want_dw, nodes
        full = sum(1 for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups == 1
                   and m.kernel_size != (1, 1))
        assert nodes['Convolution (NHWC, F32) IGEMM'] == full, nodes
    if target == 'openvino':
        assert report['runtime']['precision_ran'] == 'f32'  # not the CPU's silent bf16 default


@pytest.mark.parametrize('kernel,groups', [((7, 7), 16), ((9, 5), 16), ((7, 7), 1), ((3, 3), 16)])
def test_xnnpack_depthwise_bands_equal_the_conv(kernel, groups):
    """Large stride-1 depthwise convs become row bands of <= 25 taps with the same output;
    other convs (full, small, strided) are left alone, and the model passed in is not changed."""
    from iformer_mm.deploy.targets.executorch import (XNNPACK_MAX_DW_TAPS, BandedDepthwiseConv2d,
                                                      band_large_depthwise)
    conv = torch.nn.Conv2d(16, 16, kernel, 1, (kernel[0] // 2, kernel[1] // 2), groups=groups)
    strided = torch.nn.Conv2d(16, 16, kernel, 2, (kernel[0] // 2, kernel[1] // 2), groups=groups)
    model = torch.nn.Sequential(conv, strided).eval()
    banded = band_large_depthwise(model)
    large = groups == 16 and kernel[0] * kernel[1] > XNNPACK_MAX_DW_TAPS
    assert isinstance(banded[0], BandedDepthwiseConv2d) == large and type(model[0]) is torch.nn.Conv2d
    assert type(banded[1]) is torch.nn.Conv2d
    if large:
        assert all(b.kernel_size[0] * b.kernel_size[1] <= XNNPACK_MAX_DW_TAPS for b in banded[0].bands)
    x = torch.randn(2, 16, 13, 11)
    with torch.no_grad():
        assert (banded(x) - model(x)).abs().max() < 1e-5


@pytest.mark.skipif(not TARGETS['openvino'].runs_here, reason='OpenVINO not installed')
def test_openvino_bf16_and_fp16_say_what_they_ran(classifiers, tmp_path, capsys):
    """bf16 is a named precision (parity to bf16 rounding, stated in the report); fp16 on a CPU
    without fp16 arithmetic says what the CPU plugin ran instead. Both reports carry the
    per-op profile: op type x precision ran, shares summing to 1."""
    from iformer_mm.deploy.export import BF16_MIN_COSINE, PROFILE_RUNS
    from iformer_mm.deploy.targets.openvino import cpu_has_bf16
    model, ckpt = classifiers['t']
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        want = model(x).numpy()
    for precision in ('bf16', 'fp16'):
        report = _deploy(['--model', 't', '--target', 'openvino', '--precision', precision,
                          '--checkpoint', ckpt, '--resolution', '96', '--out-dir',
                          str(tmp_path / precision)], capsys)
        got = _run_artifact(report, x)[0]
        cosine = float((got * want).sum() / (np.linalg.norm(got) * np.linalg.norm(want)))
        assert cosine >= BF16_MIN_COSINE and report['parity']['min_cosine'] >= BF16_MIN_COSINE
        runtime, profile = report['runtime'], report['profile']
        assert profile['runs'] == PROFILE_RUNS and abs(sum(o['share'] for o in profile['ops']) - 1) < .01
        assert {'Convolution', 'MatMul'} <= {o['op_type'] for o in profile['ops']}
        if precision == 'bf16':
            assert report['parity']['bf16_min_cosine_required'] == BF16_MIN_COSINE
            if cpu_has_bf16():
                assert runtime['inference_precision_hint'] == 'bf16'
                assert 'bf16' in runtime['precision_ran'] and profile['by_precision']['bf16'] > .5
            else:  # an AVX2-only host: it says what it ran instead
                assert runtime['note'].startswith('bf16 was asked; this CPU has no bf16')
        elif 'f16' not in runtime['precision_ran']:
            assert runtime['note'].startswith('f16 was asked; this CPU has no f16 arithmetic')
    if cpu_has_bf16():
        assert (_run_artifact(report, x)[0] != want).any()  # not the fp32 graph renamed


M_SLOW = pytest.param('m', marks=pytest.mark.slow)  # the same graph, more blocks: minutes


@pytest.mark.parametrize('target', RUNNABLE)
@pytest.mark.parametrize('arch', ['t', M_SLOW])
def test_fp32_windowed_backbone_equals_pytorch(arch, target, tmp_path, capsys):
    torch.manual_seed(2)
    backbone = randomize_bn(IFormer(arch, out_indices=(0, 1, 2, 3), window_size=16), 2).eval()
    ckpt = tmp_path / 'backbone.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in backbone.state_dict().items()}}, ckpt)
    report = _deploy(['--model', arch, '--task', 'backbone', '--target', target, '--checkpoint',
                      str(ckpt), '--resolution', '192x256', '--out-dir', str(tmp_path / 'o')],
                     capsys)
    assert report['window_size'] == 16
    d = backbone.dims
    assert report['outputs'] == {'feat_s4': [1, d[0], 48, 64], 'feat_s8': [1, d[1], 24, 32],
                                 'feat_s16': [1, d[2], 12, 16], 'feat_s32': [1, d[3], 6, 8]}
    x = torch.randn(1, 3, 192, 256)
    with torch.no_grad():
        want = backbone(x)
    assert _max_diff(_run_artifact(report, x), want) <= TOL


def _random_segmentor(config: str, folder):
    torch.manual_seed(0)
    model = randomize_bn(build_mm_model(load_config(config), 'segmentor'), 3)
    path = folder / 'seg.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return model.eval(), str(path)


@pytest.fixture(scope='module')
def segmentor(tmp_path_factory):
    """The demo Semantic FPN config with random weights (randomised BN), saved as mmseg does."""
    return _random_segmentor(SEG_CONFIG, tmp_path_factory.mktemp('seg'))


@pytest.mark.slow
@pytest.mark.parametrize('target', RUNNABLE)
def test_fp32_m_segmentor_equals_encode_decode(target, tmp_path, capsys):
    """The published iFormer-M Semantic FPN config (150 classes), at 128 px to stay small."""
    config = str(REPO / 'configs/segmentation/fpn_iformer-m_8xb4-40k_ade20k-512x512.py')
    model, ckpt = _random_segmentor(config, tmp_path)
    report = _deploy(['--model', 'm', '--task', 'segmentor', '--target', target, '--config',
                      config, '--checkpoint', ckpt, '--resolution', '128', '--out-dir',
                      str(tmp_path / 'o')], capsys)
    assert report['outputs'] == {'seg_logits': [1, 150, 128, 128]}
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        want = model.encode_decode(x, [dict(img_shape=(128, 128), ori_shape=(128, 128))])
    assert _max_diff(_run_artifact(report, x), want) <= TOL


@pytest.mark.parametrize('target', [pytest.param(t, marks=pytest.mark.slow) if t == 'executorch'
                                    else t for t in RUNNABLE])  # ExecuTorch: ~50 s
def test_fp32_segmentor_equals_encode_decode(segmentor, target, tmp_path, capsys):
    model, ckpt = segmentor
    report = _deploy(['--model', 't', '--task', 'segmentor', '--target', target, '--config',
                      SEG_CONFIG, '--checkpoint', ckpt, '--out-dir', str(tmp_path)], capsys)
    assert report['resolution'] == [128, 128]  # from the config's data preprocessor
    dynamic = target != 'executorch'  # ONNX Runtime and OpenVINO take any size by default
    assert report['dynamic'] == dynamic
    assert report['outputs'] == {'seg_logits': [1, 6, 'height', 'width'] if dynamic
                                 else [1, 6, 128, 128]}
    for size in [(128, 128)] + ([(97, 131), (64, 200)] if dynamic else []):
        x = torch.randn(1, 3, *size)
        with torch.no_grad():  # mmseg's own inference path, unfused
            want = model.encode_decode(x, [dict(img_shape=size, ori_shape=size)])
        assert _max_diff(_run_artifact(report, x), want) <= TOL, size


def test_coreml_converts_the_whole_segmentor(segmentor, tmp_path, capsys):
    _, ckpt = segmentor
    report = _deploy(['--model', 't', '--task', 'segmentor', '--target', 'coreml', '--config',
                      SEG_CONFIG, '--checkpoint', ckpt, '--out-dir', str(tmp_path)], capsys)
    assert report['outputs'] == {'seg_logits': [1, 6, 128, 128]} and report['unexpected_ops'] == []
    assert {'upsample_bilinear', 'softmax', 'conv'} <= set(report['ops'])


def test_segmentor_argmax_output(segmentor, tmp_path, capsys):
    model, ckpt = segmentor
    report = _deploy(['--model', 't', '--task', 'segmentor', '--target', 'onnxruntime',
                      '--config', SEG_CONFIG, '--checkpoint', ckpt, '--seg-output', 'argmax',
                      '--out-dir', str(tmp_path)], capsys)
    assert report['outputs'] == {'seg_map': [1, 'height', 'width']}
    x = torch.randn(1, 3, 96, 140)
    with torch.no_grad():
        want = model.encode_decode(x, [dict(img_shape=(96, 140))]).argmax(1)
    got = _run_artifact(report, x)[0]
    assert got.dtype == np.int32 and np.mean(got == want.numpy()) > 0.999


@pytest.fixture(scope='module')
def calib_folder(tmp_path_factory):
    from demo.shapes import make_classification
    root = tmp_path_factory.mktemp('calib') / 'cls'
    make_classification(root, num_train_per_class=4, num_val_per_class=2, image_size=64)
    return root


@pytest.mark.parametrize('target', [
    # ExecuTorch's int8 lowering alone takes ~50 s here: in the slow suite with the accuracy test
    pytest.param(t, marks=pytest.mark.slow) if t == 'executorch' else t for t in RUNNABLE])
def test_int8_is_calibrated_on_images_and_runs(classifiers, calib_folder, target, tmp_path,
                                               capsys):
    _, ckpt = classifiers['t']
    report = _deploy(['--model', 't', '--target', target, '--precision', 'int8', '--checkpoint',
                      ckpt, '--config', CLS_CONFIG, '--calib-data', str(calib_folder / 'train'),
                      '--calib-size', '12', '--out-dir', str(tmp_path)], capsys)
    assert report['calibration'] == {'source': str(calib_folder / 'train'), 'images': 12}
    assert report['resolution'] == [64, 64]  # the config's centre crop
    assert report['parity']['inputs'] == 9  # one random input + 8 calibration images
    assert report['parity']['min_cosine'] > 0.9
    profile = report['profile']  # where the int8 artifact spends its time, per op and precision
    assert profile['kernel_ms'] > 0 and abs(sum(o['share'] for o in profile['ops']) - 1) < .01
    assert {'i8', 'int8'} & set(profile['by_precision']), profile['by_precision']
    if target == 'openvino':
        assert 'i8' in report['runtime']['precision_ran'] or 'u8' in report['runtime']['precision_ran']
        from iformer_mm.deploy.targets.openvino import FLOAT_OP_TYPES, inference_precision
        assert report['kept_float'] == {'op_types': list(FLOAT_OP_TYPES),
                                        'remainder_compiled_as': inference_precision('int8')}
        # the depthwise convolutions stayed float, as the report says
        assert all(o['precision'] not in ('i8', 'u8') for o in profile['ops']
                   if o['op_type'] == 'GroupConvolution')
    if target == 'executorch':
        assert report['xnnpack_partitions'] == 1
        from iformer_mm.deploy.targets.executorch import FLOAT_OPS
        assert report['kept_float']['op_types'] == list(FLOAT_OPS)
        # the depthwise convs ran fp32 between int8 GEMMs, as the report says
        kinds = {o['op_type'] for o in profile['ops']}
        assert 'Convolution (NHWC, F32) DWConv' in kinds, kinds
        assert not any('DWConv' in k and 'QC8' in k for k in kinds), kinds
        assert any('QS8' in k or 'QC8' in k for k in kinds), kinds
    if target == 'onnxruntime':
        assert report['ops'].get('QuantizeLinear', 0) > 0 and report['ops'].get('DequantizeLinear')


@pytest.mark.parametrize('precision', ['fp32', 'int8'])
def test_coreml_converts_at_each_precision(precision, tmp_path, capsys):
    report = _deploy(['--model', 't', '--target', 'coreml', '--precision', precision,
                      '--resolution', '128', '--out-dir', str(tmp_path)], capsys)
    assert report['model_type'] == 'mlProgram' and report['unexpected_ops'] == []
    assert report['outputs'] == {'logits': [1, 1000]} and 'parity' not in report
    if precision == 'int8':
        assert report['spec_version'] >= 7  # iOS 16: int8 weights
        assert report['ops'].get('constexpr_affine_dequantize', 0) + report['ops'].get(
            'constexpr_blockwise_shift_scale', 0) > 0


# -- bad input: one line, exit 2, nothing written ------------------------------------------------
@pytest.mark.parametrize('argv, needle', [
    (['--target', 'tensorrt'], "unknown target 'tensorrt'"),
    (['--target', 'onnxruntime', '--precision', 'fp16'], 'cannot do --precision fp16'),
    (['--target', 'executorch', '--precision', 'int4'], "unknown precision 'int4'"),
    (['--target', 'openvino', '--precision', 'int8'], 'needs --calib-data'),
    (['--target', 'openvino', '--precision', 'int8', '--calib-data', 'nowhere'],
     '--calib-data nowhere does not exist'),
    (['--target', 'onnxruntime', '--task', 'segmentor', '--config', 'nope.py'],
     '--config nope.py does not exist'),
    (['--target', 'onnxruntime', '--resolution', '100'], 'multiple of 32'),
    (['--target', 'coreml', '--val-data', '.'], 'needs a target that runs here'),
])
def test_bad_input_is_one_line_and_writes_nothing(argv, needle, tmp_path, capsys):
    out = tmp_path / 'out'
    rc = cli.main(['--model', 't', '--out-dir', str(out)] + argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and needle in err[0], err
    assert not out.exists()


def test_checkpoint_of_another_variant_is_named(classifiers, tmp_path, capsys):
    _, t_ckpt = classifiers['t']
    rc = cli.main(['--model', 'm', '--target', 'onnxruntime', '--checkpoint', t_ckpt,
                   '--out-dir', str(tmp_path / 'out')])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and 'iFormer-T' in err[0] and 'iFormer-M' in err[0], err
    assert not (tmp_path / 'out').exists()


def test_script_reports_bad_target(tmp_path):
    proc = run_tool('tools/deploy.py', '--model', 't', '--target', 'nope', '--out-dir',
                    tmp_path / 'o', check=False, timeout=300)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "unknown target 'nope'" in lines[0], lines
    assert 'Traceback' not in proc.stderr and not (tmp_path / 'o').exists()


# -- int8 / bf16 accuracy on demo-trained models (slow: trains the demo classifier and segmentor)
INT8_TARGETS = ('openvino', 'onnxruntime', 'executorch')
#: every shipped reduced precision: int8 on each runtime, bf16 where a runtime runs it (OpenVINO)
REDUCED = [(t, 'int8') for t in INT8_TARGETS] + [('openvino', 'bf16')]


@pytest.fixture(scope='module')
def demo_models(tmp_path_factory):
    """The ``make demo`` classifier and Semantic FPN (seed 0), trained here on generated data."""
    base = tmp_path_factory.mktemp('demo')
    run_tool(REPO / 'tools' / 'demo.py', '--tasks', 'seg', '--out-dir', base / 'out', '--data-root',
             base / 'data', cwd=base, threads=2, timeout=3600)
    work = base / 'out' / 'work_dirs'
    return dict(data=base / 'data', cls=str(work / 'cls' / 'epoch_4.pth'),
                seg=str(work / 'seg' / 'iter_800.pth'))


@pytest.mark.slow
@pytest.mark.parametrize('target,precision', REDUCED)
@pytest.mark.parametrize('task', ['classifier', 'segmentor'])
def test_reduced_precision_accuracy_within_one_point_of_fp32(demo_models, task, target, precision,
                                                             tmp_path, capsys):
    data = demo_models['data']
    if task == 'classifier':
        argv = ['--checkpoint', demo_models['cls'], '--config', CLS_CONFIG,
                '--calib-data', str(data / 'cls' / 'train'), '--val-data', str(data / 'cls')]
    else:
        ade = data / 'ade' / 'ADEChallengeData2016'
        argv = ['--task', 'segmentor', '--checkpoint', demo_models['seg'], '--config', SEG_CONFIG,
                '--calib-data', str(ade / 'images' / 'training'), '--val-data', str(ade)]
    report = _deploy(['--model', 't', '--target', target, '--precision', precision,
                      '--out-dir', str(tmp_path)] + argv, capsys)
    acc = report['accuracy']
    metric = acc['metric']
    print(f"{task} {target} {precision}: {metric} fp32 {acc['pytorch_fp32'][metric]:.4f} -> "
          f"{acc['artifact'][metric]:.4f} ({acc['delta_points']:+.2f} points)")
    assert acc['pytorch_fp32'][metric] > (0.8 if task == 'classifier' else 0.3)  # it learned
    assert abs(acc['delta_points']) <= 1.0, acc
