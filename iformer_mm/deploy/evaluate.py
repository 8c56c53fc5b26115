"""Accuracy of a model as a runtime runs it: top-1 (classifier), mIoU (segmentor), COCO mAP (detector).

The same function scores PyTorch and every exported artifact on the same prepared samples
(:mod:`.inputs`), so the int8 figures are deltas against fp32 on identical inputs. mIoU is
computed with mmseg's own ``IoUMetric`` arithmetic (per-class intersection / union over the whole
set, classes absent from both prediction and ground truth ignored), the logits resized to the
label map's size first, as mmseg's ``predict`` does. The detector is scored by mmdet's own
``CocoMetric`` (bbox and, with masks, segm) on the images scored, its reference is mmdet's own
``predict`` of the same (fused) model on the same padded inputs, and every image's detections
are also matched one by one (:func:`.detections.match_detections`).
"""
from __future__ import annotations

from typing import Callable, Dict, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .inputs import Sample

#: one forward: normalised NCHW float32 -> the model's first output as an array
Forward = Callable[[np.ndarray], np.ndarray]


def top1(forward: Forward, samples: Sequence[Sample]) -> Dict[str, float]:
    hits = [int(np.argmax(forward(s.inputs.numpy()).reshape(-1))) == s.label for s in samples]
    return {'top1': float(np.mean(hits)), 'images': len(samples)}


def _label_map(output: np.ndarray, size) -> torch.Tensor:
    out = torch.from_numpy(np.asarray(output))
    if out.dtype.is_floating_point:  # logits (1, C, H, W)
        return F.interpolate(out.float(), size=size, mode='bilinear', align_corners=False).argmax(1)[0]
    return F.interpolate(out.float().reshape(1, 1, *out.shape[-2:]), size=size,
                         mode='nearest')[0, 0].long()  # an argmax map (1, H, W)


def miou(forward: Forward, samples: Sequence[Sample], num_classes: int,
         ignore_index: int = 255) -> Dict[str, float]:
    from mmseg.evaluation.metrics import IoUMetric
    totals = [torch.zeros(num_classes, dtype=torch.float64) for _ in range(4)]
    for s in samples:
        label = torch.from_numpy(s.seg_map.astype(np.int64))
        pred = _label_map(forward(s.inputs.numpy()), tuple(label.shape))
        for total, area in zip(totals, IoUMetric.intersect_and_union(pred, label, num_classes,
                                                                     ignore_index)):
            total += area.double()
    metrics = IoUMetric.total_area_to_metrics(*totals, metrics=['mIoU'])
    return {'mIoU': float(np.nanmean(metrics['IoU'])), 'aAcc': float(metrics['aAcc']),
            'images': len(samples)}


def accuracy(task: str, forward: Forward, samples: Sequence[Sample],
             num_classes: int = None) -> Dict[str, float]:
    if task == 'classifier':
        return top1(forward, samples)
    if task == 'segmentor':
        return miou(forward, samples, num_classes)
    raise ValueError(f'accuracy is defined for the classifier and the segmentor, not {task!r}')


def _ann_file(cfg, val_data) -> str:
    """The COCO annotation file of the config's test set (under ``val_data`` when given)."""
    import os
    dataset = cfg.test_dataloader.dataset
    if val_data is not None:
        return os.path.join(val_data, dataset.ann_file)
    evaluator = cfg.get('test_evaluator') or {}
    return evaluator.get('ann_file') or os.path.join(dataset.get('data_root', ''), dataset.ann_file)


def coco_map(predictions, samples: Sequence[Sample], ann_file: str, classes: Sequence[str],
             with_masks: bool) -> Dict[str, float]:
    """mmdet ``CocoMetric`` over ``predictions`` (DetDataSamples), restricted to these images."""
    import contextlib
    import io

    from mmdet.evaluation import CocoMetric
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('ERROR')  # the COCO summary tables: the report carries the numbers
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            metric = CocoMetric(ann_file=ann_file,
                                metric=['bbox', 'segm'] if with_masks else ['bbox'])
            metric.dataset_meta = {'classes': tuple(classes)}
            metric.img_ids = [int(s.meta['img_id']) for s in samples]
            for sample in predictions:
                metric.process({}, [sample.to_dict()])
            raw = metric.evaluate(len(samples))
    finally:
        logger.setLevel(level)
    keep = ('bbox_mAP', 'bbox_mAP_50', 'segm_mAP', 'segm_mAP_50')
    return {**{k.replace('coco/', ''): float(v) for k, v in raw.items()
               if k.replace('coco/', '') in keep}, 'images': len(samples)}


def detector_accuracy(em, session, samples: Sequence[Sample], val_data=None) -> Dict[str, object]:
    """COCO mAP of mmdet's own ``predict`` and of the artifact, and per-image matching."""
    from mmdet.structures import DetDataSample

    from ..utils.scope import toolbox_scope
    from .detections import match_summary, to_det_sample
    mask_thr = em.model.mask_thr_binary
    reference, artifact, pairs = [], [], []
    with toolbox_scope('mmdet'), torch.no_grad():
        for s in samples:
            ref = em.mm_model.predict(s.inputs, [DetDataSample(metainfo=s.meta)], rescale=True)[0]
            got = to_det_sample(session(s.inputs.numpy()), s.meta, mask_thr)
            reference.append(ref)
            artifact.append(got)
            pairs.append(tuple([p.bboxes.numpy(), p.scores.numpy(), p.labels.numpy()]
                               for p in (ref.pred_instances, got.pred_instances)))
    ann_file = _ann_file(em.cfg, val_data)
    classes = em.classes  # the config's metainfo; a COCO config names none: COCO's 80
    if not classes:
        from mmdet.datasets import CocoDataset
        classes = CocoDataset.METAINFO['classes']
    ref_map = coco_map(reference, samples, ann_file, classes, em.model.with_mask)
    art_map = coco_map(artifact, samples, ann_file, classes, em.model.with_mask)
    matches = match_summary(pairs)  # per image, in original image coordinates
    return {'data': val_data, 'metric': 'coco', 'ann_file': ann_file,
            'pytorch_fp32': ref_map, 'artifact': art_map,
            'delta_points': {k: round(100 * (art_map[k] - ref_map[k]), 3)
                             for k in ref_map if k != 'images'},
            **{k: v for k, v in matches.items() if 'per_input' not in k}}
