"""One prepared image through an artifact (or its PyTorch module) to the toolbox's data sample.

:class:`Predictor` joins :func:`.inputs.fit`, one run of the session and :mod:`.postprocess`;
for a segmentor whose config tests in ``slide`` mode it also reproduces mmseg's
``slide_inference`` around the artifact: crops of ``crop_size`` every ``stride`` pixels (the last
crop of a row or column aligned to the border), logits summed where crops overlap and divided by
the count. The same predictor serves the runner, ``tools/test.py CONFIG ARTIFACT``, the deploy
checks and their PyTorch reference (:func:`torch_session`).
"""
from __future__ import annotations

import dataclasses
from typing import List, Sequence

import numpy as np
import torch
import torch.nn as nn

from .inputs import Prepared, fit
from .postprocess import to_sample
from .spec import DeploySpec
from .targets.base import Session


def torch_session(model: nn.Module) -> Session:
    """A PyTorch module called like a runtime session (arrays in, arrays out)."""
    def run(*arrays: np.ndarray) -> List[np.ndarray]:
        with torch.no_grad():
            out = model(*(torch.from_numpy(np.asarray(a)) for a in arrays))
        out = (out,) if isinstance(out, torch.Tensor) else tuple(out)
        return [o.detach().numpy() for o in out]
    return run


def _starts(size: int, crop: int, stride: int) -> List[int]:
    """Crop origins along one axis as mmseg's slide inference places them."""
    count = max(size - crop + stride - 1, 0) // stride + 1
    return [max(min(i * stride + crop, size) - crop, 0) for i in range(count)]


class Predictor:
    """``predictor(prepared) -> data sample`` for one artifact's spec and session."""

    def __init__(self, spec: DeploySpec, session: Session):
        self.spec, self.session = spec, session
        self.slide = spec.task == 'segmentor' and spec.postprocess.get('mode') == 'slide'

    def outputs(self, prepared: Prepared):
        """(outputs, metainfo they refer to) of one prepared image."""
        if self.slide:
            return self._slide(prepared)
        item = fit(prepared, self.spec)
        return self.session(*item.arrays), item.meta

    def __call__(self, prepared: Prepared, sample=None):
        outputs, meta = self.outputs(prepared)
        return to_sample(outputs, meta, self.spec,
                         prepared.data_sample if sample is None else sample)

    def _slide(self, prepared: Prepared):
        """mmseg's ``slide_inference`` (module docstring) on the artifact."""
        x = prepared.inputs
        (ch, cw), (sh, sw) = self.spec.postprocess['crop_size'], self.spec.postprocess['stride']
        height, width = int(x.shape[2]), int(x.shape[3])
        total = count = None
        for y in _starts(height, ch, sh):
            for x0 in _starts(width, cw, sw):
                crop = x[:, :, y:y + ch, x0:x0 + cw]
                item = fit(Prepared(crop, prepared.data_sample), self.spec)
                h, w = item.meta['img_shape'][:2]
                logits = torch.from_numpy(np.asarray(self.session(*item.arrays)[0]))
                if logits.shape[2:] != crop.shape[2:]:  # a fixed-size artifact: the crop's part
                    logits = nn.functional.interpolate(logits[:, :, :h, :w].float(),
                                                       size=tuple(crop.shape[2:]), mode='bilinear',
                                                       align_corners=self.spec.postprocess['align_corners'])
                if total is None:
                    total = logits.new_zeros((1, logits.shape[1], height, width))
                    count = logits.new_zeros((1, 1, height, width))
                total[:, :, y:y + crop.shape[2], x0:x0 + crop.shape[3]] += logits
                count[:, :, y:y + crop.shape[2], x0:x0 + crop.shape[3]] += 1
        meta = dict(prepared.meta, img_shape=(height, width))
        return [(total / count).numpy()], meta


def predict_all(predictor: Predictor, prepared: Sequence[Prepared]) -> list:
    """Data samples for prepared images (each a copy: the caller's samples stay unpredicted)."""
    return [predictor(p, _copy(p.data_sample)) for p in prepared]


def _copy(sample):
    return sample.clone() if hasattr(sample, 'clone') else dataclasses.replace(sample)
