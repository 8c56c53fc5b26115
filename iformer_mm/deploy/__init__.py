"""Deployment: a plain-PyTorch classifier wrapper, Core ML and ONNX export with checks.

The exporters are imported lazily (coremltools / onnx are optional dependencies).
"""
from .build import build_export_model, parse_model_name, parse_resolution
from .classifier import IFormerClassifier

__all__ = ['IFormerClassifier', 'build_export_model', 'parse_model_name', 'parse_resolution']
