from . import iformer_fused  # noqa: F401  (registers the fused CPU kernels of the blocks)
from .iformer import IFormer
from .iformer_arch import ARCH_SETTINGS, parse_model_name, resolve_arch

__all__ = ['ARCH_SETTINGS', 'IFormer', 'parse_model_name', 'resolve_arch']
