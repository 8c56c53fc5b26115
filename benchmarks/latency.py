"""CPU latency of iFormer backbones / classifiers across backends, with timm as the baseline.

How it measures (why): the machine may be shared, so absolute numbers drift. All backends of one
case (model, part, resolution, batch) are built first and then timed *interleaved*: every round
runs each backend once, in a rotating order. Slow phases of the machine then hit every backend
alike, and the per-round ratio ours / timm is much steadier than either latency. We report the
median and the p10 / p90 and IQR of the per-call times, and the median of the per-round ratios.
Whether other processes used the CPU during the run is measured from /proc/stat and recorded.

Each backend is one entry of :data:`BACKENDS` (description + builder), which also orders the
tables; the machine and versions the numbers came from are described by :mod:`.machine`.

These are Linux CPU numbers (PyTorch / ONNX Runtime), not iPhone latencies.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from iformer_mm.models.backbones import fused_cpu_ops
from iformer_mm.models.backbones.iformer import IFormer
from iformer_mm.models.backbones.iformer_arch import parse_model_name
from iformer_mm.models.plain_classifier import IFormerClassifier
from .machine import MachineMonitor, environment, package_version
from .timing import interleaved_rounds
from .timm_twins import create_timm_iformer

# Published ImageNet-1k top-1 at 224 (docs/architecture.md); L2 is the distilled 450-epoch model.
PUBLISHED_TOP1 = {'t': 74.1, 's': 78.8, 'm': 80.4, 'l': 81.9, 'l2': 83.9, 'h': 84.8}


@dataclass(frozen=True)
class Case:
    model: str          # arch key: t, s, m, l, l2, h
    part: str           # 'backbone' (four feature maps) or 'classifier' (logits)
    resolution: int
    batch: int


def _stats(ms: List[float]) -> Dict[str, float]:
    q = statistics.quantiles(ms, n=20, method='inclusive') if len(ms) > 1 else [ms[0]] * 19
    q1, q3 = (statistics.quantiles(ms, n=4, method='inclusive')[::2] if len(ms) > 1
              else (ms[0], ms[0]))
    return {'median_ms': statistics.median(ms), 'p10_ms': q[1], 'p90_ms': q[17],
            'q1_ms': q1, 'q3_ms': q3, 'iqr_ms': q3 - q1, 'min_ms': min(ms),
            'mean_ms': statistics.fmean(ms)}


# ----------------------------------------------------------------------------------------------
# Backends: name -> what it measures and how to build its forward
# ----------------------------------------------------------------------------------------------
Runner = Callable[[], object]
# (case, NCHW input, intra-op threads, a temporary folder for the case) -> one forward per call
Builder = Callable[[Case, torch.Tensor, int, str], Runner]


def _ours(case: Case, fused: bool, window_size: int = 0) -> torch.nn.Module:
    if case.part == 'classifier':
        model = IFormerClassifier(case.model)
    else:
        model = IFormer(case.model, out_indices=(0, 1, 2, 3), window_size=window_size)
    model.eval()
    if fused:
        model.switch_to_deploy()
    return model


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def _ours_unfused(case: Case, x: torch.Tensor, threads: int, tmp_dir: str) -> Runner:
    m = _ours(case, fused=False)
    return lambda: m(x)


def _ours_fused(case: Case, x: torch.Tensor, threads: int, tmp_dir: str) -> Runner:
    m = _ours(case, fused=True)
    return lambda: m(x)


def _ours_fused_cl(case: Case, x: torch.Tensor, threads: int, tmp_dir: str) -> Runner:
    m, cl = _ours(case, fused=True).to(memory_format=torch.channels_last), _channels_last(x)
    return lambda: m(cl)


def _ours_fused_cl_stdops(case: Case, x: torch.Tensor, threads: int, tmp_dir: str) -> Runner:
    m, cl = _ours(case, fused=True).to(memory_format=torch.channels_last), _channels_last(x)

    def run():
        with fused_cpu_ops.fused_kernels(False):
            return m(cl)
    return run


def _ours_fused_cl_win16(case: Case, x: torch.Tensor, threads: int, tmp_dir: str) -> Runner:
    m = _ours(case, fused=True, window_size=16).to(memory_format=torch.channels_last)
    cl = _channels_last(x)
    return lambda: m(cl)


def _ours_compile(case: Case, x: torch.Tensor, threads: int, tmp_dir: str) -> Runner:
    # compiles on the first call (its time is first_call_s)
    compiled = torch.compile(_ours(case, fused=True), dynamic=False)
    return lambda: compiled(x)


def _ours_compile_frozen(case: Case, x: torch.Tensor, threads: int, tmp_dir: str) -> Runner:
    # its own backend object: never reuses ours_compile's code
    frozen = torch.compile(_ours(case, fused=True), dynamic=False, options={'freezing': True})
    return lambda: frozen(x)


def _ours_onnxruntime(case: Case, x: torch.Tensor, threads: int, tmp_dir: str) -> Runner:
    from iformer_mm.deploy.targets.onnxruntime import TARGET, write_onnx
    model = _ours(case, fused=True)
    names = ['out'] if isinstance(model, IFormerClassifier) else [f'out{i}' for i in range(4)]
    path = os.path.join(tmp_dir, 'model.onnx')
    write_onnx(model, x, path, names)
    session, feed = TARGET.session(path, threads), x.numpy()
    return lambda: session(feed)


def _timm(case: Case, channels_last: bool) -> Callable[[torch.Tensor], object]:
    model = create_timm_iformer(case.model).eval().fuse()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if case.part == 'classifier':
        return model
    return lambda x: model.forward_intermediates(x, intermediates_only=True)


def _timm_fused(case: Case, x: torch.Tensor, threads: int, tmp_dir: str) -> Runner:
    fn = _timm(case, channels_last=False)
    return lambda: fn(x)


def _timm_fused_cl(case: Case, x: torch.Tensor, threads: int, tmp_dir: str) -> Runner:
    fn, cl = _timm(case, channels_last=True), _channels_last(x)
    return lambda: fn(cl)


@dataclass(frozen=True)
class Backend:
    """One column of the benchmark: what it measures and how to build it.

    ``parts`` are the cases it applies to (others are skipped, not failed); ``versions`` are
    packages whose version is recorded in each of its result rows.
    """
    description: str
    build: Builder
    parts: Tuple[str, ...] = ('backbone', 'classifier')
    versions: Tuple[str, ...] = ()

    def applies_to(self, case: Case) -> bool:
        return case.part in self.parts


# The one list of backends: names, descriptions, builders; also the table and --backends order.
BACKENDS: Dict[str, Backend] = {
    'ours_unfused': Backend('our IFormer, eval, not fused, NCHW', _ours_unfused),
    'ours_fused': Backend('switch_to_deploy(); NCHW in/out (oneDNN fused kernels, '
                          'channels_last inside)', _ours_fused),
    'ours_fused_cl': Backend('switch_to_deploy(); channels_last input and outputs',
                             _ours_fused_cl),
    'ours_fused_cl_stdops': Backend('switch_to_deploy(); channels_last; fused kernels off '
                                    '(plain ops)', _ours_fused_cl_stdops),
    'ours_fused_cl_win16': Backend('backbone only: published dense layout, 16x16 windows in '
                                   'stage 2', _ours_fused_cl_win16, parts=('backbone',)),
    'ours_compile': Backend('torch.compile(dynamic=False) of the fused model (inductor defaults)',
                            _ours_compile),
    'ours_compile_frozen': Backend('as ours_compile, with inductor freezing=True (weights '
                                   'constant-folded and pre-packed)', _ours_compile_frozen),
    'ours_onnxruntime': Backend('ONNX export of the fused model on ONNX Runtime (CPU EP)',
                                _ours_onnxruntime, versions=('onnxruntime',)),
    'timm_fused': Backend("timm's port after model.fuse(); NCHW (the baseline)", _timm_fused),
    'timm_fused_cl': Backend("timm's port after model.fuse(); channels_last", _timm_fused_cl),
}
DEFAULT_BACKENDS = tuple(BACKENDS)
BASELINE = 'timm_fused'


def build_backend(name: str, case: Case, x: torch.Tensor, threads: int, tmp_dir: str
                  ) -> Tuple[Runner, Dict[str, object]]:
    """A zero-argument callable running one forward of ``name`` on ``case``, and extra info."""
    backend = BACKENDS.get(name)
    if backend is None:
        raise ValueError(f'unknown backend {name!r}; expected one of {list(BACKENDS)}')
    if not backend.applies_to(case):
        raise ValueError(f'{name} applies to the {" and ".join(backend.parts)} only')
    run = backend.build(case, x, threads, tmp_dir)
    return run, {package: package_version(package) for package in backend.versions}


# ----------------------------------------------------------------------------------------------
# Measuring
# ----------------------------------------------------------------------------------------------
def time_interleaved(runners: Dict[str, Runner], runs: int) -> Dict[str, List[float]]:
    """Milliseconds per call of each CPU runner, ``runs`` interleaved rounds (see
    :func:`.timing.interleaved_rounds`)."""
    seconds = interleaved_rounds(runners, runs, 1, torch.device('cpu'))
    return {name: [s * 1e3 for s in values] for name, values in seconds.items()}


def ratio_stats(times_a: List[float], times_b: List[float]) -> Dict[str, float]:
    """Median and p10 / p90 of the per-round ratios a / b (the robust comparison)."""
    per_round = [a / b for a, b in zip(times_a, times_b)]
    q = (statistics.quantiles(per_round, n=10, method='inclusive') if len(per_round) > 1
         else [per_round[0]] * 9)
    return {'median_ratio': statistics.median(per_round), 'p10_ratio': q[0], 'p90_ratio': q[8]}


def measure_case(case: Case, backends: Sequence[str], runs: int, warmup: int, threads: int,
                 log: Callable[[str], None] = print) -> Tuple[List[dict], List[dict]]:
    """Interleaved timing of ``backends`` on one case: (result rows, ratio rows)."""
    x = torch.randn(case.batch, 3, case.resolution, case.resolution,
                    generator=torch.Generator().manual_seed(0))
    runners: Dict[str, Runner] = {}
    rows: Dict[str, dict] = {}
    if any(name.startswith('ours_compile') for name in backends):
        # fresh compile per case: dynamo caches per code object (all IFormer instances share one)
        # and silently falls back to eager after its recompile limit
        torch._dynamo.reset()
    with tempfile.TemporaryDirectory(prefix='iformer-bench-') as tmp:
        for name in backends:
            backend = BACKENDS.get(name)  # an unknown name is built, fails and is recorded
            if backend is not None and not backend.applies_to(case):
                continue
            row = dict(asdict(case), backend=name,
                       description=backend.description if backend else '')
            try:
                run, info = build_backend(name, case, x, threads, tmp)  # outside inference_mode
                with torch.inference_mode():
                    t0 = time.perf_counter()
                    run()  # first call: compiles (torch.compile), packs weights (ours)
                    info['first_call_s'] = round(time.perf_counter() - t0, 2)
                    for _ in range(warmup):
                        run()
                runners[name] = run
                row.update(info, status='ok')
            except Exception as e:  # record and go on (e.g. torch.compile without a compiler)
                first = str(e).strip().splitlines()[0] if str(e).strip() else ''
                row.update(status='failed', error=f'{type(e).__name__}: {first}'[:500])
                log(f'  {name}: FAILED ({row["error"]})')
                if os.environ.get('IFORMER_MM_BENCH_DEBUG'):
                    traceback.print_exc()
            rows[name] = row
        with torch.inference_mode():
            times = time_interleaved(runners, runs)
    for name, ms in times.items():
        rows[name].update(_stats(ms), runs=runs, warmup=warmup)
        rows[name]['per_image_ms'] = rows[name]['median_ms'] / case.batch
    ratios = []
    for baseline in (BASELINE, 'timm_fused_cl'):
        if baseline not in times:
            continue
        for name in times:
            if name.startswith('ours_'):
                ratios.append(dict(asdict(case), ours=name, baseline=baseline,
                                   **ratio_stats(times[name], times[baseline]),
                                   ratio_of_medians=(rows[name]['median_ms']
                                                     / rows[baseline]['median_ms'])))
    for name in rows:
        if rows[name]['status'] == 'ok':
            log(f"  {name:<22} median {rows[name]['median_ms']:9.2f} ms  "
                f"(p10 {rows[name]['p10_ms']:.2f}, p90 {rows[name]['p90_ms']:.2f})")
    return list(rows.values()), ratios


def train_step_times(arch: str, batch: int, resolution: int, runs: int, warmup: int,
                     log: Callable[[str], None] = print) -> dict:
    """Forward + backward + SGD step of the unfused classifier in train mode: ours vs timm."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, resolution, resolution, generator=g)
    y = torch.randint(0, 1000, (batch,), generator=g)
    models = {'ours': IFormerClassifier(arch).train(),
              'timm': create_timm_iformer(arch).train()}
    steps = {}
    for name, model in models.items():
        opt = torch.optim.SGD(model.parameters(), lr=1e-4)

        def step(model=model, opt=opt):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        steps[name] = step
    for _ in range(warmup):
        for step in steps.values():
            step()
    times = time_interleaved(steps, runs)
    result = {'model': arch, 'batch': batch, 'resolution': resolution, 'runs': runs,
              'warmup': warmup, 'what': 'forward + backward + SGD step, train mode, unfused',
              'ours': _stats(times['ours']), 'timm': _stats(times['timm']),
              'median_ratio': ratio_stats(times['ours'], times['timm'])['median_ratio']}
    log(f"  train step {arch} b{batch} {resolution}: ours {result['ours']['median_ms']:.1f} ms, "
        f"timm {result['timm']['median_ms']:.1f} ms, ratio {result['median_ratio']:.2f}")
    return result


