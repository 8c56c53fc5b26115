"""``tools/demo.py``: argument parsing and input checks for :func:`demo.run_demo`.

Why the checks happen before anything runs: a demo takes minutes; a typo in a task name, an
out-dir that cannot be written or a data root holding foreign data should fail at once, as one
line on stderr with exit code 2 (the convention of ``tools/make_shapes.py``).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, List, NoReturn, Optional, Sequence

from iformer_mm.utils.cli import ToolParser, error_exit
from iformer_mm.utils.fileio import out_dir_problem

from .tasks import TASKS, with_dependencies

PROG = 'demo.py'


def fail(message: str) -> NoReturn:
    """The tools' one error line (``demo.py: error: ...``), exit 2."""
    raise SystemExit(error_exit(PROG, ValueError(message)))


def build_parser() -> argparse.ArgumentParser:
    parser = ToolParser(
        prog=PROG,
        description='Train and evaluate iFormer-T on generated shapes data for classification '
        '(mmpretrain), instance segmentation (mmdet) and semantic segmentation (mmseg), on CPU.')
    parser.add_argument('--tasks', nargs='+', choices=list(TASKS), default=list(TASKS),
                        metavar='TASK', help=f'subset of {list(TASKS)} (default: all); det and seg '
                        'start from the cls backbone, so they also run cls')
    parser.add_argument('--out-dir', type=Path, default=Path('demo_out'),
                        help='results.json, pictures and logs go here (default: %(default)s)')
    parser.add_argument('--data-root', type=Path, default=Path('data/shapes'),
                        help='generated datasets: ROOT/{cls,coco,ade}, written if missing '
                        '(default: %(default)s)')
    parser.add_argument('--seed', type=_int_at_least(0, 'a non-negative integer'), default=0,
                        help='training seed (default: %(default)s; the data seed is fixed)')
    parser.add_argument('--threads', type=_int_at_least(1, 'a positive integer'), default=None,
                        help='torch CPU threads (default: torch\'s choice, one per core); '
                        'on a machine shared with other jobs, 1 avoids thread oversubscription')
    parser.add_argument('--quick', action='store_true',
                        help='tiny data and 1-2 iterations per task: checks the plumbing, '
                        'the metrics mean nothing')
    return parser


def _int_at_least(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse ``type`` accepting integers >= ``minimum``; the error names the bad value."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'must be {what}, got {text!r}') from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f'must be {what}, got {value}')
        return value
    return parse


def check_inputs(args: argparse.Namespace) -> None:
    """Fail (exit 2) on an unusable out-dir or data root, before any training starts."""
    from .shapes import check_arguments
    from .data import mismatch
    problem = out_dir_problem(args.out_dir, '--out-dir')
    if problem:
        fail(problem)
    for name in with_dependencies(args.tasks):
        spec = TASKS[name].quick_data if args.quick else TASKS[name].data
        root = args.data_root / spec.subdir
        if mismatch(spec, root) is None:
            continue
        try:
            check_arguments(spec.kind, root, spec.num_train, spec.num_val, spec.image_size,
                            spec.seed)
        except (ValueError, OSError) as exc:
            fail(f'--data-root: {exc}')


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    args.tasks = list(dict.fromkeys(args.tasks))  # drop repeats, keep order
    check_inputs(args)
    from .run import RESULTS_FILE, run_demo, summary
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    results = run_demo(args.tasks, args.out_dir, args.data_root, seed=args.seed,
                       quick=args.quick)
    print()
    print(summary(results))
    lines: List[str] = [f"results: {args.out_dir / RESULTS_FILE}"]
    lines += [f"{name} picture: {args.out_dir / rec['picture']}"
              for name, rec in results['tasks'].items()]
    print('\n'.join(lines))
    return 0
