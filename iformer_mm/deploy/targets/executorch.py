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
"""
from __future__ import annotations

import collections
import contextlib
import io
import logging
import warnings
from typing import Dict, Optional

import numpy as np
import torch

from .base import Session, Target


@contextlib.contextmanager
def _quiet():
    """ExecuTorch and torch.export print pytree / deprecation notices on every export."""
    loggers = [logging.getLogger(n) for n in ('torch._dynamo', 'torch.export', 'executorch')]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter('ignore')
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


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


def _quantize(model: torch.nn.Module, example: torch.Tensor, calibration) -> torch.nn.Module:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    quantizer = XNNPACKQuantizer().set_global(quantization_config())
    captured = torch.export.export(model, (example,)).module()
    prepared = prepare_pt2e(captured, quantizer)
    with torch.no_grad():
        for x in calibration:
            prepared(x)
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
               metadata=None):
        from executorch.exir import to_edge_transform_and_lower
        with _quiet():
            if precision == 'int8':
                model = _quantize(model, example, calibration)
            program = torch.export.export(model, (example,))
            edge = to_edge_transform_and_lower(program, partitioner=[_partitioner(precision)])
            facts = delegation(edge)
            buffer = edge.to_executorch().buffer
        with open(path, 'wb') as f:
            f.write(buffer)
        return dict(facts, precision_ran=precision, delegate='XNNPACK')

    def session(self, path: str, threads: Optional[int] = None, precision: str = 'fp32') -> Session:
        from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool
        from executorch.runtime import Runtime
        if threads:
            _unsafe_reset_threadpool(threads)  # XNNPACK's process-wide threadpool
        with _quiet():
            method = Runtime.get().load_program(path).load_method('forward')
        return lambda x: [o.numpy() for o in method.execute([torch.from_numpy(
            np.ascontiguousarray(x, dtype=np.float32))])]


TARGET = ExecuTorchTarget(
    name='executorch', suffix='.pte', precisions=('fp32', 'int8'),
    packages=('executorch', 'torchao'),
    description='ExecuTorch with the XNNPACK delegate (Android / iOS CPU)')
