"""The exported detector's outputs -> mmdet's ``DetDataSample``, on the host.

What mmdet's ``predict(..., rescale=True)`` does after the network, done to the artifact's fixed
outputs (:mod:`.detector`): drop the zero-score padding rows, clip the boxes to the resized image
(the artifact clipped them to its padded input), divide by the pipeline's ``scale_factor``, and
paste each 28x28 mask probability map into the original image with mmdet's own
``_do_paste_mask`` (bilinear ``grid_sample``, one box at a time as mmdet does on CPU), thresholded
at the config's ``mask_thr_binary``. The result is what mmdet's ``CocoMetric`` and
``DetLocalVisualizer`` take.
"""
from __future__ import annotations

from typing import Mapping, Sequence, Tuple

import numpy as np
import torch


def to_det_sample(outputs: Sequence[np.ndarray], meta: Mapping, mask_thr: float = 0.5):
    """``outputs`` = (boxes, scores, labels[, masks]) of one image; ``meta`` its pipeline
    metainfo (``img_shape``, ``ori_shape``, ``scale_factor``; ``img_id`` etc. are kept)."""
    from mmdet.models.roi_heads.mask_heads.fcn_mask_head import _do_paste_mask
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    boxes, scores, labels = (torch.as_tensor(np.asarray(o)) for o in outputs[:3])
    keep = scores > 0
    boxes, scores, labels = boxes[keep].float(), scores[keep].float(), labels[keep].long()
    img_h, img_w = meta['img_shape'][:2]
    boxes[:, 0::2] = boxes[:, 0::2].clamp(min=0, max=img_w)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(min=0, max=img_h)
    w_scale, h_scale = meta.get('scale_factor', (1.0, 1.0))[:2]
    boxes = boxes / boxes.new_tensor([w_scale, h_scale, w_scale, h_scale])
    pred = InstanceData(bboxes=boxes, scores=scores, labels=labels)
    if len(outputs) > 3:
        probs = torch.as_tensor(np.asarray(outputs[3]))[keep].float()
        ori_h, ori_w = meta['ori_shape'][:2]
        masks = torch.zeros(len(probs), ori_h, ori_w, dtype=torch.bool)
        for i in range(len(probs)):
            pasted, region = _do_paste_mask(probs[i:i + 1, None], boxes[i:i + 1], ori_h, ori_w,
                                            skip_empty=True)
            masks[(slice(i, i + 1),) + region] = pasted >= mask_thr
        pred.masks = masks
    sample = DetDataSample(metainfo=dict(meta))
    sample.pred_instances = pred
    return sample


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of (n, 4) and (m, 4) xyxy boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=1)  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-12)


def match_detections(ref: Sequence[np.ndarray], got: Sequence[np.ndarray],
                     min_score: float = 0.3, min_iou: float = 0.99) -> dict:
    """Does every reference detection with score >= ``min_score`` have a detection of the same
    label in ``got`` with box IoU >= ``min_iou``? (boxes, scores, labels[, masks]) each.

    Row-by-row comparison would be wrong: two near-equal scores may swap order between two
    runtimes, so detections are matched by label and overlap, and the figures (score and mask
    differences) are taken over matched pairs.
    """
    rb, rs, rl = (np.asarray(o) for o in ref[:3])
    gb, gs, gl = (np.asarray(o) for o in got[:3])
    wanted = np.nonzero(rs >= min_score)[0]
    live = np.nonzero(gs > 0)[0]
    ious = box_iou(rb[wanted], gb[live]) if len(wanted) and len(live) else np.zeros((len(wanted), 0))
    matched, worst_iou, score_diff, mask_diff = 0, 1.0, 0.0, 0.0
    for row, i in enumerate(wanted):
        same = [c for c, j in enumerate(live) if gl[j] == rl[i]]
        if not same:
            worst_iou = 0.0
            continue
        c = max(same, key=lambda c: ious[row, c])
        j = live[c]
        worst_iou = min(worst_iou, float(ious[row, c]))
        if ious[row, c] >= min_iou:
            matched += 1
            score_diff = max(score_diff, float(abs(rs[i] - gs[j])))
            if len(ref) > 3:
                mask_diff = max(mask_diff, float(np.abs(np.asarray(ref[3])[i].astype(np.float64)
                                                        - np.asarray(got[3])[j]).max()))
    out = {'checked': int(len(wanted)), 'matched': matched, 'min_iou': worst_iou,
           'max_score_diff': score_diff, 'detections': int(len(live)),
           'reference_detections': int((rs > 0).sum())}
    if len(ref) > 3:
        out['max_mask_diff'] = mask_diff
    return out


#: the acceptance rule of an fp32 artifact (and of the report's figures)
MATCH_RULE = ('every PyTorch detection with score >= 0.3 has one of the same label with box '
              'IoU >= 0.99')


def match_summary(pairs: Sequence[Tuple[Sequence[np.ndarray], Sequence[np.ndarray]]]) -> dict:
    """:func:`match_detections` over (reference, artifact) pairs of many images: the rule at
    score >= 0.3, and the same rule over every detection whatever its score (for information:
    a model with random weights scores few detections 0.3)."""
    rule = [match_detections(ref, got) for ref, got in pairs]
    every = [match_detections(ref, got, min_score=1e-12) for ref, got in pairs]
    return {'detections_checked': sum(m['checked'] for m in rule),
            'detections_matched': sum(m['matched'] for m in rule),
            'match_rule': MATCH_RULE,
            'all_detections_checked': sum(m['checked'] for m in every),
            'all_detections_matched': sum(m['matched'] for m in every),
            'min_iou': min((m['min_iou'] for m in rule), default=1.0),
            'max_abs_diff': max((max(m['max_score_diff'], m.get('max_mask_diff', 0.0))
                                 for m in rule), default=0.0),
            'detections_per_input': [m['detections'] for m in rule],
            'pytorch_detections_per_input': [m['reference_detections'] for m in rule]}
