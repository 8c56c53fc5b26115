"""``tools/test.py CONFIG ARTIFACT``: a deployed model in the toolbox's own test loop.

Each artifact written by ``tools/deploy.py`` (default: dynamic input on ONNX Runtime / OpenVINO)
is tested with our ``tools/test.py CONFIG ARTIFACT --out`` and compared, image by image, with
what the toolbox's own ``tools/test.py CONFIG CHECKPOINT --out`` (mmdet's, mmseg's, mmpretrain's,
shipped in the packages) writes for the checkpoint it was exported from, on generated sets of
mixed image shapes (landscape, portrait, 2:1, 1:2, odd sizes):

* detector: every image's top-10 detections equal (label, box IoU >= 0.99 in original-image
  pixels, score within 1e-3, mask IoU >= 0.95), bbox / segm mAP equal within 0.1 point;
* segmentor (mmseg ``whole`` and ``slide`` test modes): >= 99.5% of every image's pixels equal,
  mIoU within 0.1;
* classifier: every image's label equal, top-1 equal.

Models: random weights with random BN statistics (the detector's box classifier sharpened so it
has confident detections), so every comparison has something to compare. Bad input (no report,
a truncated file, a config of another task or variant, the runtime missing) is one line, exit 2,
nothing written.
"""
import json
import pickle
import shutil

import numpy as np
import pytest
import torch

from benchmarks.agreement import last_metrics, random_checkpoint, recentre
from demo.shapes import make_ade20k, make_classification
from iformer_mm.apis import launch
from iformer_mm.deploy import cli
from iformer_mm.utils.configs import load_config

from .helpers import REPO, calibrate_bn, run_dist_tool, run_tool, toolbox_test_tool
from .test_deploy_detector import DET_CONFIG

SEG_CONFIG = str(REPO / 'configs/segmentation/fpn_iformer-t_1xb8-800iter_shapes-128x128.py')
CLS_CONFIG = str(REPO / 'configs/classification/iformer-t_1xb32_shapes.py')
#: ADE-like shapes, up to 4:1, small (the demo config resizes them to fit 512 x 128)
SEG_SIZES = '171x128,128x171,256x64,64x256,150x100,97x131'


def _deploy(tmp_path, *argv):
    out = tmp_path / 'artifact'
    assert cli.main(['--model', 't', '--out-dir', str(out), '--json', *map(str, argv)]) == 0
    return next(p for p in out.iterdir() if not p.name.endswith('.json'))


def _both(tmp_path, toolbox, config, checkpoint, artifact, out, *options):
    """The toolbox's own tools/test.py on the checkpoint and ours on the artifact, same data;
    ``--out`` goes to ``ref_out{out}`` / ``ours_out{out}`` under ``tmp_path``."""
    ref = run_tool(toolbox_test_tool(toolbox), config, checkpoint, '--out',
                   tmp_path / f'ref_out{out}', '--work-dir', tmp_path / 'ref', *options,
                   cwd=tmp_path, threads=2)
    ours = run_tool('tools/test.py', config, artifact, '--out', tmp_path / f'ours_out{out}',
                    '--work-dir', tmp_path / 'ours', *options, threads=2)
    return last_metrics(ref.stdout + ref.stderr), last_metrics(ours.stdout + ours.stderr)


# -- segmentor ----------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def ade(tmp_path_factory):
    root = tmp_path_factory.mktemp('ade')
    make_ade20k(root, num_train=2, num_val=6, seed=1, sizes=SEG_SIZES)
    return root / 'ADEChallengeData2016'


@pytest.fixture(scope='module')
def segmentor(tmp_path_factory):
    return random_checkpoint(SEG_CONFIG, 'segmentor', str(tmp_path_factory.mktemp('seg') / 's.pth'))


@pytest.fixture(scope='module')
def seg_artifact(segmentor, tmp_path_factory):
    return _deploy(tmp_path_factory.mktemp('seg_artifact'), '--task', 'segmentor', '--target',
                   'onnxruntime', '--config', SEG_CONFIG, '--checkpoint', segmentor)


