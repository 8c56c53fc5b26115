"""Does a deployed artifact give what the toolbox's own ``tools/test.py`` gives? Per image.

``python tools/benchmark.py agreement --config CONFIG [--sizes 640x480,480x640,...]``: a
generated set in the config's layout (COCO for mmdet, ADE20K for mmseg) whose images have the
given sizes (default: shaped as COCO / ADE20K images are), a model with random weights (random
BN statistics; a detector's box classifier sharpened so it has confident, well-separated
detections) or ``--checkpoint``, exported by ``tools/deploy.py`` for each runtime (the default
dynamic artifact, and with ``--resolution`` also a fixed-size one), then the toolbox's own
``tools/test.py CONFIG CHECKPOINT --out`` against our ``tools/test.py CONFIG ARTIFACT --out``,
each a separate process as a user runs them. Per image: how many of the toolbox's top-10
detections the artifact has (same label, box IoU >= 0.99, score within 1e-3, mask IoU >= 0.95),
or the share of equal pixels; per set: mAP / mIoU of both.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .machine import environment, package_version
from .train_throughput import random_bn_statistics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: image sizes (W x H) as the real sets have them: landscape, portrait, 2:1, 1:2, odd, square
DEFAULT_SIZES = {'mmdet': '640x480,480x640,600x300,300x600,427x640,500x333,512x512',
                 'mmseg': '640x480,480x640,683x512,512x683,1024x256,500x333,512x512'}
TOOLBOX_TASK = {'mmdet': 'detector', 'mmseg': 'segmentor'}


def random_checkpoint(config: str, task: str, path: str, seed: int = 0) -> str:
    """A checkpoint of ``config``'s model with random weights and random BN statistics, saved as
    the toolbox saves one. A detector's RPN and box classifiers are recentred and rescaled so
    each class's logit has mean 0 and standard deviation :data:`LOGIT_STD` over the boxes of a
    random image: with random weights the logits otherwise vary little from box to box
    (measured on the demo config: std 0.3-0.7 for the RPN, 0.07 for the box classifier), so
    float rounding decides which of two near-tied boxes NMS keeps and a comparison of detections
    compares noise; scaled without recentring, one class's offset saturates softmax at exactly
    1.0 and ties again. Rescaled, it has confident detections with scores apart."""
    from iformer_mm.deploy.mm_model import build_mm_model
    from iformer_mm.utils.configs import load_config
    cfg = load_config(config)
    torch.manual_seed(seed)
    model = random_bn_statistics(build_mm_model(cfg, task), seed + 3).eval()
    if task == 'detector':
        _spread_detector_logits(model, seed)
    classes = ((cfg.get('test_dataloader') or {}).get('dataset', {}).get('metainfo') or {}).get(
        'classes')
    meta = {'dataset_meta': {'classes': tuple(classes)}} if classes else {}
    torch.save({'state_dict': model.state_dict(), 'meta': meta}, path)
    return path


#: the standard deviation a random detector's classifier logits are scaled to
LOGIT_STD = 2.0


@torch.no_grad()
def _spread_detector_logits(model, seed: int) -> None:
    """Recentre and scale the RPN's and the box head's classifiers (see
    :func:`random_checkpoint`): per output channel, logits of mean 0 and std :data:`LOGIT_STD`."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.bbox import bbox2roi

    from iformer_mm.utils.scope import toolbox_scope
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(seed))
    meta = dict(img_shape=(128, 128), ori_shape=(128, 128), scale_factor=(1.0, 1.0),
                batch_input_shape=(128, 128))
    rpn, head = model.rpn_head.rpn_cls, model.roi_head.bbox_head.fc_cls
    with toolbox_scope('mmdet'):
        feats = model.extract_feat(x)
        logits = torch.cat([c.permute(1, 0, 2, 3).flatten(1) for c in model.rpn_head(feats)[0]], 1)
        recentre(rpn, logits)  # (anchors per cell, cells of every level)
        proposals = model.rpn_head.predict(feats, [DetDataSample(metainfo=meta)], rescale=False)
        scores = model.roi_head._bbox_forward(feats, bbox2roi([p.bboxes for p in proposals]))
        recentre(head, scores['cls_score'].t())  # (classes + background, boxes)


