"""mmpretrain classifiers (imports mmpretrain): hard distillation with a timm teacher."""
from .distiller import IFormerDistiller
from .teacher import build_teacher, load_teacher_weights

__all__ = ['IFormerDistiller', 'build_teacher', 'load_teacher_weights']
