"""Deployment: export the fused model to on-device runtimes and check what was written.

:mod:`.build` (what to export), :mod:`.cli` (the export command lines), one module per target.
The exporters are imported lazily (coremltools / onnx are optional dependencies).
"""
from .build import build_export_model

__all__ = ['build_export_model']
