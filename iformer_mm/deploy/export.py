"""One deployment: plan it, build the fused model, write the artifact, run it, report.

The order matters for "nothing half-written": the artifact is written to a temporary path, run
there in its own runtime and compared with PyTorch, and only then renamed into place; the JSON
report beside it (with the :class:`~.spec.DeploySpec` every consumer reads, and the artifact's
SHA-256) is written last. A failure at any step leaves neither (and removes the output folders
this run created). A dynamic artifact is checked at several input shapes (the configured size,
a portrait and an odd one) besides real images. Core ML cannot run on Linux: its package is
inspected instead (spec, shapes, op histogram).
"""
from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..checkpoint import is_remote
from ..models.backbones.fused_cpu_ops import fused_kernels
from ..utils.environment import versions
from ..utils.fileio import atomic_path, atomic_write_text, prepare_out_dir, remove_created
from .artifact import checksum
from .build import ExportModel, build_from_spec
from .detections import match_summary
from .evaluate import accuracy
from .inputs import InputSource
from .predict import Predictor
from .spec import plan
from .targets import DeployError, Target, get_target

#: an fp32 artifact further than this from PyTorch is broken, not merely imprecise
FP32_PARITY_LIMIT = 1e-3
#: a bf16 artifact (8 significant bits) whose outputs point elsewhere than PyTorch's fp32 ones
#: (cosine below this on any check input) is broken; measured on the demo models: >= 0.9998
BF16_MIN_COSINE = 0.995
#: runtimes that run the whole detector with their standard NMS / RoIAlign ops
WHOLE_DETECTOR_TARGETS = ('onnxruntime', 'openvino')
#: real calibration images (besides the random inputs) used for the parity figures
PARITY_IMAGES = 8
#: inferences folded into the per-op profile of every report
PROFILE_RUNS = 5


@dataclass
class Request:
    """Everything ``tools/deploy.py`` takes (see its ``--help``)."""
    model: str
    target: str
    task: str = 'classifier'
    precision: str = 'fp32'
    checkpoint: Optional[str] = None
    config: Optional[str] = None
    resolution: Optional[Tuple[int, int]] = None
    window_size: Optional[int] = None
    seg_output: str = 'logits'
    calib_data: Optional[str] = None
    calib_size: int = 300
    val_data: Optional[str] = None
    val_size: Optional[int] = None
    latency_runs: int = 0
    threads: Optional[int] = None
    out_dir: str = 'deploy_out'
    long_name: bool = True            # ..._224x224_onnxruntime_fp32 (False: ..._224x224)
    write_report: bool = True


def check_request(req: Request) -> Target:
    """Everything that can be refused without building a model, refused now."""
    target = get_target(req.target)
    target.check(req.precision)
    if req.precision in target.needs_calibration and not req.calib_data:
        raise DeployError(f'--precision {req.precision} on --target {req.target} needs '
                          '--calib-data (an image folder or a dataset config; a few hundred '
                          'images of the deployment domain)')
    for flag, path in (('--checkpoint', req.checkpoint), ('--config', req.config),
                       ('--calib-data', req.calib_data), ('--val-data', req.val_data)):
        if flag == '--checkpoint' and is_remote(path):
            continue  # downloaded into its cache when loaded
        if path is not None and not os.path.exists(path):
            raise DeployError(f'{flag} {path} does not exist')
    if req.val_data and not target.runs_here:
        raise DeployError(f'--val-data needs a target that runs here; {req.target} does not run '
                          'on this OS')
    if req.task == 'detector' and target.name not in WHOLE_DETECTOR_TARGETS:
        raise DeployError(f'--task detector (the whole network, NMS and RoIAlign included) runs on '
                          f'{" / ".join(WHOLE_DETECTOR_TARGETS)}; for --target {target.name} use '
                          '--task detector-dense (backbone + FPN + RPN convs; the rest on the host)')
    if req.val_data and req.task not in ('classifier', 'segmentor', 'detector'):
        raise DeployError(f'--val-data scores a classifier, segmentor or whole detector; --task '
                          f'{req.task} exports feature maps, which have no metric')
    if req.latency_runs < 0:
        raise DeployError(f'--latency must be >= 0 runs, got {req.latency_runs}')
    if req.window_size is not None and req.window_size < 0:
        raise DeployError(f'--window-size must be >= 0 (0 = global attention), got {req.window_size}')
    return target



Check = Tuple[torch.Tensor, ...]  # one set of artifact inputs, in input order


def _as_list(out) -> List[np.ndarray]:
    out = (out,) if isinstance(out, torch.Tensor) else tuple(out)
    return [o.detach().numpy() for o in out]


def _outputs(session, inputs: Check, ref: List[np.ndarray]) -> List[np.ndarray]:
    got = session(*(t.numpy() for t in inputs))
    if len(got) != len(ref):
        raise RuntimeError(f'the runtime returned {len(got)} outputs, PyTorch {len(ref)}')
    return got


