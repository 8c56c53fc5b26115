"""oneDNN fused kernels for the *deployed* (fused) iFormer on CPU.

Why: after :meth:`IFormer.switch_to_deploy` the network is a chain of plain convs, GELU, sigmoid and
residual adds. Eager PyTorch runs each of those as a separate pass over memory and re-packs every
conv weight into oneDNN's blocked layout on every call. oneDNN can instead apply GELU / sigmoid /
the residual add as *post-ops* of the conv and use weights packed once; on a 2-core CPU this halves
the batch-1 latency of a ConvBlock. The ops used are PyTorch's own (``torch.ops.mkldnn.
_convolution_pointwise``, what ``torch.compile`` emits for CPU convs), called directly from eager.

They are used only when all of these hold (see :func:`use_fused_kernels`): CPU float32 input, grad
disabled, module in eval mode, not tracing / scripting / compiling / exporting (exported graphs
keep the standard ops; so do dispatch modes such as ``FlopCounterMode``), the ops exist and
passed a one-time numerical self-check. Otherwise the callers fall back to standard ops, with the
same results (<= 1e-5); a failed self-check (missing op, or kernels that disagree with the
standard ops) warns once per process. Packed weights are cached per conv module, input shape and
thread count (at most two packings per conv: extra copies of the weights) and re-packed when the
parameters change.
Disable with ``IFORMER_MM_FUSED_CPU=0``, :func:`set_fused_kernels` or :func:`fused_kernels`.

Dispatch: :data:`FUSED_KERNELS` maps each deployed block *class* to its fused kernel; the kernels
register themselves with :func:`fused_kernel` where they are written (:mod:`.iformer_fused`).
:func:`run_fused` refuses a block whose class has no kernel instead of quietly running it
unfused, so a renamed or new block cannot leave the fast path unnoticed.
"""
from __future__ import annotations

import contextlib
import os
import threading
import warnings
import weakref
from collections import OrderedDict
from typing import Callable, Dict, Iterator, Optional, Tuple, Type

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._python_dispatch import _get_current_dispatch_mode

__all__ = ['use_fused_kernels', 'set_fused_kernels', 'fused_kernels', 'conv_act',
           'matmul_nt', 'fused_kernels_available', 'RunBlock', 'FUSED_KERNELS', 'fused_kernel',
           'run_fused', 'run_plain']

_ACTS = ('none', 'gelu', 'sigmoid')
_state = {'enabled': os.environ.get('IFORMER_MM_FUSED_CPU', '1') != '0', 'available': None}
_CHECK_LOCK = threading.Lock()  # threads asking at once run the self-check (and warn) once
# packed weights per conv module (weak: they die with the module and are never in a state_dict)
_Packed = Dict[Optional[Tuple[int, int]], 'OrderedDict[tuple, Tuple[tuple, torch.Tensor, torch.Tensor]]']
#: packings kept per conv and row slice (input shape x thread count combinations)
PACKED_PER_SLICE = 2
_PACKED: 'weakref.WeakKeyDictionary[nn.Module, _Packed]' = weakref.WeakKeyDictionary()


def set_fused_kernels(enabled: bool) -> None:
    """Turn the fused CPU kernels on or off process-wide (benchmarks compare both)."""
    _state['enabled'] = bool(enabled)


@contextlib.contextmanager
def fused_kernels(enabled: bool) -> Iterator[None]:
    """Temporarily turn the fused CPU kernels on or off."""
    previous = _state['enabled']
    _state['enabled'] = bool(enabled)
    try:
        yield
    finally:
        _state['enabled'] = previous


def _exporting() -> bool:
    # tracing / scripting / compiling / ONNX export keep standard ops in the graph; a dispatch
    # mode (FlopCounterMode, fake tensors) must see them too, or it would miss the convs
    return (torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling()
            or torch.onnx.is_in_onnx_export() or _get_current_dispatch_mode() is not None)


def use_fused_kernels(x: torch.Tensor) -> bool:
    """True when ``x`` may run through the fused oneDNN kernels (see module docstring)."""
    if not _state['enabled'] or torch.is_grad_enabled():
        return False
    if x.device.type != 'cpu' or x.dtype != torch.float32 or _exporting():
        return False
    return fused_kernels_available()


