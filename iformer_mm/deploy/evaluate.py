"""Accuracy of a deployed artifact against the toolbox's own model, on the same prepared images.

``tools/deploy.py --val-data``: the config's test set (under another root) is prepared once
(:mod:`.inputs`), then predicted twice: by the toolbox itself (mmseg / mmdet ``predict`` of the
same fused model; the exported classifier module for mmpretrain) and by the artifact through the
host step every consumer uses (:mod:`.predict`). Both are scored by the toolbox's own metric
arithmetic (mmpretrain top-1, mmseg ``IoUMetric``, mmdet ``CocoMetric``), and compared image by
image (top-1 agreement, pixel agreement, the top detections, :func:`.detections.compare_top`),
so int8 figures are deltas against fp32 on identical inputs.
"""
from __future__ import annotations

import contextlib
import io
import os
from typing import Dict, List, Sequence

import numpy as np
import torch

from ..utils.scope import toolbox_scope
from .detections import compare_top, instances
from .inputs import Prepared
from .predict import Predictor, predict_all, torch_session


def reference_samples(em, prepared: Sequence[Prepared]) -> list:
    """What the toolbox predicts for each prepared image (see module docstring)."""
    if em.task == 'classifier':
        return predict_all(Predictor(em.spec, torch_session(em.model)), prepared)
    out = []
    with toolbox_scope(em.spec.scope), torch.no_grad():
        for p in prepared:
            out.append(em.mm_model.predict(p.inputs, [p.data_sample.clone()])[0])
    return out


def top1(samples: Sequence) -> Dict[str, float]:
    hits = [int(s.pred_label.reshape(-1)[0]) == int(s.gt_label.reshape(-1)[0]) for s in samples]
    return {'top1': float(np.mean(hits)), 'images': len(samples)}


def miou(samples: Sequence, num_classes: int, ignore_index: int = 255) -> Dict[str, float]:
    """mmseg ``IoUMetric``'s mIoU / aAcc over the whole set."""
    from mmseg.evaluation.metrics import IoUMetric
    totals = [torch.zeros(num_classes, dtype=torch.float64) for _ in range(4)]
    for s in samples:
        pred, label = s.pred_sem_seg.data[0].long(), s.gt_sem_seg.data[0].long()
        for total, area in zip(totals, IoUMetric.intersect_and_union(pred, label, num_classes,
                                                                     ignore_index)):
            total += area.double()
    metrics = IoUMetric.total_area_to_metrics(*totals, metrics=['mIoU'])
    return {'mIoU': float(np.nanmean(metrics['IoU'])), 'aAcc': float(metrics['aAcc']),
            'images': len(samples)}


def ann_file(cfg, val_data) -> str:
    """The COCO annotation file of the config's test set (under ``val_data`` when given)."""
    dataset = cfg.test_dataloader.dataset
    if val_data is not None:
        return os.path.join(val_data, dataset.ann_file)
    evaluator = cfg.get('test_evaluator') or {}
    return evaluator.get('ann_file') or os.path.join(dataset.get('data_root', ''), dataset.ann_file)


def coco_map(samples: Sequence, ann: str, classes: Sequence[str],
             with_masks: bool) -> Dict[str, float]:
    """mmdet ``CocoMetric`` over ``samples`` (predicted DetDataSamples), on these images only."""
    from mmdet.evaluation import CocoMetric
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('ERROR')  # the COCO summary tables: the report carries the numbers
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            metric = CocoMetric(ann_file=ann, metric=['bbox', 'segm'] if with_masks else ['bbox'])
            metric.dataset_meta = {'classes': tuple(classes)}
            metric.img_ids = [int(s.metainfo['img_id']) for s in samples]
            for sample in samples:
                metric.process({}, [sample.to_dict()])
            raw = metric.evaluate(len(samples))
    finally:
        logger.setLevel(level)
    keep = ('bbox_mAP', 'bbox_mAP_50', 'segm_mAP', 'segm_mAP_50')
    return {**{k.replace('coco/', ''): float(v) for k, v in raw.items()
               if k.replace('coco/', '') in keep}, 'images': len(samples)}


def _agreement(task: str, reference: Sequence, artifact: Sequence) -> Dict[str, object]:
    if task == 'classifier':
        same = [int(a.pred_label[0]) == int(b.pred_label[0]) for a, b in zip(reference, artifact)]
        return {'top1_agreement': float(np.mean(same))}
    if task == 'segmentor':
        agree = [float((a.pred_sem_seg.data == b.pred_sem_seg.data).float().mean())
                 for a, b in zip(reference, artifact)]
        return {'pixel_agreement_min': min(agree), 'pixel_agreement_mean': float(np.mean(agree))}
    tops = [compare_top(instances(a), instances(b)) for a, b in zip(reference, artifact)]
    return {'top_detections_compared': sum(t['compared'] for t in tops),
            'top_detections_matched': sum(t['matched'] for t in tops),
            'top_detections_rule': tops[0]['rule'] if tops else None}


def accuracy(em, predictor: Predictor, prepared: Sequence[Prepared],
             val_data=None) -> Dict[str, object]:
    """The report's ``accuracy``: metric of the toolbox and of the artifact, delta, agreement."""
    reference: List = reference_samples(em, prepared)
    artifact: List = predict_all(predictor, prepared)
    task = em.task
    if task == 'classifier':
        key, score = 'top1', top1
    elif task == 'segmentor':
        key, score = 'mIoU', lambda s: miou(s, em.num_classes)
    else:
        from mmdet.datasets import CocoDataset
        ann = ann_file(em.cfg, val_data)
        classes = em.classes or CocoDataset.METAINFO['classes']  # a COCO config names none
        key = None
        score = lambda s: coco_map(s, ann, classes, em.model.with_mask)  # noqa: E731
    ref, art = score(reference), score(artifact)
    keys = [key] if key else [k for k in ref if k != 'images']
    delta = {k: round(100 * (art[k] - ref[k]), 3) for k in keys}
    return {'data': val_data, 'metric': key or 'coco', 'pytorch_fp32': ref, 'artifact': art,
            'delta_points': delta[key] if key else delta,
            **_agreement(task, reference, artifact)}
