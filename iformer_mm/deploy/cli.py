"""The shared command line of ``tools/export_coreml.py`` and ``tools/export_onnx.py``.

Everything cheap is validated before any work (model name, task, resolution, output folder), so
bad input fails in a second with a message naming the value; a failed export leaves nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Optional

from ..fileio import OutputError, prepare_out_dir, remove_created
from ..models.backbones.iformer_arch import parse_model_name, parse_resolution, valid_model_names
from .build import DEFAULT_TASK, TASKS, build_export_model, check_task

FORMATS = {'coreml': '.mlpackage', 'onnx': '.onnx'}


def build_parser(fmt: str) -> argparse.ArgumentParser:
    what = 'Core ML (.mlpackage, ML Program, FP16, iOS15+)' if fmt == 'coreml' else 'ONNX'
    p = argparse.ArgumentParser(
        description=f'Export a fused iFormer to {what}. 224 exports the classifier (1x1000 '
                    'logits), 512 the dense backbone (windowed stage-2 attention, four feature '
                    'maps), unless --task says otherwise.')
    p.add_argument('--model', required=True,
                   help=f'variant: {valid_model_names()}')
    p.add_argument('--resolution', default='224',
                   help='input size N or HxW, a multiple of 32 in [64, 2048] (default 224)')
    p.add_argument('--task', choices=TASKS, default=None,
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
        raise ValueError(f'unknown export format {fmt!r}; expected one of {list(FORMATS)}')
    parse_model_name(model)
    height, width = parse_resolution(resolution)
    task = check_task(task or DEFAULT_TASK.get(height if height == width else -1, 'backbone'))
    if window_size is not None and window_size < 0:
        raise ValueError(f'--window-size must be >= 0 (0 = global attention), got {window_size}')
    if window_size and task == 'classifier':
        raise ValueError(f'--window-size {window_size} applies to --task backbone only (the '
                         'classifier uses global attention)')
    if checkpoint is not None and not os.path.isfile(checkpoint):
        raise FileNotFoundError(f'--checkpoint {checkpoint} does not exist or is not a file')
    created = prepare_out_dir(out_dir)
    try:
        em = build_export_model(model, task, checkpoint, window_size)
        out_path = os.path.join(out_dir, em.default_stem(height, width) + FORMATS[fmt])
        if fmt == 'coreml':
            from .coreml_export import export_coreml
            report = export_coreml(em, height, width, out_path)
        else:
            from .onnx_export import export_onnx
            report = export_onnx(em, height, width, out_path)
    except BaseException:
        remove_created(created)
        raise
    report.update(model=f'iformer_{em.arch}' + ('_distill' if em.distilled else ''), task=task,
                  resolution=[height, width], window_size=em.window_size, weights=em.weights)
    return report


def _print_report(report: Dict[str, object]) -> None:
    print(f"wrote {report['path']}")
    print(f"  {report['model']} {report['task']} at {report['resolution'][0]}x"
          f"{report['resolution'][1]}, window {report['window_size']}, "
          f"weights: {report['weights']}")
    print(f"  inputs  {report['inputs']}")
    print(f"  outputs {report['outputs']}")
    print(f"  ops     {report['ops']}")
    if 'max_abs_diff_vs_torch' in report:
        print(f"  max |onnxruntime - torch| = {report['max_abs_diff_vs_torch']:.3g}")


def main(fmt: str, argv: Optional[List[str]] = None) -> int:
    args = build_parser(fmt).parse_args(argv)
    try:
        report = export(fmt, args.model, args.resolution, args.task, args.checkpoint,
                        args.out_dir, args.window_size)
    except (ValueError, OSError, OutputError) as e:  # CheckpointError is a ValueError
        print(f'error: {e}', file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2, default=list))
    else:
        _print_report(report)
    return 0
