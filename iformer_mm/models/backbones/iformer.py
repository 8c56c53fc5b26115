"""iFormer: the mobile hybrid ConvNet/Transformer backbone (ICLR 2025, arXiv 2501.15369).

One class, :class:`IFormer`, serves mmpretrain (classification), mmdet and mmseg (dense prediction).

Network (``docs/architecture.md``)::

    stem (stride 4) -> stage 0 -> down -> stage 1 -> down -> stage 2 -> down -> stage 3
    stage 0/1: ConvBlocks
    stage 2:   n_c ConvBlocks, n_a x [RepCPE, SHMABlock, FFN], 1 ConvBlock
    stage 3:   n_a3 x [RepCPE, SHMABlock, FFN]

Every block has two forms, switched by one flag, ``deploy``: the trainable form (ConvBN, layer
scale, separate q / k / v_gate) and the deployed form it fuses into with ``switch_to_deploy()``
(plain biased convs, RepCPE as one depthwise conv, one ``qkvg`` conv). ``IFormer(deploy=True)``
builds the deployed form directly, so a fused ``state_dict`` loads back strictly. Both forms use
standard PyTorch ops here; on CPU the deployed model additionally runs on fused oneDNN kernels
(:mod:`.iformer_fused`, chosen once per forward in :meth:`IFormer.forward`; every block class has
a registered kernel there, and a block without one is refused rather than run unfused).

Module names are ours (readable); the release files' and timm's names are translated on load by
:mod:`.iformer_keys`, so their files load as they are. The arch table and the name
parser are :mod:`.iformer_arch`.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from timm.layers import DropPath

from ...registry import MODELS
from ...checkpoint import resolve_on_rank_zero_first
from .fused_cpu_ops import RunBlock, run_fused, run_plain, use_fused_kernels
from .iformer_arch import NUM_STAGES, resolve_arch
from .iformer_keys import load_backbone_weights, prepare_backbone_state


# ----------------------------------------------------------------------------------------------
# Shapes as an exporter should see them
# ----------------------------------------------------------------------------------------------
_STATIC_SHAPES = [False]


@contextlib.contextmanager
def static_shapes() -> Iterator[None]:
    """Read tensor shapes as Python ints inside this block (see :func:`dims`).

    Why: a traced graph records shape arithmetic (window padding, reshapes) as graph ops, which
    is what a dynamic-shape ONNX / OpenVINO artifact needs; Core ML's converter cannot fold such
    ops and wants constants, so its trace runs inside this block.
    """
    previous, _STATIC_SHAPES[0] = _STATIC_SHAPES[0], True
    try:
        yield
    finally:
        _STATIC_SHAPES[0] = previous


def dims(x: torch.Tensor) -> Tuple:
    """``x.shape`` as Python ints inside :func:`static_shapes`, else as the tracer sees it."""
    return tuple(int(s) for s in x.shape) if _STATIC_SHAPES[0] else tuple(x.shape)


# ----------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------
class ConvBN(nn.Module):
    """Conv2d (no bias) + BatchNorm2d; :meth:`fuse` folds the BN into a biased conv."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
                 padding: int = 0, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                              groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))

    @torch.no_grad()
    def fuse(self) -> nn.Conv2d:
        conv, bn = self.conv, self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                          conv.padding, groups=conv.groups, bias=True,
                          device=conv.weight.device, dtype=conv.weight.dtype)
        fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        fused.bias.copy_(bn.bias - bn.running_mean * scale)
        return fused


def conv_bn(in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1,
            padding: int = 0, groups: int = 1, deploy: bool = False) -> nn.Module:
    """A ConvBN, or (``deploy``) the biased conv it fuses into."""
    if deploy:
        return nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups,
                         bias=True)
    return ConvBN(in_channels, out_channels, kernel_size, stride, padding, groups)


def _fuse_children(module: nn.Module) -> None:
    """Replace every direct ConvBN child of ``module`` by its fused conv."""
    for name, child in module.named_children():
        if isinstance(child, ConvBN):
            setattr(module, name, child.fuse())


@torch.no_grad()
def _fold_scale(conv: nn.Conv2d, gamma: Optional[nn.Parameter]) -> None:
    """Fold a per-channel layer scale into the conv that produces the scaled branch."""
    if gamma is None:
        return
    g = gamma.reshape(-1)
    conv.weight.mul_(g.view(-1, 1, 1, 1))
    conv.bias.mul_(g)


