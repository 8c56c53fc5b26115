"""The model zoo as OpenMMLab users meet it: configs that name their release URLs, metafiles and
model-index.yml, the model names in mmpretrain (get_model, list_models, inference_model, the
Inferencer), shipped as package data.

The published numbers and release files are written out here, not read from the package, so a
wrong table in iformer_mm/zoo/releases.py cannot hide behind itself.
"""
import os
import re
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from mmengine.config import Config

from .helpers import PY, REPO, randomize_bn, write_release_file

RELEASE = 'https://github.com/ChuanyangZheng/iFormer/releases/download/v0.9/'
TEACHER = 'https://dl.fbaipublicfiles.com/deit/regnety_160-a5fe301d.pth'
#: model name -> (config, release file, published ImageNet top-1)
CLASSIFIERS = {
    'iformer-t_in1k': ('iformer-t_8xb512_in1k.py', 'iFormer_t.pth', 74.1),
    'iformer-s_in1k': ('iformer-s_8xb512_in1k.py', 'iFormer_s.pth', 78.8),
    'iformer-m_in1k': ('iformer-m_8xb512_in1k.py', 'iFormer_m.pth', 80.4),
    'iformer-m-distilled_in1k': ('iformer-m-distilled_8xb512_in1k.py', 'iFormer_m_distill.pth', 81.1),
    'iformer-l_in1k': ('iformer-l_8xb512_in1k.py', 'iFormer_l.pth', 81.9),
    'iformer-l-distilled_in1k': ('iformer-l-distilled_8xb512_in1k.py', 'iFormer_l_distill.pth', 82.7),
    'iformer-l2-distilled_in1k': ('iformer-l2-distilled_8xb512_in1k.py', 'iFormer_l2_distill.pth',
                                  83.9),
    'iformer-h_in1k': ('iformer-h_8xb128_in1k.py', 'iFormer_h.pth', 84.8),
}
#: dense backbones start from the best release of their variant
BACKBONE_FILE = {'t': 'iFormer_t.pth', 's': 'iFormer_s.pth', 'm': 'iFormer_m_distill.pth',
                 'l': 'iFormer_l_distill.pth', 'l2': 'iFormer_l2_distill.pth'}
BOX_MASK_AP = {'m': (40.8, 37.9), 'l': (42.2, 39.1), 'l2': (44.6, 41.1)}
MIOU = {'m': 42.4, 'l': 44.5, 'l2': 46.2}
PHOTO = __import__('matplotlib.cbook', fromlist=['x']).get_sample_data('grace_hopper.jpg',
                                                                      asfileobj=False)


def _metafile(task):
    return yaml.safe_load((REPO / 'configs' / task / 'metafile.yml').read_text())


# ----------------------------------------------------------------------------- configs
def _variant(path: Path) -> str:
    return re.search(r'iformer-(l2|[tsmlh])', path.name).group(1)


def _own_settings(path: Path) -> dict:
    """Top-level string assignments and ``_base_`` of a config file, read without executing it
    (every config in the repository is read; test_dense_configs builds the dense ones)."""
    import ast
    out = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def _setting(path: Path, name: str):
    """``name`` as the config sees it: its own assignment (for ``backbone_checkpoint`` also a
    literal ``checkpoint='URL'``), else its first base's."""
    own = _own_settings(path)
    if name in own:
        return own[name]
    literal = re.findall(r"checkpoint='(https://[^']+)'", path.read_text())
    if name == 'backbone_checkpoint' and literal:
        return literal[0]
    base = own.get('_base_')
    base = base[0] if isinstance(base, list) else base
    if not base or '::' in base:
        return None
    return _setting((path.parent / base).resolve(), name)