# the goal: the deployed (fused) backbone at batch 1 takes at most 0.70x the time of timm's
# fused port
TARGET_RATIO = 0.70


def summarize(ratios: List[dict], train: List[dict]) -> dict:
    """The headline figures: deployed ours / timm fused (interleaved median ratio)."""
    rows = []
    for r in ratios:
        if r['baseline'] == BASELINE and r['ours'] in ('ours_fused', 'ours_fused_cl'):
            rows.append({k: r[k] for k in ('model', 'part', 'resolution', 'batch', 'ours')}
                        | {'ratio': round(r['median_ratio'], 3),
                           'meets_target': r['median_ratio'] <= TARGET_RATIO})
    return {'target': f'ours_fused / {BASELINE} <= {TARGET_RATIO} (backbone, batch 1)',
            'inference': rows,
            'train_step': [{'model': t['model'],
                            'ratio_ours_over_timm': round(t['median_ratio'], 3),
                            'not_slower': t['median_ratio'] <= 1.0} for t in train]}


def run_benchmark(cases: Sequence[Case], backends: Sequence[str], runs: int, warmup: int,
                  threads: int, train_step: Optional[Tuple[Sequence[str], int, int]] = None,
                  log: Callable[[str], None] = print) -> dict:
    """Measure every case (and optionally the train step); returns the results document."""
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ValueError(f'unknown backends {unknown}; expected some of {list(BACKENDS)}')
    if runs < 1 or warmup < 0:
        raise ValueError(f'runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}')
    torch.set_num_threads(threads)
    results, ratios, train = [], [], []
    with MachineMonitor(threads) as monitor:
        for case in cases:
            log(f'{case.part} iformer_{case.model} {case.resolution}x{case.resolution} '
                f'batch {case.batch}')
            rows, rs = measure_case(case, backends, runs, warmup, threads, log)
            results += rows
            ratios += rs
        if train_step:
            models, batch, resolution = train_step
            for arch in models:
                # as many timed steps as inference runs: ours and timm run the same op graph,
                # so the ratio is ~1 and only enough rounds separate it from the noise
                train.append(train_step_times(parse_model_name(arch)[0], batch, resolution,
                                              max(3, runs), max(1, warmup // 2), log))
    return {'environment': environment(threads), 'machine': monitor.summary(),
            'summary': summarize(ratios, train),
            'method': {'runs': runs, 'warmup': warmup, 'interleaved': True,
                       'timer': 'time.perf_counter around one forward, torch.inference_mode',
                       'baseline': BASELINE,
                       'backends': {b: BACKENDS[b].description for b in backends},
                       'note': 'Linux CPU latencies (not iPhone); random weights'},
            'results': results, 'ratios': ratios, 'train_step': train}
