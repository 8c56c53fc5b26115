"""Is iFormer on the accuracy-latency front of *this* runtime? iFormer against its mobile peers.

The paper's claim is a Pareto front on an iPhone 13. A user deploying on a CPU runtime needs
the same question answered there, so every model of :mod:`.pareto_models` is put in its deployed
form (ours: the deploy path's builder, :func:`iformer_mm.deploy.build.build_export_model`, the
classifier fused or the published windowed dense backbone; timm's peers: timm's own
``reparameterize_model``), exported by the same :mod:`iformer_mm.deploy.targets` target and
precision, and timed with that runtime's API: batch 1, ``threads`` intra-op threads, all models
of one (runtime, task) loaded first and timed *interleaved* in one process
(:func:`.latency.time_interleaved`), so the per-round ratio to the reference model (iFormer-M)
holds while a shared machine's speed drifts. Latency is measured at 224 for the classifiers and
at 512x512 for the dense backbones (four feature maps at strides 4-32; timm's ``features_only``).

A model a runtime cannot take is a row with the exception's first line, never dropped. Where the
reference is off the front, both it and the front model that beats it most closely carry the
runtime's per-op profile (:meth:`~iformer_mm.deploy.targets.base.Target.profile`). Parameters and
GMACs come from the one counter (:func:`iformer_mm.flops.count_macs`), in each model's deployed
form. Weights are random (latency does not depend on them) and int8 is calibrated on a handful
of random inputs (latency does not depend on calibration quality either).
"""
from __future__ import annotations

import copy
import os
import statistics
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from iformer_mm.deploy.build import BACKBONE_OUTPUTS, INPUT_NAME, build_export_model
from iformer_mm.flops import count_macs, count_params
from .latency import ratio_stats, time_interleaved
from .machine import MachineMonitor, environment, package_version
from .pareto_models import IPHONE13_MS, Contender, contender

#: runtime name -> (target, precision): the deployments a user picks between
RUNTIMES: Dict[str, Tuple[str, str]] = {
    'onnxruntime-fp32': ('onnxruntime', 'fp32'),
    'openvino-bf16': ('openvino', 'bf16'),
    'openvino-int8': ('openvino', 'int8'),
    'executorch-fp32': ('executorch', 'fp32'),
    'executorch-int8': ('executorch', 'int8'),
}
TASKS = ('classifier', 'backbone')
DEFAULT_RESOLUTION = {'classifier': 224, 'backbone': 512}
CALIBRATION_INPUTS = 4
PROFILE_RUNS = 5
#: the strides of the four feature maps a dense backbone hands its neck
FEATURE_STRIDES = (4, 8, 16, 32)


class _FeatureMaps(nn.Module):
    """timm's ``features_only`` model with the stride 4-32 maps as a tuple (what exports take)."""

    def __init__(self, model: nn.Module, keep: Sequence[int]):
        super().__init__()
        self.model = model
        self.keep = tuple(keep)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        maps = self.model(x)
        return tuple(maps[i] for i in self.keep)


def _timm_model(c: Contender, task: str, resolution: int) -> nn.Module:
    import timm
    from timm.utils.model import reparameterize_model
    # EfficientFormerV2's attention biases are sized for one input: build it for the one timed
    kwargs = {'img_size': resolution} if c.family == 'EfficientFormerV2' else {}
    if task == 'classifier':
        return reparameterize_model(timm.create_model(c.key, **kwargs).eval())
    model = timm.create_model(c.key, features_only=True, **kwargs)
    strides = model.feature_info.reduction()
    keep = [strides.index(s) for s in FEATURE_STRIDES]
    return _FeatureMaps(reparameterize_model(model.eval()), keep).eval()


def build_model(c: Contender, task: str, resolution: int) -> Tuple[nn.Module, Tuple[str, ...]]:
    """``c`` in its deployed form at ``resolution`` and its output names (random weights)."""
    if c.is_iformer:
        em = build_export_model(c.key, task, resolution=(resolution, resolution))
        return em.model, tuple(em.output_names)
    outputs = ('logits',) if task == 'classifier' else BACKBONE_OUTPUTS
    return _timm_model(c, task, resolution), outputs


def _classifier_params(c: Contender) -> int:
    """Trainable parameters of the unfused 1000-class classifier (the published convention)."""
    if c.is_iformer:
        from iformer_mm.models.plain_classifier import IFormerClassifier
        return count_params(IFormerClassifier(c.key.split('_', 1)[1]))
    import timm
    return count_params(timm.create_model(c.key))


def pareto_front(points: Sequence[Tuple[float, float]]) -> List[bool]:
    """For each (latency, accuracy) point: is it on the front? A point is off it when another is
    at least as fast and at least as accurate, and strictly better in one of the two."""
    def beats(a, b):
        return a[0] <= b[0] and a[1] >= b[1] and (a[0] < b[0] or a[1] > b[1])
    return [not any(beats(q, p) for q in points) for p in points]


