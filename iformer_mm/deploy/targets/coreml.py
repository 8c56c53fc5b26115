"""Core ML: fused model -> TorchScript trace -> ML Program ``.mlpackage`` (iPhone / Mac).

Why tracing: coremltools' torch.export path fails on torch 2.14; the TorchScript trace converts
cleanly (window geometry is read as Python ints, so the traced graph has constant shapes).
Precisions: fp16 (compute precision FP16, iOS 15+: what the published iPhone latencies used),
fp32 (FP32 compute), int8 (FP16 compute with int8 linear-quantised weights through
``coremltools.optimize``, iOS 16+). Linux can convert but not run Core ML, so this target does
not run here: :func:`inspect_mlpackage` checks what can be checked without running (spec,
input / output names and shapes, the op histogram against :data:`EXPECTED_OPS`).
"""
from __future__ import annotations

import collections
import contextlib
import io
from typing import Dict, List, Sequence

import torch

from .base import DeployError, Target, as_inputs, as_names, recorded_warnings

# Everything a fused iFormer lowers to (and the Semantic FPN neck / head: ReLU, the FPN's nearest
# and the head's bilinear upsampling, argmax; the detector FPN's extra level: a stride-2 max pool). Anything else (loops, gathers, custom layers) means
# the graph changed in a way that matters for on-device latency and must be looked at.
EXPECTED_OPS = frozenset({
    'const', 'cast', 'conv', 'add', 'mul', 'gelu', 'sigmoid', 'softmax', 'matmul', 'linear',
    'reshape', 'transpose', 'split', 'slice_by_index', 'pad', 'reduce_mean',
    'constexpr_affine_dequantize', 'constexpr_blockwise_shift_scale',
    'relu', 'upsample_nearest_neighbor', 'upsample_bilinear', 'reduce_argmax', 'max_pool'})


#: notices coremltools and the TorchScript tracer give on every import / conversion (recorded)
NOTICES = ('Torch version', 'scikit-learn version', 'Failed to load _MLModelProxy',
           '`torch.jit.trace` is deprecated', '`torch.jit.trace_method` is deprecated',
           'The feature will be removed. Please remove usage of this function')


def _import_coremltools():
    try:
        with recorded_warnings(NOTICES), contextlib.redirect_stderr(io.StringIO()):
            import coremltools as ct
    except ImportError:
        raise DeployError('--target coreml needs coremltools: pip install "iformer-mm[deploy]" '
                          '(coremltools>=9.0)') from None
    return ct


def trace(model: torch.nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """TorchScript trace of the (fused, eval) model on ``example``, shapes as constants
    (:func:`~iformer_mm.models.backbones.iformer.static_shapes`: Core ML cannot fold shape
    arithmetic)."""
    from ...models.backbones.iformer import static_shapes
    with torch.no_grad(), static_shapes():
        return torch.jit.trace(model, example, check_trace=False)


def convert(traced: torch.jit.ScriptModule, input_shape: Sequence[int],
            output_names: Sequence[str], input_name: str, precision: str):
    """ct.convert to an ML Program at ``precision`` (see the module docstring)."""
    ct = _import_coremltools()
    with contextlib.redirect_stderr(io.StringIO()):
        mlmodel = ct.convert(
            traced, inputs=[ct.TensorType(name=input_name, shape=tuple(input_shape))],
            outputs=[ct.TensorType(name=n) for n in output_names], convert_to='mlprogram',
            compute_precision=ct.precision.FLOAT32 if precision == 'fp32' else ct.precision.FLOAT16,
            minimum_deployment_target=ct.target.iOS16 if precision == 'int8' else ct.target.iOS15,
            skip_model_load=True)
        if precision == 'int8':
            from coremltools.optimize.coreml import (OpLinearQuantizerConfig, OptimizationConfig,
                                                     linear_quantize_weights)
            config = OptimizationConfig(global_config=OpLinearQuantizerConfig(
                mode='linear_symmetric', dtype='int8'))
            mlmodel = linear_quantize_weights(mlmodel, config=config)
    return mlmodel


def _shape(feature) -> List[int]:
    return [int(d) for d in feature.type.multiArrayType.shape]


def _walk_ops(block, counts: collections.Counter) -> None:
    for op in block.operations:
        counts[op.type] += 1
        for inner in op.blocks:
            _walk_ops(inner, counts)


def inspect_mlpackage(path: str) -> Dict[str, object]:
    """Reload with ``skip_model_load=True`` (Linux cannot compile/run Core ML) and describe it."""
    ct = _import_coremltools()
    spec = ct.models.MLModel(path, skip_model_load=True).get_spec()
    ops: collections.Counter = collections.Counter()
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            _walk_ops(block, ops)
    return {
        'spec_version': int(spec.specificationVersion),
        'model_type': spec.WhichOneof('Type'),
        'inputs': {f.name: _shape(f) for f in spec.description.input},
        'outputs': {f.name: _shape(f) for f in spec.description.output},
        'ops': dict(sorted(ops.items(), key=lambda kv: -kv[1])),
        'unexpected_ops': sorted(set(ops) - EXPECTED_OPS),
        'metadata': dict(spec.description.metadata.userDefined),
    }


class CoreMLTarget(Target):

    def export(self, model, example, output_names, precision, calibration, path, input_name,
               metadata=None, dynamic_axes=None):
        (example,) = as_inputs(example)
        (input_name,) = as_names(input_name)
        with recorded_warnings(NOTICES) as notes:
            mlmodel = convert(trace(model, example), example.shape, output_names, input_name,
                              precision)
        metadata = dict(metadata or {})
        mlmodel.short_description = metadata.pop('description', 'iFormer (fused)')
        mlmodel.user_defined_metadata.update({k: str(v) for k, v in metadata.items()})
        mlmodel.input_description[input_name] = 'RGB float (1,3,H,W), mean/std normalised'
        mlmodel.save(path)
        report = inspect_mlpackage(path)
        problems = []
        if report['model_type'] != 'mlProgram':
            problems.append(f"model type is {report['model_type']}, expected mlProgram")
        if report['spec_version'] < 6:  # iOS15 == spec 6
            problems.append(f"spec version {report['spec_version']} < 6 (iOS15)")
        if report['unexpected_ops']:
            problems.append(f"unexpected ops {report['unexpected_ops']} "
                            f'(allowed: {sorted(EXPECTED_OPS)})')
        if problems:
            raise RuntimeError('Core ML package check failed: ' + '; '.join(problems))
        return dict(report, precision_ran=f'{precision} (converted; runs on macOS / iOS only)',
                    export_warnings=notes)


    def session(self, path, threads=None, precision='fp32'):
        raise DeployError('Core ML models run only on macOS / iOS; on Linux the package is '
                          'converted and inspected, not run')


TARGET = CoreMLTarget(
    name='coreml', suffix='.mlpackage', precisions=('fp16', 'fp32', 'int8'),
    packages=('coremltools',), runs_here=False, needs_calibration=(),
    description='Core ML ML Program (iPhone / Mac; converts on Linux, runs on Apple only)')
