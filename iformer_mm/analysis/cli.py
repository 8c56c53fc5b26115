"""Command lines of ``tools/flops.py`` and ``tools/benchmark.py`` (argument parsing only)."""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from ..models.backbones.iformer_arch import parse_model_name, parse_resolution, valid_model_names


def _resolution(value: str) -> int:
    """argparse type: a square input size under the tools' one resolution rule."""
    try:
        return parse_resolution(int(value))[0]
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f'resolution {value!r} is not an integer' if not value.strip().isdigit() else str(e)
        ) from None


def flops_main(argv: Optional[List[str]] = None) -> int:
    from .flops import VARIANTS, format_table, model_row
    p = argparse.ArgumentParser(description='Params (unfused classifier, 1000 classes) and '
                                            'GMACs (fused, attention matmuls counted) of iFormer.')
    p.add_argument('--models', nargs='+', default=list(VARIANTS),
                   help=f'variants (default: all): {valid_model_names()}')
    p.add_argument('--resolution', type=_resolution, default=224, help='square input (default 224)')
    p.add_argument('--task', choices=('classifier', 'backbone'), default='classifier',
                   help='count the classifier (default) or the four-output backbone')
    p.add_argument('--window-size', type=int, default=0,
                   help='backbone only: stage-2 attention window (16 = published dense backbone)')
    p.add_argument('--distilled', action='store_true',
                   help='count the distilled classifier (second head; the fused MACs are the same)')
    p.add_argument('--json', action='store_true', help='print JSON rows instead of a table')
    args = p.parse_args(argv)
    try:
        rows = [model_row(m, args.resolution, args.task, args.window_size, args.distilled)
                for m in args.models]
    except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(format_table(rows))
        print('params: trainable, unfused classifier with a 1000-class head; GMACs: fused model, '
              '1 multiply-add = 1 MAC, conv + linear + attention matmuls (softmax/activations '
              'not counted).')
    return 0


def _positive(value: str) -> int:
    try:
        v = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{value!r} is not an integer') from None
    if v < 1:
        raise argparse.ArgumentTypeError(f'{v} must be >= 1')
    return v


def bench_parser() -> argparse.ArgumentParser:
    from .benchmark import BACKENDS, DEFAULT_BACKENDS
    p = argparse.ArgumentParser(
        description='CPU latency of iFormer (ours: unfused / fused / channels_last / compile / '
                    "ONNX Runtime) against timm's fused port, measured interleaved in one process. "
                    'Linux CPU numbers, not iPhone latencies.',
        epilog='backends: ' + '; '.join(f'{k}: {v.description}' for k, v in BACKENDS.items()))
    p.add_argument('--models', nargs='+', default=['t', 'm', 'l'],
                   help=f'backbone variants (default t m l): {valid_model_names()}')
    p.add_argument('--classifier-models', nargs='+', default=None,
                   help='classifier variants (default: same as --models)')
    p.add_argument('--backbone-res', nargs='*', type=_resolution, default=[224, 512],
                   help='backbone resolutions (default 224 512; none to skip)')
    p.add_argument('--classifier-res', nargs='*', type=_resolution, default=[224],
                   help='classifier resolutions (default 224; none to skip)')
    p.add_argument('--batch-sizes', nargs='+', type=_positive, default=[1, 8],
                   help='batch sizes (default 1 8); sizes > 1 only at --large-batch-res')
    p.add_argument('--large-batch-res', nargs='*', type=_resolution, default=[224],
                   help='resolutions at which batch sizes > 1 are measured (default 224)')
    p.add_argument('--large-batch-models', nargs='*', default=None,
                   help='variants for which batch sizes > 1 are measured (default: all)')
    p.add_argument('--backends', nargs='+', default=list(DEFAULT_BACKENDS),
                   choices=list(BACKENDS), metavar='BACKEND', help='default: all (see below)')
    p.add_argument('--runs', type=_positive, default=30, help='timed runs per backend (30)')
    p.add_argument('--warmup', type=int, default=5, help='untimed runs per backend (5)')
    p.add_argument('--threads', type=_positive, default=None,
                   help='torch / ONNX Runtime intra-op threads (default: torch default)')
    p.add_argument('--train-step', nargs='*', default=None, metavar='MODEL',
                   help='also time a training step (fwd+bwd+SGD, unfused) for these variants')
    p.add_argument('--train-batch', type=_positive, default=8)
    p.add_argument('--train-res', type=_resolution, default=224)
    p.add_argument('--out', default='benchmarks/results.json', help='results JSON (atomic write)')
    p.add_argument('--plot', default=None, help='PNG plot path (default: next to --out)')
    p.add_argument('--no-plot', action='store_true')
    p.add_argument('--report', default=None, metavar='RESULTS_JSON',
                   help='print Markdown tables of an existing results file (and redraw '
                        '--plot if given), then exit')
    return p