class LayerScaleResidual(nn.Module):
    """Shared residual plumbing: ``x + drop_path(gamma * branch(x))``.

    Deployed, ``gamma`` is folded into the branch's output conv (:meth:`_output_conv`).
    """

    def __init__(self, dim: int, drop_path: float, layer_scale_init_value: float,
                 deploy: bool = False):
        super().__init__()
        self.deploy = deploy
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        if layer_scale_init_value > 0 and not deploy:
            self.gamma = nn.Parameter(torch.full((1, dim, 1, 1), float(layer_scale_init_value)))
        else:
            self.gamma = None

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _output_conv(self) -> nn.Conv2d:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.branch(x)
        if self.gamma is not None:
            y = self.gamma * y
        return x + self.drop_path(y)

    def switch_to_deploy(self) -> None:
        if self.deploy:
            return
        _fuse_children(self)
        _fold_scale(self._output_conv(), self.gamma)
        self.gamma = None
        self.deploy = True


class ConvBlock(LayerScaleResidual):
    """Depthwise 7x7 conv -> 1x1 expand -> GELU -> 1x1 project, with a residual (no act after dw)."""

    def __init__(self, dim: int, ratio: int, drop_path: float = 0.,
                 layer_scale_init_value: float = 0., deploy: bool = False):
        super().__init__(dim, drop_path, layer_scale_init_value, deploy)
        self.dwconv = conv_bn(dim, dim, 7, 1, 3, groups=dim, deploy=deploy)
        self.pwconv1 = conv_bn(dim, ratio * dim, deploy=deploy)
        self.act = nn.GELU()
        self.pwconv2 = conv_bn(ratio * dim, dim, deploy=deploy)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.pwconv2(self.act(self.pwconv1(self.dwconv(x))))

    def _output_conv(self) -> nn.Conv2d:
        return self.pwconv2


class FFN(LayerScaleResidual):
    """1x1 expand -> GELU -> 1x1 project, with a residual."""

    def __init__(self, dim: int, ratio: int, drop_path: float = 0.,
                 layer_scale_init_value: float = 0., deploy: bool = False):
        super().__init__(dim, drop_path, layer_scale_init_value, deploy)
        self.fc1 = conv_bn(dim, ratio * dim, deploy=deploy)
        self.act = nn.GELU()
        self.fc2 = conv_bn(ratio * dim, dim, deploy=deploy)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))

    def _output_conv(self) -> nn.Conv2d:
        return self.fc2


