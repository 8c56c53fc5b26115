"""iformer-mm: iFormer backbones for mmpretrain, mmdet and mmseg.

Importing the package (``custom_imports=dict(imports=['iformer_mm'])``) registers everything:
the backbone and the optimizer constructors always (they need only mmengine), the mmpretrain heads
and classifiers when mmpretrain is installed. It also allowlists the types mmengine 0.10 stores in
its checkpoints for torch's ``weights_only`` loading (see :mod:`iformer_mm.safe_globals`).
"""
from .safe_globals import register_mmengine_checkpoint_globals
from .version import __version__

register_mmengine_checkpoint_globals()

from . import engine  # noqa: E402,F401  (optimizer constructors, hooks, atomic backend)
from .models import IFormer  # noqa: E402  (and the mmpretrain heads when mmpretrain is there)

__all__ = ['__version__', 'IFormer']
