"""timm's iFormer weights load into our models as they are, and give timm's numbers.

timm's own ``iformer_*`` models (random weights, BatchNorm statistics randomised) are saved by
timm as the Hugging Face Hub holds them (``save_for_hf``: ``model.safetensors`` and
``pytorch_model.bin``, timm's key layout). Checked against timm as the reference:

* logits of our classification configs, every variant timm has weights for (distilled too),
  through mmpretrain's ``get_model(CONFIG, pretrained=FILE)`` and mmengine's
  ``load_checkpoint(..., strict=True)`` (what ``load_from`` runs); iFormer-H (99M parameters:
  building, saving and running it would dominate this file) by its key names and shapes only,
  on the meta device;
* stage features of the detection backbones initialised from the file (``init_cfg``) against
  ``forward_intermediates``, every dense variant, and of the segmentation backbones from a
  ``features_only`` model's file (``stages_2.`` keys) against its outputs (T only: the same
  backbone and loader as detection, so one variant shows the ``features_only`` names);
* the other loaders (deploy's classifier, timm's training checkpoints), and the refusals: a file
  without iFormer weights, or of another variant, is refused on every path instead of leaving a
  random model behind.

Inputs are 64x64 (the stride-32 minimum) to keep the suite fast; windowed attention is switched
off for the dense comparison (timm has no stage windows) except in one 256x256 case where a
single 16x16 window covers stage 2, so the published windowing is compared as it is.
"""
import copy
import functools
import re

import pytest
import torch
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model
from timm.models import save_for_hf

from iformer_mm.checkpoint import CheckpointError
from iformer_mm.models.backbones.iformer import IFormer
from iformer_mm.models.plain_classifier import load_classifier
from iformer_mm.registry import MODELS
from iformer_mm.utils.scope import toolbox_scope

from .helpers import (build_classifier, det_config, load_cls_config, load_dense_config,
                      random_timm_iformer, seg_config)

CLASSIFIERS = ('t', 's', 'm', 'l', 'l2', 'm_distilled', 'l_distilled', 'l2_distilled')
BOTH_FORMATS = ('t', 'm', 'm_distilled')  # also saved as pytorch_model.bin (the rest: safetensors)
DENSE = ('t', 's', 'm', 'l', 'l2')
SIZE = 64
TOL = 1e-5


@pytest.fixture(scope='module')
def timm_files(tmp_path_factory):
    """variant -> (timm's model, the folder of its Hub files), made on first use."""
    made = {}

    def get(variant):
        if variant not in made:
            model = random_timm_iformer(variant, seed=CLASSIFIERS.index(variant))
            folder = tmp_path_factory.mktemp(variant)
            save_for_hf(model, folder, safe_serialization='both' if variant in BOTH_FORMATS else True)
            made[variant] = model, folder
        return made[variant]
    return get


def _image(size: int = SIZE, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(7))


def _max_diff(a, b) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def _get_model(variant: str, pretrained: str):
    """mmpretrain's ``get_model`` on the variant's config (parsed once per session)."""
    import mmpretrain
    with toolbox_scope('mmpretrain'):
        return mmpretrain.get_model(load_cls_config(variant), pretrained=pretrained).eval()


@pytest.mark.parametrize('variant', CLASSIFIERS)
def test_timm_files_give_timm_logits_in_our_classification_configs(timm_files, variant):
    ref, folder = timm_files(variant)
    x = _image()
    with torch.no_grad():
        expected = ref(x)
        model = _get_model(variant, str(folder / 'model.safetensors'))
        assert _max_diff([model(x, mode='tensor')], [expected]) <= TOL
        if (folder / 'pytorch_model.bin').exists():
            for value in model.state_dict().values():  # forget the weights, then load strictly
                value.zero_()
            load_checkpoint(model, str(folder / 'pytorch_model.bin'), map_location='cpu',
                            strict=True)
            assert _max_diff([model(x, mode='tensor')], [expected]) <= TOL


def test_h_keys_and_shapes_are_timms():
    """iFormer-H (layer scale in every block but RepCPE): timm's names and shapes map onto our
    classifier's, built on the meta device (no memory, no init)."""
    import timm
    from iformer_mm.models.backbones.iformer_keys import to_mm_state
    with torch.device('meta'):
        ref = timm.create_model('iformer_h')
        ours = build_classifier('h')
    converted, layout = to_mm_state(ref.state_dict())
    own = ours.state_dict()
    assert layout == 'timm' and sum(k.endswith('.gamma') for k in converted) == 67
    assert converted.keys() == own.keys()
    assert all(converted[k].shape == own[k].shape for k in own)


@functools.lru_cache(maxsize=None)
def _backbone_cfg(config) -> dict:
    return load_dense_config(config).model.backbone


