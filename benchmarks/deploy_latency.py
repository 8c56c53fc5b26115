"""Exported-model latency per runtime: our fused export vs timm's, and int8 vs fp32.

For each model and runtime, in one process: our fused classifier exported by the target
(:mod:`iformer_mm.deploy.targets`), timm's ``iformer_*`` (after its own ``fuse()``, the same
baseline as the PyTorch benchmark) exported by the same target the same way, and our int8
artifact calibrated on generated shape images through the classification test pipeline. All
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
from typing import Callable, List, Sequence, Tuple

import torch

from iformer_mm.deploy.build import INPUT_NAME, default_config
from iformer_mm.models.backbones.iformer_arch import parse_model_name
from iformer_mm.models.plain_classifier import IFormerClassifier
from .machine import MachineMonitor, environment, package_version
from .latency import ratio_stats, time_interleaved
from .timm_twins import create_timm_iformer

DEPLOY_TARGETS = ('onnxruntime', 'openvino', 'executorch')
#: the targets of the deployment issue, checked in the summary
TARGET_FP32_VS_TIMM = 1.0
TARGET_ET_VS_TIMM = 0.8
TARGET_INT8_VS_FP32 = 0.6
CALIBRATION_IMAGES = 32


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
    variants = {'ours_fp32': (ours, 'fp32'), 'timm_fp32': (timm_model, 'fp32'),
                'ours_int8': (ours, 'int8')}
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
        except Exception as e:  # record and go on: one runtime's failure is a result too
            row.update(status='failed', error=f'{type(e).__name__}: {str(e).splitlines()[0]}'[:300])
            log(f'    {name}: FAILED ({row["error"]})')
        rows[name] = row
    times = time_interleaved(runners, runs)
    for name, ms in times.items():
        rows[name].update(median_ms=statistics.median(ms), min_ms=min(ms), runs=runs)
    ratios = {}
    for key, (a, b) in {'ours_vs_timm_fp32': ('ours_fp32', 'timm_fp32'),
                        'int8_vs_fp32': ('ours_int8', 'ours_fp32')}.items():
        if a in times and b in times:
            ratios[key] = ratio_stats(times[a], times[b])['median_ratio']
    summary = ', '.join(f"{n} {r['median_ms']:.2f} ms" for n, r in rows.items() if 'median_ms' in r)
    log(f'  {target_name:<12} {arch}: {summary}; ' +
        ', '.join(f'{k} {v:.2f}' for k, v in ratios.items()))
    return {'target': target_name, 'model': arch, 'resolution': resolution, 'threads': threads,
            'versions': {p: package_version(p) for p in target.packages}, 'variants': list(rows.values()), 'ratios': ratios}


def summarize(cases: List[dict]) -> List[dict]:
    """Each case against the deployment targets (fp32 not slower than timm; ExecuTorch one
    partition and <= 0.8x timm; int8 <= 0.6x fp32 on OpenVINO and ONNX Runtime)."""
    out = []
    for case in cases:
        r = case['ratios']
        ours = next((v for v in case['variants'] if v['variant'] == 'ours_fp32'), {})
        row = {'target': case['target'], 'model': case['model'], 'threads': case['threads'],
               'ours_vs_timm_fp32': r.get('ours_vs_timm_fp32'), 'int8_vs_fp32': r.get('int8_vs_fp32')}
        limit = TARGET_ET_VS_TIMM if case['target'] == 'executorch' else TARGET_FP32_VS_TIMM
        row['fp32_target'] = f'<= {limit}'
        row['fp32_met'] = r.get('ours_vs_timm_fp32') is not None and r['ours_vs_timm_fp32'] <= limit
        if case['target'] == 'executorch':
            row['one_partition'] = ours.get('xnnpack_partitions') == 1
        if case['target'] in ('openvino', 'onnxruntime'):
            row['int8_met'] = (r.get('int8_vs_fp32') is not None
                               and r['int8_vs_fp32'] <= TARGET_INT8_VS_FP32)
        out.append(row)
    return out


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
    return {'environment': environment(threads), 'machine': monitor.summary(),
            'method': {'runs': runs, 'warmup': warmup, 'interleaved': True, 'batch': 1,
                       'resolution': resolution, 'calibration_images': CALIBRATION_IMAGES,
                       'ours': 'IFormerClassifier after switch_to_deploy(), exported by the target',
                       'timm': "timm.create_model('iformer_*').eval().fuse(), exported the same way",
                       'note': 'Linux CPU latencies (not phone latencies); random weights'},
            'summary': summarize(cases), 'cases': cases}


def markdown(doc: dict) -> str:
    """A table per thread count: runtime, model, ms per variant, ratios, partitions."""
    lines = ['| runtime | model | ours fp32 ms | timm fp32 ms | ours int8 ms | ours / timm fp32 '
             '| int8 / fp32 | precision ran (int8) | XNNPACK partitions ours / timm |',
             '|---|---|---|---|---|---|---|---|---|']
    for case in doc['cases']:
        v = {row['variant']: row for row in case['variants']}

        def ms(name: str) -> str:
            row = v.get(name, {})
            return f"{row['median_ms']:.2f}" if 'median_ms' in row else row.get('status', '-')
        parts = (f"{v['ours_fp32'].get('xnnpack_partitions', '-')} / "
                 f"{v['timm_fp32'].get('xnnpack_partitions', '-')}"
                 if case['target'] == 'executorch' else '-')
        r = case['ratios']
        lines.append(f"| {case['target']} | {case['model'].upper()} | {ms('ours_fp32')} | "
                     f"{ms('timm_fp32')} | {ms('ours_int8')} | "
                     f"{r.get('ours_vs_timm_fp32', float('nan')):.2f} | "
                     f"{r.get('int8_vs_fp32', float('nan')):.2f} | "
                     f"{v['ours_int8'].get('precision_ran', '-')} | {parts} |")
    env, machine = doc['environment'], doc['machine']
    head = (f"{env['cpu']}, {doc['cases'][0]['threads'] if doc['cases'] else '-'} thread(s), "
            f"batch 1, {doc['method']['resolution']}x{doc['method']['resolution']}, median of "
            f"{doc['method']['runs']} interleaved runs; machine: {machine['note']} (other "
            f"processes' CPU share {machine['other_processes_cpu_fraction']}).")
    return head + '\n\n' + '\n'.join(lines) + '\n'


def plot(docs: Sequence[dict], path: str) -> None:
    """Bars: ms per runtime x variant, one panel per thread count (written atomically)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from iformer_mm.utils.fileio import atomic_path
    fig, axes = plt.subplots(1, len(docs), figsize=(6.5 * len(docs), 4.5), squeeze=False)
    colours = {'timm_fp32': 'tab:gray', 'ours_fp32': 'tab:blue', 'ours_int8': 'tab:green'}
    for ax, doc in zip(axes[0], docs):
        labels = [f"{c['target']}\n{c['model'].upper()}" for c in doc['cases']]
        for k, name in enumerate(colours):
            values = [next((v.get('median_ms', 0) for v in c['variants'] if v['variant'] == name), 0)
                      for c in doc['cases']]
            ax.bar([i + (k - 1) * 0.27 for i in range(len(labels))], values, 0.27,
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

