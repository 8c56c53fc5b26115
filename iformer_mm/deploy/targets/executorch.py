"""ExecuTorch ``.pte`` on the XNNPACK delegate (the phone CPU runtime), fp32 and int8.

The graph: ``torch.export`` of the fused model, lowered with the XNNPACK partitioner. Our
deployed SHMA is plain ``softmax(bmm(q, k)) v`` with static channel slices, so XNNPACK takes the
whole classifier as **one** partition (timm's ``scaled_dot_product_attention`` lowers into ops
XNNPACK refuses - ``eq``, ``any``, ``logical_not``, ``full_like``, ``expand_copy`` - and runs as
a dozen partitions with portable kernels between them). :func:`delegation` counts partitions and
the ops left outside the delegate, for the report.

int8: PT2E post-training quantization with the XNNPACK quantizer (symmetric, per-channel
weights), calibrated on real images; torch's own ``torch.ao`` PT2E moved to
``torchao.quantization.pt2e`` (torchao 0.18). In int8 graphs the windowed backbone's zero padding
(stage 2, when the map is not a multiple of the window) stays outside the delegate: XNNPACK 1.5.1
accepts a quantized constant pad, then fails to initialise it when a permute follows
(``xnn_status_invalid_parameter``; reproduced with conv -> pad -> permute -> conv), which is how
windows are cut. The classifier has no pad and stays one partition.

Depthwise convolutions with more than 25 taps (iFormer's 7x7) are split before export into
row bands of at most 25 taps whose outputs are summed (:class:`BandedDepthwiseConv2d`):
XNNPACK 1.5.1 has depthwise kernels only up to 25 taps and runs a 7x7 one as a grouped IGEMM,
measured about 20x slower (56x56x64, fp32, 1 thread: 19.7 ms as IGEMM, 1.0 ms as three banded
DWConvs plus two adds; int8 alike). Banding halves iFormer-T's fp32 .pte time (40.9 -> 20.2 ms,
AVX2 host, 1 thread); unbanded, the IGEMM dominated both precisions and hid int8's gain.
"""
from __future__ import annotations

import collections
import contextlib
import copy
import io
import logging
import os
import re
import tempfile
from typing import Dict, Iterator, List, Optional

import numpy as np
import torch
from torch import nn

from .base import Session, Target, as_inputs, load_error, recorded_warnings
from .profile import fold


#: notices ExecuTorch, torchao and torch.export give on every export or load (recorded)
NOTICES = ('This API is experimental and subject to change without notice',
           'The feature will be removed. Please remove usage of this function',
           'torch.ao.quantization is deprecated', 'Deprecated: Please use')


@contextlib.contextmanager
def _quiet() -> Iterator[List[str]]:
    """ExecuTorch and torch.export log and print pytree / deprecation notices on every export:
    their loggers go to ERROR, the named :data:`NOTICES` and tracer warnings are recorded
    (:func:`.base.recorded_warnings`), any other warning shows."""
    loggers = [logging.getLogger(n) for n in ('torch._dynamo', 'torch.export', 'executorch')]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with recorded_warnings(NOTICES) as notes, contextlib.redirect_stdout(io.StringIO()):
            yield notes
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


#: the largest depthwise kernel (taps = kh * kw) XNNPACK runs with its depthwise micro-kernels
XNNPACK_MAX_DW_TAPS = 25