def speed(row: dict) -> float:
    """What a front is drawn on: the median per-round ratio to the reference (robust while the
    machine's speed drifts), or the median ms where the reference was not timed."""
    return row['ratio_vs_reference'] if 'ratio_vs_reference' in row else row['median_ms']


def closest_dominating(rows: Sequence[dict], key: str, accuracy: str = 'top1') -> Optional[str]:
    """The front model that beats ``key`` (faster and at least as accurate) with the latency
    closest to it: the peer a user of ``key`` would switch to. None when ``key`` is on the front.
    ``rows`` carry ``on_front`` for the ``accuracy`` asked."""
    me = next(r for r in rows if r['key'] == key)
    if 'median_ms' not in me:
        return None
    better = [r for r in rows if r.get('on_front') and r['key'] != key and 'median_ms' in r
              and speed(r) <= speed(me) and r[accuracy] >= me[accuracy]]
    return max(better, key=speed)['key'] if better else None


def mark_fronts(group: dict) -> None:
    """Derive, from the measured rows, each row's ``on_front`` (paper-convention top-1) and
    ``on_front_best`` (best published top-1), the group's fronts and the reference's closest
    front peer (re-run by ``--report``: the rows are the measurement, all else follows)."""
    timed = [r for r in group['rows'] if 'median_ms' in r]
    for accuracy, flag in (('top1', 'on_front'), ('best_top1', 'on_front_best')):
        for r, on in zip(timed, pareto_front([(speed(r), r[accuracy]) for r in timed])):
            r[flag] = on
        group['front' if accuracy == 'top1' else 'front_best'] = [r['key'] for r in timed
                                                                  if r[flag]]
    group['closest_front_peer'] = closest_dominating(group['rows'], group['reference'])


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"[:300]


def parity(outputs: List[np.ndarray], reference) -> Dict[str, float]:
    """How far an fp32 artifact's outputs are from PyTorch's: the largest absolute difference
    and, since random weights can make outputs huge (MobileNetV4's logits reach 1e5), relative to
    the largest PyTorch output."""
    refs = [r.detach().numpy() for r in (reference if isinstance(reference, (tuple, list))
                                         else (reference,))]
    diff = max(float(np.abs(o - r).max()) for o, r in zip(outputs, refs))
    scale = max(float(np.abs(r).max()) for r in refs)
    return {'max_abs_diff_vs_torch': diff, 'max_rel_diff_vs_torch': diff / max(scale, 1e-12)}


Built = Dict[str, object]  # key -> (deployed model, output names), or why it did not build


def _profile(target, path: str, feed: np.ndarray, precision: str, threads: int) -> dict:
    try:
        return target.profile(path, feed, precision, threads, PROFILE_RUNS) or {}
    except Exception as e:  # the timings stand without it
        return {'error': _first_line(e)}


def measure_group(runtime: str, task: str, resolution: int, models: Built, reference: str,
                  threads: int, runs: int, warmup: int, folder: str,
                  log: Callable[[str], None] = print) -> dict:
    """Every model of one (runtime, task): export, load, time interleaved, front, profiles."""
    from iformer_mm.deploy.targets import get_target
    target_name, precision = RUNTIMES[runtime]
    target = get_target(target_name)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, resolution, resolution, generator=g)
    calibration = [torch.randn(1, 3, resolution, resolution, generator=g)
                   for _ in range(CALIBRATION_INPUTS)] if precision == 'int8' else None
    feed = x.numpy()
    rows: Dict[str, dict] = {}
    runners, paths = {}, {}
    for key, built in models.items():
        c = contender(key)
        row = {'key': key, 'label': c.label, 'family': c.family, 'top1': c.top1,
               'best_top1': c.best_top1}
        path = os.path.join(folder, f'{runtime}_{task}_{key}{target.suffix}')
        if isinstance(built, str):
            rows[key] = dict(row, status='failed', error=built)
            continue
        model, outputs = built
        try:
            t0 = time.perf_counter()
            info = target.export(model, x, list(outputs), precision, calibration, path, INPUT_NAME)
            row['export_s'] = round(time.perf_counter() - t0, 1)
            log(f"    {key}: exported in {row['export_s']} s")
            session = target.session(path, threads, precision)
            result = session(feed)
            if precision == 'fp32':  # the artifact computes what PyTorch computes
                with torch.no_grad():
                    row.update(parity(result, model(x)))
            for _ in range(warmup):
                session(feed)
            facts = target.runtime_facts(session)
            row['precision_ran'] = facts.get('precision_ran') or info.get('precision_ran')
            for k in ('xnnpack_partitions', 'ops_outside_delegate'):
                if k in info:
                    row[k] = info[k]
            row['status'] = 'ok'
            runners[key], paths[key] = (lambda s=session: s(feed)), path
        except Exception as e:  # a model the runtime cannot take is a result too
            row.update(status='failed', error=_first_line(e))
            log(f'    {key}: FAILED ({row["error"]})')
        rows[key] = row
    times = time_interleaved(runners, runs)
    for key, ms in times.items():
        q = statistics.quantiles(ms, n=10, method='inclusive') if len(ms) > 1 else [ms[0]] * 9
        rows[key].update(median_ms=round(statistics.median(ms), 3), p10_ms=round(q[0], 3),
                         p90_ms=round(q[8], 3), runs=len(ms))
        if reference in times:
            r = ratio_stats(ms, times[reference])
            rows[key].update(ratio_vs_reference=round(r['median_ratio'], 4),
                             ratio_p10=round(r['p10_ratio'], 4), ratio_p90=round(r['p90_ratio'], 4))
    group = {'runtime': runtime, 'target': target_name, 'precision': precision, 'task': task,
             'resolution': resolution, 'threads': threads, 'reference': reference,
             'versions': {p: package_version(p) for p in target.packages},
             'rows': list(rows.values())}
    mark_fronts(group)
    peer = group['closest_front_peer']
    if peer:  # where the difference comes from: both models' per-op profiles
        group['profiles'] = {k: _profile(target, paths[k], feed, precision, threads)
                             for k in (reference, peer)}
    timed = [r for r in group['rows'] if 'median_ms' in r]
    log(f'  {runtime:<16} {task:<10} ' + ', '.join(
        f"{r['key']} {r['median_ms']:.1f}{'*' if r['on_front'] else ''}" for r in timed))
    return group


