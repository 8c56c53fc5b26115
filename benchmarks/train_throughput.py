"""Training and inference throughput of iFormer, ours vs timm's port, interleaved in one process.

What is measured (each a *setting*, ours and timm alike):

* ``train``: the classifier's training step (forward + cross-entropy + backward + AdamW step) at
  224, per batch size, fp32 or bf16 autocast, NCHW or channels_last, eager or ``torch.compile``;
* ``inference``: the fused classifier (ours ``switch_to_deploy()``, timm ``fuse()``), weights and
  input cast to the dtype (bf16), eval, ``torch.inference_mode``;
* ``dense_train``: the windowed dense backbone (``IFormer(arch, out_indices=(0, 1, 2, 3),
  window_size=16, norm_eval=True)``, the published Mask R-CNN / Semantic FPN setting) at 512x512,
  a training step with a stand-in loss on the four feature maps (the neck and head are not ours).

How, and why:

* Same network on both sides, proven before timing: timm's model gets our weights through the
  published key layout and its own ``checkpoint_filter_fn`` and loads strictly
  (:mod:`.timm_twins`); then both compute the loss (and gradients) of one batch in fp32 with TF32
  off, and ``|loss_ours - loss_timm| <= 1e-4`` (:data:`LOSS_TOLERANCE`) is required. A pair that
  fails is not timed (its settings are recorded as skipped and the command exits non-zero).
* Interleaved rounds (:mod:`.timing`): each round runs ``steps`` calls of ours, then of timm
  (order alternating), synchronised; images/s per round, the ratio ours / timm per round, medians.
* Budget: the whole run must fit a wall-clock budget (default 7 min: the GPU command has 8 min
  including start-up). Settings run in priority order - the eager grid, inference and dense
  settings first (bounded: ``setting_budget_s`` each), ``torch.compile`` settings last, each
  started only if its estimated cost (compile + measurement, scaled by the number of blocks from
  what the previous compile took) fits what is left, and interrupted if it runs past the budget.
  Skipped settings are recorded with the reason. A CUDA out-of-memory error ends its setting
  (``status: 'oom'``), not the run.
* Compilation: ``torch.compile(dynamic=False)`` per compile setting, ours and timm after one
  ``torch._dynamo.reset()``; by default only at batch 256 and for two (dtype, memory format)
  pairs per model (bf16 + channels_last, the fastest; fp32 + NCHW, the plain recipe), because each
  compile of a training graph costs about a minute or two while an eager setting costs seconds.
* Synthetic data already on the device (model throughput, no data loading); drop path 0 (its
  random masks would make the two sides differ); weights are random (speed does not depend on
  them).

Needs torch, mmengine and timm only: nothing here imports mmcv, mmdet, mmseg or mmpretrain.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from iformer_mm.models.backbones.iformer import IFormer
from iformer_mm.utils.cli import positive_int
from iformer_mm.models.backbones.iformer_arch import ARCH_SETTINGS
from iformer_mm.models.plain_classifier import IFormerClassifier
from . import timing
from .argtypes import base_model, seconds, square_resolution
from .machine import accelerator_environment
from .timm_twins import timm_classifier, timm_dense_backbone

SCHEMA = 'iformer-mm/train-throughput/1'
DTYPES: Dict[str, torch.dtype] = {'fp32': torch.float32, 'bf16': torch.bfloat16}
MEMORY_FORMATS: Dict[str, torch.memory_format] = {'nchw': torch.contiguous_format,
                                                  'channels_last': torch.channels_last}
LOSS_TOLERANCE = 1e-4
GRAD_NORM_RTOL = 1e-3
NUM_CLASSES = 1000
DENSE_WINDOW = 16
# the optimizer of the published recipes (lr is tiny so that random-label steps keep weights sane)
OPTIMIZER = dict(lr=1e-5, weight_decay=0.05)
PACKAGES = ('torch', 'timm', 'mmengine', 'triton', 'numpy')
# targets (benchmark, not a timed test)
RATIO_TARGET = 1.0
SPEEDUP_TARGET = 1.5
# profile a training setting when ours is this much slower (below: noise) - at most this often
PROFILE_BELOW = 0.97
MAX_PROFILES = 4

Log = Callable[[str], None]


@dataclass(frozen=True)
class Setting:
    """One measured configuration, run for ours and timm alike."""
    kind: str           # 'train' | 'inference' | 'dense_train'
    model: str          # arch key: t, s, m, l, l2, h
    resolution: int
    batch: int
    dtype: str          # 'fp32' | 'bf16'
    memory_format: str  # 'nchw' | 'channels_last'
    mode: str           # 'eager' | 'compile'

    @property
    def label(self) -> str:
        return (f'{self.kind} {self.model.upper()} {self.resolution} b{self.batch} {self.dtype} '
                f'{self.memory_format} {self.mode}')


def _compile_setting(value: str) -> Tuple[str, str]:
    """argparse type: 'DTYPE:MEMORY_FORMAT', e.g. bf16:channels_last."""
    dtype, _, fmt = value.partition(':')
    if dtype not in DTYPES or fmt not in MEMORY_FORMATS:
        raise argparse.ArgumentTypeError(
            f'{value!r} is not DTYPE:MEMORY_FORMAT with DTYPE in {list(DTYPES)} and '
            f'MEMORY_FORMAT in {list(MEMORY_FORMATS)} (e.g. bf16:channels_last)')
    return dtype, fmt


def _flag(default, help: str, **argparse_kwargs):
    """A Plan field that is also a command-line flag (``--name-with-dashes``): the flags of
    ``tools/benchmark.py train-throughput`` are derived from these (:func:`plan_flags`)."""
    return field(default=default, metadata={'flag': dict(help=help, **argparse_kwargs)})


def _switch_off(default: bool, flag: str, help: str):
    """A boolean Plan field that a ``--no-...`` flag turns off."""
    return field(default=default, metadata={'switch_off': flag, 'help': help})


_DTYPE_CHOICES = dict(nargs='+', choices=list(DTYPES))
_FORMAT_CHOICES = dict(nargs='+', choices=list(MEMORY_FORMATS))
_MODELS = dict(nargs='+', type=base_model)
_MODELS_OR_NONE = dict(nargs='*', type=base_model)
_BATCHES = dict(nargs='+', type=positive_int)


@dataclass
class Plan:
    """What to measure and how long to try; the defaults are the GPU run (< 8 min on an H200).

    Each field declared with ``_flag`` is a command-line flag of the same name.
    """
    device: str = _flag('cuda', "'cuda', 'cuda:N' or 'cpu'")
    models: Tuple[str, ...] = _flag(('t', 'm', 'l'), 'classifier variants', **_MODELS)
    resolution: int = _flag(224, 'classifier input', type=square_resolution)
    batch_sizes: Tuple[int, ...] = _flag((128, 256), 'training batch sizes', **_BATCHES)
    dtypes: Tuple[str, ...] = _flag(('fp32', 'bf16'), 'fp32 and/or bf16 autocast',
                                    **_DTYPE_CHOICES)
    memory_formats: Tuple[str, ...] = _flag(('nchw', 'channels_last'), 'memory formats',
                                            **_FORMAT_CHOICES)
    # torch.compile: models x (dtype, memory format) x batch sizes, in this priority order
    compile_models: Tuple[str, ...] = _flag(
        ('m', 'l', 't'), 'variants also measured with torch.compile, in priority order (none: no '
        'compile)', **_MODELS_OR_NONE)
    compile_settings: Tuple[Tuple[str, str], ...] = _flag(
        (('bf16', 'channels_last'), ('fp32', 'nchw')), 'compiled (dtype, memory format) pairs',
        nargs='+', type=_compile_setting, metavar='DTYPE:FORMAT')
    compile_batch_sizes: Tuple[int, ...] = _flag((256,), 'compiled batch sizes', **_BATCHES)
    compile_mode: str = _flag('default', 'torch.compile mode', choices=[
        'default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs'])
    compile_estimate_s: float = _flag(
        150.0, 'expected cost of the first compile setting for iFormer-M, ours + timm (scaled by '
        'block count)', type=seconds)
    inference_models: Optional[Tuple[str, ...]] = _flag(
        None, 'fused inference variants (default: same as --models; none: skip)',
        **_MODELS_OR_NONE)
    inference_batch: int = _flag(256, 'fused inference batch', type=positive_int)
    inference_dtypes: Tuple[str, ...] = _flag(('bf16',), 'fused inference dtypes',
                                              **_DTYPE_CHOICES)
    dense_models: Tuple[str, ...] = _flag(('m', 'l'), 'windowed dense backbones',
                                          **_MODELS_OR_NONE)
    dense_resolution: int = _flag(512, 'dense backbone input', type=square_resolution)
    dense_batch: int = _flag(16, 'dense backbone batch', type=positive_int)
    dense_dtypes: Optional[Tuple[str, ...]] = _flag(
        None, 'dense backbone dtypes (default: same as --dtypes)', **_DTYPE_CHOICES)
    rounds: int = _flag(5, 'interleaved rounds per setting', type=positive_int)
    steps: int = _flag(4, 'calls per model per round', type=positive_int)
    warmup: int = _flag(3, 'untimed calls per model, the first compiles', type=positive_int)
    budget_s: float = _flag(420.0, 'wall-clock budget of the measurement', type=seconds)
    setting_budget_s: float = _flag(40.0, 'timed rounds of one setting stop after this',
                                    type=seconds)
    cudnn_benchmark: bool = _switch_off(True, '--no-cudnn-benchmark',
                                        'leave torch.backends.cudnn.benchmark off')
    profile_misses: bool = _switch_off(
        True, '--no-profile', 'do not profile training settings where ours is slower than timm')
    smoke: bool = False
    seed: int = _flag(0, 'random seed', type=int)

    @classmethod
    def smoke_run(cls, device: str = 'cpu', **overrides) -> 'Plan':
        """A tiny run for CI (seconds on a CPU): iFormer-T at 64 px, batch 2, one step, eager."""
        tiny = dict(device=device, models=('t',), resolution=64, batch_sizes=(2,),
                    compile_models=(), inference_batch=2, dense_models=('t',),
                    dense_resolution=64, dense_batch=2, dense_dtypes=('fp32',), rounds=1,
                    steps=1, warmup=1,
                    budget_s=120.0, setting_budget_s=20.0, profile_misses=False, smoke=True)
        return cls(**{**tiny, **overrides})

    def settings(self) -> List[Setting]:
        """Every setting, in the order they run (cheap and bounded first, compile last)."""
        out = [Setting('train', m, self.resolution, b, d, f, 'eager')
               for m in self.models for b in self.batch_sizes for d in self.dtypes
               for f in self.memory_formats]
        out += [Setting('inference', m, self.resolution, self.inference_batch, d, f, 'eager')
                for m in (self.models if self.inference_models is None else self.inference_models)
                for d in self.inference_dtypes
                for f in self.memory_formats]
        out += [Setting('dense_train', m, self.dense_resolution, self.dense_batch, d, f, 'eager')
                for m in self.dense_models
                for d in (self.dtypes if self.dense_dtypes is None else self.dense_dtypes)
                for f in self.memory_formats]
        out += [Setting('train', m, self.resolution, b, d, f, 'compile')
                for m in self.compile_models for d, f in self.compile_settings
                for b in self.compile_batch_sizes]
        return out

    def validate(self) -> None:
        """Raise ValueError naming the first bad value (the CLI prints it and exits 2)."""
        for name in ('models', 'compile_models', 'dense_models', 'inference_models'):
            for m in getattr(self, name) or ():
                if m not in ARCH_SETTINGS:
                    raise ValueError(f'{name}: unknown model {m!r}; expected one of '
                                     f'{list(ARCH_SETTINGS)}')
        for name in ('batch_sizes', 'compile_batch_sizes'):
            for b in getattr(self, name):
                if not isinstance(b, int) or b < 1:
                    raise ValueError(f'{name}: batch size {b!r} must be an integer >= 1')
        for name in ('inference_batch', 'dense_batch', 'rounds', 'steps'):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f'{name} must be an integer >= 1, got {getattr(self, name)!r}')
        if self.warmup < 1:
            raise ValueError(f'warmup must be >= 1 (the first call compiles / tunes), '
                             f'got {self.warmup}')
        for d in (*self.dtypes, *self.inference_dtypes, *(self.dense_dtypes or ()),
                  *(d for d, _ in self.compile_settings)):
            if d not in DTYPES:
                raise ValueError(f'unknown dtype {d!r}; expected one of {list(DTYPES)}')
        for f in (*self.memory_formats, *(f for _, f in self.compile_settings)):
            if f not in MEMORY_FORMATS:
                raise ValueError(f'unknown memory format {f!r}; expected one of '
                                 f'{list(MEMORY_FORMATS)}')
        if self.budget_s <= 0 or self.setting_budget_s <= 0:
            raise ValueError(f'budgets must be > 0 s, got budget_s={self.budget_s}, '
                             f'setting_budget_s={self.setting_budget_s}')


def _shown(value) -> str:
    """A default as a user would type it: ``t m l``, ``bf16:channels_last``, ``150``."""
    if isinstance(value, tuple):
        return ' '.join(':'.join(v) if isinstance(v, tuple) else str(v) for v in value) or 'none'
    return f'{value:g}' if isinstance(value, float) else str(value)


def plan_flags(parser: argparse.ArgumentParser) -> None:
    """Add one flag per Plan field declared with ``_flag`` / ``_switch_off`` (help shows the
    GPU default); every flag defaults to None, meaning "keep the plan's value"."""
    defaults = Plan()
    for f in dataclasses.fields(Plan):
        if 'flag' in f.metadata:
            spec = dict(f.metadata['flag'])
            default = getattr(defaults, f.name)
            help_text = spec.pop('help') + ('' if default is None else f' (default {_shown(default)})')
            parser.add_argument('--' + f.name.replace('_', '-'), dest=f.name, default=None,
                                help=help_text, **spec)
        elif 'switch_off' in f.metadata:
            parser.add_argument(f.metadata['switch_off'], dest=f.name, action='store_const',
                                const=False, default=None, help=f.metadata['help'])


def plan_from_args(args: argparse.Namespace, smoke: bool = False) -> Plan:
    """The GPU plan (or, ``smoke``, the smoke preset) with every flag the user gave applied."""
    plan = Plan.smoke_run() if smoke else Plan()
    for f in dataclasses.fields(Plan):
        value = getattr(args, f.name, None)
        if value is not None and ('flag' in f.metadata or 'switch_off' in f.metadata):
            setattr(plan, f.name, tuple(value) if isinstance(value, list) else value)
    plan.validate()
    return plan


# ----------------------------------------------------------------------------------------------
# Pairs: ours and timm with the same weights, checked to compute the same thing
# ----------------------------------------------------------------------------------------------
@dataclass
class Pair:
    ours: nn.Module
    timm: nn.Module
    check: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.check.get('ok'))


@contextlib.contextmanager
def strict_fp32() -> Iterator[None]:
    """True fp32 for the equality checks: TF32 off for convolutions and matmuls."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def dense_loss(features: Sequence[torch.Tensor], target=None) -> torch.Tensor:
    """Stand-in for a neck + head on the four feature maps: mean of their mean squares."""
    return sum(f.float().square().mean() for f in features) / len(features)


