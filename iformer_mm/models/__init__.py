"""Models: the backbone (toolbox-independent) and, when mmpretrain is installed, heads/classifiers."""
from .backbones import IFormer

__all__ = ['IFormer']
