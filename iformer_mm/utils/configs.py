"""Config files: where the package's configs and model index are (one locator for a checkout, an
editable install and an installed wheel), and loading a config with clear errors.

Why: default configs (the recipe a deployment or the model hub falls back to) must resolve
wherever the package runs. A source checkout and an editable install keep ``configs/`` and
``model-index.yml`` at the repository root, beside the package; a wheel ships them inside the
package as ``iformer_mm/.mim/`` (where OpenMMLab packages keep theirs, written by ``setup.py``).
"""
from __future__ import annotations

import os
from typing import Optional

__all__ = ['CONFIGS', 'MODEL_INDEX', 'ConfigError', 'index_root', 'find_config', 'load_config',
           'toolbox_of']

CONFIGS = 'configs'
MODEL_INDEX = 'model-index.yml'
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: the places looked in, in order: the wheel's copy, then the checkout beside the package
_ROOTS = (os.path.join(_PACKAGE, '.mim'), os.path.dirname(_PACKAGE))


def index_root() -> Optional[str]:
    """The folder holding ``configs/`` and ``model-index.yml`` (None if no place has them)."""
    for root in _ROOTS:
        if os.path.isfile(os.path.join(root, MODEL_INDEX)) and os.path.isdir(
                os.path.join(root, CONFIGS)):
            return root
    return None


def find_config(relative: str) -> str:
    """The path of ``configs/<relative>`` (e.g. ``'segmentation/fpn_iformer-m_8xb4-40k_ade20k-512x512.py'``).

    Raises FileNotFoundError naming the folders looked in.
    """
    root = index_root()
    path = None if root is None else os.path.join(root, CONFIGS, relative)
    if path is None or not os.path.isfile(path):
        places = ', '.join(os.path.join(r, CONFIGS) for r in _ROOTS)
        raise FileNotFoundError(f'config {relative} is not shipped with iformer_mm (looked in '
                                f'{places})')
    return path


class ConfigError(ValueError):
    """A config file that cannot be used; the message names it and what was expected."""


def load_config(path: str, what: str = 'config file'):
    """``mmengine.Config.fromfile(path)``; a missing file is a ConfigError naming ``what``."""
    from mmengine.config import Config
    if not os.path.isfile(path):
        raise ConfigError(f'{what} not found: {path}')
    return Config.fromfile(path)


def toolbox_of(cfg, source: str = 'the config') -> str:
    """The toolbox a config belongs to (its ``default_scope``): mmpretrain, mmdet or mmseg."""
    from .scope import TOOLBOXES
    scope = cfg.get('default_scope')
    if scope not in TOOLBOXES:
        raise ConfigError(f'{source} has default_scope {scope!r}; expected one of '
                          f"{list(TOOLBOXES)} (configs inherit their toolbox's default_runtime.py)")
    return scope