def classification_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), target)


LOSSES = {'train': classification_loss, 'dense_train': dense_loss}


def _grad_norm(model: nn.Module) -> float:
    grads = [p.grad.detach().float().norm() for p in model.parameters() if p.grad is not None]
    return float(torch.stack(grads).norm()) if grads else 0.0


def _trainable(model: nn.Module) -> Tuple[int, int]:
    params = [p for p in model.parameters() if p.requires_grad]
    return len(params), sum(p.numel() for p in params)


def _batch(batch: int, resolution: int, device: torch.device, seed: int
           ) -> Tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(batch, 3, resolution, resolution, generator=g, device=device)
    y = torch.randint(0, NUM_CLASSES, (batch,), generator=g, device=device)
    return x, y


def check_same_training(pair: Pair, kind: str, batch: int, resolution: int,
                        device: torch.device, seed: int) -> dict:
    """Loss (and gradient norm, parameter count) of ours and timm on one batch, fp32, TF32 off."""
    x, y = _batch(batch, resolution, device, seed)
    loss_fn = LOSSES[kind]
    out = {'kind': kind, 'batch': batch, 'resolution': resolution, 'tolerance': LOSS_TOLERANCE}
    with strict_fp32():
        for name in ('ours', 'timm'):
            model = getattr(pair, name).to(memory_format=torch.contiguous_format).train()
            model.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            out[f'loss_{name}'] = float(loss.detach())
            out[f'grad_norm_{name}'] = _grad_norm(model)
            out[f'trainable_tensors_{name}'], out[f'trainable_params_{name}'] = _trainable(model)
            model.zero_grad(set_to_none=True)
    out['abs_diff'] = abs(out['loss_ours'] - out['loss_timm'])
    out['grad_norm_rel_diff'] = (abs(out['grad_norm_ours'] - out['grad_norm_timm'])
                                 / max(out['grad_norm_timm'], 1e-12))
    problems = []
    if not out['abs_diff'] <= LOSS_TOLERANCE:  # also catches NaN
        problems.append(f"loss differs by {out['abs_diff']:.3g} > {LOSS_TOLERANCE}")
    if not out['grad_norm_rel_diff'] <= GRAD_NORM_RTOL:
        problems.append(f"gradient norm differs by {out['grad_norm_rel_diff']:.3g} (relative) "
                        f'> {GRAD_NORM_RTOL}')
    if out['trainable_params_ours'] != out['trainable_params_timm']:
        problems.append(f"trainable parameters differ: {out['trainable_params_ours']} vs "
                        f"{out['trainable_params_timm']}")
    out['ok'] = not problems
    out['problems'] = problems
    return out


