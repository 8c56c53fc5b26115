"""Helpers shared by the classification / conversion tests: configs, release-like files."""
import argparse
import copy
import functools
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch
from mmengine.config import Config

import iformer_mm  # noqa: F401  (registers the models)
from iformer_mm.checkpoint import ours_to_official

REPO = Path(__file__).resolve().parents[1]
CLS_CONFIGS = REPO / 'configs' / 'classification'

#: variant -> config file name (the nine published classifiers)
CONFIGS: Dict[str, str] = {
    't': 'iformer-t_8xb512_in1k.py',
    's': 'iformer-s_8xb512_in1k.py',
    'm': 'iformer-m_8xb512_in1k.py',
    'l': 'iformer-l_8xb512_in1k.py',
    'l2': 'iformer-l2_8xb512_in1k.py',
    'h': 'iformer-h_8xb128_in1k.py',
    'm_distilled': 'iformer-m-distilled_8xb512_in1k.py',
    'l_distilled': 'iformer-l-distilled_8xb512_in1k.py',
    'l2_distilled': 'iformer-l2-distilled_8xb512_in1k.py',
}

#: parameters of the published classifiers (spec table; timm's exact ports agree)
PARAMS = {'t': 2_886_456, 's': 6_563_368, 'm': 8_907_424, 'l': 14_779_808, 'l2': 24_518_984,
          'h': 99_596_632, 'm_distilled': 9_293_192, 'l_distilled': 15_165_576,
          'l2_distilled': 25_033_008}

#: number of keys in the published state_dicts (spec)
PUBLISHED_KEYS = {'t': 451, 's': 505, 'm': 547, 'l': 697, 'l2': 973, 'h': 1442,
                  'm_distilled': 554, 'l_distilled': 704, 'l2_distilled': 980}


@functools.lru_cache(maxsize=None)
def _parsed(variant: str) -> Config:
    return Config.fromfile(str(CLS_CONFIGS / CONFIGS[variant]))


def load_config(variant: str) -> Config:
    """A fresh copy of the variant's config (parsed once per session)."""
    return copy.deepcopy(_parsed(variant))


def build_classifier(variant: str, model_cfg: Optional[dict] = None) -> torch.nn.Module:
    """The mmpretrain classifier of a config, built without data (``MODELS.build``)."""
    from mmpretrain.registry import MODELS
    return MODELS.build(model_cfg if model_cfg is not None else load_config(variant).model)


def release_args(variant: str) -> argparse.Namespace:
    """An ``args`` Namespace like the published training script's, with numpy scalars."""
    base = variant.replace('_distilled', '')
    return argparse.Namespace(
        model=f'iFormer_{base}', batch_size=512, epochs=np.int64(300), lr=np.float64(4e-3),
        weight_decay=np.float64(0.05), drop_path=np.float32(0.0), smoothing=0.1,
        distillation_type='hard' if 'distilled' in variant else 'none',
        teacher_model='regnety_160', input_size=224, output_dir='checkpoints/')


def write_release_file(model: torch.nn.Module, variant: str, path: Path,
                       with_ema: bool = False) -> Dict[str, torch.Tensor]:
    """Save ``model`` exactly like a published release file; return the published state_dict."""
    official = ours_to_official(model.state_dict())
    ckpt = {'model': official, 'optimizer': {}, 'epoch': 299, 'scaler': {},
            'args': release_args(variant)}
    if with_ema:
        ckpt['model_ema'] = {k: v + 1 if v.is_floating_point() else v for k, v in official.items()}
    torch.save(ckpt, path)
    return official