class RepCPE(nn.Module):
    """Conditional positional encoding ``x + dwconv3x3(x)``; deployed: one depthwise conv."""

    def __init__(self, dim: int, deploy: bool = False):
        super().__init__()
        self.deploy = deploy
        self.conv = conv_bn(dim, dim, 3, 1, 1, groups=dim, deploy=deploy)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) if self.deploy else x + self.conv(x)

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        if self.deploy:
            return
        conv = self.conv.fuse()
        # identity of a depthwise conv = 1 at the kernel centre of each channel's filter
        kh, kw = conv.kernel_size
        conv.weight[:, 0, kh // 2, kw // 2] += 1
        self.conv = conv
        self.deploy = True


class SHMA(nn.Module):
    """Single-head modulation attention.

    ``v, gate = sigmoid(v_gate(x)).chunk(2)``; ``out = proj(attention(q, k, v) * gate)`` with one
    head of dim ``dim // head_dim_reduction`` over all H*W tokens (scaled-dot-product attention).
    Deployed, q, k and v_gate are one 1x1 conv (``qkvg``) whose q rows carry the softmax scale
    ``attn_dim ** -0.5``, so the attention is ``softmax(q k^T) v`` in plain matmuls (what every
    export target runs as is).
    """

    def __init__(self, dim: int, head_dim_reduction: int, deploy: bool = False):
        super().__init__()
        self.deploy = deploy
        self.dim = dim
        self.attn_dim = dim // head_dim_reduction
        if deploy:
            self.qkvg = nn.Conv2d(dim, 2 * self.attn_dim + 2 * dim, 1)
        else:
            self.q = ConvBN(dim, self.attn_dim)
            self.k = ConvBN(dim, self.attn_dim)
            self.v_gate = ConvBN(dim, 2 * dim)
        self.proj = conv_bn(dim, dim, deploy=deploy)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deploy:
            return self.forward_deployed(x)
        B, _, H, W = x.shape
        v, gate = torch.sigmoid(self.v_gate(x)).chunk(2, dim=1)
        # (B, C, H, W) -> (B, 1, N, C): views, SDPA takes strided inputs
        q, k, v = (t.flatten(2).transpose(1, 2).unsqueeze(1) for t in (self.q(x), self.k(x), v))
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.squeeze(1).transpose(1, 2).reshape(B, self.dim, H, W)
        return self.proj(out * gate)

    def forward_deployed(self, x: torch.Tensor) -> torch.Tensor:
        """One qkvg conv, explicit ``softmax(q k^T) v`` in two ``bmm``.

        Written for the export targets: static channel slices (not ``split``) and ``bmm`` (not a
        broadcasting ``@``, which exports as expand + bmm) are ops every runtime delegates
        (ExecuTorch's XNNPACK takes the whole classifier as one partition). Shapes through
        :func:`dims`: traced for dynamic-shape artifacts, constants for Core ML.
        """
        B, _, H, W = dims(x)
        n, da, d = H * W, self.attn_dim, self.dim
        qkvg = self.qkvg(x).reshape(B, 2 * da + 2 * d, n)
        vg = torch.sigmoid(qkvg[:, 2 * da:])
        attn = torch.softmax(torch.bmm(qkvg[:, :da].transpose(1, 2), qkvg[:, da:2 * da]), dim=-1)
        out = torch.bmm(vg[:, :d], attn.transpose(1, 2)) * vg[:, d:]
        return self.proj(out.reshape(B, d, H, W))

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        if self.deploy:
            return
        parts = [self.q.fuse(), self.k.fuse(), self.v_gate.fuse()]
        # fold the softmax scale into q: softmax((s q)^T k) == softmax(s q^T k)
        scale = self.attn_dim ** -0.5
        parts[0].weight.mul_(scale)
        parts[0].bias.mul_(scale)
        qkvg = nn.Conv2d(self.dim, 2 * self.attn_dim + 2 * self.dim, 1,
                         device=parts[0].weight.device, dtype=parts[0].weight.dtype)
        qkvg.weight.copy_(torch.cat([p.weight for p in parts]))
        qkvg.bias.copy_(torch.cat([p.bias for p in parts]))
        self.qkvg = qkvg
        del self.q, self.k, self.v_gate
        _fuse_children(self)
        self.deploy = True


class SHMABlock(LayerScaleResidual):
    """``x + drop_path(gamma * SHMA(x))``."""

    def __init__(self, dim: int, head_dim_reduction: int, drop_path: float = 0.,
                 layer_scale_init_value: float = 0., deploy: bool = False):
        super().__init__(dim, drop_path, layer_scale_init_value, deploy)
        self.attn = SHMA(dim, head_dim_reduction, deploy)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x)

    def _output_conv(self) -> nn.Conv2d:
        return self.attn.proj

    def switch_to_deploy(self) -> None:
        if self.deploy:
            return
        self.attn.switch_to_deploy()
        super().switch_to_deploy()


