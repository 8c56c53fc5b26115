"""Export: the standalone classifier, checkpoint formats, ONNX parity, Core ML specs, bad input."""
import os

import numpy as np
import pytest
import torch

from .helpers import randomize_bn, run_tool, timm_twin
from iformer_mm.checkpoint import CheckpointError
from iformer_mm.models.backbones.iformer_keys import ours_to_official
from iformer_mm.deploy import aliases as cli
from iformer_mm.utils.fileio import OutputError, atomic_path
from iformer_mm.models.backbones.iformer_arch import parse_model_name
from iformer_mm.models.plain_classifier import IFormerClassifier, load_classifier
from iformer_mm.models.backbones.iformer import IFormer

TOL = 1e-4


def _classifier_checkpoint(tmp_path, arch='t', distilled=False, fmt='official', seed=0):
    """A randomised classifier saved as a published ({'model'}) or mm ({'state_dict'}) file."""
    torch.manual_seed(seed)
    model = IFormerClassifier(arch, num_classes=1000, distilled=distilled)
    model = randomize_bn(model, seed).eval()
    sd = model.state_dict()
    path = tmp_path / f'{arch}_{fmt}{"_distill" if distilled else ""}.pth'
    torch.save({'model': ours_to_official(sd)} if fmt == 'official' else {'state_dict': sd}, path)
    return model, str(path)


def _ort(path, x):
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    return session.run(None, {'image': x.numpy()})


def _only_artifact(folder, name):
    assert sorted(os.listdir(folder)) == [name], 'temp files left behind'


@pytest.mark.parametrize('spelling', ['iformer-m', 'iFormer_m', 'm', 'M', 'iformer_m_distill'])
def test_model_spellings(spelling):
    assert parse_model_name(spelling)[0] == 'm'
    assert parse_model_name(spelling)[1] == spelling.endswith('distill')


@pytest.mark.parametrize('distilled', [False, True])
def test_classifier_matches_timm_and_fuses(tmp_path, distilled):
    ours, path = _classifier_checkpoint(tmp_path, distilled=distilled)
    loaded = load_classifier('t', path).eval()
    assert loaded.distilled == distilled
    ref = timm_twin(path, 't', num_classes=1000, distillation=distilled)
    x = torch.randn(2, 3, 128, 160)
    with torch.no_grad():
        want = ref(x)
        assert float((loaded(x) - want).abs().max()) <= TOL
        loaded.switch_to_deploy()
        assert isinstance(loaded.head.classifier, torch.nn.Linear)
        assert float((loaded(x) - want).abs().max()) <= TOL


def test_mm_format_checkpoint_loads(tmp_path):
    ours, path = _classifier_checkpoint(tmp_path, fmt='mm', distilled=True)
    loaded = load_classifier('iFormer_t', path).eval()
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert float((loaded(x) - ours(x)).abs().max()) <= 1e-6


def test_wrong_variant_checkpoint_is_named(tmp_path):
    _, path = _classifier_checkpoint(tmp_path, arch='t')
    with pytest.raises(CheckpointError, match='iFormer-T'):
        load_classifier('s', path)


def test_onnx_classifier_parity(tmp_path):
    ours, path = _classifier_checkpoint(tmp_path, seed=1)
    report = cli.export('onnx', 'iformer-t', '224', checkpoint=path, out_dir=str(tmp_path / 'out'))
    assert report['task'] == 'classifier' and report['outputs'] == {'logits': [1, 1000]}
    assert report['max_abs_diff_vs_torch'] <= TOL
    _only_artifact(tmp_path / 'out', 'iformer_t_classifier_224x224.onnx')
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        want = ours(x)  # the unfused model: fusion and export together
    got = _ort(report['path'], x)[0]
    assert float(np.abs(got - want.numpy()).max()) <= TOL


def test_onnx_windowed_backbone_parity(tmp_path):
    torch.manual_seed(2)
    backbone = randomize_bn(IFormer('t', out_indices=(0, 1, 2, 3), window_size=16), 2).eval()
    ckpt = tmp_path / 'backbone.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in backbone.state_dict().items()}}, ckpt)
    report = cli.export('onnx', 't', '256x320', task='backbone', checkpoint=str(ckpt),
                        out_dir=str(tmp_path))
    assert report['window_size'] == 16
    assert report['outputs'] == {'feat_s4': [1, 32, 64, 80], 'feat_s8': [1, 64, 32, 40],
                                 'feat_s16': [1, 128, 16, 20], 'feat_s32': [1, 256, 8, 10]}
    assert report['max_abs_diff_vs_torch'] <= TOL
    x = torch.randn(1, 3, 256, 320)
    with torch.no_grad():
        want = backbone(x)
    for got, ref in zip(_ort(report['path'], x), want):
        assert float(np.abs(got - ref.numpy()).max()) <= TOL