def recentre(layer, logits: torch.Tensor) -> None:
    """Affine-correct ``layer`` so each output channel of ``logits`` (C, N), which it computed,
    gets mean 0 and std :data:`LOGIT_STD`."""
    mean, std = logits.mean(1), logits.std(1).clamp(min=1e-6)
    scale = LOGIT_STD / std
    layer.weight.mul_(scale.view(-1, *[1] * (layer.weight.dim() - 1)))
    layer.bias.copy_((layer.bias - mean) * scale)


def _config_classes(cfg) -> List[str]:
    from mmdet.datasets import CocoDataset
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    classes = (dataset.get('metainfo') or {}).get('classes')
    return list(classes or CocoDataset.METAINFO['classes'])  # a COCO config names none


def _categories_as(ann_file: str, classes: Sequence[str]) -> None:
    """Give a generated COCO file the config's category list (the shapes become its first
    classes), so a config trained on other classes (the COCO recipe's 80) evaluates it."""
    with open(ann_file) as f:
        coco = json.load(f)
    if [c['name'] for c in coco['categories']] == list(classes):
        return
    coco['categories'] = [dict(id=i + 1, name=name, supercategory='shape')
                          for i, name in enumerate(classes)]
    with open(ann_file, 'w') as f:
        json.dump(coco, f)


def _dataset(cfg, scope: str, root: str, sizes: str, seed: int) -> Tuple[str, List[str]]:
    """The generated set and the --cfg-options that point the config's test set at it."""
    from demo.shapes import make_ade20k, make_coco
    count = len(sizes.split(','))
    if scope == 'mmdet':
        make_coco(root, num_train=1, num_val=count, seed=seed, sizes=sizes)
        ann = os.path.join(root, 'annotations', 'instances_val2017.json')
        _categories_as(ann, _config_classes(cfg))
        return root, [f'test_dataloader.dataset.data_root={root}/',
                      f'test_evaluator.ann_file={ann}']
    make_ade20k(root, num_train=1, num_val=count, seed=seed, sizes=sizes)
    data = os.path.join(root, 'ADEChallengeData2016')
    return data, [f'test_dataloader.dataset.data_root={data}']


def _run(argv: Sequence[str], threads: int) -> str:
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS=str(threads),
               OMP_WAIT_POLICY='PASSIVE')
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env,
                          cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f'{argv[0]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}')
    return proc.stdout + proc.stderr


def last_metrics(log: str) -> Dict[str, float]:
    """The metrics mmengine's runner logs at the end of a test (``key: value`` pairs)."""
    line = [x for x in log.splitlines() if re.search(r'(Epoch|Iter)\(test\)', x)][-1]
    return {k: float(v) for k, v in re.findall(r'([\w/]+): (-?[\d.]+)', line.split(']', 1)[1])}


def _per_image(scope: str, ref_out: str, ours_out: str) -> List[dict]:
    if scope == 'mmdet':
        from iformer_mm.deploy.detections import compare_top
        with open(ref_out, 'rb') as f:
            want = {d['img_id']: d for d in pickle.load(f)}
        with open(ours_out, 'rb') as f:
            got = {d['img_id']: d for d in pickle.load(f)}
        rows = []
        for img_id in sorted(want):
            h, w = want[img_id]['ori_shape']
            r = compare_top(want[img_id]['pred_instances'], got[img_id]['pred_instances'])
            rows.append({'image': f'{w}x{h}', 'top10_equal': r['matched'],
                         'compared': r['compared']})
        return rows
    from PIL import Image
    rows = []
    for name in sorted(os.listdir(ref_out)):
        a = np.asarray(Image.open(os.path.join(ref_out, name)))
        b = np.asarray(Image.open(os.path.join(ours_out, name)))
        rows.append({'image': f'{a.shape[1]}x{a.shape[0]}', 'pixels_equal': float((a == b).mean())})
    return rows