def test_every_config_names_the_release_url_of_the_right_file():
    checked = []
    for path in sorted(REPO.glob('configs/**/*.py')):
        text = path.read_text()
        assert 'checkpoints/' not in text, path  # nothing points at a hand-placed file any more
        if 'classification' in path.parts:
            if path.name.startswith('iformer-l2_') or '_base_' in str(path) or 'shapes' in path.name:
                continue  # plain-L2 recipe (only the distilled L2 was released), base, demo
            (name,) = [n for n, (cfg, _, _) in CLASSIFIERS.items() if cfg == path.name]
            # the config says where its published weights are (python tools/test.py CONFIG URL)
            urls = re.findall(r'^# (https://\S+)$', text, re.M)
            assert urls == [RELEASE + CLASSIFIERS[name][1]], path
            if 'distilled' in name:
                assert _setting(path, 'teacher_checkpoint') == TEACHER
                assert 'checkpoint=teacher_checkpoint' in text
        elif 'shapes' in path.name:  # demo: starts from the demo classifier, not a release file
            assert _setting(path, 'backbone_checkpoint').startswith('work_dirs/')
            continue
        else:
            variant = 't' if '_base_' in str(path) else _variant(path)
            assert _setting(path, 'backbone_checkpoint') == RELEASE + BACKBONE_FILE[variant], path
            if 'layer-decay' not in path.name:  # the layer-decay ones inherit the M file's
                assert re.search(r"init_cfg=dict\((type='Pretrained', *)?(# .*\n *)?"
                                 r"checkpoint=(backbone_checkpoint|'https)", text), path
        checked.append(path.name)
    assert len(checked) == 8 + 2 * 5 + 2 + 2 + 3, checked  # cls, dense, layer decay, bases, swaps


# ----------------------------------------------------------------------------- metafiles
def test_metafiles_are_generated_from_the_release_table_and_the_flops_tool():
    """What tools/make_model_index.py writes, numbers measured by tools/flops.py' model_row."""
    from iformer_mm.zoo.metafiles import metafile_texts
    for rel, text in metafile_texts().items():
        assert (REPO / rel).read_text() == text, f'{rel} is stale: python tools/make_model_index.py'


def test_metafiles_carry_the_published_numbers():
    from modelindex.load_model_index import load
    index = load(str(REPO / 'model-index.yml'))
    index.build_models_with_collections()
    models = {m.name: m for m in index.models}
    assert len(models) == 8 + 5 + 5
    for name, (cfg, weights, top1) in CLASSIFIERS.items():
        m = models[name]
        assert m.config == f'configs/classification/{cfg}' and (REPO / m.config).is_file()
        assert m.weights == RELEASE + weights
        (result,) = m.results
        assert (result.task, result.dataset, result.metrics) == (
            'Image Classification', 'ImageNet-1k', {'Top 1 Accuracy': top1})
        assert 'not re-trained here' in m.data['Notes']
        assert m.metadata.data['Training Data'] == 'ImageNet-1k'
    for task in ('classification', 'detection', 'segmentation'):
        (collection,) = _metafile(task)['Collections']
        assert collection['Paper']['URL'] == 'https://arxiv.org/abs/2501.15369'
        assert collection['Code'] == {'URL': 'https://github.com/ChuanyangZheng/iFormer',
                                      'Version': 'v0.9'}
    for v in BACKBONE_FILE:
        det = models[f'mask-rcnn_iformer-{v}_fpn_1x_coco']
        seg = models[f'fpn_iformer-{v}_8xb4-40k_ade20k-512x512']
        for m, task in ((det, 'detection'), (seg, 'segmentation')):
            assert m.weights == RELEASE + BACKBONE_FILE[v] and (REPO / m.config).is_file()
            assert m.config.startswith(f'configs/{task}/')
            assert 'iformer-mm releases no' in m.data['Notes'], m.data['Notes']
        if v in BOX_MASK_AP:
            assert [(r.task, r.metrics) for r in det.results] == [
                ('Object Detection', {'box AP': BOX_MASK_AP[v][0]}),
                ('Instance Segmentation', {'mask AP': BOX_MASK_AP[v][1]})]
            assert [(r.task, r.dataset, r.metrics) for r in seg.results] == [
                ('Semantic Segmentation', 'ADE20K', {'mIoU': MIOU[v]})]
        else:  # no published number: no row with a number
            assert not det.results and not seg.results


