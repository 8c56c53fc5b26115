from .layer_decay_constructor import IFormerLayerDecayOptimWrapperConstructor

__all__ = ['IFormerLayerDecayOptimWrapperConstructor']
