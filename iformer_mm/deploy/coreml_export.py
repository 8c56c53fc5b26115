"""Core ML export: fused model -> TorchScript trace -> ML Program (FP16, iOS15+) .mlpackage.

Why tracing: coremltools' torch.export path fails on torch 2.14; the TorchScript trace converts
cleanly (window geometry is read as Python ints, so the traced graph has constant shapes).
Linux can convert but not run Core ML, so :func:`inspect_mlpackage` checks what can be checked
without running: the spec, input/output names and shapes, and the op histogram.
"""
from __future__ import annotations

import collections
import contextlib
import io
import os
import warnings
from typing import Dict, List, Sequence, Tuple

import torch

from ..fileio import atomic_path
from ..models.backbones.iformer_arch import check_resolution
from .build import INPUT_NAME, ExportModel

# Everything a fused iFormer lowers to. Anything else (loops, gathers, custom layers) means the
# graph changed in a way that matters for on-device latency and must be looked at.
EXPECTED_OPS = frozenset({
    'const', 'cast', 'conv', 'add', 'mul', 'gelu', 'sigmoid', 'softmax', 'matmul', 'linear',
    'reshape', 'transpose', 'split', 'slice_by_index', 'pad', 'reduce_mean'})


def _import_coremltools():
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter('ignore')
            import coremltools as ct
    except ImportError:
        raise ImportError('Core ML export needs coremltools: pip install "iformer-mm[deploy]" '
                          '(coremltools>=9.0)') from None
    return ct


def trace(model: torch.nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """TorchScript trace of the (fused, eval) model on ``example``."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter('ignore')  # jit.trace deprecation / tracer warnings
        return torch.jit.trace(model, example, check_trace=False)


def convert(traced: torch.jit.ScriptModule, input_shape: Sequence[int],
            output_names: Sequence[str]):
    """ct.convert to an ML Program, FP16 compute, iOS15 minimum target."""
    ct = _import_coremltools()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return ct.convert(traced,
                          inputs=[ct.TensorType(name=INPUT_NAME, shape=tuple(input_shape))],
                          outputs=[ct.TensorType(name=n) for n in output_names],
                          convert_to='mlprogram',
                          compute_precision=ct.precision.FLOAT16,
                          minimum_deployment_target=ct.target.iOS15,
                          skip_model_load=True)


def _describe(em: ExportModel, height: int, width: int):
    meta = {'iformer.arch': em.arch, 'iformer.task': em.task,
            'iformer.distilled': str(em.distilled), 'iformer.resolution': f'{height}x{width}',
            'iformer.window_size': str(em.window_size), 'iformer.weights': em.weights,
            'iformer.input': 'RGB float (1,3,H,W), ImageNet mean/std normalised'}
    what = ('ImageNet logits' if em.task == 'classifier'
            else 'four feature maps, strides 4/8/16/32')
    return meta, f'iFormer-{em.arch.upper()} {em.task} ({what}), fused, FP16'


def export_coreml(em: ExportModel, height: int, width: int, out_path: str) -> Dict[str, object]:
    """Trace, convert and save ``em`` at (1, 3, height, width) to ``out_path`` atomically.

    Returns :func:`inspect_mlpackage` of the written package.
    """
    check_resolution(height, width)
    example = torch.randn(1, 3, height, width)
    mlmodel = convert(trace(em.model, example), example.shape, em.output_names)
    meta, description = _describe(em, height, width)
    mlmodel.short_description = description
    mlmodel.user_defined_metadata.update(meta)
    mlmodel.input_description[INPUT_NAME] = meta['iformer.input']
    with atomic_path(out_path) as tmp:
        mlmodel.save(tmp)
        report = inspect_mlpackage(tmp)
        check_report(report, em, height, width)
    report['path'] = os.path.abspath(out_path)
    return report


def _shape(feature) -> Tuple[int, ...]:
    return tuple(int(d) for d in feature.type.multiArrayType.shape)


def _walk_ops(block, counts: collections.Counter) -> None:
    for op in block.operations:
        counts[op.type] += 1
        for inner in op.blocks:
            _walk_ops(inner, counts)


def inspect_mlpackage(path: str) -> Dict[str, object]:
    """Reload with ``skip_model_load=True`` (Linux cannot compile/run Core ML) and describe it."""
    ct = _import_coremltools()
    mlmodel = ct.models.MLModel(path, skip_model_load=True)
    spec = mlmodel.get_spec()
    ops: collections.Counter = collections.Counter()
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            _walk_ops(block, ops)
    return {
        'path': os.path.abspath(path),
        'spec_version': int(spec.specificationVersion),
        'model_type': spec.WhichOneof('Type'),
        'inputs': {f.name: _shape(f) for f in spec.description.input},
        'outputs': {f.name: _shape(f) for f in spec.description.output},
        'ops': dict(sorted(ops.items(), key=lambda kv: -kv[1])),
        'unexpected_ops': sorted(set(ops) - EXPECTED_OPS),
        'metadata': dict(spec.description.metadata.userDefined),
    }


def expected_output_shapes(em: ExportModel, height: int, width: int) -> Dict[str, Tuple[int, ...]]:
    if em.task == 'classifier':
        return {'logits': (1, em.num_classes)}
    dims = em.model.dims
    return {name: (1, dims[i], height // 2 ** (i + 2), width // 2 ** (i + 2))
            for i, name in enumerate(em.output_names)}


def check_report(report: Dict[str, object], em: ExportModel, height: int, width: int) -> None:
    """Raise if the package is not what was asked for (names, shapes, ML Program, ops)."""
    problems: List[str] = []
    if report['model_type'] != 'mlProgram':
        problems.append(f"model type is {report['model_type']}, expected mlProgram")
    if report['spec_version'] < 6:  # iOS15 == spec 6
        problems.append(f"spec version {report['spec_version']} < 6 (iOS15)")
    if report['inputs'] != {INPUT_NAME: (1, 3, height, width)}:
        problems.append(f"inputs {report['inputs']}, expected {{'{INPUT_NAME}': "
                        f'(1, 3, {height}, {width})}}')
    expected = expected_output_shapes(em, height, width)
    if report['outputs'] != expected:
        problems.append(f"outputs {report['outputs']}, expected {expected}")
    if report['unexpected_ops']:
        problems.append(f"unexpected ops {report['unexpected_ops']} "
                        f'(allowed: {sorted(EXPECTED_OPS)})')
    if problems:
        raise RuntimeError('Core ML package check failed: ' + '; '.join(problems))

