"""How iFormer's classes reach the mmpretrain / mmdet / mmseg registries.

The three toolboxes' registries (``mmpretrain.registry.MODELS``, ``mmdet.registry.MODELS``,
``mmseg.registry.MODELS``) are children of mmengine's root registries and fall back to their
parents on lookup. Registering the backbone and the optimizer constructors in the root
registries therefore makes one class visible to all three toolboxes without importing any of
them (``import iformer_mm`` works with only mmengine installed). Classes that subclass a
toolbox's own base classes (the mmpretrain heads) register into that toolbox's registry.
"""
from mmengine.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS

__all__ = ['MODELS', 'OPTIM_WRAPPER_CONSTRUCTORS']
