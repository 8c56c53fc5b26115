"""Latency of the deployed whole detector (``tools/deploy.py --task detector``) per runtime and
precision, next to mmdet's own PyTorch inference of the same model at the same input size.

Each (runtime, precision) is exported twice: the default dynamic-shape artifact (any H x W, the
size read from its inputs inside the graph) and a fixed-size one (``--resolution``, the size
baked in), both fed the same input of the benchmark's size, so ``dynamic_vs_fixed`` is what
taking any image shape costs.

Why a separate mode: the detector's artifact is one network from the normalised image to
``max_per_img`` boxes / scores / labels / masks (RPN, NMS and RoI heads included), so the fair
PyTorch baseline is mmdet's ``model.predict`` on the same padded input (no rescale, no mask
pasting: the artifact's host step is not timed either). Every artifact is made by the real
deployment path (:func:`iformer_mm.deploy.export.deploy`: exported, run in its runtime, checked
against PyTorch) into a temporary folder; then all of them and mmdet are timed interleaved in
one process (:func:`.latency.time_interleaved`), so the ratios are per-round medians.
"""
from __future__ import annotations

import itertools
import os
import statistics
import tempfile
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch

from .latency import ratio_stats, time_interleaved
from .machine import MachineMonitor, environment, package_version

DETECTOR_TARGETS = ('onnxruntime', 'openvino')
#: each (runtime, precision) is exported with both input geometries
SHAPES = ('dynamic', 'fixed')


def _mmdet_predict(em, x: torch.Tensor) -> Callable[[], object]:
    """mmdet's own test-mode forward of the (fused) detector on the benchmark's input."""
    from mmdet.structures import DetDataSample

    from iformer_mm.utils.scope import toolbox_scope
    h, w = em.resolution
    meta = dict(img_shape=(h, w), ori_shape=(h, w), batch_input_shape=(h, w),
                scale_factor=(1.0, 1.0), pad_shape=(h, w))

    def run():
        with toolbox_scope('mmdet'), torch.no_grad():
            return em.mm_model.predict(x, [DetDataSample(metainfo=meta)], rescale=False)
    return run