def check_same_inference(pair: Pair, batch: int, resolution: int, device: torch.device,
                         seed: int) -> dict:
    """Max |logits_ours - logits_timm| of the fused classifiers on one batch, fp32, TF32 off."""
    x, _ = _batch(batch, resolution, device, seed)
    with strict_fp32(), torch.inference_mode():
        diff = float((pair.ours(x) - pair.timm(x)).abs().max())
    ok = diff <= LOSS_TOLERANCE
    return {'kind': 'inference', 'batch': batch, 'resolution': resolution,
            'logits_max_abs_diff': diff, 'tolerance': LOSS_TOLERANCE, 'ok': ok,
            'problems': [] if ok else [f'logits differ by {diff:.3g} > {LOSS_TOLERANCE}']}


@torch.no_grad()
def random_bn_statistics(model: nn.Module, seed: int) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters.

    Why: freshly built BNs (mean 0, variance 1, weight 1, bias 0) fold into almost nothing, so
    a fused-inference comparison would not notice a wrong fusion on either side.
    """
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
    return model


def build_pair(kind: str, arch: str, plan: Plan, device: torch.device) -> Pair:
    """Ours and timm for ``kind`` with the same weights, on ``device``, checked."""
    torch.manual_seed(plan.seed)
    if kind == 'dense_train':
        ours = IFormer(arch, out_indices=(0, 1, 2, 3), window_size=DENSE_WINDOW, norm_eval=True)
        ref = timm_dense_backbone(ours.train(), arch)
    else:
        ours = IFormerClassifier(arch, num_classes=NUM_CLASSES)
        if kind == 'inference':
            random_bn_statistics(ours, plan.seed)
        ref = timm_classifier(ours.train(), arch)
    pair = Pair(ours.to(device), ref.to(device))
    if kind == 'inference':
        pair.ours.eval().switch_to_deploy()
        pair.timm.eval().fuse()
        pair.check = check_same_inference(pair, min(plan.inference_batch, 8), plan.resolution,
                                          device, plan.seed)
    else:
        res = plan.dense_resolution if kind == 'dense_train' else plan.resolution
        batch = min(plan.dense_batch if kind == 'dense_train' else min(plan.batch_sizes), 8)
        pair.check = check_same_training(pair, kind, max(batch, 2), res, device, plan.seed)
    pair.check['model'] = arch
    return pair


# ----------------------------------------------------------------------------------------------
# One setting
# ----------------------------------------------------------------------------------------------
def _autocast(setting: Setting, device: torch.device):
    if setting.dtype == 'fp32' or setting.kind == 'inference':
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[setting.dtype])


def make_step(setting: Setting, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
              device: torch.device) -> timing.Step:
    """One call = one training step (zero_grad, forward, loss, backward, AdamW) or one forward."""
    if setting.kind == 'inference':
        def infer():
            with torch.inference_mode():
                return model(x)
        return infer
    loss_fn = LOSSES[setting.kind]
    opt = torch.optim.AdamW(model.parameters(), **OPTIMIZER)

    def train_step():
        opt.zero_grad(set_to_none=True)
        with _autocast(setting, device):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    return train_step


def profile_steps(steps: Dict[str, timing.Step], device: torch.device, calls: int = 3,
                  top: int = 12) -> Dict[str, List[dict]]:
    """The ops that took the most (self) device time in ``calls`` calls of each contender.

    For the note of a setting that missed its target: which kernels make the difference.
    """
    from torch.profiler import ProfilerActivity, profile
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == 'cuda' else [])
    out = {}
    for name, step in steps.items():
        timing.synchronize(device)
        with profile(activities=activities) as prof:
            for _ in range(calls):
                step()
            timing.synchronize(device)
        rows = []
        for e in prof.key_averages():
            dev = getattr(e, 'self_device_time_total', None)
            if dev is None:
                dev = getattr(e, 'self_cuda_time_total', 0)
            self_us = dev if device.type == 'cuda' else e.self_cpu_time_total
            rows.append({'op': e.key, 'calls': e.count, 'self_ms': round(self_us / 1e3 / calls, 3)})
        out[name] = sorted(rows, key=lambda r: -r['self_ms'])[:top]
    return out


def _prepare(setting: Setting, pair: Pair, plan: Plan) -> Dict[str, nn.Module]:
    fmt = MEMORY_FORMATS[setting.memory_format]
    models = {}
    for name in ('ours', 'timm'):
        model = getattr(pair, name)
        if setting.kind == 'inference':
            model.to(dtype=DTYPES[setting.dtype])
        model.to(memory_format=fmt).train(setting.kind != 'inference')
        models[name] = model
    if setting.mode == 'compile':
        torch._dynamo.reset()  # fresh graphs: dynamo caches per code object and guards on layout
        models = {name: torch.compile(m, mode=plan.compile_mode, dynamic=False)
                  for name, m in models.items()}
    return models


def measure_setting(setting: Setting, pair: Pair, plan: Plan, device: torch.device,
                    clock: timing.Clock, log: Log, profile: bool = False) -> dict:
    """Time ``setting`` for ours and timm, interleaved; the result row (never raises on OOM).

    ``profile``: if ours is clearly slower (ratio < :data:`PROFILE_BELOW`), also record which
    ops take the time on each side (:func:`profile_steps`).
    """
    row = dict(asdict(setting), status='ok')
    t0 = time.perf_counter()
    steps = {}
    try:
        models = _prepare(setting, pair, plan)
        x, y = _batch(setting.batch, setting.resolution, device, plan.seed + 1)
        x = x.to(dtype=DTYPES[setting.dtype] if setting.kind == 'inference' else torch.float32,
                 memory_format=MEMORY_FORMATS[setting.memory_format])
        steps = {name: make_step(setting, m, x, y, device) for name, m in models.items()}
        info: Dict[str, dict] = {name: {} for name in steps}
        for name, step in steps.items():
            # the first call compiles (torch.compile) or picks kernels (cuDNN benchmark)
            limit = max(clock.remaining(), 1.0) if setting.mode == 'compile' else 0
            t1 = time.perf_counter()
            with timing.time_limit(limit):
                step()
                timing.synchronize(device)
            info[name]['first_call_s'] = round(time.perf_counter() - t1, 2)
        for _ in range(plan.warmup - 1):
            for step in steps.values():
                step()
        for name, step in steps.items():
            info[name]['memory'] = timing.peak_memory(step, device)
        limit = min(plan.setting_budget_s, max(clock.remaining(), 0.0))
        times = timing.interleaved_rounds(steps, plan.rounds, plan.steps, device, limit)
        for name in steps:
            info[name].update(timing.summarize_rate(times[name], plan.steps * setting.batch))
            info[name]['call_ms'] = round(statistics.median(times[name]) / plan.steps * 1e3, 2)
        row.update(info)
        row['ratio_ours_over_timm'] = timing.ratio_per_round(times['ours'], times['timm'])
        row['rounds_done'] = len(times['ours'])
        slower = row['ratio_ours_over_timm']['median'] < PROFILE_BELOW
        if profile and setting.kind != 'inference' and slower and clock.remaining() > 20:
            row['profile'] = profile_steps(steps, device)
    except timing.TimeLimitExceeded as e:
        row.update(status='skipped', reason=f'{setting.mode} did not finish within the run '
                                            f'budget ({e})')
    except Exception as e:  # noqa: BLE001  (recorded; the run goes on with the next setting)
        first = (str(e).strip().splitlines() or [''])[0]
        status = 'oom' if timing.is_out_of_memory(e) else 'failed'
        row.update(status=status, reason=f'{type(e).__name__}: {first}'[:500])
    finally:
        failed = row['status'] != 'ok'
        steps.clear()
        for model in (pair.ours, pair.timm):
            model.zero_grad(set_to_none=True)
        if setting.mode == 'compile':
            torch._dynamo.reset()
        timing.release_memory(device, collect=failed)
    row['elapsed_s'] = round(time.perf_counter() - t0, 2)
    return row


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------
def _blocks(arch: str) -> int:
    return sum(ARCH_SETTINGS[arch]['depths'])


def _progress(row: dict) -> str:
    if row['status'] != 'ok':
        return f"{row['status'].upper()}: {row.get('reason', '')}"
    mem = ''
    if row['ours'].get('memory'):
        mem = (f", peak {row['ours']['memory']['peak_mib'] / 1024:.1f} / "
               f"{row['timm']['memory']['peak_mib'] / 1024:.1f} GiB")
    return (f"ours {row['ours']['images_per_s']:.0f} img/s, timm {row['timm']['images_per_s']:.0f} "
            f"img/s, ours/timm {row['ratio_ours_over_timm']['median']:.3f}{mem} "
            f"({row['elapsed_s']:.0f} s)")


def pair_key(setting: Setting) -> Tuple[str, str]:
    """Settings that share one pair of models (training settings reuse the classifier pair)."""
    return ('inference' if setting.kind == 'inference' else
            'dense_train' if setting.kind == 'dense_train' else 'train', setting.model)


def run_throughput(plan: Plan, log: Log = print) -> dict:
    """Measure every setting of ``plan`` within its budget; return the results document."""
    plan.validate()
    device = torch.device(plan.device)
    if device.type == 'cuda':
        torch.backends.cudnn.benchmark = plan.cudnn_benchmark
        if device.index is not None:
            torch.cuda.set_device(device)
    clock = timing.Clock(plan.budget_s)

    def say(text: str) -> None:
        log(f'[{clock.elapsed():6.1f} s] {text}')

    environment = accelerator_environment(device, PACKAGES)
    gpu = environment['gpu']
    say(f"device {device}{' (' + gpu['name'] + ')' if gpu else ''}, torch {environment['torch']}, "
        f"timm {environment['timm']}; {len(plan.settings())} settings, budget "
        f'{plan.budget_s:.0f} s')
    bf16_ok = device.type != 'cuda' or (gpu or {}).get('bf16_supported', False)
    pairs: Dict[Tuple[str, str], Pair] = {}
    results, checks = [], []
    compile_cost_per_block: Optional[float] = None
    profiles = 0
    for setting in plan.settings():
        skip = None
        key = pair_key(setting)
        if clock.remaining() <= 0:
            skip = f'run budget of {plan.budget_s:.0f} s spent'
        elif setting.dtype == 'bf16' and not bf16_ok:
            skip = 'this GPU does not support bfloat16'
        elif setting.mode == 'compile':
            per_block = (compile_cost_per_block if compile_cost_per_block is not None
                         else plan.compile_estimate_s / _blocks('m'))
            estimate = per_block * _blocks(setting.model)
            if estimate > clock.remaining():
                skip = (f'estimated {estimate:.0f} s (compile + measure) > '
                        f'{clock.remaining():.0f} s left of the run budget')
        if skip is None and key not in pairs:
            try:
                pairs[key] = build_pair(key[0], setting.model, plan, device)
            except Exception as e:  # noqa: BLE001
                first = (str(e).strip().splitlines() or [''])[0]
                pairs[key] = Pair(None, None, {'kind': key[0], 'model': setting.model, 'ok': False,
                                               'problems': [f'{type(e).__name__}: {first}'[:500]]})
            checks.append(pairs[key].check)
            timing.release_memory(device)
            c = pairs[key].check
            say(f"check {key[0]} {setting.model.upper()}: "
                + ('ok' if c['ok'] else 'FAILED ' + '; '.join(c['problems']))
                + (f" (loss ours {c['loss_ours']:.6f}, timm {c['loss_timm']:.6f}, "
                   f"|diff| {c['abs_diff']:.2e})" if 'loss_ours' in c else
                   f" (logits |diff| {c['logits_max_abs_diff']:.2e})"
                   if 'logits_max_abs_diff' in c else ''))
        if skip is None and not pairs[key].ok:
            skip = 'ours and timm do not compute the same thing: ' + '; '.join(
                pairs[key].check['problems'])
        if skip is not None:
            row = dict(asdict(setting), status='skipped', reason=skip)
        else:
            if setting.mode == 'compile':
                say(f'{setting.label}: compiling ours and timm (first call of each) ...')
            row = measure_setting(setting, pairs[key], plan, device, clock, log,
                                  profile=plan.profile_misses and profiles < MAX_PROFILES)
            profiles += 'profile' in row
            if setting.mode == 'compile' and row['status'] == 'ok':
                cost = row['elapsed_s'] / _blocks(setting.model)
                compile_cost_per_block = max(cost, compile_cost_per_block or 0.0)
        results.append(row)
        say(f'{setting.label}: {_progress(row)}')
    pairs.clear()
    timing.release_memory(device)
    doc = {'schema': SCHEMA, 'smoke': plan.smoke, 'environment': environment,
           'plan': {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(plan).items()},
           'method': method(plan, device), 'checks': checks, 'results': results,
           'wall_s': round(clock.elapsed(), 1)}
    doc['summary'] = summarize(doc)
    say(f"done: {sum(r['status'] == 'ok' for r in results)} of {len(results)} settings measured")
    return doc


def method(plan: Plan, device: torch.device) -> dict:
    """How the numbers were taken, in words (stored with them)."""
    return {
        'interleaved': True,
        'timer': ('time.perf_counter around `steps` calls, torch.cuda.synchronize before and '
                  'after' if device.type == 'cuda' else 'time.perf_counter around `steps` calls'),
        'rounds': plan.rounds, 'steps_per_round': plan.steps, 'warmup_calls': plan.warmup,
        'ratio': 'median over rounds of (images/s ours) / (images/s timm) in the same round',
        'train_step': ('zero_grad(set_to_none) + forward + loss + backward + AdamW(lr=1e-5, '
                       'weight_decay=0.05; torch default implementation) step, train mode'),
        'classifier_loss': 'cross-entropy, 1000 classes, random labels',
        'dense_loss': 'mean over the 4 stages of mean(feature ** 2) (stand-in for neck + head)',
        'dense_backbone': (f'IFormer(out_indices=(0,1,2,3), window_size={DENSE_WINDOW}, '
                           'norm_eval=True); timm: its blocks with the same windowing'),
        'bf16': 'train: torch.autocast(bfloat16) around forward + loss, fp32 weights; '
                'inference: weights and input cast to bfloat16',
        'inference': 'fused (ours switch_to_deploy(), timm fuse()), eval, torch.inference_mode',
        'compile': {'mode': plan.compile_mode, 'dynamic': False,
                    'what': 'the model (forward + its backward); the optimizer step stays eager',
                    'first_call_s': 'includes compilation of forward and backward'},
        'memory': 'torch.cuda.max_memory_allocated in one separate step per model; step_mib '
                  '= peak minus what was allocated before the step',
        'data': 'synthetic, created on the device once per setting (no data loading)',
        'drop_path': 0.0,
        'same_network_check': (f'strict weight transfer, then |loss_ours - loss_timm| <= '
                               f'{LOSS_TOLERANCE} in fp32 with TF32 off'),
        'budget_s': plan.budget_s, 'setting_budget_s': plan.setting_budget_s,
        'profile': (f'torch.profiler top ops of training settings with ours / timm < '
                    f'{PROFILE_BELOW}, at most {MAX_PROFILES} per run'
                    if plan.profile_misses else 'off'),
    }


def summarize(doc: dict) -> dict:
    """The targets: training ours / timm >= 1.0 everywhere; bf16 + channels_last + compile at
    least 1.5x our fp32 eager (NCHW) figure, same model and batch."""
    rows = [r for r in doc['results'] if r['status'] == 'ok']
    train = [r for r in rows if r['kind'] in ('train', 'dense_train')]
    ratio_rows = [{'setting': Setting(**{k: r[k] for k in Setting.__dataclass_fields__}).label,
                   'ratio': r['ratio_ours_over_timm']['median'],
                   'meets': r['ratio_ours_over_timm']['median'] >= RATIO_TARGET} for r in train]
    speedups = []
    for r in rows:
        if (r['kind'], r['dtype'], r['memory_format'], r['mode']) != (
                'train', 'bf16', 'channels_last', 'compile'):
            continue
        base = [b for b in rows if (b['kind'], b['model'], b['batch'], b['dtype'],
                                    b['memory_format'], b['mode']) == (
                    'train', r['model'], r['batch'], 'fp32', 'nchw', 'eager')]
        if base:
            s = r['ours']['images_per_s'] / base[0]['ours']['images_per_s']
            speedups.append({'model': r['model'], 'batch': r['batch'],
                             'fp32_eager_images_per_s': base[0]['ours']['images_per_s'],
                             'bf16_channels_last_compile_images_per_s': r['ours']['images_per_s'],
                             'speedup': round(s, 3), 'meets': s >= SPEEDUP_TARGET})
    misses = [f"{r['setting']}: ours/timm {r['ratio']:.3f} ({(1 - r['ratio']) * 100:.1f} % slower)"
              for r in ratio_rows if not r['meets']]
    misses += [f"{s['model'].upper()} b{s['batch']}: bf16+channels_last+compile is "
               f"{s['speedup']:.2f}x fp32 eager (target {SPEEDUP_TARGET}x)"
               for s in speedups if not s['meets']]
    not_measured = [f"{Setting(**{k: r[k] for k in Setting.__dataclass_fields__}).label}: "
                    f"{r['status']} ({r.get('reason', '')})"
                    for r in doc['results'] if r['status'] != 'ok']
    return {'ratio_target': f'training images/s ours / timm >= {RATIO_TARGET} at every setting',
            'speedup_target': (f'ours, bf16 + channels_last + torch.compile >= {SPEEDUP_TARGET}x '
                               'ours fp32 eager NCHW (same model, batch)'),
            'train_ratios': ratio_rows,
            'all_ratios_meet': all(r['meets'] for r in ratio_rows) if ratio_rows else None,
            'speedups': speedups,
            'all_speedups_meet': all(s['meets'] for s in speedups) if speedups else None,
            'misses': misses, 'not_measured': not_measured,
            'checks_ok': all(c['ok'] for c in doc['checks'])}