def bench_cases(args) -> list:
    from .benchmark import Case
    cases = []
    large = None if args.large_batch_models is None else {
        parse_model_name(m)[0] for m in args.large_batch_models}
    for part, models, resolutions in (
            ('backbone', args.models, args.backbone_res),
            ('classifier', args.classifier_models or args.models, args.classifier_res)):
        for model in models:
            arch = parse_model_name(model)[0]
            for res in resolutions:
                for batch in args.batch_sizes:
                    if batch == 1 or (res in args.large_batch_res
                                      and (large is None or arch in large)):
                        cases.append(Case(arch, part, res, batch))
    return cases


def bench_main(argv: Optional[List[str]] = None) -> int:
    import os
    import shlex

    import torch

    from ..fileio import OutputError, atomic_write_text, prepare_out_dir
    from .benchmark import run_benchmark
    args = bench_parser().parse_args(argv)
    if args.report:
        from .report import markdown
        try:
            with open(args.report) as f:
                doc = json.load(f)
            print(markdown(doc), end='')
            if args.plot:
                from .plot import plot_results
                plot_results(doc, args.plot)
        except (OSError, ValueError, KeyError) as e:
            print(f'error: cannot report {args.report}: {e}', file=sys.stderr)
            return 2
        return 0
    try:
        cases = bench_cases(args)
        train = None
        if args.train_step is not None:
            models = args.train_step or args.models
            for m in models:
                parse_model_name(m)
            train = (models, args.train_batch, args.train_res)
        if not cases and not train:
            raise ValueError('nothing to measure: give --backbone-res / --classifier-res or '
                             '--train-step')
        if args.warmup < 0:
            raise ValueError(f'--warmup must be >= 0, got {args.warmup}')
        out_dir = os.path.dirname(os.path.abspath(args.out))
        prepare_out_dir(out_dir)
        plot = None if args.no_plot else (args.plot or os.path.splitext(args.out)[0] + '.png')
        if plot:
            prepare_out_dir(os.path.dirname(os.path.abspath(plot)))
    except (ValueError, OutputError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    threads = args.threads or torch.get_num_threads()
    doc = run_benchmark(cases, args.backends, args.runs, args.warmup, threads, train)
    doc['command'] = 'python tools/benchmark.py ' + ' '.join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    atomic_write_text(args.out, json.dumps(doc, indent=1) + '\n')
    print(f'wrote {args.out}')
    if plot:
        from .plot import plot_results
        plot_results(doc, plot)
        print(f'wrote {plot}')
    for row in doc['summary']['inference']:
        print(f"  {row['part']:<10} {row['model']:<3} {row['resolution']:>4} b{row['batch']:<2} "
              f"{row['ours']:<14} / timm_fused = {row['ratio']:.2f}")
    for row in doc['summary']['train_step']:
        print(f"  train step {row['model']}: ours / timm = {row['ratio_ours_over_timm']:.2f}")
    print(f"machine: {doc['machine']['note']}")
    return 0
