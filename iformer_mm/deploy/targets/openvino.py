"""OpenVINO (CPU plugin): fp32 / bf16 / fp16 IR, and int8 by NNCF post-training quantization.

Why the precision is pinned when the model is compiled: on CPUs with bf16 (this one has AVX-512
BF16) the CPU plugin's default ``INFERENCE_PRECISION_HINT`` is bf16, so an "fp32" model silently
runs in bf16 (measured: 4.8 instead of 7.0 ms for iFormer-T, outputs off by ~1e-2). So each
precision is a named compile setting (:func:`inference_precision`): ``fp32`` -> ``f32``;
``bf16`` (the fastest float on such CPUs) -> ``bf16``, fp32 weights in the IR; ``fp16`` -> fp16
weights in the IR and ``f16`` asked, which a CPU without fp16 arithmetic (this one) runs in bf16
or f32 - the report's ``runtime.precision_ran`` and ``runtime.note`` say what it ran; ``int8`` ->
the float remainder of the quantized IR compiled at the fastest float the CPU has (bf16 here,
else f32). The compile setting is also stored in the IR (``rt_info`` ``iformer.compile``).

Every report carries the compiled model's per-op profile (:meth:`OpenVinoTarget.profile`: the
CPU plugin's performance counters, op type x kernel precision). The artifact is a folder holding
``model.xml`` + ``model.bin`` (no suffix: ``..._openvino_fp32/``), written (and replaced) as one
unit.
"""
from __future__ import annotations

import collections
import contextlib
import functools
import io
import os
from typing import Dict, List, Optional

import numpy as np

from .base import (DynamicAxes, Session, Target, as_inputs, as_names, load_error,
                   recorded_warnings)
from .profile import fold

XML = 'model.xml'
#: compile-time precision per exported precision (the CPU plugin's names); int8: see
#: :func:`inference_precision`
INFERENCE_PRECISION = {'fp32': 'f32', 'bf16': 'bf16', 'fp16': 'f16', 'int8': 'f32'}


@functools.lru_cache(maxsize=None)
def core():
    """The process's one ``openvino.Core``.

    Why one: each Core loads its own CPU plugin, which installs a new alternate signal stack on
    the calling thread and puts the previous one back when it is destroyed (measured with
    openvino 2026.4.1). Two Cores destroyed in the order they were made leave the main thread's
    alternate stack pointing at freed memory, and the next Python signal handler (Ctrl-C, an
    alarm) ends the process with a segmentation fault (it did so in CI). One Core that lives as
    long as the process never nests.
    """
    import openvino as ov
    return ov.Core()


def cpu_has_bf16() -> bool:
    return 'BF16' in core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES')


def inference_precision(precision: str) -> str:
    """The ``INFERENCE_PRECISION_HINT`` an artifact of ``precision`` is compiled with: int8's float
    remainder runs at bf16 where the CPU has it (measured, iFormer-T 224, 1 thread: 4.65 -> 4.39
    ms), every other precision at its own."""
    if precision == 'int8' and cpu_has_bf16():
        return 'bf16'
    return INFERENCE_PRECISION[precision]


#: notices of OpenVINO's PyTorch frontend (it traces with TorchScript) and of NNCF
CONVERT_NOTICES = ('`torch.jit.trace` is deprecated', '`torch.jit.trace_method` is deprecated',
                   'The feature will be removed. Please remove usage of this function')
QUANTIZE_NOTICES = ('`torch.jit.trace` is deprecated', 'NNCF provides best results with torch')


def _convert(model, example, input_names, dynamic_axes: Optional[DynamicAxes], notes: List[str]):
    """ov.convert_model: at the example's shapes, or with ``dynamic_axes`` (-1 dims) free."""
    import openvino as ov
    example = as_inputs(example)
    shapes = None
    if dynamic_axes:
        shapes = [ov.PartialShape([-1 if axis in dynamic_axes.get(name, {}) else int(size)
                                   for axis, size in enumerate(t.shape)])
                  for name, t in zip(input_names, example)]
    with recorded_warnings(CONVERT_NOTICES) as recorded, contextlib.redirect_stdout(io.StringIO()):
        ov_model = ov.convert_model(model, example_input=example if len(example) > 1 else example[0],
                                    input=shapes)
    notes.extend(recorded)
    return ov_model


