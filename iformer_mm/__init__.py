"""iformer-mm: iFormer backbones for mmpretrain, mmdet and mmseg.

Importing the package (``custom_imports=dict(imports=['iformer_mm'])``) registers everything:
the backbone and the optimizer constructors always (they need only mmengine), the mmpretrain heads
and classifiers when mmpretrain is installed. It also allowlists the types mmengine 0.10 stores in
its checkpoints for torch's ``weights_only`` loading (:mod:`iformer_mm.checkpoint.safe_globals`),
makes mmengine read checkpoints (paths, http(s) URLs, ``hf-hub:`` names; release, timm and mm
layouts; ``.pth`` / ``.bin`` / ``.safetensors``) through our caches and safe loader
(:mod:`iformer_mm.zoo.mm_loader`) and, with mmpretrain, registers the model names
(``iformer-m_in1k``, ...) in its ``ModelHub`` (:mod:`iformer_mm.zoo.model_hub`).

Layers, each importing only those before it: ``version`` -> ``utils``, ``registry`` ->
``checkpoint`` -> ``models``, ``engine`` -> ``flops`` -> ``zoo`` -> ``deploy`` -> ``apis``.
"""
from .checkpoint.safe_globals import register_mmengine_checkpoint_globals
from .version import __version__

register_mmengine_checkpoint_globals()

from . import engine  # noqa: E402,F401  (optimizer constructors, hooks, atomic backend)
from .models import IFormer  # noqa: E402  (and the mmpretrain heads when mmpretrain is there)
from .zoo.mm_loader import register_checkpoint_loader  # noqa: E402
from .zoo.model_hub import register_with_mmpretrain  # noqa: E402

register_checkpoint_loader()
register_with_mmpretrain()

__all__ = ['__version__', 'IFormer']
