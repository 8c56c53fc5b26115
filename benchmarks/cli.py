"""``tools/benchmark.py``: one command, five modes as sub-commands.

    python tools/benchmark.py latency --models t m l ...        # PyTorch CPU latency (default)
    python tools/benchmark.py deploy --models t m --out F.json  # exported latency per runtime
    python tools/benchmark.py detector --config C --out F.json  # deployed detector vs mmdet
    python tools/benchmark.py pareto --out-dir DIR              # iFormer vs peers per runtime
    python tools/benchmark.py train-throughput --device cuda    # GPU training images/s

Argument parsing only; each mode's work is its own module. Errors follow the tools' one
convention (``benchmark.py MODE: error: ...``, exit 2, nothing written). The spellings of earlier
versions still work: a first argument ``--deploy`` / ``--train-throughput`` names the mode, and a
command that starts with an option is the latency mode.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from typing import Callable, Dict, List, Optional, Tuple

from iformer_mm.models.backbones.iformer_arch import parse_model_name, valid_model_names
from iformer_mm.utils.cli import ToolParser, error_exit, positive_int
from iformer_mm.utils.fileio import OutputError, atomic_write_text, prepare_out_dir

from .argtypes import square_resolution

PROG = 'benchmark.py'
DEFAULT_MODE = 'latency'
#: the mode flags of earlier versions, accepted as the first argument
LEGACY_MODE_FLAGS = {'--deploy': 'deploy', '--train-throughput': 'train-throughput'}
TRAIN_THROUGHPUT_OUT = 'benchmarks/gpu_train.json'


def _command(mode: str, argv: List[str]) -> str:
    return 'python tools/benchmark.py ' + ' '.join(shlex.quote(a) for a in [mode, *argv])


def _write_json(path: str, doc: dict) -> None:
    atomic_write_text(path, json.dumps(doc, indent=1) + '\n')


def _out_folder(path: str, flag: str = '--out') -> None:
    prepare_out_dir(os.path.dirname(os.path.abspath(path)), flag)


# ----------------------------------------------------------------------------------------------
# latency: PyTorch CPU latency, ours vs timm
# ----------------------------------------------------------------------------------------------
def _latency_flags(p: argparse.ArgumentParser) -> None:
    from .latency import BACKENDS, DEFAULT_BACKENDS
    p.epilog = 'backends: ' + '; '.join(f'{k}: {v.description}' for k, v in BACKENDS.items())
    p.add_argument('--models', nargs='+', default=['t', 'm', 'l'],
                   help=f'backbone variants (default t m l): {valid_model_names()}')
    p.add_argument('--classifier-models', nargs='+', default=None,
                   help='classifier variants (default: same as --models)')
    p.add_argument('--backbone-res', nargs='*', type=square_resolution, default=[224, 512],
                   help='backbone resolutions (default 224 512; none to skip)')
    p.add_argument('--classifier-res', nargs='*', type=square_resolution, default=[224],
                   help='classifier resolutions (default 224; none to skip)')
    p.add_argument('--batch-sizes', nargs='+', type=positive_int, default=[1, 8],
                   help='batch sizes (default 1 8); sizes > 1 only at --large-batch-res')
    p.add_argument('--large-batch-res', nargs='*', type=square_resolution, default=[224],
                   help='resolutions at which batch sizes > 1 are measured (default 224)')
    p.add_argument('--large-batch-models', nargs='*', default=None,
                   help='variants for which batch sizes > 1 are measured (default: all)')
    p.add_argument('--backends', nargs='+', default=list(DEFAULT_BACKENDS),
                   choices=list(BACKENDS), metavar='BACKEND', help='default: all (see below)')
    p.add_argument('--runs', type=positive_int, default=30, help='timed runs per backend (30)')
    p.add_argument('--warmup', type=int, default=5, help='untimed runs per backend (5)')
    p.add_argument('--threads', type=positive_int, default=None,
                   help='torch / ONNX Runtime intra-op threads (default: torch default)')
    p.add_argument('--train-step', nargs='*', default=None, metavar='MODEL',
                   help='also time a training step (fwd+bwd+SGD, unfused) for these variants')
    p.add_argument('--train-batch', type=positive_int, default=8)
    p.add_argument('--train-res', type=square_resolution, default=224)
    p.add_argument('--out', default='benchmarks/results.json', help='results JSON (atomic write)')
    p.add_argument('--plot', default=None, help='PNG plot path (default: next to --out)')
    p.add_argument('--no-plot', action='store_true')
    p.add_argument('--report', default=None, metavar='RESULTS_JSON',
                   help='print Markdown tables of an existing results file (and redraw '
                        '--plot if given), then exit')


def latency_cases(args: argparse.Namespace) -> list:
    """The (model, part, resolution, batch) cases the latency flags ask for."""
    from .latency import Case
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


def _report_latency(args: argparse.Namespace) -> int:
    from .latency_report import markdown
    with open(args.report) as f:
        doc = json.load(f)
    print(markdown(doc), end='')
    if args.plot:
        from .latency_plot import plot_results
        plot_results(doc, args.plot)
    return 0


def latency_main(args: argparse.Namespace, argv: List[str]) -> int:
    import torch

    from .latency import run_benchmark
    if args.report:
        return _report_latency(args)
    cases = latency_cases(args)
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
    _out_folder(args.out)
    plot = None if args.no_plot else (args.plot or os.path.splitext(args.out)[0] + '.png')
    if plot:
        _out_folder(plot, '--plot')
    threads = args.threads or torch.get_num_threads()
    doc = run_benchmark(cases, args.backends, args.runs, args.warmup, threads, train)
    doc['command'] = _command('latency', argv)
    _write_json(args.out, doc)
    print(f'wrote {args.out}')
    if plot:
        from .latency_plot import plot_results
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
# deploy: exported-model latency per runtime
# ----------------------------------------------------------------------------------------------
def _deploy_flags(p: argparse.ArgumentParser) -> None:
    from .deploy_latency import DEPLOY_TARGETS
    p.add_argument('--models', nargs='+', default=['t', 'm'], help=f'variants: {valid_model_names()}')
    p.add_argument('--targets', nargs='+', default=list(DEPLOY_TARGETS), choices=DEPLOY_TARGETS,
                   metavar='TARGET', help=f'default: {" ".join(DEPLOY_TARGETS)}')
    p.add_argument('--resolution', type=square_resolution, default=224)
    p.add_argument('--threads', type=positive_int, default=1,
                   help='intra-op threads of every runtime (ExecuTorch: process-wide; default 1)')
    p.add_argument('--runs', type=positive_int, default=30)
    p.add_argument('--warmup', type=int, default=5)
    p.add_argument('--out', required=True, help='results JSON (atomic write; Markdown beside)')
    p.add_argument('--plot', nargs='*', default=None, metavar='RESULTS_JSON',
                   help='with --out PNG: draw these results files side by side, then exit')


def deploy_main(args: argparse.Namespace, argv: List[str]) -> int:
    from . import deploy_latency as bench
    if args.plot is not None:
        docs = []
        for path in args.plot:
            with open(path) as f:
                docs.append(json.load(f))
        _out_folder(args.out)
        bench.plot(docs, args.out)
        print(f'wrote {args.out}')
        return 0
    for m in args.models:
        parse_model_name(m)
    if args.warmup < 0:
        raise ValueError(f'--warmup must be >= 0, got {args.warmup}')
    _out_folder(args.out)
    doc = bench.run_deploy_benchmark(args.models, args.targets, args.resolution, args.threads,
                                     args.runs, args.warmup)
    doc['command'] = _command('deploy', argv)
    _write_json(args.out, doc)
    table = os.path.splitext(args.out)[0] + '.md'
    atomic_write_text(table, bench.markdown(doc))
    print(f'wrote {args.out} and {table}')
    for row in doc['summary']:
        print(f"  {row['target']:<12} {row['model']}: " + ', '.join(
            f'{k} {v}' for k, v in row.items() if k not in ('target', 'model')))
    return 0


# ----------------------------------------------------------------------------------------------
# detector: the deployed whole detector per runtime / precision vs mmdet's PyTorch inference
# ----------------------------------------------------------------------------------------------
def _detector_flags(p: argparse.ArgumentParser) -> None:
    from .detector_latency import DETECTOR_TARGETS
    p.add_argument('--model', default='t', help=f'variant: {valid_model_names()}')
    p.add_argument('--config', required=True, help='the mmdet Mask / Faster R-CNN config')
    p.add_argument('--checkpoint', help='trained weights (random without)')
    p.add_argument('--resolution', help="HxW (default: the config's test size)")
    p.add_argument('--targets', nargs='+', default=list(DETECTOR_TARGETS), choices=DETECTOR_TARGETS,
                   metavar='TARGET', help=f'default: {" ".join(DETECTOR_TARGETS)}')
    p.add_argument('--precisions', nargs='+', default=['fp32'], choices=('fp32', 'int8'),
                   metavar='PRECISION', help='fp32 and / or int8 (int8 needs --calib-data)')
    p.add_argument('--calib-data', help='int8 calibration images (a folder)')
    p.add_argument('--calib-size', type=positive_int, default=50)
    p.add_argument('--threads', type=positive_int, default=1)
    p.add_argument('--runs', type=positive_int, default=10)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--out', required=True, help='results JSON (atomic write; Markdown beside)')


def _check_paths(*flags: Tuple[str, Optional[str]]) -> None:
    """Each given (flag, path) must exist: one line naming the flag and the path otherwise."""
    for flag, path in flags:
        if path and not os.path.exists(path):
            raise ValueError(f'{flag} {path} does not exist')


def detector_main(args: argparse.Namespace, argv: List[str]) -> int:
    from iformer_mm.models.backbones.iformer_arch import parse_resolution
    from . import detector_latency as bench
    parse_model_name(args.model)
    resolution = parse_resolution(args.resolution) if args.resolution else None
    if 'int8' in args.precisions and not args.calib_data:
        raise ValueError('--precisions int8 needs --calib-data (a folder of images)')
    _check_paths(('--config', args.config), ('--checkpoint', args.checkpoint),
                 ('--calib-data', args.calib_data))
    _out_folder(args.out)
    doc = bench.run_detector_benchmark(args.model, args.config, args.checkpoint, resolution,
                                       args.targets, args.precisions, args.calib_data,
                                       args.calib_size, args.threads, args.runs, args.warmup)
    doc['command'] = _command('detector', argv)
    _write_json(args.out, doc)
    table = os.path.splitext(args.out)[0] + '.md'
    atomic_write_text(table, bench.markdown(doc))
    print(f'wrote {args.out} and {table}')
    return 0


# ----------------------------------------------------------------------------------------------
# agreement: a deployed detector / segmentor against the toolbox's own tools/test.py, per image
# ----------------------------------------------------------------------------------------------
def _agreement_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument('--config', required=True, help='an mmdet detector or mmseg segmentor config')
    p.add_argument('--model', default='t', help=f'variant: {valid_model_names()}')
    p.add_argument('--targets', nargs='+', default=['onnxruntime', 'openvino'],
                   choices=('onnxruntime', 'openvino'), metavar='TARGET')
    p.add_argument('--sizes', help='image sizes WxH,WxH,... (default: shaped as COCO / ADE20K '
                                   'images are, one image each)')
    p.add_argument('--checkpoint', help='trained weights (default: random, see --help of the '
                                        'module benchmarks/agreement.py)')
    p.add_argument('--resolution', help='HxW: also test a fixed-size artifact of this size')
    p.add_argument('--threads', type=positive_int, default=2)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', required=True, help='results JSON (atomic write; Markdown beside)')


def agreement_main(args: argparse.Namespace, argv: List[str]) -> int:
    from iformer_mm.models.backbones.iformer_arch import parse_resolution
    from . import agreement
    parse_model_name(args.model)
    resolution = parse_resolution(args.resolution) if args.resolution else None
    _check_paths(('--config', args.config), ('--checkpoint', args.checkpoint))
    _out_folder(args.out)
    doc = agreement.run_agreement(os.path.abspath(args.config), args.model, args.targets,
                                  args.sizes, args.checkpoint, resolution, args.threads, args.seed)
    doc['command'] = _command('agreement', argv)
    table = agreement.write(doc, args.out)
    print(f'wrote {args.out} and {table}')
    return 0


# ----------------------------------------------------------------------------------------------
# pareto: iFormer against its mobile peers on each runtime's accuracy-latency front
# ----------------------------------------------------------------------------------------------
def _pareto_flags(p: argparse.ArgumentParser) -> None:
    from .pareto import DEFAULT_RESOLUTION, RUNTIMES, TASKS
    from .pareto_models import BY_KEY, REFERENCE
    p.add_argument('--models', nargs='+', default=list(BY_KEY), metavar='MODEL',
                   help=f'default: all of {" ".join(BY_KEY)}')
    p.add_argument('--runtimes', nargs='+', default=list(RUNTIMES), choices=list(RUNTIMES),
                   metavar='RUNTIME', help=f'default: {" ".join(RUNTIMES)}')
    p.add_argument('--tasks', nargs='+', default=list(TASKS), choices=TASKS, metavar='TASK',
                   help='classifier (logits) and / or backbone (the dense models\' four feature '
                        'maps); default both')
    p.add_argument('--backbone-models', nargs='+', default=None, metavar='MODEL',
                   help='the models of the backbone task (default: the dense ones of --models: '
                        f'{" ".join(k for k, c in BY_KEY.items() if c.dense)})')
    p.add_argument('--classifier-res', type=square_resolution,
                   default=DEFAULT_RESOLUTION['classifier'])
    p.add_argument('--backbone-res', type=square_resolution, default=DEFAULT_RESOLUTION['backbone'])
    p.add_argument('--reference', default=REFERENCE,
                   help=f'the model every ratio is taken against (default {REFERENCE})')
    p.add_argument('--threads', type=positive_int, default=1)
    p.add_argument('--runs', type=positive_int, default=15, help='interleaved rounds (15)')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--out-dir', default='benchmarks/pareto',
                   help='RUNTIME.json and RUNTIME.png per runtime, results.md over all of them; '
                        "a task measured again replaces that task's results, the other's stay")
    p.add_argument('--report', action='store_true',
                   help='only re-derive the fronts from the measured rows of the JSON files in '
                        '--out-dir and redraw results.md and the plots')


def _pareto_outputs(out_dir: str) -> List[str]:
    """Each runtime's JSON in ``out_dir`` with its fronts re-derived from the measured rows, its
    plot, and results.md over all of them."""
    from .pareto import RUNTIMES, mark_fronts
    from .pareto_plot import plot_runtime
    from .pareto_report import markdown
    docs = []
    for runtime in RUNTIMES:
        path = os.path.join(out_dir, f'{runtime}.json')
        if os.path.exists(path):
            with open(path) as f:
                docs.append(json.load(f))
    if not docs:
        raise ValueError(f'--out-dir {out_dir} holds no results (RUNTIME.json)')
    written = []
    for doc in docs:
        for group in doc['groups']:
            mark_fronts(group)
        written.append(os.path.join(out_dir, f"{doc['runtime']}.json"))
        _write_json(written[-1], doc)
        written.append(os.path.join(out_dir, f"{doc['runtime']}.png"))
        plot_runtime(doc, written[-1])
    written.append(os.path.join(out_dir, 'results.md'))
    atomic_write_text(written[-1], markdown(docs))
    return written


def pareto_main(args: argparse.Namespace, argv: List[str]) -> int:
    from . import pareto
    from .pareto_models import contender
    from .pareto_report import conclusion
    if args.report:
        print('wrote ' + ', '.join(_pareto_outputs(args.out_dir)))
        return 0
    models = {'classifier': list(dict.fromkeys(contender(k).key for k in args.models))}
    models['backbone'] = ([contender(k).key for k in args.backbone_models] if args.backbone_models
                          else [k for k in models['classifier'] if contender(k).dense])
    for task in args.tasks:
        if args.reference not in models[task]:
            raise ValueError(f'--reference {args.reference} is not among the {task} models '
                             f"({' '.join(models[task]) or 'none'})")
    not_dense = [k for k in models['backbone'] if not contender(k).dense]
    if 'backbone' in args.tasks and not_dense:
        raise ValueError(f"--backbone-models: {' '.join(not_dense)} not in the dense comparison")
    if args.warmup < 0:
        raise ValueError(f'--warmup must be >= 0, got {args.warmup}')
    prepare_out_dir(args.out_dir)
    tasks = {t: args.classifier_res if t == 'classifier' else args.backbone_res for t in args.tasks}
    for runtime in args.runtimes:
        doc = pareto.run_runtime(runtime, models, tasks, args.reference, args.threads, args.runs,
                                 args.warmup)
        for group in doc['groups']:
            group['command'] = _command('pareto', argv)
        path = os.path.join(args.out_dir, f'{runtime}.json')
        if os.path.exists(path):  # the runtime's other task, measured before, stays
            with open(path) as f:
                doc = pareto.merge(json.load(f), doc)
        _write_json(path, doc)
        for group in doc['groups']:
            print('  ' + conclusion(group))
    print('wrote ' + ', '.join(_pareto_outputs(args.out_dir)))
    return 0


# ----------------------------------------------------------------------------------------------
# train-throughput: GPU training images/s, ours vs timm
# ----------------------------------------------------------------------------------------------
def _train_throughput_flags(p: argparse.ArgumentParser) -> None:
    from .train_throughput import plan_flags
    p.add_argument('--smoke', action='store_true',
                   help='tiny run (iFormer-T, 64 px, batch 2, 1 step, eager): seconds on a CPU')
    plan_flags(p)
    p.add_argument('--out', default=None,
                   help=f'results JSON (default {TRAIN_THROUGHPUT_OUT}, for a full GPU run only)')
    p.add_argument('--table', default=None, help='Markdown table (default: --out with .md)')
    p.add_argument('--report', default=None, metavar='RESULTS_JSON',
                   help='print the Markdown tables of an existing results file, then exit')


def check_device(name: str):
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


def train_throughput_main(args: argparse.Namespace, argv: List[str]) -> int:
    from .throughput_report import markdown
    from .train_throughput import plan_from_args, run_throughput
    if args.report:
        with open(args.report) as f:
            print(markdown(json.load(f)), end='')
        return 0
    plan = plan_from_args(args, smoke=args.smoke)
    device = check_device(plan.device)
    out = args.out
    if out is None:
        if device.type != 'cuda' or args.smoke:
            raise ValueError(f'--out is required with --device {plan.device}'
                             f"{' --smoke' if args.smoke else ''}: {TRAIN_THROUGHPUT_OUT} "
                             'holds full GPU runs only')
        out = TRAIN_THROUGHPUT_OUT
    table = args.table or os.path.splitext(out)[0] + '.md'
    _out_folder(out)
    _out_folder(table, '--table')
    doc = run_throughput(plan)
    doc['command'] = _command('train-throughput', argv)
    _write_json(out, doc)
    atomic_write_text(table, markdown(doc))
    print(f'wrote {out} and {table}')
    summary = doc['summary']
    for line in summary['misses']:
        print(f'  target missed: {line}')
    if not summary['checks_ok']:
        print(f'{PROG} train-throughput: error: ours and timm did not compute the same thing '
              'for some models (see "checks"); their settings were not measured', file=sys.stderr)
        return 1
    return 0


# ----------------------------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------------------------
#: mode -> (help, flags, main)
MODES: Dict[str, tuple] = {
    'latency': ("CPU latency of ours (unfused / fused / channels_last / compile / ONNX Runtime) "
                "against timm's fused port, interleaved in one process", _latency_flags,
                latency_main),
    'deploy': ("latency of the exported classifier per CPU runtime and precision: our export vs "
               "timm's exported the same way, int8 vs the float precisions", _deploy_flags,
               deploy_main),
    'detector': ('latency of the deployed whole Mask / Faster R-CNN per runtime and precision, '
                 "next to mmdet's own PyTorch inference at the same size", _detector_flags,
                 detector_main),
    'agreement': ("a deployed detector / segmentor against the toolbox's own tools/test.py, per "
                  'image, on generated images shaped as COCO / ADE20K images are',
                  _agreement_flags, agreement_main),
    'pareto': ('iFormer against MobileNetV4, RepViT, FastViT, EfficientFormerV2, EfficientViT and '
               'StarNet per runtime and precision: latency vs published top-1, the Pareto front, '
               'per-op profiles where iFormer is off it', _pareto_flags, pareto_main),
    'train-throughput': ('training (and inference) images/s, ours vs timm, on a GPU (or a tiny '
                         'CPU smoke run); fits an 8-minute slot (benchmarks/README.md)',
                         _train_throughput_flags, train_throughput_main),
}


def build_parser(prog: str = PROG) -> ToolParser:
    parser = ToolParser(prog=prog, description='Benchmarks of iFormer: Linux CPU / GPU numbers, '
                                               'not phone latencies (benchmarks/README.md).')
    modes = parser.add_subparsers(dest='mode', required=True, metavar='MODE',
                                  parser_class=ToolParser)
    for name, (text, add_flags, _) in MODES.items():
        add_flags(modes.add_parser(name, help=text, description=text))
    return parser


def with_mode(argv: List[str]) -> List[str]:
    """``argv`` with its mode named first (see the module docstring for the old spellings)."""
    if argv and argv[0] in LEGACY_MODE_FLAGS:
        return [LEGACY_MODE_FLAGS[argv[0]], *argv[1:]]
    if not argv or (argv[0].startswith('-') and argv[0] not in ('-h', '--help')):
        return [DEFAULT_MODE, *argv]
    return argv


def main(argv: Optional[List[str]] = None, prog: str = PROG) -> int:
    argv = with_mode(list(sys.argv[1:] if argv is None else argv))
    args = build_parser(prog).parse_args(argv)
    run: Callable[[argparse.Namespace, List[str]], int] = MODES[args.mode][2]
    try:
        return run(args, argv[1:])
    except (ValueError, KeyError, OSError, OutputError) as e:
        return error_exit(f'{prog} {args.mode}', e)
