"""Training-engine pieces (optimizer constructors) for mmdet / mmseg / mmpretrain runners.

Importing this package registers them in mmengine's root registries, which the toolboxes'
registries fall back to.
"""
from .atomic_backend import AtomicLocalBackend
from .optimizers import IFormerLayerDecayOptimWrapperConstructor

__all__ = ['AtomicLocalBackend', 'IFormerLayerDecayOptimWrapperConstructor']
