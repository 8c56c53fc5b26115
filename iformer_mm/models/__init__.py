"""Models: the backbone (toolbox-independent) and, when mmpretrain is installed, heads/classifiers."""
from importlib.util import find_spec

from .backbones import IFormer

__all__ = ['IFormer']

if find_spec('mmpretrain') is not None:  # registers into mmpretrain.registry.MODELS
    from .classifiers import IFormerDistiller, IFormerImageClassifier  # noqa: F401
    from .heads import IFormerClsHead, IFormerDistillHead  # noqa: F401
    __all__ += ['IFormerClsHead', 'IFormerDistillHead', 'IFormerDistiller', 'IFormerImageClassifier']
