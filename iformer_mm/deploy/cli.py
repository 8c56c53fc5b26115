"""``tools/deploy.py``: one entry over every target, task and precision.

Everything cheap is validated before any work (model name, task, target, precision, resolution,
paths, output folder), so bad input fails in a second with one line naming the value, exit 2;
a failed export leaves nothing behind.
"""
from __future__ import annotations

import argparse
import json
from typing import List, Optional

from ..utils.cli import ToolParser, error_exit
from ..models.backbones.iformer_arch import parse_model_name, parse_resolution, valid_model_names
from .export import Request, deploy
from .segmentor import SEG_OUTPUTS
from .spec import TASKS
from .targets import PRECISIONS, TARGETS, DeployError
from .targets.base import user_errors

PROG = 'deploy.py'


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    targets = '; '.join(f'{name}: {t.description} ({"/".join(t.precisions)})'
                        for name, t in TARGETS.items())
    p = ToolParser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Export a fused iFormer for an on-device runtime, run it there, compare it '
                    'with PyTorch and write a JSON report beside it.',
        epilog=f'targets: {targets}')
    p.add_argument('--model', required=True, help=f'variant: {valid_model_names()}')
    p.add_argument('--task', choices=TASKS, default='classifier',
                   help='classifier (logits), backbone (4 feature maps), segmentor (Semantic '
                        'FPN, full-size logits), detector (Mask / Faster R-CNN: boxes, scores, '
                        'labels, masks; ONNX Runtime / OpenVINO) or detector-dense (its backbone + '
                        'FPN + RPN convs, for ExecuTorch / Core ML); default classifier')
    p.add_argument('--target', required=True, metavar='TARGET',
                   help=f'one of {", ".join(TARGETS)}')
    p.add_argument('--precision', default='fp32', metavar='PRECISION',
                   help=f'one of {", ".join(PRECISIONS)} (default fp32; int8 needs --calib-data)')
    p.add_argument('--checkpoint', help='release, mm or timm weights (.pth / .bin / .safetensors; '
                                        'path, URL or hf-hub:ORG/REPO); random without')
    p.add_argument('--config', help='mm config: preprocessing, calibration / validation '
                                    'pipeline, and the segmentor network (default: the recipe)')
    p.add_argument('--resolution', help='N or HxW, a multiple of 32 in [64, 2048]: a fixed-size '
                                        'input (images are resized keeping their aspect ratio '
                                        'and padded). Default: ONNX Runtime / OpenVINO segmentor '
                                        'and detector take any size; otherwise the config\'s test '
                                        'size (224 classifier, 512 backbone)')
    p.add_argument('--window-size', type=int, help='backbone / segmentor / detector: stage-2 '
                                                   'window (default 16 as published; 0 = global)')
    p.add_argument('--seg-output', choices=SEG_OUTPUTS, default='logits',
                   help='segmentor output: logits (N, classes, H, W) or argmax (N, H, W) int32')
    p.add_argument('--calib-data', help='int8 calibration: an image folder or a dataset config')
    p.add_argument('--calib-size', type=int, default=300, help='calibration images (300)')
    p.add_argument('--val-data', help="dataset root in the config's layout: top-1 / mIoU / COCO "
                                      'bbox + segm mAP of PyTorch and of the artifact, same inputs')
    p.add_argument('--val-size', type=int, help='validation images (default: all)')
    p.add_argument('--latency', type=int, default=0, metavar='RUNS',
                   help='also time RUNS forwards of the artifact (median ms)')
    p.add_argument('--threads', type=int, help='runtime intra-op threads (default: runtime default)')
    p.add_argument('--out-dir', default='deploy_out', help='output folder (created if missing)')
    p.add_argument('--json', action='store_true', help='print the report as JSON')
    return p


def request_from_args(args: argparse.Namespace) -> Request:
    try:
        parse_model_name(args.model)
        resolution = parse_resolution(args.resolution) if args.resolution else None
    except ValueError as e:  # the name parser's own message, as our one-line error
        raise DeployError(str(e)) from None
    for flag, value, low in (('--calib-size', args.calib_size, 1), ('--val-size', args.val_size, 1),
                             ('--threads', args.threads, 1)):
        if value is not None and value < low:
            raise DeployError(f'{flag} must be >= {low}, got {value}')
    return Request(model=args.model, target=args.target, task=args.task,
                   precision=args.precision, checkpoint=args.checkpoint, config=args.config,
                   resolution=resolution, window_size=args.window_size,
                   seg_output=args.seg_output, calib_data=args.calib_data,
                   calib_size=args.calib_size, val_data=args.val_data, val_size=args.val_size,
                   latency_runs=args.latency, threads=args.threads, out_dir=args.out_dir)


def summary(report: dict) -> str:
    size = 'any size' if report.get('dynamic') else 'x'.join(map(str, report['resolution']))
    lines = [f"wrote {report['path']}" + (f" (+ {report['report']})" if report.get('report') else ''),
             f"  {report['model']} {report['task']} {size} -> {report['target']} "
             f"{report['precision']}, weights: {report['weights']}",
             f"  input: {report['input']}",
             f"  inputs {report['inputs']}  outputs {report['outputs']}"]
    if 'parity' in report:
        p = report['parity']
        if 'detections_checked' in p:
            lines.append(f"  vs PyTorch on {p['inputs']} inputs {p['input_shapes'][:3]}...: "
                         f"{p['detections_matched']} of "
                         f"{p['detections_checked']} detections (score >= 0.3) matched at IoU >= "
                         f"0.99, max score / mask diff {p['max_abs_diff']:.3g}")
        else:
            lines.append(f"  vs PyTorch on {p['inputs']} inputs: max |diff| {p['max_abs_diff']:.3g}, "
                         f"min cosine {p['min_cosine']:.6f}"
                         + (f", top-1 agreement {p['top1_agreement']:.3f}" if 'top1_agreement' in p
                            else ''))
    else:
        lines.append('  not run here (Core ML runs on macOS / iOS only): spec and ops inspected')
    runtime = report.get('runtime') or {}
    for key in ('precision_ran', 'xnnpack_partitions', 'fully_delegated'):
        value = runtime.get(key, report.get(key))
        if value is not None:
            lines.append(f'  {key}: {value}')
    if 'latency' in report:
        lines.append(f"  latency: {report['latency']['median_ms']:.2f} ms median "
                     f"({report['latency']['threads']} threads)")
    for a in [report['accuracy']] if 'accuracy' in report else []:
        if a['metric'] == 'coco':
            for key in ('bbox_mAP', 'segm_mAP'):
                if key in a['artifact']:
                    lines.append(f"  {key}: PyTorch (mmdet predict) {a['pytorch_fp32'][key]:.4f}, "
                                 f"artifact {a['artifact'][key]:.4f} "
                                 f"({a['delta_points'][key]:+.2f} points)")
            lines.append(f"  {a['top_detections_matched']} of {a['top_detections_compared']} "
                         f"top detections equal to mmdet's ({a['top_detections_rule']})")
            continue
        lines.append(f"  {a['metric']}: PyTorch fp32 {a['pytorch_fp32'][a['metric']]:.4f}, artifact "
                     f"{a['artifact'][a['metric']]:.4f} ({a['delta_points']:+.2f} points)")
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None, prog: str = PROG) -> int:
    args = build_parser(prog).parse_args(argv)
    try:
        report = deploy(request_from_args(args))
    except user_errors() as e:  # bad input: one line, exit 2; anything else: its traceback
        return error_exit(prog, e)
    print(json.dumps(report, indent=2, default=list) if args.json else summary(report))
    return 0