def _dense_backbone(config, checkpoint, window: bool = False) -> IFormer:
    """The config's backbone with ``init_cfg`` reading ``checkpoint``, initialised, eval."""
    cfg = copy.deepcopy(_backbone_cfg(config))
    cfg.init_cfg = dict(type='Pretrained', checkpoint=str(checkpoint))
    backbone = MODELS.build(cfg)
    backbone.init_weights()
    if not window:
        backbone.set_window(0)
    return backbone.eval()


def _features_only_file(ref, variant, folder):
    """timm's ``features_only`` model holding ``ref``'s weights (its keys say ``stages_2.``),
    saved with torch.save, and the model."""
    import timm
    model = timm.create_model(f'iformer_{variant}', features_only=True)
    model.load_state_dict({re.sub(r'^stages\.(\d+)\.', r'stages_\1.', k): v
                           for k, v in ref.state_dict().items() if not k.startswith('head.')},
                          strict=True)
    path = folder / 'features_only.pth'
    torch.save(model.state_dict(), path)
    return model.eval(), path


@pytest.mark.parametrize('variant', DENSE)
def test_timm_files_init_the_dense_backbones_with_timm_features(timm_files, variant, tmp_path):
    ref, folder = timm_files(variant)
    x = _image(batch=1)
    with torch.no_grad():
        det = _dense_backbone(det_config(variant), folder / 'model.safetensors')
        assert _max_diff(det(x), ref.forward_intermediates(x, intermediates_only=True)) <= TOL
    if variant != 't':
        return
    features_only, path = _features_only_file(ref, variant, tmp_path)
    with torch.no_grad():
        seg = _dense_backbone(seg_config(variant), path)
        assert _max_diff(seg(x), features_only(x)) <= TOL


def test_the_published_windowing_at_one_window_equals_timm(timm_files):
    """At 256x256 stage 2 is 16x16: one window of the configs' size 16, i.e. global attention."""
    ref, folder = timm_files('t')
    x = _image(256, batch=1)
    with torch.no_grad():
        det = _dense_backbone(det_config('t'), folder / 'pytorch_model.bin', window=True)
        assert det.window_size == 16
        assert _max_diff(det(x), ref.forward_intermediates(x, intermediates_only=True)) <= TOL


def test_deploy_and_timm_training_checkpoints_load(timm_files, tmp_path):
    """tools/deploy.py's classifier loader; a checkpoint of timm's train script (CheckpointSaver:
    {'state_dict', 'optimizer', 'arch', ...}) as init_cfg and through get_model."""
    from timm.utils import CheckpointSaver
    ref, folder = timm_files('m_distilled')
    x = _image()
    with torch.no_grad():
        expected = ref(x)
        deployed = load_classifier('m', str(folder / 'model.safetensors')).eval()
        assert deployed.distilled and _max_diff([deployed(x)], [expected]) <= TOL
    saver = CheckpointSaver(ref, torch.optim.AdamW(ref.parameters()), checkpoint_dir=str(tmp_path))
    saver.save_checkpoint(epoch=0, metric=0.)
    trained = tmp_path / 'last.pth.tar'
    assert set(torch.load(trained, weights_only=False)) >= {'state_dict', 'optimizer', 'arch'}
    with torch.no_grad():
        assert _max_diff([_get_model('m_distilled', str(trained))(x, mode='tensor')], [expected]) <= TOL
        backbone = IFormer('m', out_indices=(0, 1, 2, 3),
                           init_cfg=dict(type='Pretrained', checkpoint=str(trained)))
        backbone.init_weights()
        assert _max_diff(backbone.eval()(x), ref.forward_intermediates(x, intermediates_only=True)) <= TOL


def test_weights_that_are_not_this_backbone_are_refused_on_every_path(timm_files, tmp_path):
    """Another network's file and another variant's: named, never loaded as missing keys."""
    import timm
    foreign = tmp_path / 'resnet'
    save_for_hf(timm.create_model('resnet10t'), foreign, safe_serialization=True)
    _, s_folder = timm_files('s')
    other_variant = str(s_folder / 'model.safetensors')
    with pytest.raises(CheckpointError, match=r'holds an iFormer-S backbone .*model is iFormer-T'):
        _get_model('t', other_variant)
    model = _get_model('t', None)
    cases = [(str(foreign / 'model.safetensors'), 'no iFormer backbone weights|not iFormer keys'),
             (other_variant, r'holds an iFormer-S backbone .*model is iFormer-T')]
    for path, message in cases:
        with pytest.raises(CheckpointError, match=message):  # what Runner.load_checkpoint runs
            _load_checkpoint_to_model(model, _load_checkpoint(path, map_location='cpu'))
        with pytest.raises(CheckpointError, match=message):
            IFormer('t', init_cfg=dict(type='Pretrained', checkpoint=path)).init_weights()
        with pytest.raises(CheckpointError, match=message):
            load_classifier('t', path)
