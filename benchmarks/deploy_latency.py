"""Exported-model latency per runtime: our fused export vs timm's, and int8 vs the fastest float.

For each model and runtime, in one process: our fused classifier exported by the target
(:mod:`iformer_mm.deploy.targets`), timm's ``iformer_*`` (after its own ``fuse()``, the same
baseline as the PyTorch benchmark) exported by the same target the same way, our bf16 artifact
where the runtime runs bf16 on this CPU (OpenVINO), and our int8 artifact calibrated on
generated shape images through the classification test pipeline. int8 is judged against the
*fastest* float precision of its runtime (on a bf16 CPU, OpenVINO's bf16), and each int8 row
carries the runtime's per-op profile (op type x precision ran, share of kernel time). All
sessions of one (model, runtime) are built first and timed interleaved
(:func:`.timing.interleaved_rounds`), so the ratios ours / timm and int8 / fp32 are per-round
medians, robust to the machine's drift. ExecuTorch rows record the XNNPACK partitions of both
graphs. Intra-op threads are pinned per runtime; ExecuTorch's XNNPACK threadpool is process-wide,
so one run measures one thread count.
"""
from __future__ import annotations

import os
import statistics
import tempfile
from typing import Callable, Dict, List, Sequence, Tuple

import torch

from iformer_mm.deploy.build import INPUT_NAME, default_config
from iformer_mm.models.backbones.iformer_arch import parse_model_name
from iformer_mm.models.plain_classifier import IFormerClassifier
from .machine import MachineMonitor, environment, package_version
from .latency import ratio_stats, time_interleaved
from .timm_twins import create_timm_iformer

DEPLOY_TARGETS = ('onnxruntime', 'openvino', 'executorch')
#: the targets of the deployment issues, checked in the summary
TARGET_FP32_VS_TIMM = 1.0
TARGET_ET_VS_TIMM = 0.8
#: int8 / fastest float precision of the runtime (#19: OpenVINO vs bf16, the others vs fp32)
TARGET_INT8_VS_FLOAT = {'openvino': 0.75, 'onnxruntime': 0.55, 'executorch': 0.7}
CALIBRATION_IMAGES = 32
PROFILE_RUNS = 10


def _calibration_images(resolution: int, folder: str) -> str:
    """Generated shape images (written once for every model): the calibration folder."""
    from demo.shapes import make_classification
    root = os.path.join(folder, 'shapes')
    make_classification(root, num_train_per_class=CALIBRATION_IMAGES // 5 + 1, num_val_per_class=1,
                        image_size=max(64, resolution))
    return os.path.join(root, 'train')


def _calibration(arch: str, resolution: int, images: str) -> List[torch.Tensor]:
    """The calibration images through the model's classification test pipeline."""
    from iformer_mm.deploy.build import build_export_model
    from iformer_mm.deploy.inputs import InputSource
    em = build_export_model(arch, 'classifier', resolution=(resolution, resolution),
                            config=default_config('classifier', arch))
    return InputSource(em).calibration(images, CALIBRATION_IMAGES)


def _contenders(arch: str) -> Tuple[torch.nn.Module, torch.nn.Module]:
    """Ours fused and timm's fused classifier (random weights), built once per model."""
    ours = IFormerClassifier(arch).eval()
    ours.switch_to_deploy()
    return ours, create_timm_iformer(arch).eval().fuse()


