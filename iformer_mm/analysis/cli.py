"""Command lines of ``tools/flops.py`` and ``tools/benchmark.py`` (argument parsing only).

``tools/benchmark.py`` has modes: CPU latency (the default) and ``--train-throughput`` (GPU
training images/s); each mode has its own parser and main function below.
"""
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
    p.add_argument('--train-throughput', action='store_true',
                   help='a different mode: training images/s on a GPU, ours vs timm (see '
                        '--train-throughput --help)')
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

    if '--train-throughput' in (sys.argv[1:] if argv is None else argv):
        return train_throughput_main(argv)
    if '--deploy' in (sys.argv[1:] if argv is None else argv):
        return deploy_bench_main(argv)
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


# ----------------------------------------------------------------------------------------------
# tools/benchmark.py --train-throughput: GPU training throughput, ours vs timm
# ----------------------------------------------------------------------------------------------
TRAIN_THROUGHPUT_OUT = 'benchmarks/gpu_train.json'


def _model(value: str) -> str:
    """argparse type: a base variant name (distilled ones differ only in the head)."""
    try:
        arch, distilled = parse_model_name(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if distilled:
        raise argparse.ArgumentTypeError(
            f'{value!r}: distilled variants are not measured separately (only the head differs); '
            f'use {arch!r}')
    return arch


def _compile_setting(value: str):
    """argparse type: 'DTYPE:MEMORY_FORMAT', e.g. bf16:channels_last."""
    from .train_throughput import DTYPES, MEMORY_FORMATS
    dtype, _, fmt = value.partition(':')
    if dtype not in DTYPES or fmt not in MEMORY_FORMATS:
        raise argparse.ArgumentTypeError(
            f'{value!r} is not DTYPE:MEMORY_FORMAT with DTYPE in {list(DTYPES)} and '
            f'MEMORY_FORMAT in {list(MEMORY_FORMATS)} (e.g. bf16:channels_last)')
    return dtype, fmt


def _seconds(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{value!r} is not a number of seconds') from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f'{value} must be > 0 seconds')
    return v


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad value is one line on stderr (no usage block), exit 2."""

    def error(self, message: str):
        self.exit(2, f'error: {message}\n')


def train_throughput_parser() -> argparse.ArgumentParser:
    from .train_throughput import DTYPES, MEMORY_FORMATS, Plan
    d = Plan()
    p = _OneLineParser(
        prog='tools/benchmark.py --train-throughput',
        description='Training (and inference) images/s of iFormer, ours vs timm, interleaved in '
                    'one process, on a GPU (or a tiny CPU smoke run). Fits an 8-minute slot on '
                    'one GPU by default: see benchmarks/README.md.')
    p.add_argument('--train-throughput', action='store_true', help='this mode')
    p.add_argument('--device', default='cuda', help="'cuda', 'cuda:N' or 'cpu' (default cuda)")
    p.add_argument('--smoke', action='store_true',
                   help='tiny run (iFormer-T, 64 px, batch 2, 1 step, eager): seconds on a CPU')
    p.add_argument('--models', nargs='+', type=_model, default=None,
                   help=f"classifier variants (default {' '.join(d.models)})")
    p.add_argument('--resolution', type=_resolution, default=None,
                   help=f'classifier input (default {d.resolution})')
    p.add_argument('--batch-sizes', nargs='+', type=_positive, default=None,
                   help=f"training batch sizes (default {' '.join(map(str, d.batch_sizes))})")
    p.add_argument('--dtypes', nargs='+', choices=list(DTYPES), default=None,
                   help='fp32 and/or bf16 autocast (default both)')
    p.add_argument('--memory-formats', nargs='+', choices=list(MEMORY_FORMATS), default=None,
                   help='default both')
    p.add_argument('--compile-models', nargs='*', type=_model, default=None,
                   help=f"variants also measured with torch.compile, in priority order (default "
                        f"{' '.join(d.compile_models)}; none: no compile)")
    p.add_argument('--compile-settings', nargs='+', type=_compile_setting, default=None,
                   metavar='DTYPE:FORMAT', help='default ' + ' '.join(
                       f'{a}:{b}' for a, b in d.compile_settings))
    p.add_argument('--compile-batch-sizes', nargs='+', type=_positive, default=None,
                   help=f"default {' '.join(map(str, d.compile_batch_sizes))}")
    p.add_argument('--compile-mode', default=None,
                   choices=['default', 'reduce-overhead', 'max-autotune',
                            'max-autotune-no-cudagraphs'], help='torch.compile mode (default)')
    p.add_argument('--compile-estimate-s', type=_seconds, default=None,
                   help=f'expected cost of the first compile setting for iFormer-M, ours + timm '
                        f'(default {d.compile_estimate_s:.0f}; scaled by block count)')
    p.add_argument('--inference-models', nargs='*', type=_model, default=None,
                   help='fused inference variants (default: same as --models; none: skip)')
    p.add_argument('--inference-batch', type=_positive, default=None,
                   help=f'fused inference batch (default {d.inference_batch})')
    p.add_argument('--inference-dtypes', nargs='+', choices=list(DTYPES), default=None,
                   help='default bf16')
    p.add_argument('--dense-models', nargs='*', type=_model, default=None,
                   help=f"windowed dense backbones (default {' '.join(d.dense_models)})")
    p.add_argument('--dense-resolution', type=_resolution, default=None,
                   help=f'default {d.dense_resolution}')
    p.add_argument('--dense-batch', type=_positive, default=None,
                   help=f'default {d.dense_batch}')
    p.add_argument('--dense-dtypes', nargs='+', choices=list(DTYPES), default=None,
                   help='default: same as --dtypes')
    p.add_argument('--rounds', type=_positive, default=None,
                   help=f'interleaved rounds per setting (default {d.rounds})')
    p.add_argument('--steps', type=_positive, default=None,
                   help=f'calls per model per round (default {d.steps})')
    p.add_argument('--warmup', type=_positive, default=None,
                   help=f'untimed calls per model, the first compiles (default {d.warmup})')
    p.add_argument('--budget-s', type=_seconds, default=None,
                   help=f'wall-clock budget of the measurement (default {d.budget_s:.0f})')
    p.add_argument('--setting-budget-s', type=_seconds, default=None,
                   help=f'timed rounds of one setting stop after this (default '
                        f'{d.setting_budget_s:.0f})')
    p.add_argument('--no-cudnn-benchmark', action='store_true',
                   help='leave torch.backends.cudnn.benchmark off')
    p.add_argument('--no-profile', action='store_true',
                   help='do not profile training settings where ours is slower than timm')
    p.add_argument('--seed', type=int, default=None)
    p.add_argument('--out', default=None,
                   help=f'results JSON (default {TRAIN_THROUGHPUT_OUT}, for a full GPU run only)')
    p.add_argument('--table', default=None, help='Markdown table (default: --out with .md)')
    p.add_argument('--report', default=None, metavar='RESULTS_JSON',
                   help='print the Markdown tables of an existing results file, then exit')
    return p


def _train_throughput_plan(args):
    """The Plan of the command line: the GPU defaults or the smoke preset, then the flags."""
    from .train_throughput import Plan
    base = Plan.smoke_run(args.device) if args.smoke else Plan(device=args.device)
    fields = dict(models=args.models, resolution=args.resolution, batch_sizes=args.batch_sizes,
                  dtypes=args.dtypes, memory_formats=args.memory_formats,
                  compile_models=args.compile_models, compile_settings=args.compile_settings,
                  compile_batch_sizes=args.compile_batch_sizes, compile_mode=args.compile_mode,
                  compile_estimate_s=args.compile_estimate_s,
                  inference_models=args.inference_models, inference_batch=args.inference_batch,
                  inference_dtypes=args.inference_dtypes,
                  dense_models=args.dense_models, dense_resolution=args.dense_resolution,
                  dense_batch=args.dense_batch, dense_dtypes=args.dense_dtypes,
                  rounds=args.rounds, steps=args.steps,
                  warmup=args.warmup, budget_s=args.budget_s,
                  setting_budget_s=args.setting_budget_s, seed=args.seed)
    for name, value in fields.items():
        if value is not None:
            setattr(base, name, tuple(value) if isinstance(value, list) else value)
    if args.no_cudnn_benchmark:
        base.cudnn_benchmark = False
    if args.no_profile:
        base.profile_misses = False
    base.validate()
    return base


def _check_device(name: str):
    """The torch.device for ``--device``, or ValueError saying why it cannot be used here."""
    import torch
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r} is not a device; expected 'cuda', 'cuda:N' or "
                         "'cpu'") from None
    if device.type not in ('cuda', 'cpu'):
        raise ValueError(f"--device {name!r}: expected 'cuda', 'cuda:N' or 'cpu'")
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f'--device {name}: CUDA is not available on this machine (torch '
                             f'{torch.__version__}, no GPU visible); use --device cpu --smoke '
                             'for the CPU smoke run')
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f'--device {name}: this machine has {torch.cuda.device_count()} '
                             'GPU(s)')
    return device


def train_throughput_main(argv: Optional[List[str]] = None) -> int:
    """``tools/benchmark.py --train-throughput ...``: measure, write JSON + Markdown, print."""
    import os
    import shlex

    from ..fileio import OutputError, atomic_write_text, prepare_out_dir
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = train_throughput_parser().parse_args(argv)
    except SystemExit as e:  # bad value (message already printed) or --help
        return e.code if isinstance(e.code, int) else 2
    from .throughput_report import markdown
    if args.report:
        try:
            with open(args.report) as f:
                print(markdown(json.load(f)), end='')
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f'error: cannot report {args.report}: {e}', file=sys.stderr)
            return 2
        return 0
    try:
        device = _check_device(args.device)
        plan = _train_throughput_plan(args)
        out = args.out
        if out is None:
            if device.type != 'cuda' or args.smoke:
                raise ValueError(f'--out is required with --device {args.device}'
                                 f"{' --smoke' if args.smoke else ''}: {TRAIN_THROUGHPUT_OUT} "
                                 'holds full GPU runs only')
            out = TRAIN_THROUGHPUT_OUT
        table = args.table or os.path.splitext(out)[0] + '.md'
        for path, flag in ((out, '--out'), (table, '--table')):
            prepare_out_dir(os.path.dirname(os.path.abspath(path)), flag)
    except (ValueError, OutputError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    from .train_throughput import run_throughput
    doc = run_throughput(plan)
    doc['command'] = 'python tools/benchmark.py ' + ' '.join(shlex.quote(a) for a in argv)
    atomic_write_text(out, json.dumps(doc, indent=1) + '\n')
    text = markdown(doc)
    atomic_write_text(table, text)
    print(f'wrote {out} and {table}')
    summary = doc['summary']
    for line in summary['misses']:
        print(f'  target missed: {line}')
    if not summary['checks_ok']:
        print('error: ours and timm did not compute the same thing for some models (see '
              '"checks"); their settings were not measured', file=sys.stderr)
        return 1
    return 0


# ----------------------------------------------------------------------------------------------
# tools/benchmark.py --deploy: exported-model latency per runtime
# ----------------------------------------------------------------------------------------------
def deploy_bench_parser() -> argparse.ArgumentParser:
    from .deploy_benchmark import DEPLOY_TARGETS
    p = argparse.ArgumentParser(
        prog='benchmark.py --deploy',
        description='Latency of the exported classifier on each CPU runtime: our fused export vs '
                    "timm's model exported the same way, and our int8 vs fp32; interleaved in "
                    'one process. Linux CPU numbers, not phone latencies.')
    p.add_argument('--deploy', action='store_true', required=True)
    p.add_argument('--models', nargs='+', default=['t', 'm'], help=f'variants: {valid_model_names()}')
    p.add_argument('--targets', nargs='+', default=list(DEPLOY_TARGETS), choices=DEPLOY_TARGETS,
                   metavar='TARGET', help=f'default: {" ".join(DEPLOY_TARGETS)}')
    p.add_argument('--resolution', type=_resolution, default=224)
    p.add_argument('--threads', type=_positive, default=1,
                   help='intra-op threads of every runtime (ExecuTorch: process-wide; default 1)')
    p.add_argument('--runs', type=_positive, default=30)
    p.add_argument('--warmup', type=int, default=5)
    p.add_argument('--out', required=True, help='results JSON (atomic write; Markdown beside)')
    p.add_argument('--plot', nargs='*', default=None, metavar='RESULTS_JSON',
                   help='with --out PNG: draw these results files side by side, then exit')
    return p


def deploy_bench_main(argv: Optional[List[str]] = None) -> int:
    import os
    import shlex

    from ..fileio import OutputError, atomic_write_text, prepare_out_dir
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = deploy_bench_parser().parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 2
    from . import deploy_benchmark as bench
    try:
        if args.plot is not None:
            docs = []
            for path in args.plot:
                with open(path) as f:
                    docs.append(json.load(f))
            prepare_out_dir(os.path.dirname(os.path.abspath(args.out)), '--out')
            bench.plot(docs, args.out)
            print(f'wrote {args.out}')
            return 0
        for m in args.models:
            parse_model_name(m)
        if args.warmup < 0:
            raise ValueError(f'--warmup must be >= 0, got {args.warmup}')
        prepare_out_dir(os.path.dirname(os.path.abspath(args.out)), '--out')
    except (ValueError, OSError, OutputError, KeyError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    doc = bench.run_deploy_benchmark(args.models, args.targets, args.resolution, args.threads,
                                     args.runs, args.warmup)
    doc['command'] = 'python tools/benchmark.py ' + ' '.join(shlex.quote(a) for a in argv)
    atomic_write_text(args.out, json.dumps(doc, indent=1) + '\n')
    table = os.path.splitext(args.out)[0] + '.md'
    atomic_write_text(table, bench.markdown(doc))
    print(f'wrote {args.out} and {table}')
    for row in doc['summary']:
        print(f"  {row['target']:<12} {row['model']}: ours/timm fp32 {row['ours_vs_timm_fp32']}, "
              f"int8/fp32 {row['int8_vs_fp32']}")
    return 0