def run_detector_benchmark(model: str, config: str, checkpoint: Optional[str],
                           resolution: Optional[Tuple[int, int]], targets: Sequence[str],
                           precisions: Sequence[str], calib_data: Optional[str], calib_size: int,
                           threads: int, runs: int, warmup: int,
                           log: Callable[[str], None] = print) -> dict:
    """Export every (target, precision) dynamic and fixed, then time them and mmdet
    interleaved on one input of ``resolution`` (default: the config's test size)."""
    from iformer_mm.deploy.build import build_export_model
    from iformer_mm.deploy.export import Request, deploy
    from iformer_mm.deploy.targets import get_target
    torch.set_num_threads(threads)
    em = build_export_model(model, 'detector', checkpoint, config, resolution)
    resolution = tuple(em.resolution)
    image, img_shape = em.example_inputs()
    feed = (image.numpy(), img_shape.numpy())
    runners: Dict[str, Callable[[], object]] = {'mmdet_pytorch': _mmdet_predict(em, image)}
    rows: Dict[str, dict] = {'mmdet_pytorch': {'variant': 'mmdet_pytorch', 'precision': 'fp32'}}
    with tempfile.TemporaryDirectory(prefix='iformer-det-bench-') as tmp, \
            MachineMonitor(threads) as monitor:
        for target, precision, shape in itertools.product(targets, precisions, SHAPES):
            name = f'{target}_{precision}_{shape}'
            report = deploy(Request(model=model, target=target, task='detector',
                                    precision=precision, checkpoint=checkpoint, config=config,
                                    resolution=resolution if shape == 'fixed' else None,
                                    calib_data=calib_data, calib_size=calib_size,
                                    threads=threads, out_dir=os.path.join(tmp, name)))
            session = get_target(target).session(report['path'], threads, precision)
            runners[name] = (lambda s=session: s(*feed))
            rows[name] = {'variant': name, 'precision': precision, 'input': report['input'],
                          'precision_ran': (report.get('runtime') or {}).get('precision_ran'),
                          'parity': report['parity'], 'profile': report.get('profile'),
                          'kept_float': report.get('kept_float')}
            log(f'  exported {name}: {report["parity"]["detections_matched"]} of '
                f'{report["parity"]["detections_checked"]} detections matched')
        for run in runners.values():
            for _ in range(warmup):
                run()
        times = time_interleaved(runners, runs)
    machine = monitor.summary()
    for name, ms in times.items():
        rows[name].update(median_ms=statistics.median(ms), min_ms=min(ms), runs=runs)
    ratios = {}
    for name in times:
        if name == 'mmdet_pytorch':
            continue
        ratios[f'{name}_vs_mmdet'] = ratio_stats(times[name], times['mmdet_pytorch'])['median_ratio']
        fp32 = name.replace('_int8_', '_fp32_')
        if fp32 != name and fp32 in times:
            ratios[f'{name}_vs_fp32'] = ratio_stats(times[name], times[fp32])['median_ratio']
        if name.endswith('_dynamic') and name[:-8] + '_fixed' in times:
            ratios[f'{name}_vs_fixed'] = ratio_stats(times[name],
                                                      times[name[:-8] + '_fixed'])['median_ratio']
    log('  ' + ', '.join(f"{n} {r['median_ms']:.1f} ms" for n, r in rows.items()))
    log('  ' + ', '.join(f'{k} {v:.2f}' for k, v in ratios.items()))
    return {'environment': environment(threads), 'machine': machine,
            'method': {'runs': runs, 'warmup': warmup, 'interleaved': True, 'batch': 1,
                       'model': model, 'config': config, 'weights': em.weights,
                       'resolution': list(em.resolution), 'threads': threads,
                       'calibration': {'source': calib_data, 'images': calib_size},
                       'baseline': "mmdet model.predict(rescale=False) of the same fused model "
                                   'on the same padded input',
                       'shapes': 'dynamic: the default artifact (any H x W); fixed: '
                                 '--resolution (the size baked in); both fed this input',
                       'note': 'Linux CPU latencies; the host step (rescale, mask paste) is not '
                               'timed on either side'},
            'versions': {p: package_version(p) for p in ('torch', 'mmdet', 'onnxruntime',
                                                          'openvino', 'nncf')},
            'variants': list(rows.values()), 'ratios': ratios}


def markdown(doc: dict) -> str:
    m = doc['method']
    lines = [f"{doc['environment']['cpu']}, {m['threads']} thread(s), batch 1, "
             f"{m['resolution'][0]}x{m['resolution'][1]}, iFormer-{m['model'].upper()} "
             f"({m['weights']}), median of {m['runs']} interleaved runs; machine: "
             f"{doc['machine']['note']}.", '',
             '| variant | precision ran | median ms | vs mmdet PyTorch | int8 / fp32 | dynamic / '
             'fixed | detections matched (score >= 0.3) |', '|---|---|---|---|---|---|---|']
    r = doc['ratios']
    for row in doc['variants']:
        name = row['variant']
        p = row.get('parity') or {}
        lines.append(f"| {name} | {row.get('precision_ran') or row['precision']} | "
                     f"{row['median_ms']:.1f} | "
                     f"{r.get(name + '_vs_mmdet', 1.0 if name == 'mmdet_pytorch' else float('nan')):.2f} | "
                     f"{r.get(name + '_vs_fp32', float('nan')):.2f} | "
                     f"{r.get(name + '_vs_fixed', float('nan')):.2f} | "
                     f"{p.get('detections_matched', '-')} / {p.get('detections_checked', '-')} |")
    return '\n'.join(lines).replace('| nan |', '| - |') + '\n'