@pytest.mark.parametrize('mode', ['whole', pytest.param('slide', marks=pytest.mark.slow)])
def test_segmentor_artifact_scores_what_mmseg_test_scores(ade, segmentor, seg_artifact, mode,
                                                          tmp_path):
    options = ['--cfg-options', f'test_dataloader.dataset.data_root={ade}']
    if mode == 'slide':  # the same artifact, run on overlapping crops as mmseg's slide mode
        options += ["model.test_cfg.mode=slide", 'model.test_cfg.crop_size=(64,64)',
                    'model.test_cfg.stride=(48,48)']
    ref, ours = _both(tmp_path, 'mmseg', SEG_CONFIG, segmentor, seg_artifact, '', *options)
    assert abs(ref['mIoU'] - ours['mIoU']) <= 0.1, (ref, ours)
    from PIL import Image
    pngs = sorted((tmp_path / 'ref_out').glob('*.png'))
    assert len(pngs) == 6
    for png in pngs:  # --out: mmseg's label PNGs, at each image's own size
        want = np.asarray(Image.open(png))
        got = np.asarray(Image.open(tmp_path / 'ours_out' / png.name))
        assert got.shape == want.shape and (got == want).mean() >= 0.995, png.name
    assert len({np.asarray(Image.open(p)).shape for p in pngs}) == 6


# mmseg's IoUMetric made --out's folder on rank 0 only: rank 1 failed writing its first PNG
# whenever it got there first (the launcher now makes the folder on every rank)
def test_dist_test_sh_on_an_artifact_equals_one_process(ade, seg_artifact, tmp_path):
    options = ['--cfg-options', f'test_dataloader.dataset.data_root={ade}']
    one = run_tool('tools/test.py', SEG_CONFIG, seg_artifact, '--out', tmp_path / 'one_out',
                   '--work-dir', tmp_path / 'one', *options, threads=2)
    proc = run_dist_tool('dist_test.sh', SEG_CONFIG, seg_artifact, '2', '--out',
                         tmp_path / 'dist_out', '--work-dir', tmp_path / 'dist', *options)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert abs(last_metrics(proc.stdout + proc.stderr)['mIoU'] -
               last_metrics(one.stdout + one.stderr)['mIoU']) < 1e-6
    from PIL import Image
    pngs = sorted((tmp_path / 'one_out').glob('*.png'))
    assert len(pngs) == 6
    for png in pngs:
        assert (np.asarray(Image.open(tmp_path / 'dist_out' / png.name)) ==
                np.asarray(Image.open(png))).all(), png.name


# -- classifier ---------------------------------------------------------------------------------
def test_classifier_artifact_scores_what_mmpretrain_test_scores(tmp_path):
    data = tmp_path / 'cls'
    make_classification(data, num_train_per_class=1, num_val_per_class=4, seed=1)
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DATASETS, MODELS

    from iformer_mm.utils.scope import toolbox_scope
    cfg = load_config(CLS_CONFIG)
    torch.manual_seed(0)
    with toolbox_scope('mmpretrain'), torch.no_grad():
        # built as the runner builds it: the config's top-level data_preprocessor normalises
        model = MODELS.build(dict(cfg.model, data_preprocessor=dict(
            cfg.model.get('data_preprocessor') or cfg.data_preprocessor)))
        # BN calibrated and logits recentred on this very set, so the labels follow the image
        # and a wrong label or score in the artifact would show
        dataset = DATASETS.build(dict(cfg.test_dataloader.dataset, data_root=str(data)))
        batch = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(len(dataset))]))
        calibrate_bn(model, batch['inputs'])
        recentre(model.head.classifier.fc, model(batch['inputs'], mode='tensor').t())
    ckpt = tmp_path / 'cls.pth'
    torch.save({'state_dict': model.state_dict()}, ckpt)
    artifact = _deploy(tmp_path, '--task', 'classifier', '--target', 'openvino', '--config',
                       CLS_CONFIG, '--checkpoint', ckpt)
    ref, ours = _both(tmp_path, 'mmpretrain', CLS_CONFIG, ckpt, artifact, '.pkl',
                      '--cfg-options', f'test_dataloader.dataset.data_root={data}')
    assert ref['accuracy/top1'] == ours['accuracy/top1']
    want = pickle.loads((tmp_path / 'ref_out.pkl').read_bytes())
    got = pickle.loads((tmp_path / 'ours_out.pkl').read_bytes())
    assert len(want) == len(got) == 20
    assert [int(w['pred_label']) for w in want] == [int(g['pred_label']) for g in got]
    assert max(float(np.abs(w['pred_score'].numpy() - g['pred_score'].numpy()).max())
               for w, g in zip(want, got)) < 1e-4
    # the scores follow the image (a random network, but not one constant answer)
    assert len({int(w['pred_label']) for w in want}) > 1
    # the runner (tools/infer.py --artifact): the same scores as mmpretrain's inference_model
    from mmpretrain.apis import get_model, inference_model

    from iformer_mm.deploy.runner import ArtifactRunner
    runner = ArtifactRunner(str(artifact), threads=1)
    with toolbox_scope('mmpretrain'):
        model = get_model(CLS_CONFIG, pretrained=str(ckpt))
    for image in sorted((data / 'val').rglob('*.png'))[::7]:
        got = runner(str(image))
        with toolbox_scope('mmpretrain'):
            want = inference_model(model, str(image))
        assert int(got.pred_label) == want['pred_label']
        assert float(np.abs(got.pred_score.numpy() - want['pred_scores']).max()) < 1e-4


