"""``tools/export_coreml.py`` and ``tools/export_onnx.py``: today's flags over :func:`deploy`.

They keep their own defaults (Core ML at FP16, ONNX at fp32 checked on ONNX Runtime; the task
follows the resolution: classifier at 224, backbone otherwise; output names without a precision
suffix; no JSON file), so existing scripts keep working. New work: ``tools/deploy.py``.
"""
from __future__ import annotations

import argparse
import json
from typing import Dict, List, Optional

from ..utils.cli import ToolParser, error_exit
from ..models.backbones.iformer_arch import parse_model_name, parse_resolution, valid_model_names
from .export import Request, deploy
from .targets.base import DeployError, user_errors

#: alias -> (target, precision)
FORMATS = {'coreml': ('coreml', 'fp16'), 'onnx': ('onnxruntime', 'fp32')}
ALIAS_TASKS = ('classifier', 'backbone')


def build_parser(fmt: str) -> argparse.ArgumentParser:
    what = 'Core ML (.mlpackage, ML Program, FP16, iOS15+)' if fmt == 'coreml' else 'ONNX'
    p = ToolParser(
        prog=f'export_{fmt}.py', description=f'Export a fused iFormer to {what}. 224 exports the classifier (1x1000 '
                    'logits), 512 the dense backbone (windowed stage-2 attention, four feature '
                    'maps), unless --task says otherwise. More targets, int8 and the whole '
                    'segmentor: tools/deploy.py.')
    p.add_argument('--model', required=True, help=f'variant: {valid_model_names()}')
    p.add_argument('--resolution', default='224',
                   help='input size N or HxW, a multiple of 32 in [64, 2048] (default 224)')
    p.add_argument('--task', choices=ALIAS_TASKS, default=None,
                   help='classifier or backbone (default: classifier at 224, backbone otherwise)')
    p.add_argument('--checkpoint', default=None,
                   help='published (.pth with "model") or mm-format (state_dict with backbone./'
                        'head.) checkpoint; random weights when omitted')
    p.add_argument('--out-dir', default='exports', help='output folder (created if missing)')
    p.add_argument('--window-size', type=int, default=None,
                   help='backbone only: stage-2 attention window (default 16 as published; '
                        '0 = global attention)')
    p.add_argument('--json', action='store_true', help='print the report as JSON')
    return p


def export(fmt: str, model: str, resolution: str = '224', task: Optional[str] = None,
           checkpoint: Optional[str] = None, out_dir: str = 'exports',
           window_size: Optional[int] = None) -> Dict[str, object]:
    """Validate, build the fused model, export it atomically and return the check report."""
    if fmt not in FORMATS:
        raise DeployError(f'unknown export format {fmt!r}; expected one of {list(FORMATS)}')
    try:
        parse_model_name(model)
        height, width = parse_resolution(resolution)
    except ValueError as e:  # the name parser's own message, as our one-line error
        raise DeployError(str(e)) from None
    task = task or ('classifier' if (height, width) == (224, 224) else 'backbone')
    if window_size and task == 'classifier':
        raise DeployError(f'--window-size {window_size} applies to --task backbone only (the '
                         'classifier uses global attention)')
    target, precision = FORMATS[fmt]
    return deploy(Request(model=model, target=target, task=task, precision=precision,
                          checkpoint=checkpoint, resolution=(height, width),
                          window_size=window_size, out_dir=out_dir, long_name=False,
                          write_report=False))


def main(fmt: str, argv: Optional[List[str]] = None) -> int:
    args = build_parser(fmt).parse_args(argv)
    try:
        report = export(fmt, args.model, args.resolution, args.task, args.checkpoint,
                        args.out_dir, args.window_size)
    except user_errors() as e:  # bad input: one line, exit 2; anything else: its traceback
        return error_exit(f'export_{fmt}.py', e)
    if args.json:
        print(json.dumps(report, indent=2, default=list))
        return 0
    from .cli import summary
    print(summary(report))
    return 0