#: op types NNCF leaves in float. Depthwise convolutions: the CPU plugin's int8 depthwise kernel
#: (``jit_avx512_I8``) ran 2.3x *slower* than its bf16 one (``brgconv_avx512_dw_bf16``; iFormer-T
#: 224, 1 thread, performance counters: 2.34 vs 0.91 ms for the 16 depthwise convs), so they stay
#: in the (bf16) float remainder; measured int8 / bf16 of the whole classifier 0.90 -> 0.82.
FLOAT_OP_TYPES = ('GroupConvolution',)


def _quantize(ov_model, calibration, notes: List[str]):
    """NNCF post-training quantization: the transformer-aware model type (it keeps softmax /
    layer-norm style ops float and quantizes the attention MatMuls), the MIXED preset (symmetric
    weights, asymmetric activations: post-GELU activations are one-sided), depthwise convs in
    float (:data:`FLOAT_OP_TYPES`). Measured iFormer-T: the CNN model type ran 0.90x bf16, the
    PERFORMANCE preset (symmetric activations) 0.86x, both slower than this setting."""
    import logging

    import nncf
    # NNCF logs each ignored node at INFO through a handler bound to the real stdout (which
    # redirect_stdout does not catch): it would corrupt ``tools/deploy.py --json``
    nncf_logger = logging.getLogger('nncf')
    level = nncf_logger.level
    nncf_logger.setLevel(logging.WARNING)
    try:
        with recorded_warnings(QUANTIZE_NOTICES) as recorded, \
                contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            quantized = _nncf_quantize(nncf, ov_model, calibration)
        notes.extend(recorded)
        return quantized
    finally:
        nncf_logger.setLevel(level)


def _nncf_quantize(nncf, ov_model, calibration):
    items = [[t.numpy() for t in as_inputs(item)] for item in calibration]
    items = [item[0] if len(item) == 1 else item for item in items]
    return nncf.quantize(ov_model, nncf.Dataset(items),
                         subset_size=len(calibration), model_type=nncf.ModelType.TRANSFORMER,
                         preset=nncf.QuantizationPreset.MIXED,
                         ignored_scope=nncf.IgnoredScope(types=list(FLOAT_OP_TYPES), validate=False))


def op_histogram(ov_model) -> collections.Counter:
    """Op type -> count, ``If`` bodies included (where the detector's NMS sits)."""
    ops = collections.Counter()
    for op in ov_model.get_ordered_ops():
        ops[op.get_type_name()] += 1
        if op.get_type_name() == 'If':
            for body in (op.get_then_body(), op.get_else_body()):
                ops.update(op_histogram(body))
    return ops