def run_agreement(config: str, model: str, targets: Sequence[str], sizes: Optional[str],
                  checkpoint: Optional[str], resolution: Optional[Tuple[int, int]], threads: int,
                  seed: int = 0, log: Callable[[str], None] = print) -> dict:
    """Export, test both ways, compare (module docstring); returns the results document."""
    from iformer_mm.deploy.export import Request, deploy
    from iformer_mm.utils.configs import load_config
    cfg = load_config(config)
    scope = cfg.get('default_scope')
    if scope not in TOOLBOX_TASK:
        raise ValueError(f'--config {config} is a {scope} config; agreement compares mmdet '
                         'detectors and mmseg segmentors')
    task, sizes = TOOLBOX_TASK[scope], sizes or DEFAULT_SIZES[scope]
    weights = checkpoint or ('random (random BN statistics' +
                             (', RPN and box classifier logits spread)' if task == 'detector' else ')'))
    tool = os.path.join(os.path.dirname(__import__(scope).__file__), '.mim', 'tools', 'test.py')
    out = '.pkl' if scope == 'mmdet' else ''
    results = []
    with tempfile.TemporaryDirectory(prefix='iformer-agreement-') as tmp:
        data, options = _dataset(cfg, scope, os.path.join(tmp, 'data'), sizes, seed)
        checkpoint = checkpoint or random_checkpoint(config, task, os.path.join(tmp, 'm.pth'),
                                                     seed)
        ref_out = os.path.join(tmp, 'ref' + out)
        ref = last_metrics(_run([tool, config, checkpoint, '--out', ref_out, '--work-dir',
                                 os.path.join(tmp, 'ref_work'), '--cfg-options', *options],
                                threads))
        log(f'  {scope} tools/test.py on the checkpoint: {ref}')
        shapes = [('dynamic', None)] + ([('fixed', resolution)] if resolution else [])
        for target in targets:
            for shape, fixed in shapes:
                name = f'{target}_{shape}'
                report = deploy(Request(model=model, target=target, task=task,
                                        checkpoint=checkpoint, config=config, resolution=fixed,
                                        threads=threads, out_dir=os.path.join(tmp, name)))
                ours_out = os.path.join(tmp, name + out)
                ours = last_metrics(_run(['tools/test.py', config, report['path'], '--out',
                                          ours_out, '--work-dir', os.path.join(tmp, name + '_w'),
                                          '--cfg-options', *options], threads))
                rows = _per_image(scope, ref_out, ours_out)
                log(f'  {name}: {rows}')
                results.append({'artifact': name, 'input': report['input'], 'metrics': ours,
                                'per_image': rows})
    return {'environment': environment(threads),
            'method': {'config': os.path.relpath(config, REPO), 'model': model, 'task': task,
                       'sizes': sizes, 'weights': weights,
                       'reference': f"{scope}'s own tools/test.py CONFIG CHECKPOINT --out",
                       'ours': 'tools/test.py CONFIG ARTIFACT --out (the artifact in its runtime)',
                       'rule': ('top-10 detections: same label, box IoU >= 0.99, score within '
                                '1e-3, mask IoU >= 0.95' if task == 'detector'
                                else 'share of equal pixels of the --out label maps'),
                       'threads': threads, 'seed': seed},
            'versions': {p: package_version(p) for p in ('torch', 'mmdet', 'mmsegmentation',
                                                          'onnxruntime', 'openvino')},
            'reference': ref, 'artifacts': results}


def markdown(doc: dict) -> str:
    m = doc['method']
    images = [r['image'] for r in doc['artifacts'][0]['per_image']] if doc['artifacts'] else []
    key = 'top10_equal' if m['task'] == 'detector' else 'pixels_equal'
    metric = ('coco/bbox_mAP', 'coco/segm_mAP') if m['task'] == 'detector' else ('mIoU',)
    lines = [f"{m['reference']} vs {m['ours']}; {m['config']}, iFormer-{m['model'].upper()}, "
             f"{m['weights']}; {m['rule']}.", '',
             '| artifact | ' + ' | '.join(images) + ' | ' + ' | '.join(metric) + ' |',
             '|---' * (len(images) + len(metric) + 1) + '|',
             '| toolbox (checkpoint) | ' + ' | '.join('-' for _ in images) + ' | '
             + ' | '.join(f"{doc['reference'].get(k, float('nan')):.4f}" for k in metric) + ' |']
    for a in doc['artifacts']:
        cells = [(f"{r[key]} / {r['compared']}" if key == 'top10_equal'
                  else f"{100 * r[key]:.3f}%") for r in a['per_image']]
        lines.append(f"| {a['artifact']} | " + ' | '.join(cells) + ' | '
                     + ' | '.join(f"{a['metrics'].get(k, float('nan')):.4f}" for k in metric) + ' |')
    return '\n'.join(lines) + '\n'


def write(doc: dict, path: str) -> str:
    """The JSON at ``path`` and the Markdown table beside it; returns the table's path."""
    from iformer_mm.utils.fileio import atomic_write_text
    atomic_write_text(path, json.dumps(doc, indent=1) + '\n')
    table = os.path.splitext(path)[0] + '.md'
    atomic_write_text(table, markdown(doc))
    return table
