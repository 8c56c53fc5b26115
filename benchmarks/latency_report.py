"""Markdown tables from a benchmark results document (for benchmarks/README.md)."""
from __future__ import annotations

from typing import Dict, List, Tuple

from .latency import BACKENDS, BASELINE


def _cell(row: dict) -> str:
    if row.get('status') != 'ok':
        return 'failed'
    return f"{row['median_ms']:.1f} ({row['p10_ms']:.1f}-{row['p90_ms']:.1f})"


def latency_table(doc: dict) -> str:
    """One line per case: median (p10-p90) ms per backend."""
    cases: Dict[Tuple, Dict[str, dict]] = {}
    for r in doc['results']:
        cases.setdefault((r['part'], r['model'], r['resolution'], r['batch']), {})[r['backend']] = r
    used = [c for c in BACKENDS if any(c in v for v in cases.values())]
    lines = ['| part | model | res | batch | ' + ' | '.join(used) + ' |',
             '|' + '---|' * (4 + len(used))]
    for (part, model, res, batch), rows in cases.items():
        cells = [_cell(rows[c]) if c in rows else '-' for c in used]
        lines.append(f'| {part} | {model.upper()} | {res} | {batch} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def ratio_table(doc: dict) -> str:
    """Interleaved median ratio ours / timm fused (p10-p90 of the per-round ratios)."""
    rows: Dict[Tuple, Dict[str, dict]] = {}
    for r in doc['ratios']:
        if r['baseline'] == BASELINE:
            rows.setdefault((r['part'], r['model'], r['resolution'], r['batch']), {})[r['ours']] = r
    used: List[str] = [c for c in BACKENDS if c.startswith('ours_')
                       and any(c in v for v in rows.values())]
    lines = ['| part | model | res | batch | ' + ' | '.join(used) + ' |',
             '|' + '---|' * (4 + len(used))]
    for (part, model, res, batch), by in rows.items():
        cells = [(f"**{by[c]['median_ratio']:.2f}**" if c == 'ours_fused' else
                  f"{by[c]['median_ratio']:.2f}") + f" ({by[c]['p10_ratio']:.2f}-"
                 f"{by[c]['p90_ratio']:.2f})" if c in by else '-' for c in used]
        lines.append(f'| {part} | {model.upper()} | {res} | {batch} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def train_table(doc: dict) -> str:
    if not doc.get('train_step'):
        return ''
    lines = ['| model | batch | res | ours ms | timm ms | ours / timm |', '|---|---|---|---|---|---|']
    for t in doc['train_step']:
        lines.append(f"| {t['model'].upper()} | {t['batch']} | {t['resolution']} | "
                     f"{t['ours']['median_ms']:.0f} | {t['timm']['median_ms']:.0f} | "
                     f"{t['median_ratio']:.2f} |")
    return '\n'.join(lines)


def markdown(doc: dict) -> str:
    env, machine = doc['environment'], doc['machine']
    head = (f"CPU: {env['cpu']} ({env['cpu_count']} cores), {env['torch_threads']} torch threads, "
            f"torch {env['torch']}, timm {env['timm']}, onnxruntime {env.get('onnxruntime', '-')}, "
            f"Python {env['python']}. Machine: {machine['note']} (load average before "
            f"{machine['load_average_before']}, other processes' CPU share "
            f"{machine['other_processes_cpu_fraction']}).")
    probe = machine.get('matmul_speedup_1_to_n_threads') or {}
    if probe.get('before') is not None:
        head += (f" Matmul speed-up from 1 to {probe['threads']} threads: {probe['before']} before, "
                 f"{probe['after']} after the run (about {probe['threads']} = the cores were free).")
    parts = [head, '', '**Latency, ms: median (p10-p90)**', '', latency_table(doc), '',
             f'**Interleaved ratio ours / {BASELINE} (median of per-round ratios, p10-p90)**', '',
             ratio_table(doc)]
    train = train_table(doc)
    if train:
        parts += ['', '**Training step (forward + backward + SGD, unfused, train mode)**', '', train]
    return '\n'.join(parts) + '\n'