def test_metafile_numbers_are_the_flops_tool_output(capsys):
    """Spot check against the CLI itself (tools/flops.py --json), not the function behind it."""
    from iformer_mm.flops import main as flops_main
    import json
    assert flops_main(['--json', '--models', 'm', '--distilled']) == 0
    (row,) = json.loads(capsys.readouterr().out)
    entry = {m['Name']: m for m in _metafile('classification')['Models']}['iformer-m-distilled_in1k']
    assert entry['Metadata']['Parameters'] == row['params'] == 9_293_192
    assert entry['Metadata']['FLOPs'] == row['macs'] and round(row['gmacs'], 2) == 1.64
    assert flops_main(['--json', '--models', 'l2', '--task', 'backbone', '--resolution', '512',
                       '--window-size', '16']) == 0
    (row,) = json.loads(capsys.readouterr().out)
    entry = {m['Name']: m for m in _metafile('detection')['Models']}['mask-rcnn_iformer-l2_fpn_1x_coco']
    assert entry['Metadata']['Backbone FLOPs (512x512)'] == row['macs']
    assert entry['Metadata']['Backbone Parameters'] == row['backbone_params']
    assert round(row['gmacs'], 2) == 24.33  # README "Dense backbones at 512x512"


# ----------------------------------------------------------------------------- mmpretrain API
def test_model_names_are_registered_in_mmpretrain():
    import mmpretrain
    from mmpretrain.apis.model import ModelHub
    assert mmpretrain.list_models('iformer*') == sorted(CLASSIFIERS)
    for name in ('iformer-t_in1k', 'iformer-m-distilled_in1k'):  # (each get parses a config)
        cfg = CLASSIFIERS[name][0]
        assert ModelHub.get(name).config.filename == str(REPO / 'configs' / 'classification' / cfg)
    model = mmpretrain.get_model('iformer-m-distilled_in1k')
    assert type(model).__name__ == 'IFormerDistiller' and model.backbone.arch_name == 'm'
    assert model.head.classifier_dist is not None and model._metainfo.name == 'iformer-m-distilled_in1k'


@pytest.fixture(scope='module')
def m_release(tmp_path_factory):
    """A release-format iFormer-M file whose head predicts ImageNet class 42 for any image."""
    from iformer_mm.models.plain_classifier import IFormerClassifier
    torch.manual_seed(0)
    model = randomize_bn(IFormerClassifier('m', num_classes=1000)).eval()
    with torch.no_grad():
        model.head.classifier.fc.weight.zero_()
        model.head.classifier.fc.bias.zero_()
        model.head.classifier.fc.bias[42] = 10.
    path = tmp_path_factory.mktemp('release') / 'iFormer_m.pth'
    write_release_file(model, 'm', path)
    return model, path.read_bytes()


def test_pretrained_model_name_downloads_through_our_loader(loopback, torch_home, m_release):
    """get_model(name, pretrained=True) -> the metafile's URL (mapped onto the loopback server
    with mmpretrain's own url_mapping) -> our cache and safe loader -> inference on a photo."""
    import mmpretrain
    from mmpretrain.datasets.categories import IMAGENET_CATEGORIES
    source, data = m_release
    url = loopback.add('iFormer_m.pth', data)
    model = mmpretrain.get_model('iformer-m_in1k', pretrained=True,
                                 url_mapping=(re.escape(RELEASE), loopback.url('')))
    assert (torch_home / 'hub' / 'checkpoints' / 'iFormer_m.pth').read_bytes() == data
    for k, v in source.state_dict().items():
        assert torch.equal(v, model.state_dict()[k]), k
    result = mmpretrain.inference_model(model, PHOTO)
    assert result['pred_label'] == 42 and result['pred_class'] == IMAGENET_CATEGORIES[42]
    assert np.asarray(result['pred_scores']).shape == (1000, )
    # by name, and the Inferencer: the cached file is used, no second download
    assert mmpretrain.inference_model('iformer-m_in1k', PHOTO, pretrained=url)['pred_label'] == 42
    inferencer = mmpretrain.ImageClassificationInferencer('iformer-m_in1k', pretrained=url)
    assert inferencer(PHOTO)[0]['pred_class'] == IMAGENET_CATEGORIES[42]
    assert loopback.requests['iFormer_m.pth'] == 1


