"""OpenVINO (CPU plugin): fp32 / fp16 IR, and int8 by NNCF post-training quantization.

Why the precision is pinned when the model is compiled: on CPUs with bf16 (this one has AVX-512
BF16) the CPU plugin's default ``INFERENCE_PRECISION_HINT`` is bf16, so an "fp32" model silently
runs in bf16 (measured: 4.8 instead of 7.0 ms for iFormer-T, outputs off by ~1e-2). We compile
fp32 and int8 artifacts with ``f32`` and fp16 artifacts with ``f16`` and report what the compiled
model says it runs (:meth:`OpenVinoTarget.runtime_facts`). The artifact is a folder holding
``model.xml`` + ``model.bin`` (no suffix: ``..._openvino_fp32/``), so it is written (and
replaced) as one unit.
"""
from __future__ import annotations

import collections
import contextlib
import io
import os
import warnings
from typing import Dict, Optional

import numpy as np

from .base import Session, Target

XML = 'model.xml'
#: compile-time precision per exported precision (the CPU plugin's names)
INFERENCE_PRECISION = {'fp32': 'f32', 'fp16': 'f16', 'int8': 'f32'}


def _convert(model, example):
    import openvino as ov
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter('ignore')
        return ov.convert_model(model, example_input=example)


def _quantize(ov_model, calibration):
    import nncf
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter('ignore')
        return nncf.quantize(ov_model, nncf.Dataset([t.numpy() for t in calibration]),
                             subset_size=len(calibration), model_type=nncf.ModelType.TRANSFORMER,
                             preset=nncf.QuantizationPreset.MIXED)


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

    def export(self, model, example, output_names, precision, calibration, path, input_name,
               metadata=None):
        import openvino as ov
        ov_model = _convert(model, example)
        for port, name in zip(ov_model.inputs, [input_name]):
            port.get_tensor().set_names({name})
        for port, name in zip(ov_model.outputs, output_names):
            port.get_tensor().set_names({name})
        if precision == 'int8':
            ov_model = _quantize(ov_model, calibration)
        for key, value in (metadata or {}).items():
            ov_model.set_rt_info(str(value), ['iformer', key])
        os.makedirs(path)
        ov.save_model(ov_model, os.path.join(path, XML), compress_to_fp16=precision == 'fp16')
        return {'ops': dict(op_histogram(ov_model).most_common()), 'ir': XML}

    def _compile(self, path: str, threads: Optional[int], precision: str):
        import openvino as ov
        config = {'INFERENCE_PRECISION_HINT': INFERENCE_PRECISION[precision],
                  'PERFORMANCE_HINT': 'LATENCY'}
        if threads:
            config['INFERENCE_NUM_THREADS'] = threads
        return ov.Core().compile_model(os.path.join(path, XML), 'CPU', config)

    def session(self, path: str, threads: Optional[int] = None, precision: str = 'fp32') -> Session:
        return _CompiledSession(self._compile(path, threads, precision))

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
        return {'inference_precision_hint': hint, 'kernels_by_precision': dict(ran.most_common()),
                'precision_ran': _summarize(ran)}


class _CompiledSession:
    """A compiled model and one infer request, called like every target's session; the
    compiled model stays readable for :meth:`OpenVinoTarget.runtime_facts` (no second compile)."""

    def __init__(self, compiled):
        self.compiled = compiled
        self._request = compiled.create_infer_request()

    def __call__(self, x: np.ndarray):
        result = self._request.infer({0: np.ascontiguousarray(x, dtype=np.float32)})
        return [np.asarray(result[o]) for o in self.compiled.outputs]


def _summarize(ran: collections.Counter) -> str:
    """'f32', 'bf16', 'i8 + f32' ... from the runtime's kernel precisions."""
    names = {'FP32': 'f32', 'f32': 'f32', 'BF16': 'bf16', 'bf16': 'bf16', 'FP16': 'f16',
             'f16': 'f16', 'I8': 'i8', 'i8': 'i8', 'U8': 'u8', 'u8': 'u8'}
    kinds = [names.get(k, k) for k, _ in ran.most_common()]
    return ' + '.join(dict.fromkeys(k for k in kinds if k in ('f32', 'bf16', 'f16', 'i8', 'u8')))


TARGET = OpenVinoTarget(
    name='openvino', suffix='', precisions=('fp32', 'fp16', 'int8'),
    packages=('openvino', 'nncf'),
    description='OpenVINO CPU plugin (x86 edge boxes); int8 through NNCF')
