"""ONNX Runtime (CPU execution provider): fp32 ONNX, and int8 by static QDQ quantization.

Export uses torch's TorchScript exporter (``dynamo=False``): the dynamo exporter needs
``onnxscript``, and ONNX Runtime's dynamic quantization fails on its bias-less Gemm. int8 is
static post-training quantization in QDQ format, U8 activations / S8 per-channel weights (S8
activations ran 2x *slower* than fp32 on this CPU), calibrated on real images; the attention
products and softmax stay in float (see :data:`QUANTIZED_OPS`).
"""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from .base import (Calibration, DynamicAxes, Inputs, Session, Target, as_inputs, as_names,
                   load_error, recorded_warnings)
from .profile import fold

#: opset 20 has a native Gelu: in int8 QDQ graphs ORT then runs one Gelu kernel between the
#: quantized convs; opset 17's Erf decomposition was not re-fused there (measured, iFormer-T int8
#: at 224, 1 thread: 9.85 -> 7.61 ms of kernel time)
OPSET = 20
#: the op types int8 quantizes: convolutions and the head's Gemm. Measured (iFormer-T, 224, 1
#: thread): adding the attention MatMuls made the outputs NaN and was slower (0.76 vs 0.73 of
#: fp32); quantizing every supported op was slower too (0.75) and less accurate.
QUANTIZED_OPS = ('Conv', 'Gemm')


#: notices torch's TorchScript ONNX exporter prints on every export (recorded in the report)
EXPORT_NOTICES = ('You are using the legacy TorchScript-based ONNX export',
                  'The feature will be removed. Please remove usage of this function',
                  '`torch.jit.trace` is deprecated', '`torch.jit.trace_method` is deprecated')
#: notices of onnxruntime's quantization tools
QUANTIZE_NOTICES = ('Please consider to run pre-processing before quantization',)


def write_onnx(model: torch.nn.Module, example: Inputs, path: str, output_names: Sequence[str],
               input_name: Union[str, Sequence[str]] = 'image',
               dynamic_axes: Optional[DynamicAxes] = None) -> List[str]:
    """torch.onnx.export (TorchScript exporter) of ``model``: at the example's shapes, or with
    ``dynamic_axes`` free. Returns the recorded export warnings (tracer warnings included)."""
    with torch.no_grad(), recorded_warnings(EXPORT_NOTICES) as notes, \
            contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(model, as_inputs(example), path, input_names=as_names(input_name),
                          output_names=list(output_names), opset_version=OPSET,
                          do_constant_folding=True, dynamo=False, dynamic_axes=dynamic_axes)
    return notes


def op_histogram(proto) -> Dict[str, int]:
    """Op type -> count, subgraphs included (the detector's NMS sits inside ``If`` branches:
    torchvision scripts ``batched_nms`` when traced, for its empty-input case)."""
    import onnx
    counts: Dict[str, int] = {}

    def walk(graph) -> None:
        for node in graph.node:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g)

    walk(proto.graph)
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


class _Reader:
    """onnxruntime's CalibrationDataReader over our normalised calibration inputs."""

    def __init__(self, input_names: Sequence[str], calibration: Calibration):
        self._items = iter([{n: t.numpy() for n, t in zip(input_names, as_inputs(item))}
                            for item in calibration])

    def get_next(self):
        return next(self._items, None)


def quantize_int8(fp32_path: str, out_path: str, calibration: Calibration,
                  input_name: Union[str, Sequence[str]]) -> List[str]:
    """Static QDQ int8 of ``fp32_path``; returns the quantizer's recorded notices."""
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process
    with tempfile.TemporaryDirectory(prefix='iformer-ort-') as tmp:
        prepared = os.path.join(tmp, 'prepared.onnx')
        with contextlib.redirect_stdout(io.StringIO()), recorded_warnings(QUANTIZE_NOTICES) as notes:
            quant_pre_process(fp32_path, prepared, skip_symbolic_shape=True)
            quantize_static(prepared, out_path, _Reader(as_names(input_name), calibration),
                            quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, per_channel=True,
                            op_types_to_quantize=list(QUANTIZED_OPS),
                            calibrate_method=CalibrationMethod.MinMax)
    return notes