class Stem(nn.Module):
    """Stride-4 stem: 5x5/2 conv -> GELU -> 5x5/2 conv (2x width) -> GELU -> 1x1 conv."""

    def __init__(self, in_channels: int, dim: int, deploy: bool = False):
        super().__init__()
        self.deploy = deploy
        self.conv1 = conv_bn(in_channels, dim // 2, 5, 2, 2, deploy=deploy)
        self.act1 = nn.GELU()
        self.conv2 = conv_bn(dim // 2, 2 * dim, 5, 2, 2, deploy=deploy)
        self.act2 = nn.GELU()
        self.conv3 = conv_bn(2 * dim, dim, deploy=deploy)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.act2(self.conv2(self.act1(self.conv1(x)))))

    def switch_to_deploy(self) -> None:
        _fuse_children(self)
        self.deploy = True


# ----------------------------------------------------------------------------------------------
# Windows (dense-prediction backbones)
# ----------------------------------------------------------------------------------------------
def window_partition(x: torch.Tensor, window_size: int) -> Tuple[torch.Tensor, Tuple[int, ...]]:
    """Zero-pad (right/bottom) to a multiple of ``window_size`` and cut into windows.

    Returns windows (B*nH*nW, C, ws, ws) and the geometry needed by :func:`window_merge`.
    Shapes through :func:`dims`: a dynamic-shape artifact computes the padding from its input.
    """
    B, C, H, W = dims(x)
    pad_h, pad_w = (-H) % window_size, (-W) % window_size
    if not isinstance(pad_h, int) or pad_h or pad_w:  # traced sizes: the input decides
        x = F.pad(x, (0, pad_w, 0, pad_h))
    nh, nw = (H + pad_h) // window_size, (W + pad_w) // window_size
    x = x.permute(0, 2, 3, 1).reshape(B, nh, window_size, nw, window_size, C)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(B * nh * nw, window_size, window_size, C)
    return x.permute(0, 3, 1, 2), (B, H, W, nh, nw)


def window_merge(windows: torch.Tensor, geometry: Tuple[int, ...]) -> torch.Tensor:
    """Inverse of :func:`window_partition`: stitch windows and crop the padding.

    A map of whole windows (512x512: stage 2 is 32x32) is not sliced at all: a slice that keeps
    everything exports as ``aten.alias``, which ExecuTorch's XNNPACK delegate does not take, so
    the dense backbone ran as two partitions with a copy between them.
    """
    B, H, W, nh, nw = geometry
    C, ws = dims(windows)[1:3]
    x = windows.permute(0, 2, 3, 1).reshape(B, nh, nw, ws, ws, C)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(B, nh * ws, nw * ws, C)
    if not isinstance(H, int) or (nh * ws, nw * ws) != (H, W):  # traced sizes: always crop
        x = x[:, :H, :W]
    return x.permute(0, 3, 1, 2)


class IFormerStage(nn.ModuleList):
    """The blocks of one stage, run in order.

    With ``window_size > 0`` the residual stream is partitioned into windows at the input of block
    ``window_start`` and merged (padding cropped) after block ``window_end``, as the published
    detection/segmentation backbones do. Blocks in between (RepCPE included) see windows.
    """

    def __init__(self, blocks: Sequence[nn.Module]):
        super().__init__(blocks)
        self.window_size = 0
        self.window_start = -1
        self.window_end = -1
        self.with_cp = False

    def set_window(self, window_size: int, start: int = -1, end: int = -1) -> None:
        self.window_size, self.window_start, self.window_end = window_size, start, end

    def forward(self, x: torch.Tensor, run: RunBlock = run_plain) -> torch.Tensor:
        """``run(block, x)`` runs one block (the deployed CPU model passes :func:`run_fused`)."""
        geometry = None
        for i, block in enumerate(self):
            if self.window_size > 0 and i == self.window_start:
                x, geometry = window_partition(x, self.window_size)
            if self.with_cp and x.requires_grad:
                x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = run(block, x)
            if geometry is not None and i == self.window_end:
                x = window_merge(x, geometry)
                geometry = None
        return x


# ----------------------------------------------------------------------------------------------
# Backbone
# ----------------------------------------------------------------------------------------------
def _prepare_state_hook(module, state_dict, prefix, *args) -> None:
    prepare_backbone_state(module, state_dict, prefix)


@MODELS.register_module()
class IFormer(BaseModule):
    """iFormer backbone for mmpretrain, mmdet and mmseg.

    Args:
        arch: 't', 's', 'm', 'l', 'l2', 'h' (also 'iformer-m' / 'iFormer_m'), or a dict with
            keys ``dims, depths, num_attn, attn_head_dim_reduction, conv_ratio, ffn_ratio`` (optional
            ``layer_scale_init_value``, ``window_blocks``).
        in_channels: input image channels.
        out_indices: stages whose outputs are returned (negatives count from the end).
            Classification uses ``(3,)``; detection/segmentation ``(0, 1, 2, 3)``.
        frozen_stages: freeze the stem and the first ``frozen_stages`` stages (0 = nothing,
            4 = everything); their BN stays in eval mode.
        norm_eval: keep every BatchNorm in eval mode during training (frozen statistics),
            as the published detection/segmentation backbones do.
        with_cp: gradient checkpointing per block (saves memory, costs a re-forward).
        drop_path_rate: stochastic depth, linear over all blocks.
        layer_scale_init_value: layer scale init; None = the arch's published value (H: 1e-6).
        window_size: > 0 runs stage-2 SHMA in windows of this size (published dense backbones: 16).
        window_blocks: how many of the stage-2 SHMA blocks (from the first) run in windows;
            None = the published layout (M: all 4, L: 7 of 8, L2: 10 of 11; T, S: all).
        deploy: build the deployed (fused) structure directly, as ``switch_to_deploy()`` leaves
            it (mmpretrain's MobileOne / RepVGG convention): for loading a saved fused
            ``state_dict`` and for inference only.
        init_cfg: mmengine init config; ``dict(type='Pretrained', checkpoint=PATH)`` accepts the
            published classification / detection / segmentation files, mm-format files and
            timm's (``.pth`` / ``.bin`` / ``.safetensors``), by path, URL or ``hf-hub:`` name.
    """

    def __init__(self,
                 arch: Union[str, dict] = 't',
                 in_channels: int = 3,
                 out_indices: Sequence[int] = (3,),
                 frozen_stages: int = 0,
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 drop_path_rate: float = 0.,
                 layer_scale_init_value: Optional[float] = None,
                 window_size: int = 0,
                 window_blocks: Optional[int] = None,
                 deploy: bool = False,
                 init_cfg: Optional[Union[dict, List[dict]]] = None):
        super().__init__(init_cfg=init_cfg)
        self.arch = resolve_arch(arch)
        self.arch_name = arch if isinstance(arch, str) else 'custom'
        self.dims = tuple(self.arch['dims'])
        self.depths = tuple(self.arch['depths'])
        self.num_layers = sum(self.depths) + 2
        if not isinstance(in_channels, int) or in_channels < 1:
            raise ValueError(f'in_channels must be a positive int, got {in_channels!r}')
        self.in_channels = in_channels
        self.out_indices = self._normalize_out_indices(out_indices)
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= NUM_STAGES:
            raise ValueError(f'frozen_stages must be an int in [-1, {NUM_STAGES}] (-1 or 0: none, '
                             f'{NUM_STAGES}: all stages), got {frozen_stages!r}')
        self.frozen_stages = max(frozen_stages, 0)
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        if layer_scale_init_value is None:
            layer_scale_init_value = self.arch['layer_scale_init_value']
        self.deploy = bool(deploy)

        dims = self.dims
        self.downsample_layers = nn.ModuleList([Stem(in_channels, dims[0], self.deploy)])
        for i in range(1, NUM_STAGES):
            self.downsample_layers.append(conv_bn(dims[i - 1], dims[i], 3, 2, 1,
                                                  deploy=self.deploy))

        # plain floats, computed on the CPU whatever the default device (e.g. 'meta')
        dpr = torch.linspace(0, drop_path_rate, sum(self.depths), device='cpu').tolist()
        self.stages = nn.ModuleList()
        offset = 0
        for i in range(NUM_STAGES):
            rates = dpr[offset:offset + self.depths[i]]
            self.stages.append(IFormerStage(self._make_blocks(i, rates, layer_scale_init_value)))
            offset += self.depths[i]
        for stage in self.stages:
            stage.with_cp = with_cp

        self.window_size = 0
        self.set_window(window_size, window_blocks)
        self.apply(self._init_weights)
        self._freeze_stages()
        # release and timm key names are renamed on load, whichever loader is used, and weights
        # that cannot be this backbone's are refused there
        self.register_load_state_dict_pre_hook(_prepare_state_hook)

    # -- construction -----------------------------------------------------------------------
    def _normalize_out_indices(self, out_indices: Union[int, Sequence[int]]) -> Tuple[int, ...]:
        if isinstance(out_indices, int):
            out_indices = (out_indices,)
        result = []
        for index in out_indices:
            if not isinstance(index, int) or not -NUM_STAGES <= index < NUM_STAGES:
                raise ValueError(f'out_indices entry {index!r} is out of range; iFormer has '
                                 f'{NUM_STAGES} stages: use 0..{NUM_STAGES - 1} or negatives')
            result.append(index % NUM_STAGES)
        if not result:
            raise ValueError('out_indices is empty; name at least one stage (0..3)')
        return tuple(sorted(set(result)))

    def _make_blocks(self, stage: int, rates: List[float], ls: float) -> List[nn.Module]:
        dim, depth = self.dims[stage], self.depths[stage]
        groups = self.arch['num_attn'][stage]
        deploy = self.deploy
        conv = lambda j: ConvBlock(dim, self.arch['conv_ratio'], rates[j], ls, deploy)  # noqa: E731
        if groups == 0:
            return [conv(j) for j in range(depth)]
        num_conv = depth - 3 * groups
        num_before = max(num_conv - 1, 0)
        blocks = [conv(j) for j in range(num_before)]
        for g in range(groups):
            j = num_before + 3 * g
            blocks += [RepCPE(dim, deploy),
                       SHMABlock(dim, self.arch['attn_head_dim_reduction'][stage], rates[j + 1],
                                 ls, deploy),
                       FFN(dim, self.arch['ffn_ratio'], rates[j + 2], ls, deploy)]
        if num_conv > 0:
            blocks.append(conv(depth - 1))
        return blocks

    def set_window(self, window_size: int, window_blocks: Optional[int] = None) -> None:
        """Run the first ``window_blocks`` stage-2 SHMA blocks in windows (0 turns it off)."""
        if not isinstance(window_size, int) or window_size < 0:
            raise ValueError(f'window_size must be an int >= 0 (0 = global attention), '
                             f'got {window_size!r}')
        stage = self.stages[2]
        shma = [i for i, b in enumerate(stage) if isinstance(b, SHMABlock)]
        if window_size == 0 or not shma:
            stage.set_window(0)
            self.window_size, self.window_blocks = 0, 0
            return
        if window_blocks is None:
            window_blocks = min(self.arch['window_blocks'], len(shma))
        if not isinstance(window_blocks, int) or not 1 <= window_blocks <= len(shma):
            raise ValueError(f'window_blocks must be in [1, {len(shma)}] (stage-2 SHMA blocks), '
                             f'got {window_blocks!r}')
        stage.set_window(window_size, shma[0], shma[window_blocks - 1])
        self.window_size, self.window_blocks = window_size, window_blocks

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def init_weights(self) -> None:
        """Random init, or ``init_cfg=dict(type='Pretrained', checkpoint=...)`` via our loader.

        Our loader detects the release / mm / timm layouts, renames keys, and loads the backbone
        strictly (mmengine's generic loader would silently skip mismatched keys). A URL or Hub
        name is downloaded once into its cache (rank 0 first in a distributed run).
        """
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            path = resolve_on_rank_zero_first(cfg['checkpoint'])
            load_backbone_weights(self, path, prefix=cfg.get('prefix'))
            self._is_init = True
            return
        super().init_weights()

    # -- mm conventions ---------------------------------------------------------------------
    def _freeze_stages(self) -> None:
        for i in range(self.frozen_stages):
            for module in (self.downsample_layers[i], self.stages[i]):
                module.eval()
                for p in module.parameters():
                    p.requires_grad = False

    def train(self, mode: bool = True) -> 'IFormer':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """Layer id for layer-wise LR decay: stem 0, block k (global) k+1, rest last."""
        max_id = self.num_layers - 1
        if not param_name.startswith(prefix):
            return max_id, self.num_layers
        parts = param_name[len(prefix):].split('.')
        if parts[0] == 'downsample_layers':
            stage = int(parts[1])
            layer_id = 0 if stage == 0 else sum(self.depths[:stage]) + 1
        elif parts[0] == 'stages':
            stage, block = int(parts[1]), int(parts[2])
            layer_id = sum(self.depths[:stage]) + block + 1
        else:
            layer_id = max_id
        return layer_id, self.num_layers

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Fuse every ConvBN, RepCPE residual, layer scale and q/k/v_gate (exact in eval)."""
        for m in list(self.modules()):
            if m is not self and hasattr(m, 'switch_to_deploy'):
                m.switch_to_deploy()
        for i in range(1, NUM_STAGES):
            if isinstance(self.downsample_layers[i], ConvBN):
                self.downsample_layers[i] = self.downsample_layers[i].fuse()
        self.deploy = True

    # -- forward ----------------------------------------------------------------------------
    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f'iFormer expects a 4-D (N, C, H, W) tensor, got shape {tuple(x.shape)}')
        if x.shape[1] != self.in_channels:
            raise ValueError(f'iFormer was built with in_channels={self.in_channels} but the input '
                             f'has {x.shape[1]} channels (shape {tuple(x.shape)})')
        if x.shape[2] < 32 or x.shape[3] < 32:
            raise ValueError(f'input {x.shape[2]}x{x.shape[3]} is smaller than the network stride '
                             '32; iFormer needs height and width >= 32')

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        if not torch.jit.is_tracing() and not torch.compiler.is_compiling():
            self._check_input(x)
        # deployed + inference on CPU: every block on fused oneDNN kernels, channels_last inside;
        # the outputs keep the input's memory format
        fused = self.deploy and not self.training and use_fused_kernels(x)
        run = run_fused if fused else run_plain
        restore = fused and not x.is_contiguous(memory_format=torch.channels_last)
        if fused:
            x = x.contiguous(memory_format=torch.channels_last)
        outs = []
        for i in range(NUM_STAGES):
            x = self.stages[i](run(self.downsample_layers[i], x), run)
            if i in self.out_indices:
                outs.append(x.contiguous() if restore else x)
            if i >= self.out_indices[-1]:
                break
        return tuple(outs)