def test_segmentor_runner_gives_what_mmseg_inference_gives(ade, segmentor, seg_artifact):
    """ArtifactRunner (what tools/infer.py --artifact runs) against mmseg's inference_model."""
    from mmseg.apis import inference_model, init_model

    from iformer_mm.deploy.runner import ArtifactRunner
    from iformer_mm.utils.scope import toolbox_scope
    runner = ArtifactRunner(str(seg_artifact), threads=1)
    with toolbox_scope('mmseg'):
        model = init_model(SEG_CONFIG, str(segmentor), device='cpu')
    for image in sorted((ade / 'images' / 'validation').glob('*.jpg'))[:3]:
        got = runner(str(image)).pred_sem_seg.data
        with toolbox_scope('mmseg'):
            want = inference_model(model, str(image)).pred_sem_seg.data
        assert got.shape == want.shape and (got == want).float().mean() >= 0.995, image.name


# -- bad input ----------------------------------------------------------------------------------
@pytest.fixture
def seg_copy(seg_artifact, tmp_path):
    """A private copy of the segmentor artifact and its report (tests may damage them)."""
    dst = tmp_path / 'copy'
    dst.mkdir()
    shutil.copy(seg_artifact, dst / seg_artifact.name)
    shutil.copy(seg_artifact.with_suffix('.json'), dst / seg_artifact.with_suffix('.json').name)
    return dst / seg_artifact.name


def _refused(argv, capsys, tmp_path, needle):
    work = tmp_path / 'work'
    rc = launch.main('test', [*map(str, argv), '--work-dir', str(work)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and needle in err[0], err
    assert not work.exists()  # nothing written
    return err[0]


def test_artifact_without_its_report_is_refused(seg_copy, ade, capsys, tmp_path):
    seg_copy.with_suffix('.json').unlink()
    _refused([SEG_CONFIG, seg_copy], capsys, tmp_path, 'has no report beside it')


def test_truncated_or_corrupt_artifact_is_refused(seg_copy, ade, capsys, tmp_path):
    data = seg_copy.read_bytes()
    seg_copy.write_bytes(data[:len(data) // 3])
    _refused([SEG_CONFIG, seg_copy], capsys, tmp_path, 'is not the file its report describes')
    # without the checksum the runtime itself refuses it: still one line, naming the file
    report = json.loads(seg_copy.with_suffix('.json').read_text())
    report.pop('sha256')
    seg_copy.with_suffix('.json').write_text(json.dumps(report))
    from iformer_mm.apis import inference
    rc = inference.main([str(ade / 'images' / 'validation'), '--artifact', str(seg_copy),
                         '--out-dir', str(tmp_path / 'infer')])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and 'cannot be loaded by onnxruntime' in err[0], err
    assert not (tmp_path / 'infer').exists()


@pytest.mark.parametrize('config, needle', [
    (DET_CONFIG, 'is a mmdet (detector) config; the artifact'),
    ('configs/segmentation/fpn_iformer-m_8xb4-40k_ade20k-512x512.py', 'builds iFormer-M'),
])
def test_config_of_another_task_or_variant_is_refused(seg_copy, config, needle, capsys, tmp_path):
    config = str(REPO / config) if config.startswith('configs/') else config
    _refused([config, seg_copy], capsys, tmp_path, needle)


def test_config_whose_graph_settings_differ_is_refused(tmp_path, capsys):
    """A detector exported with the demo's test_cfg cannot apply another score threshold."""
    ckpt = random_checkpoint(DET_CONFIG, 'detector', str(tmp_path / 'det.pth'))
    artifact = _deploy(tmp_path, '--task', 'detector', '--target', 'onnxruntime', '--config',
                       DET_CONFIG, '--checkpoint', ckpt)
    _refused([DET_CONFIG, artifact, '--cfg-options', 'model.test_cfg.rcnn.score_thr=0.5'],
             capsys, tmp_path, 'rcnn.score_thr = 0.5')


def test_missing_runtime_is_refused(seg_copy, capsys, tmp_path, monkeypatch):
    import importlib.util
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name == 'onnxruntime' else find_spec(name, *a))
    _refused([SEG_CONFIG, seg_copy], capsys, tmp_path, 'needs the onnxruntime package')