class OnnxRuntimeTarget(Target):
    dynamic_shapes = True

    def export(self, model, example, output_names, precision, calibration, path, input_name,
               metadata=None, dynamic_axes=None):
        if precision == 'fp32':
            notes = write_onnx(model, example, path, output_names, input_name, dynamic_axes)
        else:
            with tempfile.TemporaryDirectory(prefix='iformer-ort-') as tmp:
                fp32 = os.path.join(tmp, 'fp32.onnx')
                notes = write_onnx(model, example, fp32, output_names, input_name, dynamic_axes)
                notes += quantize_int8(fp32, path, calibration, input_name)
        import onnx
        proto = onnx.load(path)
        onnx.helper.set_model_props(proto, {k: str(v) for k, v in (metadata or {}).items()})
        onnx.save(proto, path)
        onnx.checker.check_model(proto)
        return {'opset': OPSET, 'ops': op_histogram(proto), 'precision_ran': precision,
                'quantized_ops': list(QUANTIZED_OPS) if precision == 'int8' else [],
                'export_warnings': notes}

    def session(self, path: str, threads: Optional[int] = None, precision: str = 'fp32') -> Session:
        sess = self._inference_session(path, threads)
        return lambda *x: sess.run(None, _feed(sess, x))

    def profile(self, path: str, x, precision: str, threads: Optional[int] = None,
                runs: int = 10) -> Dict[str, object]:
        """ONNX Runtime's profiler over ``runs`` inferences: kernel time per op type of the
        optimized graph (after QDQ fusion: ``QLinearConv``, ``QLinearMatMul``, ...), precision
        from the kernel's first input (``QuantizeLinear`` / ``DequantizeLinear`` are converts)."""
        with tempfile.TemporaryDirectory(prefix='iformer-ort-profile-') as tmp:
            sess = self._inference_session(path, threads, os.path.join(tmp, 'ort'))
            feed = _feed(sess, (x,) if isinstance(x, np.ndarray) else x)
            for _ in range(runs + 1):
                sess.run(None, feed)
            events = _node_events(sess.end_profiling())
        events = events[len(events) // (runs + 1):]  # the first run warms up: not folded
        return fold(((e['args']['op_name'], _precision(e), e['dur'] / 1e3) for e in events), runs,
                    'ONNX Runtime profiler (enable_profiling), CPU execution provider')

    def _inference_session(self, path: str, threads: Optional[int], profile_prefix=None):
        import onnxruntime as ort
        options = ort.SessionOptions()
        if profile_prefix:
            options.enable_profiling = True
            options.profile_file_prefix = profile_prefix
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        # idle intra-op threads sleep instead of spinning: measured, three 2-thread sessions in
        # one process (ours, timm, int8) with spinning made each run 2x slower on 2 cores
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        options.log_severity_level = 3
        try:
            return ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
        except (ort.capi.onnxruntime_pybind11_state.Fail,
                ort.capi.onnxruntime_pybind11_state.InvalidProtobuf,
                ort.capi.onnxruntime_pybind11_state.InvalidGraph,
                ort.capi.onnxruntime_pybind11_state.NoSuchFile) as e:
            raise load_error('onnxruntime', path, e) from None


def _feed(sess, arrays) -> Dict[str, np.ndarray]:
    """Input name -> array, in the session's input order, each in the dtype the graph declares
    (float32 image, int64 ``img_shape``)."""
    dtypes = {'tensor(float)': np.float32, 'tensor(int64)': np.int64}
    inputs = sess.get_inputs()
    if len(arrays) != len(inputs):
        raise ValueError(f'the artifact takes {len(inputs)} inputs '
                         f'({[i.name for i in inputs]}), got {len(arrays)}')
    return {i.name: np.ascontiguousarray(a, dtype=dtypes.get(i.type, np.float32))
            for i, a in zip(inputs, arrays)}


def _node_events(trace_path: str) -> list:
    import json
    with open(trace_path, encoding='utf-8') as f:
        trace = json.load(f)
    return [e for e in trace if e.get('cat') == 'Node' and e['name'].endswith('_kernel_time')]


#: ONNX element type names (as the profiler writes them) -> our precision names
_ELEMENT = {'float': 'fp32', 'float16': 'fp16', 'uint8': 'int8', 'int8': 'int8',
            'int32': 'int32', 'int64': 'int64', 'bool': 'bool'}


def _precision(event: dict) -> str:
    if event['args']['op_name'] in ('QuantizeLinear', 'DequantizeLinear'):
        return 'convert'
    inputs = event['args'].get('input_type_shape') or [{}]
    kind = next(iter(inputs[0]), '-')
    return _ELEMENT.get(kind, kind)


TARGET = OnnxRuntimeTarget(
    name='onnxruntime', suffix='.onnx', precisions=('fp32', 'int8'), packages=('onnxruntime', 'onnx'),
    description='ONNX Runtime, CPU execution provider (x86 / ARM edge boxes)')
