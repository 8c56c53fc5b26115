"""The demo's outputs: ``results.json`` (numbers + provenance) and the printed results table.

Why both wall and CPU time: the demo is meant for a 2-core machine, and a shared machine inflates
wall time by whatever else runs; process CPU time shows the work itself.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

from iformer_mm.utils.environment import host, load_average
from iformer_mm.utils.environment import versions as package_versions
from iformer_mm.utils.fileio import atomic_write_text

# the stack the demo runs on, recorded in results.json
_PACKAGES = ('torch', 'mmengine', 'mmcv', 'mmpretrain', 'mmdet', 'mmsegmentation', 'numpy',
             'pycocotools', 'timm')


def versions() -> Dict[str, str]:
    """Python, the iformer-mm version and the installed versions of the stack it ran on."""
    return package_versions(_PACKAGES)


def machine() -> Dict[str, Any]:
    """The host and its load when the results were written (a loaded host slows training)."""
    return {**host(), 'load_average_at_end': load_average()}


def write_json(path: Path, obj: Any) -> Path:
    """Write JSON atomically (never a half-written results file)."""
    atomic_write_text(path, json.dumps(obj, indent=2) + '\n', make_dirs=True)
    return Path(path)


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f'{minutes}m{secs:02d}s' if minutes else f'{secs}s'


def table_rows(tasks: Dict[str, Dict[str, Any]]) -> List[List[str]]:
    """One row per metric: task, metric, value, trivial baseline, train time, iterations, size."""
    rows = []
    for name, rec in tasks.items():
        for metric in rec['metrics']:
            trivial = metric.get('trivial')
            rows.append([name, metric['label'], f"{metric['value']:.3f}",
                         '-' if trivial is None else f'{trivial:.3f}',
                         f"{duration(rec['train_seconds'])} "
                         f"({duration(rec['train_cpu_seconds'])} cpu)",
                         str(rec['iterations']), f"{rec['image_size']} px"])
    return rows


HEADER = ['task', 'metric', 'value', 'trivial', 'train time (cpu)', 'iters', 'image size']


def format_table(rows: List[List[str]], markdown: bool = False) -> str:
    """Plain aligned columns for the terminal, or a Markdown table for the README."""
    if markdown:
        lines = ['| ' + ' | '.join(HEADER) + ' |', '|' + '---|' * len(HEADER)]
        return '\n'.join(lines + ['| ' + ' | '.join(r) + ' |' for r in rows])
    widths = [max(len(str(c)) for c in col) for col in zip(HEADER, *rows)]
    fmt = '  '.join(f'{{:<{w}}}' for w in widths)
    return '\n'.join(fmt.format(*r) for r in [HEADER, *rows])
