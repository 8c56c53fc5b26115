"""The whole two-stage mmdet detector (Mask / Faster R-CNN) as one exportable module.

Why a wrapper and not mmdet's ``TwoStageDetector`` itself: its ``predict`` takes data samples,
loops over levels and images in Python and calls mmcv's custom ``RoIAlign`` / ``nms`` ops, which
export to ONNX only as custom ops (``MMCVRoiAlign``, mmdeploy's plugin library) that a stock
ONNX Runtime or OpenVINO cannot load. :class:`DetectorForExport` runs the same arithmetic as
mmdet 3.3's test path for one image of any size, written with torchvision's ``nms`` /
``roi_align``, which export to the standard ONNX ``NonMaxSuppression`` and ``RoiAlign`` (and
OpenVINO's own NMS / ROIAlign).

Inputs, as mmdet's test path has them: ``image`` (1, 3, H, W), the test pipeline's resized image
normalised and zero-padded by the config's ``DetDataPreprocessor`` (H, W multiples of its
``pad_size_divisor``), and ``img_shape`` (2,) int64, the (h, w) of the resized image inside it.
Everything that depends on the size is computed from the inputs inside the graph, so one
artifact serves every image shape (and an exporter may still fix H x W):

1. fused backbone (window padding from the input) -> FPN (BN folded) -> RPN convs;
2. RPN: each level's anchors from its feature map's size (``AnchorGenerator.grid_priors``),
   the ``nms_pre`` best (sigmoid scores), deltas decoded (``DeltaXYWHBBoxCoder``) and clipped to
   ``img_shape``, boxes of width or height <= ``min_bbox_size`` dropped, NMS per level (or across
   levels with ``class_agnostic``), ``max_per_img`` proposals;
3. RoIAlign (aligned, adaptive sampling) on the FPN level mmdet's ``SingleRoIExtractor`` maps
   each box to (``floor(log2(sqrt(area) / finest_scale))``), the box head, softmax, per-class
   decoding clipped to ``img_shape``, ``score_thr``, per-class NMS (or one NMS with
   ``class_agnostic``), the ``max_per_img`` best;
4. the mask head on those boxes, the mask of each box's class, sigmoid.

Outputs, always ``max_per_img`` rows (rows past the n detections are zeros, score 0; the mask
head runs on the n detections only): ``boxes`` (N, 4) xyxy in input pixels, ``scores`` (N),
``labels`` (N) int64, ``masks`` (N, M, M) mask probabilities (Mask R-CNN only). Rescaling to the
original image and pasting the masks is the host's step (:mod:`.postprocess`).

Known difference from mmdet, by construction: a Faster R-CNN (no mask head) runs its final NMS
on boxes already rescaled to the original image in mmdet, here on boxes in input pixels; with
keep-ratio resizing both axes scale alike up to rounding, so only near-threshold overlaps can
differ.
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import torch
import torch.nn as nn
from torchvision.ops import nms, roi_align

from .targets.base import DeployError

DET_OUTPUTS = ('boxes', 'scores', 'labels', 'masks')
BOX_OUTPUTS = DET_OUTPUTS[:3]
#: ``DeltaXYWHBBoxCoder.decode``'s default, which mmdet's RPN and box heads never override
WH_RATIO_CLIP = 16 / 1000


class DetectorError(DeployError):
    """The model is not a detector this wrapper reproduces; the message says what differs."""


def _type(module) -> str:
    return type(module).__name__


def check_two_stage(detector: nn.Module) -> None:
    """Refuse what :class:`DetectorForExport` does not reproduce exactly."""
    rpn, roi = getattr(detector, 'rpn_head', None), getattr(detector, 'roi_head', None)
    if rpn is None or roi is None or getattr(roi, 'bbox_head', None) is None:
        raise DetectorError(f'--task detector needs a two-stage mmdet detector (RPN + RoI head, '
                            f'e.g. Mask / Faster R-CNN); the config builds {_type(detector)}')
    # in order: each check may read attributes only the types checked before it have
    checks = [
        ('RPN head', lambda: rpn, ('RPNHead',)),
        ('RoI head', lambda: roi, ('StandardRoIHead',)),
        ('anchor generator', lambda: rpn.prior_generator, ('AnchorGenerator',)),
        ('RPN box coder', lambda: rpn.bbox_coder, ('DeltaXYWHBBoxCoder',)),
        ('RoI extractor', lambda: roi.bbox_roi_extractor, ('SingleRoIExtractor',)),
        ('RoI layer', lambda: roi.bbox_roi_extractor.roi_layers[0], ('RoIAlign',)),
        ('box coder', lambda: roi.bbox_head.bbox_coder, ('DeltaXYWHBBoxCoder',)),
    ]
    for what, part, supported in checks:
        got = _type(part())
        if got not in supported:
            raise DetectorError(f'--task detector reproduces {"/".join(supported)} as the '
                                f'{what}; this config has {got}')
    if getattr(roi, 'with_mask', False) and _type(roi.mask_head) != 'FCNMaskHead':
        raise DetectorError(f'--task detector reproduces FCNMaskHead as the mask head; this '
                            f'config has {_type(roi.mask_head)}')
    if not rpn.use_sigmoid_cls:
        raise DetectorError('--task detector reproduces a sigmoid RPN classifier; this config '
                            'uses softmax')
    for coder in (rpn.bbox_coder, roi.bbox_head.bbox_coder):
        if coder.add_ctr_clamp or not coder.clip_border:
            raise DetectorError('--task detector reproduces DeltaXYWHBBoxCoder with '
                                'clip_border=True and add_ctr_clamp=False')
    nms_types = (detector.test_cfg.rpn.nms.get('type', 'nms'),
                 detector.test_cfg.rcnn.nms.get('type', 'nms'))
    if any(t != 'nms' for t in nms_types):
        raise DetectorError(f'--task detector reproduces plain NMS; the test_cfg asks {nms_types}')


def decode_deltas(anchors: torch.Tensor, deltas: torch.Tensor, means: Sequence[float],
                  stds: Sequence[float], wh_ratio_clip: float,
                  max_hw: torch.Tensor) -> torch.Tensor:
    """``DeltaXYWHBBoxCoder.decode`` for (K, 4) boxes and (K, 4) deltas, clipped to ``max_hw``
    ((2,) tensor: height, width)."""
    d = deltas * deltas.new_tensor(stds) + deltas.new_tensor(means)
    centre = (anchors[:, :2] + anchors[:, 2:]) * 0.5
    size = anchors[:, 2:] - anchors[:, :2]
    limit = abs(math.log(wh_ratio_clip))
    centre = centre + size * d[:, :2]
    size = size * d[:, 2:].clamp(min=-limit, max=limit).exp()
    boxes = torch.cat([centre - size * 0.5, centre + size * 0.5], dim=1)
    upper = max_hw.flip(0).repeat(2).to(boxes.dtype)  # (w, h, w, h)
    return torch.minimum(boxes.clamp(min=0), upper)


class MultiLevelRoIAlign(nn.Module):
    """``SingleRoIExtractor`` + mmcv ``RoIAlign`` as torchvision ``roi_align`` (standard op).

    Every box is pooled from every level and the level mmdet maps it to is selected, so the
    graph has no data-dependent scatter. Why the other levels see a one-pixel box: with adaptive
    sampling (``sampling_ratio=0``) a box costs samples in proportion to its area at that level's
    resolution, so a large box pooled from the finest level and then discarded cost most of the
    RoIAlign time. A one-pixel box costs one sample per bin; not an empty one, which OpenVINO's
    ROIAlign turns into NaN (0/0) that the selection's multiply by zero would keep.
    """

    def __init__(self, extractor: nn.Module):
        super().__init__()
        layer = extractor.roi_layers[0]
        self.output_size = tuple(int(s) for s in layer.output_size)
        self.sampling_ratio = int(layer.sampling_ratio)
        self.aligned = bool(layer.aligned)
        if layer.pool_mode != 'avg':
            raise DetectorError(f'RoIAlign pool_mode {layer.pool_mode!r} is not exported; '
                                "expected 'avg'")
        self.scales = [1.0 / s for s in extractor.featmap_strides]
        self.finest_scale = float(extractor.finest_scale)

    def forward(self, feats: Sequence[torch.Tensor], boxes: torch.Tensor) -> torch.Tensor:
        rois = torch.cat([boxes.new_zeros(boxes.shape[0], 1), boxes], dim=1)
        wh = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0)  # padded rows: 0
        scale = torch.sqrt(wh[:, 0] * wh[:, 1])
        level = torch.floor(torch.log2(scale / self.finest_scale + 1e-6))
        level = level.clamp(min=0, max=len(self.scales) - 1)
        out = None
        pixel = rois.new_tensor([0.0, 0.0, 0.0, 1.0, 1.0]).expand_as(rois)
        for i, spatial_scale in enumerate(self.scales):
            mine = (level == i).view(-1, 1)
            pooled = roi_align(feats[i], torch.where(mine, rois, pixel), self.output_size,
                               spatial_scale, self.sampling_ratio, self.aligned)
            pick = mine.to(pooled.dtype).view(-1, 1, 1, 1)
            out = pooled * pick if out is None else out + pooled * pick
        return out


def _pad_rows(t: torch.Tensor, rows: int) -> torch.Tensor:
    """``t`` (n, ...) cut or zero-padded to exactly ``rows`` rows (n is data-dependent)."""
    pad = t.new_zeros((rows,) + tuple(t.shape[1:]))
    return torch.cat([t, pad], dim=0)[:rows]


def _nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou: float,
         class_agnostic: bool) -> torch.Tensor:
    """Indices kept by mmcv's ``batched_nms`` rule, best first: NMS within each group (class or
    level), or across all boxes with ``class_agnostic``.

    Groups are kept apart as mmcv does it, by shifting each group's boxes by its index times
    (largest coordinate + 1), so one standard NMS op never suppresses across groups. The 0 in
    the maximum keeps an empty set (no box above ``score_thr``) a valid graph input; boxes are
    clipped to >= 0, so it changes nothing else.
    """
    if not class_agnostic:
        largest = torch.cat([boxes.reshape(-1), boxes.new_zeros(1)]).max()
        boxes = boxes + (groups.to(boxes.dtype) * (largest + 1))[:, None]
    return nms(boxes, scores, iou)


def _num_rows(t: torch.Tensor) -> torch.Tensor:
    """``t.shape[0]`` as a 0-d tensor (a graph value when traced, not a constant)."""
    return torch._shape_as_tensor(t)[0]


class DetectorForExport(nn.Module):
    """mmdet's two-stage test path for one image of any size, as a plain module (module doc).

    ``detector`` is a fused (``fuse_for_export``) mmdet TwoStageDetector in eval mode.
    ``forward(image, img_shape)``: see the module docstring.
    """

    input_names = ('image', 'img_shape')

    def __init__(self, detector: nn.Module):
        super().__init__()
        check_two_stage(detector)
        self.backbone, self.neck = detector.backbone, detector.neck
        rpn, roi = detector.rpn_head, detector.roi_head
        self.rpn_head = rpn
        self.bbox_head = roi.bbox_head
        self.bbox_roi = MultiLevelRoIAlign(roi.bbox_roi_extractor)
        self.with_mask = bool(getattr(roi, 'with_mask', False))
        if self.with_mask:
            self.mask_head = roi.mask_head
            self.mask_roi = MultiLevelRoIAlign(roi.mask_roi_extractor)
            self.mask_class_agnostic = bool(roi.mask_head.class_agnostic)
        self.num_classes = int(roi.bbox_head.num_classes)
        self.reg_class_agnostic = bool(roi.bbox_head.reg_class_agnostic)
        rpn_cfg, rcnn_cfg = detector.test_cfg.rpn, detector.test_cfg.rcnn
        self.nms_pre = int(rpn_cfg.get('nms_pre', -1))
        self.rpn_max = int(rpn_cfg.max_per_img)
        self.rpn_iou = float(rpn_cfg.nms.iou_threshold)
        self.rpn_class_agnostic = bool(rpn_cfg.nms.get('class_agnostic', False))
        self.min_bbox_size = float(rpn_cfg.get('min_bbox_size', -1))
        self.score_thr = float(rcnn_cfg.score_thr)
        self.rcnn_iou = float(rcnn_cfg.nms.iou_threshold)
        self.rcnn_class_agnostic = bool(rcnn_cfg.nms.get('class_agnostic', False))
        self.max_per_img = int(rcnn_cfg.max_per_img)
        self.mask_thr_binary = float(rcnn_cfg.get('mask_thr_binary', 0.5))
        self.rpn_coder = self._coder(rpn.bbox_coder)
        self.box_coder = self._coder(roi.bbox_head.bbox_coder)
        generator = rpn.prior_generator
        self.strides = [(float(s[0]), float(s[1])) for s in generator.strides]
        self.num_levels = len(self.strides)
        for i, base in enumerate(generator.base_anchors):
            self.register_buffer(f'base_anchors_{i}', base.float().clone(), persistent=False)

    @staticmethod
    def _coder(coder) -> dict:
        return dict(means=tuple(float(m) for m in coder.means),
                    stds=tuple(float(s) for s in coder.stds), wh_ratio_clip=WH_RATIO_CLIP)

    @property
    def output_names(self) -> Tuple[str, ...]:
        return DET_OUTPUTS if self.with_mask else BOX_OUTPUTS

    def level_anchors(self, level: int, cls_score: torch.Tensor) -> torch.Tensor:
        """``AnchorGenerator.single_level_grid_priors`` for the size of ``cls_score``: the base
        anchors shifted to every cell, cells row-major, the A anchors of a cell together."""
        base = getattr(self, f'base_anchors_{level}')
        stride_w, stride_h = self.strides[level]
        shape = torch._shape_as_tensor(cls_score)
        xs = torch.arange(shape[-1]).to(base.dtype) * stride_w
        ys = torch.arange(shape[-2]).to(base.dtype) * stride_h
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
        x, y = grid_x.reshape(-1), grid_y.reshape(-1)
        shifts = torch.stack([x, y, x, y], dim=1)
        return (shifts[:, None, :] + base[None, :, :]).reshape(-1, 4)

    def proposals(self, feats: Sequence[torch.Tensor], img_shape: torch.Tensor) -> torch.Tensor:
        """RPN boxes (P, 4), P <= the RPN's ``max_per_img``."""
        cls_scores, bbox_preds = self.rpn_head(feats)
        boxes, scores, levels = [], [], []
        for i, (cls, reg) in enumerate(zip(cls_scores, bbox_preds)):
            anchors = self.level_anchors(i, cls)
            score = cls[0].permute(1, 2, 0).reshape(-1).sigmoid()
            delta = reg[0].permute(1, 2, 0).reshape(-1, 4)
            if self.nms_pre > 0:  # the best min(nms_pre, cells x A): k from the input's size
                score, keep = score.topk(torch.clamp(_num_rows(score), max=self.nms_pre))
                delta, anchors = delta[keep], anchors[keep]
            boxes.append(decode_deltas(anchors, delta, max_hw=img_shape, **self.rpn_coder))
            scores.append(score)
            levels.append(torch.full_like(score, i, dtype=torch.int64))
        boxes, scores, levels = torch.cat(boxes), torch.cat(scores), torch.cat(levels)
        if self.min_bbox_size >= 0:
            wh = boxes[:, 2:] - boxes[:, :2]
            valid = torch.nonzero((wh[:, 0] > self.min_bbox_size) &
                                  (wh[:, 1] > self.min_bbox_size)).squeeze(1)
            boxes, scores, levels = boxes[valid], scores[valid], levels[valid]
        keep = _nms(boxes, scores, levels, self.rpn_iou, self.rpn_class_agnostic)[:self.rpn_max]
        return boxes[keep]

    def detections(self, feats, proposals, img_shape):
        """Box head -> (boxes, scores, labels) of the ``max_per_img`` best (n <= that many rows)."""
        cls_score, bbox_pred = self.bbox_head(self.bbox_roi(feats, proposals))
        scores = cls_score.softmax(-1)[:, :-1]                  # (P, C) without background
        classes = 1 if self.reg_class_agnostic else self.num_classes
        rois = proposals.repeat_interleave(classes, dim=0)
        boxes = decode_deltas(rois, bbox_pred.reshape(-1, 4), max_hw=img_shape,
                              **self.box_coder).reshape(-1, classes, 4)
        boxes = boxes.expand(-1, self.num_classes, 4).reshape(-1, 4)
        labels = torch.arange(self.num_classes, device=scores.device).repeat(scores.shape[0])
        scores = scores.reshape(-1)
        valid = torch.nonzero(scores > self.score_thr).squeeze(1)
        boxes, scores, labels = boxes[valid], scores[valid], labels[valid]
        keep = _nms(boxes, scores, labels, self.rcnn_iou, self.rcnn_class_agnostic)
        keep = keep[:self.max_per_img]
        return boxes[keep], scores[keep], labels[keep]

    def masks(self, feats, boxes, labels) -> torch.Tensor:
        """Mask probabilities (n, M, M) of each box's class (run on the n detections only)."""
        logits = self.mask_head(self.mask_roi(feats, boxes))    # (n, C, M, M)
        if self.mask_class_agnostic:
            logits = logits[:, :1]
        else:
            index = labels.view(-1, 1, 1, 1).expand(-1, 1, logits.shape[2], logits.shape[3])
            logits = torch.gather(logits, 1, index)
        return logits[:, 0].sigmoid()

    def forward(self, image: torch.Tensor, img_shape: torch.Tensor):
        feats = self.neck(self.backbone(image))
        outputs = self.detections(feats, self.proposals(feats, img_shape), img_shape)
        if self.with_mask:
            outputs = outputs + (self.masks(feats, outputs[0], outputs[2]),)
        return tuple(_pad_rows(o, self.max_per_img) for o in outputs)


