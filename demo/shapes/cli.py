"""Command line of ``tools/make_shapes.py``: write the shape datasets under one folder.

Why a CLI: demos and configs point at data on disk; this makes it in a second or two.
Bad input exits with code 2 and one line on stderr, before anything is written: every
requested task is validated first, so ``all`` is all-or-nothing.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable, Dict, List, NoReturn, Optional, Sequence, Tuple

from iformer_mm.utils.cli import ToolParser, error_exit

from .ade20k import make_ade20k
from .classification import make_classification
from .coco import make_coco
from .sizes import SIZE_PRESETS
from .validate import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE, check_arguments

#: CLI task -> (module task key, subfolder of --out, generator, default size)
TASKS: Dict[str, Tuple[str, str, Callable[..., Dict[str, Any]], int]] = {
    'cls': ('cls', 'cls', make_classification, 64),
    'det': ('coco', 'coco', make_coco, 128),
    'seg': ('ade', 'ade', make_ade20k, 128),
}
DEFAULT_COUNTS = {'cls': (40, 10), 'det': (64, 16), 'seg': (64, 16)}

EPILOG = """\
output layout (under --out, default data/shapes):
  cls  -> OUT/cls/{train,val}/<class>/*.png + OUT/cls/meta/{train,val}.txt
          (mmpretrain: type='ImageNet', data_root=OUT/cls, split='train'|'val',
           metainfo=dict(classes=SHAPE_CLASSES)); counts are PER CLASS
  det  -> OUT/coco/{train2017,val2017}/*.jpg + OUT/coco/annotations/instances_{train,val}2017.json
          (mmdet: type='CocoDataset', metainfo=dict(classes=COCO_CLASSES))
  seg  -> OUT/ade/ADEChallengeData2016/{images,annotations}/{training,validation}/
          (mmseg: type='BaseSegDataset', reduce_zero_label=True, png 1 = background,
           2+k = shape k; metainfo=dict(classes=ADE_CLASSES, palette=ADE_PALETTE))
  all  -> all three
defaults: cls 40/10 per class at 64 px; det and seg 64/16 images at 128 px; seed 0.

image sizes (det and seg; cls images stay square):
  --size N           square N x N images (the default)
  --sizes coco       a cycle of COCO-like sizes: 640x480, 480x640, 640x427, 427x640, 500x375,
                     375x500, 612x612, 640x360, 333x500, 600x300, 300x600 and odd ones
  --sizes ade20k     ADE20K-like sizes: 683x512, 512x683, 1024x256, 256x1024, 640x480, ...
  --sizes 160x120,120x160,200x100,100x200,107x160
                     explicit WIDTHxHEIGHT list; image i takes size i % len(list)
  both sides within the --size limits; COCO width/height/masks and ADE label PNGs follow each
  image's own size.
  e.g.  python tools/make_shapes.py det --out data/mixed --sizes coco --num-train 64
"""


PROG = 'make_shapes.py'


def fail(message: str) -> NoReturn:
    """The tools' one error line (``make_shapes.py: error: ...``), exit 2."""
    raise SystemExit(error_exit(PROG, ValueError(message)))


def build_parser() -> argparse.ArgumentParser:
    """The parser; counts and size default to None so each task can use its own default."""
    parser = ToolParser(
        prog=PROG, description='Write small, seeded, learnable shape datasets in ImageNet, COCO and '
        'ADE20K on-disk formats.', epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('task', choices=[*TASKS, 'all'], help='which dataset(s) to write')
    parser.add_argument('--out', default='data/shapes',
                        help='parent folder; each task writes its own subfolder '
                        '(default: %(default)s)')
    parser.add_argument('--num-train', type=int, default=None,
                        help='training images (per class for cls; default per task, see below)')
    parser.add_argument('--num-val', type=int, default=None,
                        help='validation images (per class for cls; default per task)')
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument('--size', type=int, default=None,
                       help=f'square image side in pixels, {MIN_IMAGE_SIZE}..'
                       f'{MAX_IMAGE_SIZE} (default: 64 for cls, 128 for det/seg)')
    sizes.add_argument('--sizes', default=None, metavar='PRESET|WxH,...',
                       help=f'det/seg image sizes instead of squares: a preset '
                       f'({", ".join(SIZE_PRESETS)}) or a WIDTHxHEIGHT list (see below)')
    parser.add_argument('--seed', type=int, default=0, help='random seed (default: %(default)s)')
    return parser


def plan(args: argparse.Namespace) -> List[Dict[str, Any]]:
    """Validate every requested task before any is written (so 'all' is all-or-nothing)."""
    if args.task == 'cls' and args.sizes is not None:
        raise ValueError('sizes is for det and seg; cls images are square (use --size)')
    jobs = []
    for name in (list(TASKS) if args.task == 'all' else [args.task]):
        key, sub, func, default_size = TASKS[name]
        train, val = DEFAULT_COUNTS[name]
        kwargs = dict(num_train=train if args.num_train is None else args.num_train,
                      num_val=val if args.num_val is None else args.num_val,
                      image_size=default_size if args.size is None else args.size, seed=args.seed)
        if name != 'cls' and args.sizes is not None:
            kwargs['sizes'] = args.sizes
        root = Path(args.out) / sub
        check_arguments(key, root, **kwargs)
        jobs.append(dict(name=name, func=func, root=root, kwargs=kwargs))
    return jobs


def run(job: Dict[str, Any]) -> Dict[str, Any]:
    """Call one generator; ``make_classification`` names its counts per class."""
    kwargs = dict(job['kwargs'])
    if job['name'] == 'cls':
        kwargs['num_train_per_class'] = kwargs.pop('num_train')
        kwargs['num_val_per_class'] = kwargs.pop('num_val')
    return job['func'](job['root'], **kwargs)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``tools/make_shapes.py``; returns the exit code (errors exit 2)."""
    args = build_parser().parse_args(argv)
    try:
        for job in plan(args):
            summary = run(job)
            counts = ', '.join(f"{s}: {v['images']} images" for s, v in summary['splits'].items())
            print(f"{job['name']}: wrote {summary['root']} ({counts}; classes: "
                  f"{', '.join(summary['classes'])})")
    except (ValueError, OSError) as exc:
        fail(with_flag(str(exc)))
    return 0


def with_flag(message: str) -> str:
    """Prefix the CLI flag for a module argument name, so users know what to change."""
    for name, flag in (('num_train', '--num-train'), ('num_val', '--num-val'),
                       ('image_size', '--size'), ('sizes', '--sizes'), ('seed', '--seed')):
        if message.startswith(name):
            return f'{flag}: {message}'
    return message