class BandedDepthwiseConv2d(nn.Module):
    """A stride-1 depthwise conv as a sum of row bands of at most ``max_taps`` taps each.

    Band ``[r0, r1)`` is a conv with the same padding whose output, shifted by ``r0`` rows, is
    that band's share of the original output: the result equals the original conv exactly in
    real arithmetic (float rounding differs at ~1e-7).
    """

    def __init__(self, conv: nn.Conv2d, max_taps: int = XNNPACK_MAX_DW_TAPS):
        super().__init__()
        kh, kw = conv.kernel_size
        rows = max(1, max_taps // kw)
        self.starts = list(range(0, kh, rows))
        self.bands = nn.ModuleList()
        for r0 in self.starts:
            r1 = min(kh, r0 + rows)
            band = nn.Conv2d(conv.in_channels, conv.out_channels, (r1 - r0, kw), 1, conv.padding,
                             groups=conv.groups, bias=r0 == 0 and conv.bias is not None)
            band.weight.data.copy_(conv.weight.data[:, :, r0:r1])
            if band.bias is not None:
                band.bias.data.copy_(conv.bias.data)
            self.bands.append(band)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height = x.shape[2]
        y = None
        for band, r0 in zip(self.bands, self.starts):
            part = band(x)[:, :, r0:r0 + height]
            y = part if y is None else y + part
        return y


def _needs_bands(m: nn.Module) -> bool:
    if type(m) is not nn.Conv2d or m.groups == 1 or m.in_channels != m.groups:
        return False
    kh, kw = m.kernel_size
    same = m.padding == (kh // 2, kw // 2) and kh % 2 == 1 and kw % 2 == 1
    return (kh * kw > XNNPACK_MAX_DW_TAPS and m.stride == (1, 1) and m.dilation == (1, 1)
            and same and m.padding_mode == 'zeros')


def band_large_depthwise(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose large stride-1 depthwise convs are :class:`BandedDepthwiseConv2d`
    (the model itself is left as it is)."""
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if _needs_bands(child):
                setattr(parent, name, BandedDepthwiseConv2d(child))
    return model


def _partitioner(precision: str):
    from executorch.backends.xnnpack.partition.config import ALL_PARTITIONER_CONFIGS
    from executorch.backends.xnnpack.partition.config.generic_node_configs import ConstantPadConfig
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    if precision != 'int8':
        return XnnpackPartitioner()
    return XnnpackPartitioner(configs=[c for c in ALL_PARTITIONER_CONFIGS if c is not ConstantPadConfig])


#: lowest per-channel weight scale (the XNNPACK quantizer's default, 2**-12, zeroes small weights)
WEIGHT_SCALE_FLOOR = 1e-12


def quantization_config():
    """The XNNPACK quantizer's symmetric per-channel config, with the weight observer's scale
    floor lowered from 2**-12 to :data:`WEIGHT_SCALE_FLOOR`.

    Why: that floor quantises every weight below 127 * 2**-12 = 0.031 to zero. BatchNorm folded
    into a conv after a large activation gives exactly such weights: measured on the demo
    Semantic FPN, whose FPN outputs reach 7e4, the FPNHead's first convs have weights of ~1e-5,
    all became 0 and int8 mIoU fell from 0.506 to 0.144.
    """
    import dataclasses

    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        get_symmetric_quantization_config)
    from torchao.quantization.pt2e import PerChannelMinMaxObserver
    config = get_symmetric_quantization_config(is_per_channel=True)
    weight = dataclasses.replace(config.weight, observer_or_fake_quant_ctr=(
        PerChannelMinMaxObserver.with_args(eps=WEIGHT_SCALE_FLOOR)))
    return dataclasses.replace(config, weight=weight)


#: what the int8 ``.pte`` keeps in fp32 (said in the report). Depthwise convolutions: XNNPACK's
#: QC8 DWConv ran 1.5-2x *slower* than its F32 one (iFormer-T 224, 1 thread, ETDump: 1.83 vs
#: 1.20 ms for the 38 depthwise convs, AVX-512 VNNI; 2.36 vs 1.48 ms, AVX2), so they stay fp32
#: between int8 neighbours; measured int8 / fp32 of the whole classifier 0.70 -> 0.62 (VNNI).
FLOAT_OPS = ('depthwise conv2d',)


def _quantized_here(node) -> bool:
    """The quantizer's filter: every node except grouped convs (in iFormer and its necks those
    are the depthwise ones, :data:`FLOAT_OPS`)."""
    groups = node.args[6] if len(node.args) > 6 else 1
    return not (node.op == 'call_function' and 'conv2d' in str(node.target) and groups > 1)


def _quantize(model: torch.nn.Module, example, calibration) -> torch.nn.Module:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    quantizer = XNNPACKQuantizer().set_global(quantization_config())
    quantizer.set_filter_function(_quantized_here)
    captured = torch.export.export(model, as_inputs(example)).module()
    prepared = prepare_pt2e(captured, quantizer)
    with torch.no_grad():
        for x in calibration:
            prepared(*as_inputs(x))
    return convert_pt2e(prepared)


def _op_name(target) -> str:
    """``aten.constant_pad_nd.default`` -> ``aten.constant_pad_nd`` (the op, not its overload)."""
    parts = str(getattr(target, '__name__', target)).split('.')
    return '.'.join(parts[:-1]) if len(parts) > 2 else '.'.join(parts)


def delegation(edge_program) -> Dict[str, object]:
    """Partitions handed to XNNPACK and the operators left outside them."""
    graph = edge_program.exported_program().graph_module.graph
    calls = [n for n in graph.nodes if n.op == 'call_function']
    partitions = sum(1 for n in calls if 'call_delegate' in str(n.target))
    outside = collections.Counter(
        _op_name(n.target) for n in calls
        if 'call_delegate' not in str(n.target) and 'getitem' not in str(n.target))
    return {'xnnpack_partitions': partitions, 'ops_outside_delegate': dict(outside.most_common()),
            'fully_delegated': partitions == 1 and not outside}


class ExecuTorchTarget(Target):

    def export(self, model, example, output_names, precision, calibration, path, input_name,
               metadata=None, dynamic_axes=None):
        from executorch.exir import to_edge_transform_and_lower
        model = band_large_depthwise(model)
        with _quiet() as notes:
            if precision == 'int8':
                model = _quantize(model, example, calibration)
            program = torch.export.export(model, as_inputs(example))
            edge = to_edge_transform_and_lower(program, partitioner=[_partitioner(precision)])
            facts = delegation(edge)
            buffer = edge.to_executorch().buffer
        with open(path, 'wb') as f:
            f.write(buffer)
        if precision == 'int8':
            facts['kept_float'] = {'op_types': list(FLOAT_OPS), 'remainder_compiled_as': 'fp32'}
        return dict(facts, precision_ran=precision, delegate='XNNPACK', export_warnings=notes)

    def session(self, path: str, threads: Optional[int] = None, precision: str = 'fp32') -> Session:
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
        from executorch.runtime import Runtime
        if threads:
            _unsafe_reset_threadpool(threads)  # XNNPACK's process-wide threadpool
        with _quiet():
            try:
                method = Runtime.get().load_program(path).load_method('forward')
            except (RuntimeError, ValueError) as e:
                raise load_error('executorch', path, e) from None
        return lambda *x: [o.numpy() for o in method.execute([torch.from_numpy(
            np.ascontiguousarray(a, dtype=np.float32)) for a in x])]

    def profile(self, path: str, x: np.ndarray, precision: str, threads: Optional[int] = None,
                runs: int = 10) -> Dict[str, object]:
        """ETDump of ``runs`` inferences: XNNPACK's own per-operator events inside the delegate
        (``Fully Connected (NC, QS8, QC8W) GEMM``, ``Convolution (NHWC, F32) DWConv``, ...),
        precision read from the operator's datatype tag."""
        from executorch.devtools import Inspector
        from executorch.extension.pybindings.portable_lib import (_load_for_executorch,
                                                                  _unsafe_reset_threadpool)
        if threads:
            _unsafe_reset_threadpool(threads)
        feed = [torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
                for a in ((x,) if isinstance(x, np.ndarray) else x)]
        with tempfile.TemporaryDirectory(prefix='iformer-et-profile-') as tmp, _quiet():
            module = _load_for_executorch(path, enable_etdump=True, debug_buffer_size=0)
            for _ in range(runs + 1):
                module.forward(feed)
            dump = os.path.join(tmp, 'run.etdp')
            module.write_etdump_result_to_file(dump)
            blocks = Inspector(etdump_path=dump).event_blocks
        events = []
        for block in blocks:
            for event in block.events:
                if event.perf_data is None or event.name in _RUNTIME_EVENTS:
                    continue
                op_type = re.sub(r' #\d+$', '', event.name)
                for ms in event.perf_data.raw[1:]:  # the first run warms up: not folded
                    events.append((op_type, _xnnpack_precision(op_type), ms))
        return fold(events, runs, 'ExecuTorch ETDump (XNNPACK operator events)')


#: ETDump events of the runtime itself, not of an operator
_RUNTIME_EVENTS = ('Method::execute', 'Method::init', 'Program::load_method', 'DELEGATE_CALL')


def _xnnpack_precision(op_type: str) -> str:
    """XNNPACK operator names carry their datatype: ``(NC, F32)``, ``(NHWC, QC8)``, ``(ND, X8)``."""
    tags = set(re.findall(r'\b(F32|F16|BF16|QC8W?|QS8|QU8|QD8|X8|X16|X32)\b', op_type))
    if tags & {'QC8', 'QC8W', 'QS8', 'QU8', 'QD8', 'X8'}:
        return 'int8'
    if tags & {'F16', 'X16'}:
        return 'fp16'
    if tags & {'F32', 'X32'}:
        return 'fp32'
    return 'unstated'  # elementwise ops (Add, GELU, ...) name no datatype


TARGET = ExecuTorchTarget(
    name='executorch', suffix='.pte', precisions=('fp32', 'int8'),
    packages=('executorch', 'torchao'),
    description='ExecuTorch with the XNNPACK delegate (Android / iOS CPU)')