class DetectorDenseForExport(nn.Module):
    """The detector's dense part: fused backbone -> FPN -> RPN convs (``--task detector-dense``).

    Why: ExecuTorch's XNNPACK delegate and Core ML have no NMS / RoIAlign that the whole network
    could run in (ExecuTorch would run them as portable, unoptimised kernels outside the
    delegate; Core ML's NMS is not mmdet's per-class NMS), so for those runtimes the honest
    artifact is the convolutional part, as the backbone task exports the backbone. Outputs, per
    FPN level i (finest first): ``fpn_i`` (1, C, H/s, W/s), ``rpn_cls_i`` (1, A, h, w) and
    ``rpn_reg_i`` (1, 4A, h, w) logits / deltas; RPN decoding, NMS and the RoI heads run on the
    host (mmdet's ``rpn_head.predict_by_feat`` and ``roi_head.predict`` take exactly these).
    """

    def __init__(self, detector: nn.Module):
        super().__init__()
        check_two_stage(detector)
        self.backbone, self.neck, self.rpn_head = detector.backbone, detector.neck, detector.rpn_head
        self.num_levels = len(detector.rpn_head.prior_generator.strides)
        self.num_classes = int(detector.roi_head.bbox_head.num_classes)

    @property
    def output_names(self) -> Tuple[str, ...]:
        levels = range(self.num_levels)
        return tuple(f'{kind}_{i}' for kind in ('fpn', 'rpn_cls', 'rpn_reg') for i in levels)

    def forward(self, x: torch.Tensor):
        feats = self.neck(self.backbone(x))
        cls_scores, bbox_preds = self.rpn_head(feats)
        return tuple(feats) + tuple(cls_scores) + tuple(bbox_preds)
