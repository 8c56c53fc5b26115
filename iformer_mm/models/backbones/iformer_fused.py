"""The deployed iFormer's blocks on fused oneDNN CPU kernels: the one place the fast path lives.

Why apart from the model file: the kernels are a CPU runtime concern. :mod:`.iformer` defines
each block once in standard ops (what training, exports and GPUs run); :meth:`IFormer.forward`
picks, once per call, how every block is run: ``run_plain`` (``block(x)``) or, for a deployed
model at CPU fp32 inference (:func:`~.fused_cpu_ops.use_fused_kernels`), ``run_fused``, which
looks the block's class up in :data:`~.fused_cpu_ops.FUSED_KERNELS` and computes the same
function with the activation and the residual add fused into oneDNN convolutions and with the
attention on oneDNN's matmul. Outputs equal the standard ops to ~1e-5 (tested against timm).

Each kernel below registers itself for its block class (``@fused_kernel(ConvBlock)``), so the
kernels are keyed by the classes themselves; importing :mod:`iformer_mm.models.backbones`
imports this module, which fills the table.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .fused_cpu_ops import conv_act, fused_kernel, matmul_nt
from .iformer import FFN, ConvBlock, RepCPE, SHMABlock, Stem

__all__ = ['ONEDNN_MATMUL_MIN_TOKENS']

#: attention uses oneDNN's matmul from this many tokens per image / window (faster there; below
#: it the per-image calls cost more than they save)
ONEDNN_MATMUL_MIN_TOKENS = 256


@fused_kernel(nn.Conv2d)
def _conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """The downsampling convs between stages (fused ConvBN)."""
    return conv_act(conv, x)


@fused_kernel(Stem)
def _stem(stem: Stem, x: torch.Tensor) -> torch.Tensor:
    x = conv_act(stem.conv2, conv_act(stem.conv1, x, 'gelu'), 'gelu')
    return conv_act(stem.conv3, x)


@fused_kernel(ConvBlock)
def _conv_block(block: ConvBlock, x: torch.Tensor) -> torch.Tensor:
    y = conv_act(block.pwconv1, conv_act(block.dwconv, x), 'gelu')
    return conv_act(block.pwconv2, y, residual=x)


@fused_kernel(FFN)
def _ffn(block: FFN, x: torch.Tensor) -> torch.Tensor:
    return conv_act(block.fc2, conv_act(block.fc1, x, 'gelu'), residual=x)


@fused_kernel(RepCPE)
def _repcpe(block: RepCPE, x: torch.Tensor) -> torch.Tensor:
    return conv_act(block.conv, x)  # the identity is inside the fused depthwise conv


@fused_kernel(SHMABlock)
def _shma_block(block: SHMABlock, x: torch.Tensor) -> torch.Tensor:
    """``x + SHMA(x)``: q/k and v/gate are two row slices of ``qkvg`` (sigmoid fused into the
    second); tokens are read as (B, N, C) views of the channels_last maps, so no layout copies."""
    attn = block.attn
    B, _, H, W = (int(s) for s in x.shape)
    da, dim, n = attn.attn_dim, attn.dim, H * W
    qk = conv_act(attn.qkvg, x, rows=(0, 2 * da)).permute(0, 2, 3, 1).reshape(B, n, 2 * da)
    vg = conv_act(attn.qkvg, x, 'sigmoid', rows=(2 * da, 2 * da + 2 * dim))
    vg = vg.permute(0, 2, 3, 1).reshape(B, n, 2 * dim)
    if n >= ONEDNN_MATMUL_MIN_TOKENS:
        weights = torch.softmax(matmul_nt(qk[..., :da], qk[..., da:]), dim=-1)
        out = matmul_nt(weights, vg[..., :dim].transpose(1, 2)).mul_(vg[..., dim:])
    else:
        weights = torch.softmax(torch.bmm(qk[..., :da], qk[..., da:].transpose(1, 2)), dim=-1)
        out = torch.bmm(weights, vg[..., :dim]).mul_(vg[..., dim:])
    out = out.view(B, H, W, dim).permute(0, 3, 1, 2)
    return conv_act(attn.proj, out, residual=x)