def parity(session, checks: Sequence[Check], refs: Sequence[List[np.ndarray]],
           task: str) -> Dict[str, object]:
    """How far the runtime's outputs are from PyTorch's on the same inputs. Detector: outputs
    matched by label and box IoU (:func:`.detections.match_summary`; rows may legitimately swap
    order where two scores are nearly equal)."""
    if task == 'detector':
        pairs = [(ref, _outputs(session, x, ref)) for x, ref in zip(checks, refs)]
        return {'inputs': len(checks), 'input_shapes': _shapes(checks), **match_summary(pairs)}
    max_diff, mean_diffs, cosines, agree = 0.0, [], [], []
    for x, ref in zip(checks, refs):
        got = _outputs(session, x, ref)
        for a, b in zip(got, ref):
            if tuple(a.shape) != tuple(b.shape):
                raise RuntimeError(f'runtime output shape {tuple(a.shape)} != PyTorch '
                                   f'{tuple(b.shape)} for input {tuple(x[0].shape)}')
            a, b = a.astype(np.float64), b.astype(np.float64)
            max_diff = max(max_diff, float(np.abs(a - b).max()))
            mean_diffs.append(float(np.abs(a - b).mean()))
            cosines.append(float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12)))
        if task == 'classifier':
            agree.append(float(np.argmax(got[0]) == np.argmax(ref[0])))
        elif task == 'segmentor':
            a, b = got[0], ref[0]
            agree.append(float(np.mean((a.argmax(1) if a.ndim == 4 else a) ==
                                       (b.argmax(1) if b.ndim == 4 else b))))
    out = {'inputs': len(checks), 'input_shapes': _shapes(checks), 'max_abs_diff': max_diff,
           'mean_abs_diff': float(np.mean(mean_diffs)), 'min_cosine': float(min(cosines))}
    if agree:
        out['top1_agreement' if task == 'classifier' else 'pixel_agreement'] = float(np.mean(agree))
    return out


def _shapes(checks: Sequence[Check]) -> List[List[int]]:
    return [list(x[0].shape[2:]) for x in checks]


def check_fp32(p: Dict[str, object], target: str) -> None:
    """An fp32 artifact must reproduce PyTorch (to float rounding); raise if it does not."""
    if p['max_abs_diff'] > FP32_PARITY_LIMIT:
        raise RuntimeError(f"the fp32 {target} model differs from PyTorch by {p['max_abs_diff']:.3g}"
                           f' (> {FP32_PARITY_LIMIT}); nothing was written')
    if p.get('detections_matched', 0) < p.get('detections_checked', 0):
        raise RuntimeError(f"the fp32 {target} detector matches {p['detections_matched']} of "
                           f"PyTorch's {p['detections_checked']} detections with score >= 0.3 "
                           f"(lowest IoU {p['min_iou']:.3f}); nothing was written")


def check_bf16(p: Dict[str, object], target: str) -> None:
    """A bf16 artifact must follow PyTorch's fp32 outputs to bf16 rounding (cosine)."""
    if 'min_cosine' in p and p['min_cosine'] < BF16_MIN_COSINE:
        raise RuntimeError(f"the bf16 {target} model's outputs have cosine {p['min_cosine']:.4f} "
                           f'with PyTorch fp32 (< {BF16_MIN_COSINE}); nothing was written')


def latency(session, inputs: Check, runs: int, warmup: int = 3) -> Dict[str, float]:
    feed = [t.numpy() for t in inputs]
    for _ in range(warmup):
        session(*feed)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session(*feed)
        times.append((time.perf_counter() - t0) * 1e3)
    return {'median_ms': statistics.median(times), 'min_ms': min(times), 'runs': runs,
            'input_shape': list(inputs[0].shape)}


def check_shapes(em: ExportModel) -> List[Tuple[int, int]]:
    """Input sizes a dynamic artifact is checked at besides the configured one: a portrait and a
    landscape image at 3/4 x 1/2 of its longer side (multiples of the size divisor for a
    detector, odd sizes otherwise)."""
    if not em.spec.geometry.dynamic:
        return []
    side = max(em.spec.geometry.size)
    div = em.spec.geometry.size_divisor
    odd = 0 if div > 1 else 1

    def snap(v: float) -> int:
        return max(64, div * int(round(v / div))) + odd
    return [(snap(side * 0.75), snap(side * 0.5)), (snap(side * 0.5) + 2 * odd, snap(side * 0.75))]


def dynamic_axes(em: ExportModel) -> Optional[Dict[str, Dict[int, str]]]:
    if not em.spec.geometry.dynamic:
        return None
    axes = {'image': {2: 'height', 3: 'width'}}
    if em.task == 'segmentor':
        axes[em.spec.output_names[0]] = ({2: 'height', 3: 'width'} if em.spec.seg_output == 'logits'
                                         else {1: 'height', 2: 'width'})
    return axes


