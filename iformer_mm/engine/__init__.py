"""Training-engine pieces for mmdet / mmseg / mmpretrain runners.

Optimizer constructors, hooks and the atomic checkpoint backend.

Importing this package registers them in mmengine's root registries, which the toolboxes'
registries fall back to.
"""
from .atomic_backend import AtomicLocalBackend
from .hooks import RandomStateHook
from .optimizers import IFormerLayerDecayOptimWrapperConstructor

__all__ = ['AtomicLocalBackend', 'IFormerLayerDecayOptimWrapperConstructor', 'RandomStateHook']
