"""Markdown tables from a training-throughput results document (benchmarks/gpu_train.md).

Kept apart from :mod:`.report` (the CPU latency tables): the two documents have different
layouts, and each table writer reads only its own.
"""
from __future__ import annotations

from typing import List

_KIND_TITLES = {
    'train': 'Classifier training step (forward + backward + AdamW), images/s',
    'inference': 'Fused classifier inference, images/s',
    'dense_train': 'Windowed dense backbone training step (stand-in loss on 4 feature maps), '
                   'images/s',
}


def _gib(side: dict) -> str:
    mem = side.get('memory')
    return f"{mem['peak_mib'] / 1024:.2f}" if mem else '-'


def _row(r: dict) -> str:
    head = (f"| {r['model'].upper()} | {r['resolution']} | {r['batch']} | {r['dtype']} | "
            f"{r['memory_format']} | {r['mode']} |")
    if r['status'] != 'ok':
        return head + f" {r['status']}: {r.get('reason', '')} | | | | | |"
    ratio = r['ratio_ours_over_timm']
    return (head + f" {r['ours']['images_per_s']:.0f} | {r['timm']['images_per_s']:.0f} | "
            f"**{ratio['median']:.3f}** ({ratio['min']:.3f}-{ratio['max']:.3f}) | "
            f"{_gib(r['ours'])} / {_gib(r['timm'])} | "
            f"{r['ours'].get('first_call_s', 0):.1f} / {r['timm'].get('first_call_s', 0):.1f} |")


def results_table(doc: dict, kind: str) -> str:
    rows = [r for r in doc['results'] if r['kind'] == kind]
    if not rows:
        return ''
    lines = ['| model | res | batch | dtype | memory format | mode | ours img/s | timm img/s | '
             'ours / timm (min-max) | peak GiB ours / timm | first call s ours / timm |',
             '|' + '---|' * 11]
    return '\n'.join(lines + [_row(r) for r in rows])


def checks_table(doc: dict) -> str:
    lines = ['| part | model | batch | res | ours | timm | abs diff | ok |', '|' + '---|' * 8]
    for c in doc['checks']:
        if 'loss_ours' in c:
            vals = f"loss {c['loss_ours']:.6f} | loss {c['loss_timm']:.6f} | {c['abs_diff']:.2e}"
        elif 'logits_max_abs_diff' in c:
            vals = f"logits | logits | {c['logits_max_abs_diff']:.2e}"
        else:
            vals = ' | | '
        ok = 'yes' if c['ok'] else 'NO: ' + '; '.join(c.get('problems', []))
        lines.append(f"| {c['kind']} | {c['model'].upper()} | {c.get('batch', '-')} | "
                     f"{c.get('resolution', '-')} | {vals} | {ok} |")
    return '\n'.join(lines)


def targets_text(doc: dict) -> List[str]:
    s = doc['summary']
    out = [f"* Target: {s['ratio_target']}: "
           + {True: 'met', False: 'missed', None: 'not measured'}[s['all_ratios_meet']] + '.']
    if s['speedups']:
        out.append(f"* Target: {s['speedup_target']}: " + '; '.join(
            f"{x['model'].upper()} b{x['batch']} {x['speedup']:.2f}x "
            f"({x['fp32_eager_images_per_s']:.0f} -> "
            f"{x['bf16_channels_last_compile_images_per_s']:.0f} img/s)" for x in s['speedups'])
            + '.')
    else:
        out.append(f"* Target: {s['speedup_target']}: not measured.")
    out += [f'  * missed: {m}' for m in s['misses']]
    out += [f'  * not measured: {m}' for m in s['not_measured']]
    return out


def markdown(doc: dict) -> str:
    env = doc['environment']
    gpu = env.get('gpu')
    where = (f"GPU: {gpu['name']} ({gpu['memory_gib']} GiB, capability {gpu['capability']}), "
             f"CUDA {gpu['cuda']}, cuDNN {gpu['cudnn']}, driver {gpu['driver'] or 'unknown'}"
             if gpu else f"CPU: {env['cpu']} ({env['cpu_count']} cores), {env['torch_threads']} "
                         'torch threads (not a GPU figure)')
    head = (f"{where}; torch {env['torch']}, timm {env['timm']}, mmengine {env['mmengine']}, "
            f"triton {env['triton']}, Python {env['python']}. TF32 convolutions "
            f"{'on' if env['tf32']['cudnn_conv'] else 'off'}, cuDNN benchmark "
            f"{'on' if env['cudnn_benchmark'] else 'off'}. Whole run {doc['wall_s']:.0f} s; "
            f"{doc['method']['rounds']} interleaved rounds x {doc['method']['steps_per_round']} "
            'calls per model and setting, ratio = median of per-round ratios.')
    parts = []
    if doc.get('smoke'):
        parts += ['**Smoke run: tiny settings, for checking the pipeline only; not a '
                  'measurement.**', '']
    parts += [head, '']
    for kind, title in _KIND_TITLES.items():
        table = results_table(doc, kind)
        if table:
            parts += [f'**{title}**', '', table, '']
    parts += ['**Same network on both sides (checked before timing, fp32, TF32 off)**', '',
              checks_table(doc), '', *targets_text(doc)]
    return '\n'.join(parts) + '\n'
