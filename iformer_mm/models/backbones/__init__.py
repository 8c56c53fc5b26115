from .iformer import ARCH_SETTINGS, IFormer, normalize_arch_name, resolve_arch

__all__ = ['ARCH_SETTINGS', 'IFormer', 'normalize_arch_name', 'resolve_arch']