def test_coreml_classifier_t_224(tmp_path):
    out = tmp_path / 'ml'
    report = cli.export('coreml', 'iFormer_t', '224', out_dir=str(out))
    assert report['task'] == 'classifier'
    assert report['model_type'] == 'mlProgram' and report['spec_version'] >= 6
    assert report['inputs'] == {'image': [1, 3, 224, 224]}
    assert report['outputs'] == {'logits': [1, 1000]}
    assert report['unexpected_ops'] == []
    assert {'conv', 'matmul', 'softmax', 'gelu', 'sigmoid', 'linear'} <= set(report['ops'])
    assert report['ops']['softmax'] == 5  # 3 stage-2 + 2 stage-3 SHMA, one matmul pair each
    assert report['metadata']['iformer.arch'] == 't'
    _only_artifact(out, 'iformer_t_classifier_224x224.mlpackage')
    from iformer_mm.deploy.targets.coreml import inspect_mlpackage
    again = inspect_mlpackage(report['path'])  # reloads with skip_model_load=True
    assert again['outputs'] == report['outputs'] and again['ops'] == report['ops']
    # exporting again replaces the package atomically
    cli.export('coreml', 't', '224', out_dir=str(out))
    _only_artifact(out, 'iformer_t_classifier_224x224.mlpackage')


def test_coreml_small_windowed_backbone(tmp_path):
    report = cli.export('coreml', 't', '192x256', task='backbone', out_dir=str(tmp_path))
    assert report['inputs'] == {'image': [1, 3, 192, 256]}
    assert report['outputs'] == {'feat_s4': [1, 32, 48, 64], 'feat_s8': [1, 64, 24, 32],
                                 'feat_s16': [1, 128, 12, 16], 'feat_s32': [1, 256, 6, 8]}
    assert report['unexpected_ops'] == []
    assert 'pad' in report['ops']  # stage 2 (12x16) is padded to whole 16x16 windows


# -- bad input -----------------------------------------------------------------------------------
def test_unknown_model_lists_valid_names(tmp_path, capsys):
    assert cli.main('onnx', ['--model', 'iformer_xl', '--out-dir', str(tmp_path / 'o')]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'iformer_xl'" in err and 't, s, m, l, l2, h' in err
    assert not (tmp_path / 'o').exists()


@pytest.mark.parametrize('resolution,message', [('100', 'multiple of 32'), ('32', 'between 64'),
                                                ('224x', 'not understood'), ('4096', '2048')])
def test_bad_resolution(tmp_path, capsys, resolution, message):
    argv = ['--model', 't', '--resolution', resolution, '--out-dir', str(tmp_path / 'o')]
    assert cli.main('coreml', argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'o').exists()


def test_unwritable_out_dir_leaves_nothing(tmp_path, capsys):
    blocker = tmp_path / 'file.txt'
    blocker.write_text('not a folder')
    before = sorted(os.listdir(tmp_path))
    assert cli.main('onnx', ['--model', 't', '--out-dir', str(blocker / 'sub' / 'dir')]) == 2
    assert 'is a file, not a folder' in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == before
    with pytest.raises(OutputError, match='not writable|cannot be created'):
        cli.export('onnx', 't', out_dir='/proc/iformer-out')


def test_failed_export_removes_created_folders(tmp_path, capsys):
    _, path = _classifier_checkpoint(tmp_path, arch='t')
    out = tmp_path / 'new' / 'deeper'
    assert cli.main('onnx', ['--model', 's', '--checkpoint', path, '--out-dir', str(out)]) == 2
    assert 'iFormer-T' in capsys.readouterr().err
    assert not (tmp_path / 'new').exists()


def test_atomic_path_keeps_old_artifact_on_failure(tmp_path):
    final = tmp_path / 'model.mlpackage'
    final.mkdir()
    (final / 'old').write_text('v1')
    with pytest.raises(RuntimeError):
        with atomic_path(str(final)) as tmp:
            os.makedirs(tmp)
            (open(os.path.join(tmp, 'half'), 'w')).close()
            raise RuntimeError('converter crashed')
    assert sorted(os.listdir(tmp_path)) == ['model.mlpackage']
    assert (final / 'old').read_text() == 'v1'


def test_cli_script_reports_bad_model():
    proc = run_tool('tools/export_coreml.py', '--model', 'nope', check=False, timeout=300)
    assert proc.returncode == 2
    assert "unknown model 'nope'" in proc.stderr and 'l2' in proc.stderr
