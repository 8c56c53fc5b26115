"""Accuracy of a model as a runtime runs it: top-1 (classifier) or mIoU (segmentor).

The same function scores PyTorch and every exported artifact on the same prepared samples
(:mod:`.inputs`), so the int8 figures are deltas against fp32 on identical inputs. mIoU is
computed with mmseg's own ``IoUMetric`` arithmetic (per-class intersection / union over the whole
set, classes absent from both prediction and ground truth ignored), the logits resized to the
label map's size first, as mmseg's ``predict`` does.
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