def _io_shapes(names: Sequence[str], tensors: Sequence, dynamic: Optional[Dict]) -> Dict:
    """name -> shape, the free axes named (``[1, 3, 'height', 'width']``)."""
    dynamic = dynamic or {}
    return {n: [dynamic.get(n, {}).get(i, int(s)) for i, s in enumerate(t.shape)]
            for n, t in zip(names, tensors)}


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj


def deploy(req: Request) -> Dict[str, object]:
    """Export, check, place and describe one artifact; returns the report (also as JSON)."""
    target = check_request(req)
    spec, cfg = plan(req.model, req.task, target.name, req.precision, req.config,
                     req.resolution, req.window_size, req.seg_output)
    if spec.geometry.dynamic and not target.dynamic_shapes:  # plan() gives dynamic only there
        raise DeployError(f'--target {target.name} takes fixed input sizes only')
    if spec.postprocess.get('mode') == 'slide' and req.seg_output != 'logits':
        raise DeployError("the config tests in mmseg's slide mode, which averages logits over "
                          'overlapping crops: --seg-output argmax cannot be used with it')
    created = prepare_out_dir(req.out_dir)
    try:
        em = build_from_spec(spec, cfg, req.checkpoint)
        spec = em.spec
        source = InputSource(spec, cfg)
        calib = (source.calibration(req.calib_data, req.calib_size)
                 if req.precision in target.needs_calibration else None)
        example = em.example_inputs()
        checks = ([example] + [em.example_inputs(size, seed=i + 1)
                               for i, size in enumerate(check_shapes(em))]
                  + list((calib or [])[:PARITY_IMAGES]))
        with torch.no_grad():
            refs = [_as_list(em.model(*x)) for x in checks]
        axes = dynamic_axes(em)
        stem = spec.stem(req.long_name)
        final = os.path.join(os.path.abspath(req.out_dir), stem + target.suffix)
        report: Dict[str, object] = {
            'path': final, 'target': target.name, 'precision': req.precision,
            'model': spec.name, 'task': spec.task, 'input': spec.geometry.describe(),
            'dynamic': spec.geometry.dynamic, 'resolution': list(spec.geometry.size),
            'window_size': spec.window_size, 'weights': em.weights, 'config': spec.config,
            'inputs': _io_shapes(spec.input_names, example, axes),
            'outputs': _io_shapes(spec.output_names, refs[0], axes),
            'preprocess': spec.preprocess.describe(), 'classes': spec.classes,
            'palette': spec.palette, 'spec': spec.to_dict()}
        with atomic_path(final) as tmp:
            # standard ops only, also where an exporter re-runs the model eagerly to check its
            # trace (OpenVINO): the fused CPU kernels round differently
            with fused_kernels(False):
                info = target.export(em.model, example, spec.output_names, req.precision, calib,
                                     tmp, spec.input_names, em.metadata(), axes)
            if 'outputs' in info and {k: list(v) for k, v in info['outputs'].items()} != \
                    report['outputs']:
                raise RuntimeError(f"{target.name} artifact outputs {info['outputs']} != PyTorch "
                                   f"{report['outputs']}")
            report.update(info)
            if target.runs_here:
                session = target.session(tmp, req.threads, req.precision)
                report['parity'] = parity(session, checks, refs, spec.task)
                report['max_abs_diff_vs_torch'] = report['parity']['max_abs_diff']
                if req.precision == 'fp32':
                    check_fp32(report['parity'], target.name)
                elif req.precision == 'bf16':
                    check_bf16(report['parity'], target.name)
                    report['parity']['bf16_min_cosine_required'] = BF16_MIN_COSINE
                report['runtime'] = target.runtime_facts(session)
                profile = target.profile(tmp, [t.numpy() for t in example], req.precision,
                                         req.threads, PROFILE_RUNS)
                if profile:
                    report['profile'] = profile
                if req.latency_runs:
                    report['latency'] = dict(latency(session, example, req.latency_runs),
                                             threads=req.threads or torch.get_num_threads())
                if req.val_data:
                    prepared = source.from_dataset(req.val_size, data_root=req.val_data)
                    report['accuracy'] = accuracy(em, Predictor(spec, session), prepared,
                                                  req.val_data)
            report['sha256'] = checksum(tmp)
        if calib is not None:
            report['calibration'] = {'source': req.calib_data, 'images': len(calib)}
        report['versions'] = versions(('torch', 'timm', 'mmengine') + target.packages)
        if req.write_report:
            report['report'] = os.path.join(os.path.dirname(final), stem + '.json')
            atomic_write_text(report['report'], json.dumps(_jsonable(report), indent=1) + '\n')
    except BaseException:
        remove_created(created)
        raise
    return report