def fused_kernels_available() -> bool:
    """Whether this PyTorch build has the kernels and they agree with the standard ops.

    Checked once per process (:func:`_self_check`, which warns when the answer is no).
    """
    if _state['available'] is None:
        with _CHECK_LOCK:
            if _state['available'] is None:
                _state['available'] = _self_check()
    return bool(_state['available'])


def _pointwise(x, weight, bias, conv: nn.Conv2d, act: str, residual: Optional[torch.Tensor]):
    op = torch.ops.mkldnn._convolution_pointwise
    args = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
    if residual is None:
        return op(x, weight, bias, *args, act, [], 'none' if act == 'gelu' else '')
    return op.binary(x, residual, weight, bias, *args, 'add', 1.0, None, [], None)


def _self_check() -> bool:
    """Run each kernel once on a tiny input and compare with the standard ops.

    Why it warns on a mismatch too: a build whose fused kernels compute something else would
    otherwise just run slower, unfused, with nothing to say why.
    """
    try:
        if not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
            return False
        g = torch.Generator().manual_seed(0)
        with torch.inference_mode(False):
            conv = nn.Conv2d(8, 8, 3, 1, 1, groups=2)
        x = torch.randn(2, 8, 6, 5, generator=g).contiguous(memory_format=torch.channels_last)
        r = torch.randn(2, 8, 6, 5, generator=g).contiguous(memory_format=torch.channels_last)
        a = torch.randn(2, 7, 4, generator=g)
        b = torch.randn(2, 5, 9, generator=g)[..., 2:6]  # strided, as attention reads tokens
        with torch.no_grad():
            ref = conv(x)
            checks = {'conv+gelu': (conv_act(conv, x, 'gelu'), F.gelu(ref)),
                      'conv+sigmoid': (conv_act(conv, x, 'sigmoid'), torch.sigmoid(ref)),
                      'conv+add': (conv_act(conv, x, residual=r), ref + r),
                      'matmul_nt': (matmul_nt(a, b), a @ b.transpose(1, 2)),
                      'matmul_nt batch 1': (matmul_nt(a[:1], b[:1]), a[:1] @ b[:1].transpose(1, 2))}
        _PACKED.pop(conv, None)
        wrong = {name: float((fused - std).abs().max()) for name, (fused, std) in checks.items()
                 if not torch.allclose(fused, std, atol=1e-5, rtol=1e-5)}
        if wrong:
            warnings.warn(f'iformer_mm: fused oneDNN CPU kernels disagree with the standard ops '
                          f'(max abs difference {max(wrong.values()):.3g} in '
                          f'{", ".join(wrong)}); the model runs unfused, on standard ops')
        return not wrong
    except Exception as e:  # missing op, unsupported CPU: fall back to standard ops
        warnings.warn(f'iformer_mm: fused oneDNN CPU kernels unavailable ({type(e).__name__}: '
                      f'{str(e).splitlines()[0] if str(e) else ""}); using standard ops')
        return False


