"""One figure per runtime: measured latency vs published top-1, the front marked, beside the
paper's iPhone 13 latencies of iFormer (the claim being checked)."""
from __future__ import annotations

from typing import List

from .pareto import speed
from .pareto_report import TASK_NAMES

MARKERS = {'iFormer': '*', 'MobileNetV4': 'o', 'RepViT': 's', 'FastViT': '^',
           'EfficientFormerV2': 'D', 'EfficientViT (MIT)': 'v', 'StarNet': 'P'}


def _panel(ax, group: dict) -> None:
    timed = [r for r in group['rows'] if 'median_ms' in r]
    for family, marker in MARKERS.items():
        rows = [r for r in timed if r['family'] == family]
        if rows:
            ax.scatter([speed(r) for r in rows], [r['top1'] for r in rows], marker=marker,
                       s=140 if family == 'iFormer' else 45, label=family, zorder=3,
                       color='tab:red' if family == 'iFormer' else None)
    front = sorted((speed(r), r['top1']) for r in timed if r['on_front'])
    if front:
        xs, ys = zip(*front)
        ax.step(xs, ys, where='post', color='black', lw=1, alpha=.6, label='front')
    for r in timed:
        ax.annotate(r['label'], (speed(r), r['top1']), fontsize=6, xytext=(3, 2),
                    textcoords='offset points')
    failed: List[str] = [r['label'] for r in group['rows'] if r['status'] != 'ok']
    title = (f"{group['runtime']}: {TASK_NAMES[group['task']]} {group['resolution']}px, "
             f"{group['threads']} thread(s)")
    ax.set_title(title + (f"\nnot timed: {', '.join(failed)}" if failed else ''), fontsize=8)
    ratios = all('ratio_vs_reference' in r for r in timed)
    ax.set_xlabel(f"latency, batch 1, relative to {group['reference']} (median per-round ratio; "
                  'Linux x86 CPU)' if ratios else 'latency, batch 1 (ms, median; Linux x86 CPU)')
    ax.set_ylabel('published ImageNet-1k top-1 (%)')
    ax.grid(alpha=.3)


def _iphone_panel(ax, doc: dict) -> None:
    models = doc['models']
    for task, marker in (('classifier', '*'), ('backbone', 'X')):
        points = [(ms, models[k]['top1'], models[k]['label'])
                  for k, ms in doc['iphone13_ms'][task].items() if k in models]
        if points:
            ax.scatter([p[0] for p in points], [p[1] for p in points], marker=marker, s=120,
                       color='tab:red', label=f"iFormer {TASK_NAMES[task]} "
                                                 f"{'224' if task == 'classifier' else '512'}")
            for ms, top1, label in points:
                ax.annotate(label, (ms, top1), fontsize=6, xytext=(3, 2),
                            textcoords='offset points')
    ax.set_title("the paper's iPhone 13 latencies (Core ML)\npeers' iPhone figures not "
                 'reproduced here', fontsize=8)
    ax.set_xlabel('latency (ms, published)')
    ax.set_ylabel('published ImageNet-1k top-1 (%)')
    ax.grid(alpha=.3)
    ax.legend(fontsize=6)


def plot_runtime(doc: dict, path: str) -> None:
    """Panels: each measured task, then the published iPhone 13 points (written atomically)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from iformer_mm.utils.fileio import atomic_path
    groups = doc['groups']
    fig, axes = plt.subplots(1, len(groups) + 1, figsize=(6 * len(groups) + 4, 5), squeeze=False,
                             gridspec_kw={'width_ratios': [3] * len(groups) + [2]})
    for ax, group in zip(axes[0], groups):
        _panel(ax, group)
    axes[0][0].legend(fontsize=6, loc='lower right')
    _iphone_panel(axes[0][-1], doc)
    fig.suptitle(f"Accuracy vs latency on {doc['runtime']} ({doc['environment']['cpu']}); "
                 'random weights, published top-1', fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png', dpi=110)
    plt.close(fig)
