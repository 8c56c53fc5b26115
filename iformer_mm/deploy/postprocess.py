"""An artifact's outputs -> the toolbox's own data sample, as the toolbox's ``predict`` makes it.

The one host step behind :class:`~.runner.ArtifactRunner`, ``tools/infer.py --artifact``,
``tools/test.py CONFIG ARTIFACT`` (:mod:`.backend_model`) and the deploy checks, so a deployed
model's predictions are what the toolbox's metrics, ``--out`` dumps and visualisers take. Each
function reproduces the toolbox's own post-processing, reading its settings from the spec
(:func:`~.spec.postprocess_of` reads them from the config, once):

* classifier (mmpretrain ``ClsHead.predict``): softmax scores and the arg-max label;
* segmentor (mmseg ``BaseSegmentor.postprocess_result``): the logits' valid region (a fixed-size
  artifact's padding dropped), un-flipped, resized to the original image with the config's
  ``align_corners``, arg-max; a ``seg_map`` artifact's class map resized nearest;
* detector (mmdet ``predict(rescale=True)``): the zero-score padding rows dropped, boxes divided
  by the pipeline's ``scale_factor``, each 28x28 mask probability map pasted into the original
  image with mmdet's own ``_do_paste_mask`` (one box at a time, as mmdet does on CPU) and
  thresholded at ``mask_thr_binary``.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .spec import DeploySpec


def classifier_sample(outputs: Sequence[np.ndarray], meta: Dict[str, Any], sample=None):
    """mmpretrain ``DataSample`` with ``pred_score`` / ``pred_label``."""
    from mmpretrain.structures import DataSample
    sample = sample if sample is not None else DataSample(metainfo=meta)
    scores = torch.from_numpy(np.asarray(outputs[0])).float().reshape(-1).softmax(0)
    return sample.set_pred_score(scores).set_pred_label(scores.argmax().reshape(1))


def seg_logits_at_original(logits: torch.Tensor, meta: Dict[str, Any],
                           align_corners: bool) -> torch.Tensor:
    """(1, C, H, W) logits of the input -> (C, h0, w0) at the original image's size."""
    h, w = meta['img_shape'][:2]
    logits = logits[:, :, :h, :w]
    if meta.get('flip'):
        logits = logits.flip(dims=(3,) if meta.get('flip_direction') == 'horizontal' else (2,))
    return F.interpolate(logits, size=tuple(meta['ori_shape'][:2]), mode='bilinear',
                         align_corners=align_corners)[0]


def segmentor_sample(outputs: Sequence[np.ndarray], meta: Dict[str, Any], spec: DeploySpec,
                     sample=None):
    """mmseg ``SegDataSample`` with ``seg_logits`` and ``pred_sem_seg`` at the original size."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    sample = sample if sample is not None else SegDataSample(metainfo=meta)
    out = torch.from_numpy(np.asarray(outputs[0]))
    if out.dtype.is_floating_point:  # logits (1, C, H, W)
        logits = seg_logits_at_original(out.float(), meta, spec.postprocess['align_corners'])
        sample.set_data({'seg_logits': PixelData(data=logits),
                         'pred_sem_seg': PixelData(data=logits.argmax(0, keepdim=True))})
        return sample
    h, w = meta['img_shape'][:2]  # a class map (1, H, W)
    label = out.reshape(1, 1, *out.shape[-2:])[:, :, :h, :w].float()
    label = F.interpolate(label, size=tuple(meta['ori_shape'][:2]), mode='nearest')[0].long()
    sample.set_data({'pred_sem_seg': PixelData(data=label)})
    return sample


def detector_sample(outputs: Sequence[np.ndarray], meta: Dict[str, Any], spec: DeploySpec,
                    sample=None):
    """mmdet ``DetDataSample`` with ``pred_instances`` (boxes, scores, labels[, masks]) in
    original-image pixels, as ``predict(rescale=True)`` gives them."""
    return detections_sample(outputs, meta, spec.postprocess.get('mask_thr_binary', 0.5), sample)


def detections_sample(outputs: Sequence[np.ndarray], meta: Dict[str, Any], mask_thr: float = 0.5,
                      sample=None):
    """:func:`detector_sample` with the mask threshold given (outputs of the export module)."""
    from mmdet.models.roi_heads.mask_heads.fcn_mask_head import _do_paste_mask
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    boxes, scores, labels = (torch.as_tensor(np.asarray(o)) for o in outputs[:3])
    keep = scores > 0
    boxes, scores, labels = boxes[keep].float(), scores[keep].float(), labels[keep].long()
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
    sample = sample if sample is not None else DetDataSample(metainfo=dict(meta))
    sample.pred_instances = pred
    return sample


def to_sample(outputs: Sequence[np.ndarray], meta: Dict[str, Any], spec: DeploySpec, sample=None):
    """The toolbox's data sample for ``spec.task`` (``sample``: the one to fill, e.g. the data
    sample with ground truth that the toolbox's evaluator reads; a new one when None)."""
    if spec.task == 'classifier':
        return classifier_sample(outputs, meta, sample)
    if spec.task == 'segmentor':
        return segmentor_sample(outputs, meta, spec, sample)
    if spec.task == 'detector':
        return detector_sample(outputs, meta, spec, sample)
    raise ValueError(f'{spec.task} artifacts answer with feature maps, not predictions')