def matmul_nt(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b.transpose(1, 2)`` for (B, M, K) and (B, N, K) tensors, on oneDNN's matmul.

    Why: for attention-sized products (hundreds to thousands of tokens) oneDNN's matmul ran
    about 2x faster than ``torch.bmm`` (MKL) on this CPU at 1 and 2 threads (q k^T at 1024
    tokens: 0.62 vs 1.30 ms on 2 threads). It needs contiguous operands (a strided view
    was measured 1000x slower), so each is made contiguous first (a copy of a token slice).
    """
    op = torch.ops.mkldnn._linear_pointwise
    a, b = a.contiguous(), b.contiguous()
    if a.shape[0] == 1:  # batch-1 inference: no stacking copy of the (M, N) product
        return op(a[0], b[0], None, 'none', [], '').unsqueeze(0)
    return torch.stack([op(a[i], b[i], None, 'none', [], '') for i in range(a.shape[0])])


def _version(t: torch.Tensor) -> int:
    # tensors made under inference_mode have no version counter (and cannot be edited in place
    # outside it); the storage pointer alone identifies them
    return -1 if t.is_inference() else t._version


def _packed_weight(conv: nn.Conv2d, x: torch.Tensor, rows: Optional[Tuple[int, int]]):
    """Weight packed for oneDNN (and bias), cached per module, row slice and input geometry.

    oneDNN picks the packed layout for one input shape and thread count; the same packing used
    at another shape or thread count was measured up to 5x slower (iFormer-L packed at 512 px
    and run at 224: 95 ms instead of 19 ms). So the cache is keyed on both and keeps the
    :data:`PACKED_PER_SLICE` newest packings per row slice (dense tasks with varying image
    sizes re-pack, as eager convs do on every call). Re-packed when the parameters change
    (``load_state_dict``, in-place edits: tracked by ``_version`` and the storage pointer).
    """
    w, b = conv.weight, conv.bias
    params = (_version(w), w.data_ptr(), None if b is None else (_version(b), b.data_ptr()))
    geometry = (x.shape, torch.get_num_threads())  # torch.Size hashes as a tuple of ints
    slices = _PACKED.setdefault(conv, {})
    cache = slices.get(rows)
    if cache is None:
        cache = slices[rows] = OrderedDict()
    hit = cache.get(geometry)
    if hit is not None and hit[0] == params:
        return hit[1], hit[2]
    w = w.detach()
    b = torch.zeros(w.shape[0], dtype=w.dtype) if b is None else b.detach()
    if rows is not None:
        w, b = w[rows[0]:rows[1]], b[rows[0]:rows[1]]
    packed = torch._C._nn.mkldnn_reorder_conv2d_weight(
        w.contiguous().to_mkldnn(), list(conv.padding), list(conv.stride), list(conv.dilation),
        conv.groups, [int(d) for d in geometry[0]])
    b = b.contiguous()
    cache.pop(geometry, None)
    cache[geometry] = (params, packed, b)  # newest last: the oldest packing is dropped first
    while len(cache) > PACKED_PER_SLICE:
        cache.popitem(last=False)
    return packed, b


def conv_act(conv: nn.Conv2d, x: torch.Tensor, act: str = 'none',
             residual: Optional[torch.Tensor] = None,
             rows: Optional[Tuple[int, int]] = None) -> torch.Tensor:
    """``act(conv(x)[:, rows])`` or ``conv(x) + residual`` in one oneDNN call.

    ``x`` should be channels_last (the output is). Call only when :func:`use_fused_kernels` is
    True; ``rows`` selects a slice of output channels (e.g. the q/k part of a fused qkvg conv).
    """
    if act not in _ACTS:
        raise ValueError(f'act must be one of {_ACTS}, got {act!r}')
    if residual is not None and act != 'none':
        raise ValueError('a residual add cannot be combined with an activation here')
    weight, bias = _packed_weight(conv, x, rows)
    return _pointwise(x, weight, bias, conv, act, residual)


# ----------------------------------------------------------------------------------------------
# Dispatch: deployed block class -> fused kernel
# ----------------------------------------------------------------------------------------------
#: one block run: ``(block, x) -> y``
RunBlock = Callable[[nn.Module, torch.Tensor], torch.Tensor]
#: deployed block class -> its fused kernel (filled by :func:`fused_kernel`)
FUSED_KERNELS: Dict[Type[nn.Module], RunBlock] = {}


def fused_kernel(block_class: Type[nn.Module]) -> Callable[[RunBlock], RunBlock]:
    """Decorator: register the function as the fused kernel of ``block_class`` (exactly)."""
    def register(kernel: RunBlock) -> RunBlock:
        if block_class in FUSED_KERNELS:
            raise ValueError(f'{block_class.__name__} already has a fused kernel '
                             f'({FUSED_KERNELS[block_class].__name__})')
        FUSED_KERNELS[block_class] = kernel
        return kernel
    return register


def run_plain(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Standard ops: the block's own forward."""
    return block(x)


def run_fused(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The deployed ``block`` on its fused oneDNN kernel (``x`` channels_last; the output is).

    Looked up by the block's exact class: a subclass may compute something else, so it needs a
    kernel of its own. A block without one raises instead of silently running unfused.
    """
    kernel = FUSED_KERNELS.get(type(block))
    if kernel is None:
        known = ', '.join(sorted(c.__name__ for c in FUSED_KERNELS))
        raise NotImplementedError(
            f'no fused CPU kernel for {type(block).__module__}.{type(block).__qualname__} (kernels '
            f'exist for: {known}); register one with @fused_kernel({type(block).__name__}), or '
            'run unfused with IFORMER_MM_FUSED_CPU=0 / fused_kernels(False)')
    return kernel(block, x)
