"""Deployment: export the fused model to on-device runtimes and check what was written.

One job per module: :mod:`.spec` (what a deployment is, derived once, stored in the report),
:mod:`.build` (the fused model to export), :mod:`.segmentor` / :mod:`.detector` (whole mm models
as plain modules), :mod:`.inputs` (images through the toolbox's pipeline and data
preprocessor, fitted to the artifact), :mod:`.postprocess` (outputs -> the toolbox's data
samples), :mod:`.predict` (one image through an artifact), :mod:`.export` (write, run, compare,
rename, report), :mod:`.evaluate` / :mod:`.detections` (accuracy and comparisons),
:mod:`.artifact` (a written artifact verified and matched to a config), :mod:`.runner`
(image files -> data samples), :mod:`.backend_model` (``tools/test.py CONFIG ARTIFACT``),
:mod:`.cli` / :mod:`.aliases` (the command lines), ``targets/`` (one module per runtime). The
runtimes are imported lazily (they are optional dependencies).
"""
from .build import build_export_model

__all__ = ['build_export_model']