def measure_runtime(target_name: str, arch: str, contenders: Tuple[torch.nn.Module, torch.nn.Module],
                    resolution: int, threads: int, runs: int, warmup: int,
                    calibration: Sequence[torch.Tensor], folder: str,
                    log: Callable[[str], None] = print) -> dict:
    """One (runtime, model) case: ours fp32, timm fp32, ours int8, timed interleaved."""
    from iformer_mm.deploy.targets import get_target
    target = get_target(target_name)
    x = torch.randn(1, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    ours, timm_model = contenders
    variants = {'ours_fp32': (ours, 'fp32'), 'timm_fp32': (timm_model, 'fp32')}
    if 'bf16' in target.precisions:
        variants['ours_bf16'] = (ours, 'bf16')
    variants['ours_int8'] = (ours, 'int8')
    rows, runners = {}, {}
    feed = x.numpy()
    for name, (model, precision) in variants.items():
        path = os.path.join(folder, f'{target_name}_{arch}_{name}{target.suffix}')
        row = {'variant': name, 'precision': precision}
        try:
            info = target.export(model, x, ['logits'], precision,
                                 calibration if precision == 'int8' else None, path, INPUT_NAME)
            session = target.session(path, threads, precision)
            for _ in range(warmup):
                session(feed)
            runners[name] = (lambda s=session: s(feed))
            row.update(status='ok', **{k: info[k] for k in ('xnnpack_partitions',
                                                            'ops_outside_delegate') if k in info})
            facts = target.runtime_facts(session)
            row['precision_ran'] = facts.get('precision_ran') or info.get('precision_ran')
            if facts.get('note'):
                row['runtime_note'] = facts['note']
            if precision != 'fp32' or name == 'ours_fp32':
                profile = target.profile(path, feed, precision, threads, PROFILE_RUNS)
                if profile:
                    row['profile'] = profile
        except Exception as e:  # record and go on: one runtime's failure is a result too
            row.update(status='failed', error=f'{type(e).__name__}: {str(e).splitlines()[0]}'[:300])
            log(f'    {name}: FAILED ({row["error"]})')
        rows[name] = row
    times = time_interleaved(runners, runs)
    for name, ms in times.items():
        rows[name].update(median_ms=statistics.median(ms), min_ms=min(ms), runs=runs)
    ratios = {}
    pairs = {'ours_vs_timm_fp32': ('ours_fp32', 'timm_fp32'),
             'int8_vs_fp32': ('ours_int8', 'ours_fp32'),
             'bf16_vs_fp32': ('ours_bf16', 'ours_fp32'),
             'int8_vs_bf16': ('ours_int8', 'ours_bf16')}
    for key, (a, b) in pairs.items():
        if a in times and b in times:
            ratios[key] = ratio_stats(times[a], times[b])['median_ratio']
    floats = [n for n in ('ours_fp32', 'ours_bf16') if n in times]
    if floats and 'ours_int8' in times:
        fastest = min(floats, key=lambda n: statistics.median(times[n]))
        ratios['fastest_float'] = rows[fastest]['precision']
        ratios['int8_vs_fastest_float'] = ratio_stats(times['ours_int8'], times[fastest])['median_ratio']
    summary = ', '.join(f"{n} {r['median_ms']:.2f} ms" for n, r in rows.items() if 'median_ms' in r)
    log(f'  {target_name:<12} {arch}: {summary}; ' +
        ', '.join(f'{k} {v:.2f}' if isinstance(v, float) else f'{k} {v}'
                  for k, v in ratios.items()))
    return {'target': target_name, 'model': arch, 'resolution': resolution, 'threads': threads,
            'versions': {p: package_version(p) for p in target.packages}, 'variants': list(rows.values()), 'ratios': ratios}


def summarize(cases: List[dict]) -> List[dict]:
    """Each case against the deployment targets: fp32 not slower than timm (ExecuTorch: one
    partition and <= 0.8x timm), and int8 <= :data:`TARGET_INT8_VS_FLOAT` of the runtime's
    fastest float precision."""
    out = []
    for case in cases:
        r = case['ratios']
        ours = next((v for v in case['variants'] if v['variant'] == 'ours_fp32'), {})
        row = {'target': case['target'], 'model': case['model'], 'threads': case['threads'],
               'ours_vs_timm_fp32': r.get('ours_vs_timm_fp32'), 'int8_vs_fp32': r.get('int8_vs_fp32'),
               'fastest_float': r.get('fastest_float'),
               'int8_vs_fastest_float': r.get('int8_vs_fastest_float')}
        limit = TARGET_ET_VS_TIMM if case['target'] == 'executorch' else TARGET_FP32_VS_TIMM
        row['fp32_target'] = f'<= {limit}'
        row['fp32_met'] = r.get('ours_vs_timm_fp32') is not None and r['ours_vs_timm_fp32'] <= limit
        if case['target'] == 'executorch':
            row['one_partition'] = ours.get('xnnpack_partitions') == 1
        int8_limit = TARGET_INT8_VS_FLOAT.get(case['target'])
        if int8_limit is not None:
            row['int8_target'] = f'<= {int8_limit} x {r.get("fastest_float", "fp32")}'
            row['int8_met'] = (r.get('int8_vs_fastest_float') is not None
                               and r['int8_vs_fastest_float'] <= int8_limit)
        out.append(row)
    return out


def cpu_class(isa: Sequence[str]) -> str:
    """The CPU class a recommendation holds for, from its vector extensions: int8 speed-ups
    depend on VNNI (int8 dot products), so a result measured without it must not claim it."""
    if 'avx512_vnni' in isa:
        return 'a CPU with VNNI (AVX-512)'
    if 'avx_vnni' in isa:
        return 'a CPU with VNNI (AVX)'
    return 'a CPU without VNNI (AVX2)' if 'avx2' in isa else 'this CPU'


def recommend(cases: List[dict], isa: Sequence[str]) -> Dict[str, str]:
    """One line per runtime from the measured rows: ship int8 where it is faster than the
    fastest float by at least 10 % on every model, else the fastest float; ``isa`` (the
    measuring host's vector extensions) names the CPU class it holds for."""
    where = cpu_class(isa)
    lines = {}
    for target in dict.fromkeys(c['target'] for c in cases):
        rows = [c for c in cases if c['target'] == target and 'int8_vs_fastest_float' in c['ratios']]
        if not rows:
            continue
        worst = max(c['ratios']['int8_vs_fastest_float'] for c in rows)
        floats = sorted({c['ratios']['fastest_float'] for c in rows})
        speedups = ', '.join(f"{c['model'].upper()} {1 / c['ratios']['int8_vs_fastest_float']:.2f}x"
                             for c in rows)
        if worst <= 0.9:
            lines[target] = (f'on {where} ship int8 (vs {"/".join(floats)}: {speedups} '
                             'faster; accuracy within 1 point on the demo models)')
        else:
            lines[target] = (f'on {where} ship {"/".join(floats)}: int8 is not clearly '
                             f'faster ({speedups})')
    return lines


def run_deploy_benchmark(models: Sequence[str], targets: Sequence[str], resolution: int,
                         threads: int, runs: int, warmup: int,
                         log: Callable[[str], None] = print) -> dict:
    """Measure every (runtime, model); returns the results document."""
    from iformer_mm.deploy.targets import get_target
    archs = [parse_model_name(m)[0] for m in models]
    for t in targets:
        get_target(t).check('fp32')
    torch.set_num_threads(threads)
    cases = []
    with tempfile.TemporaryDirectory(prefix='iformer-deploy-bench-') as tmp, \
            MachineMonitor(threads) as monitor:
        images = _calibration_images(resolution, tmp)
        for arch in archs:
            calibration, contenders = _calibration(arch, resolution, images), _contenders(arch)
            for target in targets:
                cases.append(measure_runtime(target, arch, contenders, resolution, threads, runs,
                                             warmup, calibration, tmp, log))
    env = environment(threads)
    return {'environment': env, 'machine': monitor.summary(),
            'method': {'runs': runs, 'warmup': warmup, 'interleaved': True, 'batch': 1,
                       'resolution': resolution, 'calibration_images': CALIBRATION_IMAGES,
                       'ours': 'IFormerClassifier after switch_to_deploy(), exported by the target',
                       'timm': "timm.create_model('iformer_*').eval().fuse(), exported the same way",
                       'note': 'Linux CPU latencies (not phone latencies); random weights'},
            'summary': summarize(cases), 'recommendation': recommend(cases, env['cpu_isa']),
            'cases': cases}


def _top_float_ops(row: dict, n: int = 3) -> str:
    """The int8 profile's biggest non-int8 entries: where the time that did not get faster is."""
    prof = row.get('profile') or {}
    ops = [o for o in prof.get('ops', []) if o['precision'] not in ('i8', 'u8', 'int8')][:n]
    return ', '.join(f"{o['op_type']} {o['precision']} {100 * o['share']:.0f}%" for o in ops) or '-'


def markdown(doc: dict) -> str:
    """A table per thread count: runtime, model, ms per precision, ratios, what stayed float."""
    lines = ['| runtime | model | ours fp32 ms | bf16 ms | int8 ms | timm fp32 ms | ours / timm fp32 '
             '| int8 / fastest float (target) | precision ran (int8) | biggest non-int8 time in '
             'int8 (profile) | XNNPACK partitions ours / timm |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for case in doc['cases']:
        v = {row['variant']: row for row in case['variants']}

        def ms(name: str) -> str:
            row = v.get(name)
            if row is None:
                return '-'
            return f"{row['median_ms']:.2f}" if 'median_ms' in row else row.get('status', '-')
        parts = (f"{v['ours_fp32'].get('xnnpack_partitions', '-')} / "
                 f"{v['timm_fp32'].get('xnnpack_partitions', '-')}"
                 if case['target'] == 'executorch' else '-')
        r = case['ratios']
        limit = TARGET_INT8_VS_FLOAT.get(case['target'])
        vs = r.get('int8_vs_fastest_float')
        vs = (f"{vs:.2f} vs {r['fastest_float']} (<= {limit})" if vs is not None else '-')
        lines.append(f"| {case['target']} | {case['model'].upper()} | {ms('ours_fp32')} | "
                     f"{ms('ours_bf16')} | {ms('ours_int8')} | {ms('timm_fp32')} | "
                     f"{r.get('ours_vs_timm_fp32', float('nan')):.2f} | {vs} | "
                     f"{v.get('ours_int8', {}).get('precision_ran', '-')} | "
                     f"{_top_float_ops(v.get('ours_int8', {}))} | {parts} |")
    env, machine = doc['environment'], doc['machine']
    head = (f"{env['cpu']}, {doc['cases'][0]['threads'] if doc['cases'] else '-'} thread(s), "
            f"batch 1, {doc['method']['resolution']}x{doc['method']['resolution']}, median of "
            f"{doc['method']['runs']} interleaved runs; machine: {machine['note']} (other "
            f"processes' CPU share {machine['other_processes_cpu_fraction']}).")
    recs = ''.join(f'\n- **{t}**: {line}' for t, line in (doc.get('recommendation') or {}).items())
    return head + '\n\n' + '\n'.join(lines) + '\n' + (f'\nRecommendation:{recs}\n' if recs else '')


def plot(docs: Sequence[dict], path: str) -> None:
    """Bars: ms per runtime x variant, one panel per thread count (written atomically)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from iformer_mm.utils.fileio import atomic_path
    fig, axes = plt.subplots(1, len(docs), figsize=(6.5 * len(docs), 4.5), squeeze=False)
    colours = {'timm_fp32': 'tab:gray', 'ours_fp32': 'tab:blue', 'ours_bf16': 'tab:orange',
               'ours_int8': 'tab:green'}
    for ax, doc in zip(axes[0], docs):
        labels = [f"{c['target']}\n{c['model'].upper()}" for c in doc['cases']]
        for k, name in enumerate(colours):
            values = [next((v.get('median_ms', 0) for v in c['variants'] if v['variant'] == name), 0)
                      for c in doc['cases']]
            ax.bar([i + (k - 1.5) * 0.2 for i in range(len(labels))], values, 0.2,
                   label=name.replace('_', ' '), color=colours[name])
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_ylabel('latency, batch 1 (ms, median)')
        threads = doc['cases'][0]['threads'] if doc['cases'] else '?'
        ax.set_title(f'classifier {doc["method"]["resolution"]}px, {threads} thread(s)')
        ax.grid(axis='y', alpha=.3)
        ax.legend(fontsize=8)
    fig.suptitle('Exported iFormer on CPU runtimes (Linux x86, not phone latency)', fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png', dpi=110)
    plt.close(fig)