def test_get_model_from_a_config_then_inference_model():
    """mmpretrain gives a config-built model no index entry; inference_model still works."""
    import mmpretrain
    from mmpretrain.datasets.categories import IMAGENET_CATEGORIES
    model = mmpretrain.get_model(str(REPO / 'configs/classification/iformer-t_8xb512_in1k.py'))
    result = mmpretrain.inference_model(model, PHOTO)
    assert result['pred_class'] == IMAGENET_CATEGORIES[result['pred_label']]
    assert 0 < result['pred_score'] <= 1


def test_the_default_scope_trap_and_the_helper():
    """mmpretrain's Inferencer builds its pipeline in whatever scope is current: after an mmseg
    model it fails; inside toolbox_scope('mmpretrain') it works, and the scope is restored."""
    from mmengine.registry import DefaultScope, init_default_scope
    from mmpretrain.apis import ImageClassificationInferencer
    from iformer_mm.utils.scope import toolbox_scope
    cfg = Config.fromfile(str(REPO / 'configs/classification/iformer-t_1xb32_shapes.py'))
    init_default_scope('mmseg')  # what building an mmseg model / MMSegInferencer leaves behind
    with pytest.raises(KeyError, match='ResizeEdge is not in the mmseg::transform registry'):
        ImageClassificationInferencer(cfg, pretrained=False)
    with toolbox_scope('mmpretrain'):
        inferencer = ImageClassificationInferencer(cfg, pretrained=False)
        assert len(inferencer(PHOTO)[0]['pred_scores']) == 5
    assert DefaultScope.get_current_instance().scope_name == 'mmseg'


# ----------------------------------------------------------------------------- package data
@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp('wheel')
    proc = subprocess.run([PY, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
                           '--no-index', '-q', '-w', str(out), str(REPO)], cwd=out,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = out.glob('iformer_mm-*.whl')
    return path


def test_wheel_ships_the_model_index_and_configs(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    mim = 'iformer_mm/.mim/'
    index = yaml.safe_load(zipfile.ZipFile(wheel).read(mim + 'model-index.yml'))
    for metafile in index['Import']:
        assert mim + metafile in names
        for model in yaml.safe_load(zipfile.ZipFile(wheel).read(mim + metafile))['Models']:
            assert mim + model['Config'] in names, model['Config']
    assert mim + 'configs/classification/_base_/iformer_in1k.py' in names  # bases travel too


def test_mim_search_finds_the_models(wheel, tmp_path):
    """Runs where openmim is installed (it is not in the pinned stack: see scripts/install.sh);
    mim reads ``iformer_mm/.mim/model-index.yml`` of the installed package."""
    mim = pytest.importorskip('mim')
    target = tmp_path / 'site'
    subprocess.run([PY, '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', '--target',
                    str(target), str(wheel)], check=True, capture_output=True, timeout=600)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(target), str(Path(mim.__file__).parents[1])]))
    proc = subprocess.run([PY, '-m', 'mim', 'search', 'iformer-mm'], capture_output=True,
                          text=True, timeout=600, env=env, cwd=tmp_path)
    found = set(re.findall(r'config id: (\S+)', proc.stdout))
    assert found == set(CLASSIFIERS) | {f'mask-rcnn_iformer-{v}_fpn_1x_coco' for v in BACKBONE_FILE} \
        | {f'fpn_iformer-{v}_8xb4-40k_ade20k-512x512' for v in BACKBONE_FILE}, proc.stdout[-3000:]
