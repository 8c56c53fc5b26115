"""ONNX export of the fused model, checked against PyTorch with ONNX Runtime.

Uses the TorchScript exporter (``dynamo=False``): the dynamo exporter needs ``onnxscript``,
which is not a dependency, and the traced graph is the same one Core ML gets.
"""
from __future__ import annotations

import contextlib
import io
import os
import warnings
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from ..fileio import atomic_path
from ..models.backbones.iformer_arch import check_resolution
from .build import INPUT_NAME, ExportModel

OPSET = 17


def _import(name: str):
    try:
        return __import__(name)
    except ImportError:
        raise ImportError(f'ONNX export needs {name}: pip install "iformer-mm[deploy]"') from None


def write_onnx(model: torch.nn.Module, example: torch.Tensor, path: str,
               output_names: Sequence[str], opset: int = OPSET) -> None:
    """torch.onnx.export (TorchScript exporter) of ``model`` at the example's static shape."""
    with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter('ignore')
        torch.onnx.export(model, (example,), path, input_names=[INPUT_NAME],
                          output_names=list(output_names), opset_version=opset,
                          do_constant_folding=True, dynamo=False)


def onnxruntime_session(path: str, threads: Optional[int] = None):
    """A CPU InferenceSession (``threads`` intra-op threads; None = ORT default)."""
    ort = _import('onnxruntime')
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])


def compare_with_torch(model: torch.nn.Module, path: str, example: torch.Tensor,
                       output_names: Sequence[str]) -> float:
    """Max abs difference between ONNX Runtime and PyTorch outputs on ``example``."""
    with torch.no_grad():
        ref = model(example)
    ref = (ref,) if isinstance(ref, torch.Tensor) else tuple(ref)
    got = onnxruntime_session(path).run(list(output_names), {INPUT_NAME: example.numpy()})
    if len(got) != len(ref):
        raise RuntimeError(f'ONNX model returned {len(got)} outputs, PyTorch {len(ref)}')
    diffs = []
    for name, a, b in zip(output_names, got, ref):
        if tuple(a.shape) != tuple(b.shape):
            raise RuntimeError(f'ONNX output {name} has shape {tuple(a.shape)}, PyTorch '
                               f'{tuple(b.shape)}')
        diffs.append(float(np.abs(a - b.numpy()).max()))
    return max(diffs)


def export_onnx(em: ExportModel, height: int, width: int, out_path: str,
                seed: int = 0) -> Dict[str, object]:
    """Export ``em`` at (1, 3, height, width) to ``out_path`` atomically, check it with
    onnx.checker and ONNX Runtime; returns a report with the max abs difference."""
    check_resolution(height, width)
    onnx = _import('onnx')
    example = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(seed))
    with atomic_path(out_path) as tmp:
        write_onnx(em.model, example, tmp, em.output_names)
        proto = onnx.load(tmp)
        onnx.checker.check_model(proto)
        max_abs_diff = compare_with_torch(em.model, tmp, example, em.output_names)
    ops: Dict[str, int] = {}
    for node in proto.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    outputs = {o.name: tuple(d.dim_value for d in o.type.tensor_type.shape.dim)
               for o in proto.graph.output}
    return {'path': os.path.abspath(out_path), 'opset': OPSET,
            'inputs': {INPUT_NAME: tuple(example.shape)},
            'outputs': outputs, 'ops': dict(sorted(ops.items(), key=lambda kv: -kv[1])),
            'max_abs_diff_vs_torch': max_abs_diff}