class OpenVinoTarget(Target):
    dynamic_shapes = True

    def export(self, model, example, output_names, precision, calibration, path, input_name,
               metadata=None, dynamic_axes=None):
        import openvino as ov
        notes: List[str] = []
        input_names = as_names(input_name)
        ov_model = _convert(model, example, input_names, dynamic_axes, notes)
        for port, name in zip(ov_model.inputs, input_names):
            port.get_tensor().set_names({name})
        for port, name in zip(ov_model.outputs, output_names):
            port.get_tensor().set_names({name})
        if precision == 'int8':
            ov_model = _quantize(ov_model, calibration, notes)
        for key, value in dict(metadata or {}, **{
                'iformer.compile': f'INFERENCE_PRECISION_HINT={inference_precision(precision)}'
                }).items():
            ov_model.set_rt_info(str(value), ['iformer', key])
        os.makedirs(path)
        ov.save_model(ov_model, os.path.join(path, XML), compress_to_fp16=precision == 'fp16')
        facts = {'ops': dict(op_histogram(ov_model).most_common()), 'ir': XML,
                 'export_warnings': notes}
        if precision == 'int8':
            facts['kept_float'] = {'op_types': list(FLOAT_OP_TYPES),
                                   'remainder_compiled_as': inference_precision(precision)}
        return facts

    def _compile(self, path: str, threads: Optional[int], precision: str, perf_count: bool = False):
        config = {'INFERENCE_PRECISION_HINT': inference_precision(precision),
                  'PERFORMANCE_HINT': 'LATENCY'}
        if threads:
            config['INFERENCE_NUM_THREADS'] = threads
        if perf_count:
            config['PERF_COUNT'] = True
        try:
            model = core().read_model(os.path.join(path, XML))
        except RuntimeError as e:
            raise load_error('openvino', path, e) from None
        return core().compile_model(model, 'CPU', config)

    def session(self, path: str, threads: Optional[int] = None, precision: str = 'fp32') -> Session:
        return _CompiledSession(self._compile(path, threads, precision),
                                inference_precision(precision))

    def profile(self, path: str, x, precision: str, threads: Optional[int] = None,
                runs: int = 10) -> Dict[str, object]:
        """Performance counters of ``runs`` inferences: op type x kernel precision (the suffix
        of the CPU plugin's ``exec_type``, e.g. ``brgconv_avx512_I8`` -> ``i8``)."""
        session = _CompiledSession(self._compile(path, threads, precision, perf_count=True))
        x = (x,) if isinstance(x, np.ndarray) else tuple(x)
        session(*x)  # warm-up
        events = []
        for _ in range(runs):
            session(*x)
            for info in session.request.profiling_info:
                if info.status != info.Status.EXECUTED or info.node_type in ('Parameter', 'Result'):
                    continue
                kind = info.exec_type.rsplit('_', 1)[-1].lower() if '_' in info.exec_type else '-'
                events.append((info.node_type, kind, info.real_time.total_seconds() * 1e3))
        return fold(events, runs, 'OpenVINO CPU plugin performance counters (PERF_COUNT)')

    def runtime_facts(self, session: Session) -> Dict[str, object]:
        """The compiled model's precision hint and the element types its kernels really run."""
        compiled = session.compiled
        ran = collections.Counter()
        for op in compiled.get_runtime_model().get_ordered_ops():
            info = op.get_rt_info()
            if 'runtimePrecision' in info and info['layerType'].astype(str) not in (
                    'Input', 'Output', 'Const', 'Parameter', 'Result'):
                ran[str(info['runtimePrecision'].astype(str))] += 1
        hint = compiled.get_property('INFERENCE_PRECISION_HINT')
        hint = hint.get_type_name() if hasattr(hint, 'get_type_name') else str(hint)
        facts = {'inference_precision_hint': hint, 'kernels_by_precision': dict(ran.most_common()),
                 'precision_ran': _summarize(ran)}
        asked = getattr(session, 'asked', hint)
        if asked in ('f16', 'bf16') and asked not in facts['precision_ran'].split(' + '):
            facts['note'] = (f'{asked} was asked; this CPU has no {asked} arithmetic, so the CPU '
                             f"plugin ran {facts['precision_ran']}")
        elif hint == 'f16':
            facts['note'] = f"fp16 weights; the CPU plugin ran {facts['precision_ran']}"
        return facts


class _CompiledSession:
    """A compiled model and one infer request, called like every target's session; the
    compiled model stays readable for :meth:`OpenVinoTarget.runtime_facts` (no second compile)."""

    def __init__(self, compiled, asked: Optional[str] = None):
        self.compiled, self.asked = compiled, asked
        self.request = compiled.create_infer_request()
        self.dtypes = [np.int64 if port.get_element_type().get_type_name() == 'i64'
                       else np.float32 for port in compiled.inputs]

    def __call__(self, *x: np.ndarray):
        if len(x) != len(self.dtypes):
            raise ValueError(f'the artifact takes {len(self.dtypes)} inputs, got {len(x)}')
        result = self.request.infer({i: np.ascontiguousarray(a, dtype=dtype)
                                     for i, (a, dtype) in enumerate(zip(x, self.dtypes))})
        return [np.asarray(result[o]) for o in self.compiled.outputs]


def _summarize(ran: collections.Counter) -> str:
    """'f32', 'bf16', 'i8 + f32' ... from the runtime's kernel precisions."""
    names = {'FP32': 'f32', 'f32': 'f32', 'BF16': 'bf16', 'bf16': 'bf16', 'FP16': 'f16',
             'f16': 'f16', 'I8': 'i8', 'i8': 'i8', 'U8': 'u8', 'u8': 'u8'}
    kinds = [names.get(k, k) for k, _ in ran.most_common()]
    return ' + '.join(dict.fromkeys(k for k in kinds if k in ('f32', 'bf16', 'f16', 'i8', 'u8')))


TARGET = OpenVinoTarget(
    name='openvino', suffix='', precisions=('fp32', 'bf16', 'fp16', 'int8'),
    packages=('openvino', 'nncf'),
    description='OpenVINO CPU plugin (x86 edge boxes); int8 through NNCF')