def measures(model: nn.Module, resolution: int) -> Dict[str, object]:
    """GMACs of the deployed model at ``resolution`` (the one counter; attention matmuls
    included), in total and per op."""
    macs = count_macs(copy.deepcopy(model), (resolution, resolution), fuse=None)
    return {'gmacs': round(sum(macs.values()) / 1e9, 4),
            'gmacs_by_op': {k: round(v / 1e9, 4) for k, v in macs.items()}}


def run_runtime(runtime: str, models: Dict[str, Sequence[str]], tasks: Dict[str, int],
                reference: str, threads: int, runs: int, warmup: int,
                log: Callable[[str], None] = print) -> dict:
    """One runtime's results document: each task (``models[task]`` at ``tasks[task]`` pixels) a
    group with its rows, fronts and the machine's load while it was timed; the models' facts."""
    from iformer_mm.deploy.targets import get_target
    get_target(RUNTIMES[runtime][0]).check(RUNTIMES[runtime][1])
    torch.set_num_threads(threads)
    groups, model_facts = [], {}
    with tempfile.TemporaryDirectory(prefix='iformer-pareto-') as tmp:
        for task, resolution in tasks.items():
            built: Built = {}
            for key in models[task]:
                c = contender(key)
                facts = model_facts.setdefault(key, _model_facts(c))
                try:
                    built[key] = build_model(c, task, resolution)
                    facts[f'{task}_{resolution}'] = measures(built[key][0], resolution)
                except Exception as e:  # a model that does not build at this size: a result
                    built[key] = f'build: {_first_line(e)}'
                    facts[f'{task}_{resolution}'] = {'error': built[key]}
                    log(f'    {key}: {built[key]}')
            with MachineMonitor(threads) as monitor:
                group = measure_group(runtime, task, resolution, built, reference, threads, runs,
                                      warmup, tmp, log)
            groups.append(dict(group, runs=runs, warmup=warmup, machine=monitor.summary()))
    return {'runtime': runtime, 'environment': environment(threads),
            'method': {'interleaved': True, 'batch': 1, 'reference': reference,
                       'calibration': f'{CALIBRATION_INPUTS} random N(0, 1) inputs (int8 only)',
                       'weights': 'random (latency does not depend on them)',
                       'note': 'Linux x86 CPU latencies, not phone latencies'},
            'models': model_facts, 'iphone13_ms': IPHONE13_MS, 'groups': groups}


def merge(old: dict, new: dict) -> dict:
    """``new`` with the groups of ``old`` (the same runtime) whose task ``new`` did not measure:
    re-measuring one task keeps the other's results."""
    tasks = {g['task'] for g in new['groups']}
    kept = [g for g in old['groups'] if g['task'] not in tasks]
    models = {k: {**old['models'].get(k, {}), **new['models'].get(k, {})}
              for k in {**old['models'], **new['models']}}
    return dict(new, groups=kept + new['groups'], models=models)


def _model_facts(c: Contender) -> dict:
    return {'label': c.label, 'family': c.family, 'top1': c.top1,
            'top1_resolution': c.top1_resolution, 'weights': c.weights, 'distilled': c.distilled,
            'best_top1': c.best_top1, 'best_weights': c.best[1] if c.best else c.weights,
            'source': c.source, 'params': _classifier_params(c)}
