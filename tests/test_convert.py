"""tools/convert.py (and its first name, tools/convert_official.py), iformer_mm.zoo.convert.

Published -> mm files; an mm classifier (as mmengine saves it from our config) and the backbone of
a dense checkpoint -> timm's layout (``.safetensors`` / ``.pth``) that timm loads strictly with
equal outputs, and -> the release layout (timm's own release-file filter is the oracle); the round
trip mm -> timm -> mm is exact. Bad input is refused with one line and no output file;
malicious pickles are never executed."""
import copy
import importlib.util
import os

import pytest
import torch

from iformer_mm.checkpoint import CheckpointError, safe_load
from iformer_mm.models.backbones.iformer_keys import ours_to_official
from iformer_mm.zoo.convert import convert_checkpoint
from iformer_mm.models.backbones.iformer import IFormer

from .helpers import REPO, build_classifier, randomize_bn, run_tool, timm_twin, write_release_file

TOOL = REPO / 'tools' / 'convert_official.py'


def _tool_main(tool=TOOL):
    spec = importlib.util.spec_from_file_location(tool.stem, tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


convert_main = _tool_main()
convert_to = _tool_main(REPO / 'tools' / 'convert.py')


@pytest.fixture(scope='module')
def t_model():
    torch.manual_seed(0)
    return randomize_bn(build_classifier('t')).eval()


@pytest.fixture(scope='module')
def t_release(t_model, tmp_path_factory):
    """A file laid out exactly like the published iFormer_t.pth (plus a model_ema entry)."""
    path = tmp_path_factory.mktemp('release') / 'iFormer_t.pth'
    write_release_file(t_model, 't', path, with_ema=True)
    return path


def _folder_is_clean(folder, expected=()):
    left = sorted(p.name for p in folder.iterdir())
    assert left == sorted(expected), left  # no DST, no temporary file


def _run_cli(*args):
    return run_tool(TOOL, *args, check=False, timeout=300)


# ------------------------------------------------------------------------------------- success
def test_cli_converts_release_file_that_loads_strictly(t_model, t_release, tmp_path):
    dst = tmp_path / 'iformer-t_in1k.pth'
    result = _run_cli(t_release, dst, '--arch', 'iformer-t')
    assert result.returncode == 0, result.stderr
    assert 'iFormer-T' in result.stdout
    # plain tensors + Python values only: loads with the default weights_only, no allowlist
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    assert set(ckpt) == {'state_dict', 'meta'}
    assert all(k.startswith(('backbone.', 'head.')) for k in ckpt['state_dict'])
    meta = ckpt['meta']
    assert meta['arch'] == 't' and meta['weights'] == 'model' and meta['source_epoch'] == 299
    assert meta['source_args']['model'] == 'iFormer_t' and meta['source_args']['lr'] == 4e-3
    fresh = build_classifier('t')
    fresh.load_state_dict(ckpt['state_dict'], strict=True)
    for k, v in t_model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_ema_weights_only_with_flag(t_model, t_release, tmp_path):
    dst = tmp_path / 'ema.pth'
    assert convert_main([str(t_release), str(dst), '--ema']) == 0
    meta_ema = torch.load(dst, weights_only=True)
    assert meta_ema['meta']['weights'] == 'model_ema'
    key = 'backbone.stages.2.0.pwconv1.conv.weight'
    assert torch.equal(meta_ema['state_dict'][key], t_model.state_dict()[key] + 1)


def test_dense_checkpoint_renames_backbone_and_keeps_the_rest(t_model, tmp_path):
    backbone = {f'backbone.{k}': v for k, v in
                ours_to_official({k: v for k, v in t_model.state_dict().items()
                                  if k.startswith('backbone.')}).items()}
    others = {'neck.lateral_convs.0.conv.weight': torch.randn(256, 32, 1, 1),
              'roi_head.bbox_head.fc_cls.bias': torch.randn(81)}
    src, dst = tmp_path / 'mask_rcnn_iformer_t.pth', tmp_path / 'out.pth'
    torch.save({'state_dict': {**backbone, **others},
                'meta': {'epoch': 12, 'dataset_meta': {'classes': ('a', 'b')}}}, src)
    meta = convert_checkpoint(str(src), str(dst), arch='t')
    assert meta['format'] == 'mmdet/mmseg' and meta['renamed_backbone_keys'] == len(backbone)
    out = torch.load(dst, weights_only=True)['state_dict']
    for k, v in others.items():
        assert torch.equal(out[k], v)
    net = IFormer('t')
    net.load_state_dict({k[len('backbone.'):]: v for k, v in out.items()
                         if k.startswith('backbone.')}, strict=True)
    assert torch.equal(net.stages[2][0].pwconv1.conv.weight,
                       t_model.backbone.stages[2][0].pwconv1.conv.weight)


# ------------------------------------------------------------------------------------ bad input
def _expect_refusal(capsys, args, *needles, code=2):
    try:
        rc = convert_main([str(a) for a in args])
    except SystemExit as e:  # argparse usage errors
        rc = e.code
    err = capsys.readouterr().err.strip()
    assert rc == code, err
    assert len(err.splitlines()) == 1 and 'Traceback' not in err, err
    for needle in needles:
        assert needle in err, err


def test_wrong_variant_names_the_variant_it_looks_like(t_release, tmp_path, capsys):
    _expect_refusal(capsys, [t_release, tmp_path / 'x.pth', '--arch', 'm'],
                    'looks like iFormer-T', 'not iFormer-M')
    _folder_is_clean(tmp_path)
    with pytest.raises(CheckpointError, match='looks like iFormer-T'):
        convert_checkpoint(str(t_release), str(tmp_path / 'x.pth'), arch='l2')


def test_bad_inputs_exit_1_with_one_line_and_no_output(t_release, tmp_path, capsys):
    src = tmp_path / 'src'
    src.mkdir()
    out = tmp_path / 'out'
    out.mkdir()
    text = src / 'notes.pth'
    text.write_text('this is not a checkpoint\n')
    truncated = src / 'truncated.pth'
    truncated.write_bytes(t_release.read_bytes()[:len(t_release.read_bytes()) // 2])
    noise = src / 'noise.pth'
    noise.write_bytes(bytes(range(7, 256)) * 4)
    empty = src / 'empty.pth'
    empty.write_bytes(b'')
    no_weights = src / 'no_weights.pth'
    torch.save({'epoch': 3, 'optimizer': {}}, no_weights)
    foreign = src / 'resnet.pth'
    torch.save({'model': {'conv1.weight': torch.zeros(1)}}, foreign)
    partial = src / 'partial.pth'
    published = safe_load(str(t_release))['model']
    published.pop('stages.2.7.block.token_channel_mixer.m.q.c.weight')
    torch.save({'model': published}, partial)
    dst = out / 'dst.pth'
    cases = [
        ([src / 'missing.pth', dst], ['checkpoint not found', 'missing.pth']),
        ([text, dst], ['notes.pth', 'not a PyTorch checkpoint']),
        ([noise, dst], ['noise.pth', 'not a PyTorch checkpoint']),
        ([truncated, dst], ['truncated.pth', 'truncated or not a PyTorch checkpoint']),
        ([empty, dst], ['empty']),
        ([no_weights, dst], ['no model weights']),
        ([foreign, dst], ['not iFormer keys', 'conv1.weight']),
        ([partial, dst], ['missing keys: stages.2.7.attn.q.conv.weight']),
        ([t_release, out / 'no_such_dir' / 'dst.pth'], ['output folder does not exist']),
        ([t_release, out], []),  # DST is a directory
        ([foreign, dst, '--ema'], ["no 'model_ema' weights (it has: model)"]),
    ]
    for args, needles in cases:
        _expect_refusal(capsys, args, *needles)
        _folder_is_clean(out)
    _expect_refusal(capsys, [t_release, dst, '--arch', 'xl'], "--arch 'xl' is not an iFormer variant", code=2)
    _folder_is_clean(out)


def test_unwritable_destination_folder(t_release, tmp_path, capsys):
    if os.geteuid() == 0:  # root ignores permissions: use a folder nobody can create files in
        dst = '/proc/iformer_convert_test.pth'
        _expect_refusal(capsys, [t_release, dst])
        assert not os.path.exists(dst)
        return
    locked = tmp_path / 'locked'
    locked.mkdir()
    locked.chmod(0o555)
    try:
        _expect_refusal(capsys, [t_release, locked / 'dst.pth'], 'not writable')
        _folder_is_clean(locked)
    finally:
        locked.chmod(0o755)


# ------------------------------------------------------------------------------------ malicious
class _Payload:
    """Unpickling this runs ``exec``, which would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f'open({self.marker!r}, "w").write("pwned")', )


def _malicious_file(path, marker):
    torch.save({'model': {'downsample_layers.0.0.c.weight': torch.zeros(16, 3, 5, 5)},
                'args': _Payload(marker)}, path)
    return path


def test_payload_is_real(tmp_path):
    """Guard for the tests below: loaded *unsafely*, the payload does create its marker."""
    marker = tmp_path / 'proof'
    path = _malicious_file(tmp_path / 'evil.pth', marker)
    torch.load(path, weights_only=False)
    assert marker.read_text() == 'pwned'


def test_malicious_checkpoint_is_refused_everywhere(tmp_path, capsys):
    marker = tmp_path / 'PWNED'
    evil = _malicious_file(tmp_path / 'iFormer_t.pth', marker)
    out = tmp_path / 'out'
    out.mkdir()

    with pytest.raises(CheckpointError, match='refusing to load .*exec'):
        safe_load(str(evil))
    _expect_refusal(capsys, [evil, out / 'dst.pth'], 'refusing to load', 'allowlist')
    _folder_is_clean(out)
    backbone = IFormer('t', init_cfg=dict(type='Pretrained', checkpoint=str(evil)))
    with pytest.raises(CheckpointError, match='refusing to load'):
        backbone.init_weights()
    from iformer_mm.models.classifiers import build_teacher
    with pytest.raises(CheckpointError, match='refusing to load'):
        build_teacher('resnet10t', str(evil), num_classes=5)
    result = _run_cli(evil, out / 'dst.pth')
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert 'Traceback' not in result.stderr
    _folder_is_clean(out)
    assert not marker.exists()


# ------------------------------------------------------------------------ --to timm / official
@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """The demo classifier (5 classes) of configs/classification/iformer-t_1xb32_shapes.py as
    mmengine's runner saves it (meta, state_dict, optimizer), BN statistics randomised."""
    from mmengine.config import Config
    from mmengine.runner.checkpoint import get_state_dict, save_checkpoint, weights_to_cpu
    cfg = Config.fromfile(str(REPO / 'configs/classification/iformer-t_1xb32_shapes.py'))
    torch.manual_seed(1)
    model = randomize_bn(build_classifier('t', cfg.model), seed=1).eval()
    path = tmp_path_factory.mktemp('work_dir') / 'epoch_4.pth'
    save_checkpoint({'meta': {'epoch': 4, 'iter': 628, 'dataset_meta': {'classes': cfg.classes}},
                     'state_dict': weights_to_cpu(get_state_dict(model)),
                     'optimizer': torch.optim.AdamW(model.parameters()).state_dict()}, str(path))
    return model, path, cfg


def _image():
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize('suffix', ['.safetensors', '.pth'])
def test_trained_classifier_to_timm_loads_strictly_with_equal_logits(trained, tmp_path, capsys,
                                                                      suffix):
    import timm
    model, src, _ = trained
    dst = tmp_path / f'iformer_t{suffix}'
    assert convert_to([str(src), str(dst), '--to', 'timm']) == 0
    out = capsys.readouterr().out
    assert f"timm.create_model('iformer_t', num_classes=5, checkpoint_path='{dst}')" in out, out
    assert dst.read_bytes()[8:9] == b'{' if suffix == '.safetensors' else dst.read_bytes()[:2] == b'PK'
    ref = timm.create_model('iformer_t', num_classes=5, checkpoint_path=str(dst)).eval()  # strict
    with torch.no_grad():
        x = _image()
        assert (ref(x) - model(x, mode='tensor')).abs().max() <= 1e-5


def test_trained_classifier_to_official_is_the_release_layout(trained, tmp_path):
    model, src, _ = trained
    dst = tmp_path / 'iFormer_t_trained.pth'
    assert convert_to([str(src), str(dst), '--to', 'official']) == 0
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    expected = ours_to_official(model.state_dict())  # the release names of our key tables
    assert set(ckpt) == {'model'} and ckpt['model'].keys() == expected.keys()
    assert all(torch.equal(ckpt['model'][k], v) for k, v in expected.items())
    ref = timm_twin(dst, 't', num_classes=5)  # timm's own filter for release files, strict
    with torch.no_grad():
        x = _image()
        assert (ref(x) - model(x, mode='tensor')).abs().max() <= 1e-5


def test_round_trip_mm_timm_mm_is_exact(trained, tmp_path):
    from mmengine.runner import load_checkpoint
    model, src, cfg = trained
    timm_file, back = tmp_path / 'iformer_t.safetensors', tmp_path / 'back.pth'
    assert convert_to([str(src), str(timm_file), '--to', 'timm']) == 0
    assert convert_to([str(timm_file), str(back), '--to', 'mm']) == 0
    state = torch.load(back, map_location='cpu', weights_only=True)['state_dict']
    original = model.state_dict()
    assert state.keys() == original.keys()
    assert all(torch.equal(state[k], v) for k, v in original.items())
    load_checkpoint(build_classifier('t', cfg.model), str(back), strict=True)


def test_dense_backbone_to_timm_and_official(tmp_path):
    """An mmseg checkpoint's backbone alone: timm's headless model loads it strictly and computes
    the backbone's features; the release layout holds the backbone keys only."""
    import timm
    torch.manual_seed(2)
    backbone = randomize_bn(IFormer('t', out_indices=(0, 1, 2, 3)), seed=2).eval()
    src = tmp_path / 'fpn_iformer-t_iter_800.pth'
    torch.save({'meta': {'iter': 800}, 'state_dict': {
        **{f'backbone.{k}': v for k, v in backbone.state_dict().items()},
        'neck.lateral_convs.0.conv.weight': torch.randn(256, 32, 1, 1),
        'decode_head.conv_seg.weight': torch.randn(150, 128, 1, 1)}}, src)
    dst = tmp_path / 'backbone.safetensors'
    assert convert_to([str(src), str(dst), '--to', 'timm', '--arch', 't']) == 0
    ref = timm.create_model('iformer_t', num_classes=0, checkpoint_path=str(dst)).eval()
    with torch.no_grad():
        x = _image()
        for ours, theirs in zip(backbone(x), ref.forward_intermediates(x, intermediates_only=True)):
            assert (ours - theirs).abs().max() <= 1e-5
    official = tmp_path / 'backbone_official.pth'
    assert convert_to([str(src), str(official), '--to', 'official']) == 0
    keys = torch.load(official, weights_only=True)['model'].keys()
    assert keys == ours_to_official(backbone.state_dict()).keys()


def test_bad_inputs_for_every_layout_are_one_line(trained, tmp_path, capsys):
    import timm
    from timm.models import save_for_hf
    model, src, _ = trained
    fused = tmp_path / 'fused.pth'
    deployed = copy.deepcopy(model)
    deployed.backbone.switch_to_deploy()
    deployed.head.switch_to_deploy()
    torch.save({'state_dict': deployed.state_dict()}, fused)
    save_for_hf(timm.create_model('resnet10t'), tmp_path / 'resnet', safe_serialization=True)
    out = tmp_path / 'out'
    out.mkdir()
    cases = [
        ([src, out / 'x.pth', '--to', 'onnx'], "argument --to: invalid choice: 'onnx'"),
        ([src, out / 'x.pth'], 'the following arguments are required: --to'),
        ([fused, out / 'x.safetensors', '--to', 'timm'], 'deployed (fused) weights'),
        ([fused, out / 'x.pth', '--to', 'official'],
         'convert the checkpoint saved before switch_to_deploy()'),
        ([tmp_path / 'resnet' / 'model.safetensors', out / 'x.pth', '--to', 'mm'],
         'keys are not iFormer keys'),
        ([src, out / 'x.safetensors', '--to', 'timm', '--arch', 'm'],
         'looks like iFormer-T, not iFormer-M'),
        ([src, out / 'x.safetensors', '--to', 'official'], '--to official writes a .pth'),
    ]
    for args, needle in cases:
        try:
            rc = convert_to([str(a) for a in args])
        except SystemExit as e:  # argparse's own errors
            rc = e.code
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith('convert.py: error: ') and err.count('\n') == 1, err
        assert needle in err, err
        _folder_is_clean(out)
