"""Tables and one-line conclusions of the accuracy-latency comparison (results of :mod:`.pareto`).

Why generated: the conclusion a user reads ("on this runtime iFormer-M is off the front, RepViT-M1.1
is 1.2x faster and as accurate") must follow from the measured rows, not be written by hand
beside them; the docs cite these lines.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from .pareto import closest_dominating, speed

TASK_NAMES = {'classifier': 'classifier', 'backbone': 'dense backbone'}
#: a peer less than this much faster beats iFormer within what one shared-machine run resolves
CLOSE_CALL = 1.05


def _iformer_rows(group: dict) -> List[dict]:
    return [r for r in group['rows'] if r['family'] == 'iFormer' and 'median_ms' in r]


def verdict(group: dict, row: dict, accuracy: str = 'top1') -> str:
    """'iFormer-M on the front', or who beats it: the closest faster, as accurate front model,
    how much faster (per-round ratios) and how much more accurate."""
    flag = 'on_front' if accuracy == 'top1' else 'on_front_best'
    if row.get(flag):
        threats = [r for r in group['rows'] if 'median_ms' in r and r[accuracy] > row[accuracy]
                   and speed(r) < CLOSE_CALL * speed(row)]
        if not threats:
            return f"{row['label']} on the front"
        threat = max(threats, key=lambda r: r[accuracy])
        return (f"{row['label']} on the front, a close call ({threat['label']}: "
                f"{threat[accuracy] - row[accuracy]:+.1f} top-1 at "
                f"{speed(threat) / speed(row):.2f}x "
                'the latency)')
    rows = [dict(r, on_front=r.get(flag)) for r in group['rows']]
    peer_key = closest_dominating(rows, row['key'], accuracy)
    peer = next(r for r in group['rows'] if r['key'] == peer_key)
    factor = speed(row) / speed(peer)
    close = ', a close call' if factor < CLOSE_CALL else ''
    return (f"{row['label']} off ({peer['label']}: {factor:.2f}x faster, "
            f"{peer[accuracy] - row[accuracy]:+.1f} top-1{close})")


def conclusion(group: dict) -> str:
    """One line per (runtime, task), from the rows: where each iFormer stands."""
    rows = _iformer_rows(group)
    failed = [r['label'] for r in group['rows'] if r['status'] != 'ok']
    head = (f"{group['runtime']}, {TASK_NAMES[group['task']]} {group['resolution']}: ")
    if not rows:
        return head + 'no iFormer was timed'
    on = [r['label'] for r in rows if r.get('on_front')]
    text = head + '; '.join(verdict(group, r) for r in rows)
    if len(on) != len([r for r in rows if r.get('on_front_best')]):
        text += ('; with distilled / longer-schedule weights: '
                 + '; '.join(verdict(group, r, 'best_top1') for r in rows))
    if failed:
        text += f" (not timed: {', '.join(failed)})"
    return text


def _ms(row: dict) -> str:
    if 'median_ms' not in row:
        return 'failed'
    return f"{row['median_ms']:.1f} ({row['p10_ms']:.1f}-{row['p90_ms']:.1f})"


def _front(row: dict) -> str:
    if 'median_ms' not in row:
        return '-'
    return ' / '.join('yes' if row[flag] else 'no' for flag in ('on_front', 'on_front_best'))


def _note(row: dict, models: Dict[str, dict]) -> str:
    if row['status'] != 'ok':
        return row['error'].replace('|', '/')
    facts = models.get(row['key'], {})
    notes = []
    if facts.get('top1_resolution', 224) != 224:
        notes.append(f"top-1 at {facts['top1_resolution']}")
    if facts.get('distilled'):
        notes.append('distilled weights')
    if row.get('max_rel_diff_vs_torch', 0) > 1e-4:
        notes.append(f"output off PyTorch's by {row['max_rel_diff_vs_torch']:.1e} (relative)")
    if row.get('xnnpack_partitions', 1) != 1:
        notes.append(f"{row['xnnpack_partitions']} XNNPACK partitions")
    return ', '.join(notes)


def group_table(group: dict, models: Dict[str, dict]) -> str:
    """Rows by latency (the per-round ratio to the reference): top-1, GMACs, ms, that ratio, ms
    per GMAC (how fast the runtime runs the model's arithmetic: a model slow for its MACs would
    show here), on the front (paper-convention top-1 / best published top-1)."""
    key = f"{group['task']}_{group['resolution']}"
    lines = [f"| model | top-1 (%) | GMACs | ms, median (p10-p90) | / {group['reference']} "
             f"| ms per GMAC | on front (top-1 / best top-1) | precision ran | note |",
             '|---|---|---|---|---|---|---|---|---|']
    rows = sorted(group['rows'], key=lambda r: speed(r) if 'median_ms' in r else float('inf'))
    for r in rows:
        gmacs = models.get(r['key'], {}).get(key, {}).get('gmacs')
        name = f"**{r['label']}**" if r['family'] == 'iFormer' else r['label']
        ratio = f"{r['ratio_vs_reference']:.2f}" if 'ratio_vs_reference' in r else '-'
        per_mac = f"{r['median_ms'] / gmacs:.0f}" if gmacs and 'median_ms' in r else '-'
        lines.append(f"| {name} | {r['top1']:.1f}"
                     + (f" ({r['best_top1']:.1f})" if r['best_top1'] != r['top1'] else '')
                     + f" | {'-' if gmacs is None else f'{gmacs:.2f}'} | {_ms(r)} | {ratio} | "
                     f"{per_mac} | {_front(r)} | {r.get('precision_ran') or '-'} | "
                     f"{_note(r, models)} |")
    return '\n'.join(lines)


def profile_table(group: dict, n: int = 8) -> Optional[str]:
    """The reference's and its closest front peer's per-op profiles side by side (ms per run)."""
    profiles = group.get('profiles')
    if not profiles:
        return None
    ref = group['reference']
    peer = next(k for k in profiles if k != ref)  # the closest front peer when it was measured
    label = {r['key']: r['label'] for r in group['rows']}
    table: Dict[tuple, Dict[str, float]] = {}
    for key in (ref, peer):
        for op in (profiles[key] or {}).get('ops', []):
            table.setdefault((op['op_type'], op['precision']), {})[key] = op['ms']
    ordered = sorted(table.items(), key=lambda kv: -abs(kv[1].get(ref, 0) - kv[1].get(peer, 0)))
    lines = [f"| op (precision) | {label[ref]} ms | {label[peer]} ms | difference ms |",
             '|---|---|---|---|']
    for (op, precision), ms in ordered[:n]:
        a, b = ms.get(ref, 0.0), ms.get(peer, 0.0)
        lines.append(f'| {op} ({precision}) | {a:.2f} | {b:.2f} | {a - b:+.2f} |')
    totals = [(profiles[k] or {}).get('kernel_ms', 0.0) for k in (ref, peer)]
    lines.append(f'| all kernels | {totals[0]:.2f} | {totals[1]:.2f} | '
                 f'{totals[0] - totals[1]:+.2f} |')
    source = (profiles[ref] or {}).get('source', '')
    runs = (profiles[ref] or {}).get('runs')
    return f'Per-op profile ({source}, {runs} runs):\n\n' + '\n'.join(lines)


def summary_table(docs: Sequence[dict], task: str) -> Optional[str]:
    """One row per model, one column per runtime: latency as the per-round ratio to the
    reference, **bold** where the model is on that runtime's front (paper-convention top-1);
    the paper's iPhone 13 latency beside iFormer's rows."""
    groups = [(doc, g) for doc in docs for g in doc['groups'] if g['task'] == task]
    if not groups:
        return None
    rows: Dict[str, dict] = {}
    for _, g in groups:
        for r in g['rows']:
            rows.setdefault(r['key'], r)
    iphone = docs[0]['iphone13_ms'].get(task, {})
    head = ' | '.join(g['runtime'] for _, g in groups)
    lines = [f'| model | top-1 (%) | GMACs | {head} | iPhone 13 ms (paper) |',
             '|---' * (4 + len(groups)) + '|']
    key = f"{task}_{groups[0][1]['resolution']}"
    for r in sorted(rows.values(), key=lambda r: (r['top1'], r['key'])):
        cells = []
        for _, g in groups:
            mine = next((x for x in g['rows'] if x['key'] == r['key']), None)
            if mine is None:
                cells.append('not run')
            elif 'ratio_vs_reference' not in mine:
                cells.append('failed' if mine['status'] != 'ok' else '-')
            else:
                ratio = f"{mine['ratio_vs_reference']:.2f}"
                cells.append(f'**{ratio}**' if mine.get('on_front') else ratio)
        gmacs = docs[0]['models'].get(r['key'], {}).get(key, {}).get('gmacs')
        name = f"**{r['label']}**" if r['family'] == 'iFormer' else r['label']
        lines.append(f"| {name} | {r['top1']:.1f} | {'-' if gmacs is None else f'{gmacs:.2f}'} | "
                     + ' | '.join(cells) + f" | {iphone.get(r['key'], '-')} |")
    return '\n'.join(lines)


def markdown(docs: Sequence[dict]) -> str:
    """The cross-runtime summaries, then every runtime's tables, conclusions and profiles."""
    out = ['# Accuracy vs latency per runtime (`tools/benchmark.py pareto`)\n',
           'Latency as the median per-round ratio to iFormer-M (1.00 = as fast; **bold**: on the '
           "runtime's accuracy-latency front, paper-convention top-1). Full tables below.\n"]
    for task in ('classifier', 'backbone'):
        table = summary_table(docs, task)
        if table:
            out.append(f'## Summary: {TASK_NAMES[task]}\n\n{table}\n\n'
                       + '\n'.join(f'- {conclusion(g)}' for d in docs for g in d['groups']
                                   if g['task'] == task) + '\n')
    for doc in docs:
        env = doc['environment']
        out.append(f"## {doc['runtime']}\n\n{env['cpu']} ({', '.join(env['cpu_isa'])}), batch 1, "
                   'random weights, published top-1 (benchmarks/pareto_models.py)\n')
        for group in doc['groups']:
            machine = group['machine']
            out.append(f"### {TASK_NAMES[group['task']]}, {group['resolution']}x"
                       f"{group['resolution']}\n\n{group['threads']} thread(s), median of "
                       f"{group['runs']} interleaved rounds; "
                       f"{', '.join(f'{k} {v}' for k, v in group['versions'].items())}; machine: "
                       f"{machine['note']} (other processes' CPU share "
                       f"{machine['other_processes_cpu_fraction']}); `{group['command']}`\n\n"
                       f"{group_table(group, doc['models'])}\n\n**{conclusion(group)}**\n")
            profile = profile_table(group)
            if profile:
                out.append(profile + '\n')
    return '\n'.join(out)
