"""mmpretrain classifiers (imports mmpretrain): one that ``inference_model`` recognises, and hard
distillation with a timm teacher."""
from .distiller import IFormerDistiller
from .image_classifier import IFormerImageClassifier
from .teacher import build_teacher, load_teacher_weights

__all__ = ['IFormerDistiller', 'IFormerImageClassifier', 'build_teacher', 'load_teacher_weights']
