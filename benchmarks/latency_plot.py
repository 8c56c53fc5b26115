"""Plot benchmark results: classifier latency vs published top-1, backbone latency vs resolution."""
from __future__ import annotations

import os
from typing import Dict, List, Tuple

from iformer_mm.utils.fileio import atomic_path
from .latency import BASELINE, PUBLISHED_TOP1

OURS = 'ours_fused'
SERIES = ((OURS, 'ours (fused)', 'tab:blue', 'o'), (BASELINE, 'timm (fused)', 'tab:gray', 's'))
MODEL_COLORS = {'t': 'tab:blue', 's': 'tab:cyan', 'm': 'tab:orange', 'l': 'tab:green',
                'l2': 'tab:red', 'h': 'tab:purple'}


def _ok(results: List[dict], **match) -> List[dict]:
    return [r for r in results if r.get('status') == 'ok'
            and all(r.get(k) == v for k, v in match.items())]


def _top1_panel(ax, results: List[dict]) -> bool:
    rows = _ok(results, part='classifier', resolution=224, batch=1)
    drawn = False
    for backend, label, color, marker in SERIES:
        pts: List[Tuple[float, float, str]] = sorted(
            (r['median_ms'], PUBLISHED_TOP1[r['model']], r['model'])
            for r in rows if r['backend'] == backend and r['model'] in PUBLISHED_TOP1)
        if not pts:
            continue
        drawn = True
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, color=color, label=label)
        if backend == OURS:
            for ms, top1, model in pts:
                ax.annotate(f'iFormer-{model.upper()}', (ms, top1), textcoords='offset points',
                            xytext=(5, -10), fontsize=8)
    ax.set_xlabel('latency, batch 1, 224x224 (ms, median)')
    ax.set_ylabel('published ImageNet top-1 (%)')
    ax.set_title('classifier: latency vs top-1')
    return drawn


def _resolution_panel(ax, results: List[dict]) -> bool:
    rows = _ok(results, part='backbone', batch=1)
    series: Dict[Tuple[str, str], List[Tuple[int, float]]] = {}
    for r in rows:
        if r['backend'] in (OURS, BASELINE, 'ours_fused_cl_win16'):
            key = (r['model'], r['backend'])
            series.setdefault(key, []).append((r['resolution'], r['median_ms']))
    styles = {OURS: '-', BASELINE: ':', 'ours_fused_cl_win16': '--'}
    names = {OURS: 'ours fused', BASELINE: 'timm fused', 'ours_fused_cl_win16': 'ours win16'}
    for (model, backend), pts in sorted(series.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], styles[backend], marker='o',
                color=MODEL_COLORS.get(model), label=f'{model.upper()} {names[backend]}')
    ax.set_xlabel('input resolution (square)')
    ax.set_ylabel('latency, batch 1 (ms, median)')
    ax.set_yscale('log')
    ax.set_title('backbone (4 feature maps): latency vs resolution')
    return bool(series)


def plot_results(doc: dict, path: str) -> None:
    """Write a PNG (atomically) with whichever panels the results support."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    drawn = [_top1_panel(axes[0], doc['results']), _resolution_panel(axes[1], doc['results'])]
    for ax, ok in zip(axes, drawn):
        if ok:
            ax.grid(alpha=.3)
            ax.legend(fontsize=7)
        else:
            ax.text(.5, .5, 'not measured in this run', ha='center', va='center')
    env, machine = doc['environment'], doc['machine']
    shared = ' - SHARED machine, noisy' if machine.get('machine_shared') else ''
    fig.suptitle(f"Linux CPU latency (not iPhone): {env['cpu']}, {env['torch_threads']} torch "
                 f"threads, fp32, torch {env['torch']}{shared}", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=os.path.splitext(path)[1][1:] or 'png', dpi=110)
    plt.close(fig)
