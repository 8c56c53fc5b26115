"""Comparing detections: an artifact's against the toolbox's, one image at a time.

Row-by-row comparison would be wrong: two near-equal scores may swap order between two runtimes,
so detections are matched by label and box overlap. :func:`match_detections` /
:func:`match_summary` compare raw outputs (the deploy checks); :func:`compare_top` compares two
data samples as ``tools/test.py --out`` dumps them, in original-image pixels (the acceptance rule
of a deployed detector: its top detections are the toolbox's).
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import numpy as np


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


#: masks that differ in at most this many pixels count as equal: a pixel whose probability sits
#: at ``mask_thr_binary`` flips with float rounding, which decides a mask of a few pixels' IoU
MASK_PIXEL_SLACK = 2
#: ``compare_top``'s rule, as reports and tests quote it
TOP_RULE = ('top-{top} detections: same label, box IoU >= {iou}, score within {score}, '
            f'mask IoU >= {{mask}} (or <= {MASK_PIXEL_SLACK} pixels differ)')


def _mask(mask) -> np.ndarray:
    """A boolean mask from an array or from the RLE dict mmdet's ``DumpDetResults`` writes."""
    if isinstance(mask, dict):
        from pycocotools import mask as mask_utils
        return mask_utils.decode(mask).astype(bool)
    return np.asarray(mask, dtype=bool)


def _mask_iou(a, b) -> float:
    a, b = _mask(a), _mask(b)
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _same_mask(a, b, min_iou: float) -> bool:
    a, b = _mask(a), _mask(b)
    return int((a != b).sum()) <= MASK_PIXEL_SLACK or _mask_iou(a, b) >= min_iou


def compare_top(ref: Dict[str, np.ndarray], got: Dict[str, np.ndarray], top: int = 10,
                min_iou: float = 0.99, score_tol: float = 1e-3, min_mask_iou: float = 0.95
                ) -> Dict[str, object]:
    """How many of ``ref``'s ``top`` best detections ``got`` has (same label, box IoU >=
    ``min_iou``, score within ``score_tol``, mask IoU >= ``min_mask_iou`` or at most
    :data:`MASK_PIXEL_SLACK` pixels different, when both have masks).

    ``ref`` / ``got``: ``pred_instances`` as dicts of arrays (``bboxes``, ``scores``, ``labels``,
    optional ``masks``: arrays or RLE dicts), e.g. :func:`instances` of a ``DetDataSample`` or
    one entry of a ``tools/test.py --out`` pickle.
    """
    order = np.argsort(-_array(ref['scores']), kind='stable')[:top]
    rb, rs, rl = (_array(ref[k]) for k in ('bboxes', 'scores', 'labels'))
    gb, gs, gl = (_array(got[k]) for k in ('bboxes', 'scores', 'labels'))
    masks = 'masks' in ref and 'masks' in got
    ious = box_iou(rb[order], gb) if len(order) and len(gb) else np.zeros((len(order), 0))
    matched, worst = 0, 1.0
    for row, i in enumerate(order):
        ok = [j for j in range(len(gb)) if gl[j] == rl[i] and ious[row, j] >= min_iou
              and abs(float(gs[j]) - float(rs[i])) <= score_tol]
        if masks:
            ok = [j for j in ok if _same_mask(ref['masks'][i], got['masks'][j], min_mask_iou)]
        matched += bool(ok)
        worst = min(worst, max((float(ious[row, j]) for j in range(len(gb)) if gl[j] == rl[i]),
                               default=0.0))
    return {'compared': int(len(order)), 'matched': matched, 'min_best_iou': worst,
            'rule': TOP_RULE.format(top=top, iou=min_iou, score=score_tol, mask=min_mask_iou)}


def _array(value) -> np.ndarray:
    return value.numpy() if hasattr(value, 'numpy') else np.asarray(value)


def instances(sample) -> Dict[str, np.ndarray]:
    """A ``DetDataSample``'s ``pred_instances`` as a dict of arrays (what ``--out`` dumps)."""
    pred = sample.pred_instances
    out = {k: pred[k].numpy() for k in ('bboxes', 'scores', 'labels')}
    if 'masks' in pred:
        out['masks'] = pred.masks.numpy()
    return out
