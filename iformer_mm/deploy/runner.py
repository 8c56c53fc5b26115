"""Run a deployed artifact on image files and get the toolbox's own data sample back.

Why: a user checks an exported model the way they checked the PyTorch one, with the same
pictures and the same downstream code. :class:`ArtifactRunner` reads what ``tools/deploy.py``
wrote beside the artifact (the JSON report: task, target, precision, input size, normalisation,
config), loads the artifact in its runtime, prepares each image with the config's test pipeline
exactly as deployment calibrated and scored it (:mod:`.inputs`), runs it, and returns
mmpretrain's ``DataSample`` (classifier), mmseg's ``SegDataSample`` (segmentor, label map at the
original size) or mmdet's ``DetDataSample`` (detector, :mod:`.detections`).
"""
from __future__ import annotations

import json
import os
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..utils.configs import load_config
from .build import Preprocess
from .inputs import InputSource, InputSpec
from .targets import DeployError, get_target

#: tasks whose artifact answers with something a toolbox data sample holds
RUNNABLE_TASKS = ('classifier', 'segmentor', 'detector')


def report_path(artifact: str) -> str:
    """The JSON report ``tools/deploy.py`` writes beside ``artifact`` (same stem)."""
    path = os.path.abspath(artifact.rstrip('/\\'))
    stem, suffix = os.path.splitext(path)
    return (stem if suffix in ('.onnx', '.pte', '.mlpackage') else path) + '.json'


def read_report(artifact: str) -> dict:
    if not os.path.exists(artifact):
        raise DeployError(f'--artifact {artifact} does not exist')
    path = report_path(artifact)
    if not os.path.isfile(path):
        raise DeployError(f'--artifact {artifact} has no report beside it (expected {path}, '
                          'written by tools/deploy.py with the artifact)')
    with open(path, encoding='utf-8') as f:
        return json.load(f)


class ArtifactRunner:
    """``runner(image_path)`` -> the toolbox data sample of one image, from the artifact.

    ``config`` overrides the one recorded in the report (e.g. the artifact was moved to another
    machine); ``threads``: the runtime's intra-op threads (None: its default).
    """

    def __init__(self, artifact: str, config: Optional[str] = None,
                 threads: Optional[int] = None):
        report = read_report(artifact)
        self.report = report
        self.task = report['task']
        if self.task not in RUNNABLE_TASKS:
            raise DeployError(f'--artifact {artifact} is a {self.task} export; the runner takes '
                              f'{"/".join(RUNNABLE_TASKS)} artifacts (a bare backbone returns '
                              'feature maps, no prediction)')
        target = get_target(report['target'])
        if not target.runs_here:
            raise DeployError(f'--artifact {artifact} is a {target.name} model, which does not '
                              'run on this OS')
        config = config or report.get('config')
        if not config or not os.path.isfile(config):
            raise DeployError(f'--artifact {artifact}: its config {config!r} is not here; pass '
                              '--config (the config it was exported from)')
        self.cfg = load_config(config, '--config')
        pre = report['preprocess']
        self.spec = InputSpec(self.task, tuple(report['resolution']),
                              Preprocess(tuple(pre['mean']), tuple(pre['std']),
                                         pre['channel_order']), self.cfg)
        self.source = InputSource(self.spec)
        self.classes: Optional[List[str]] = report.get('classes')
        self.palette: Optional[List[List[int]]] = report.get('palette')
        self.session = target.session(artifact, threads, report['precision'])

    def __call__(self, image: str):
        sample = self.source.from_image(image)
        outputs = self.session(sample.inputs.numpy())
        return getattr(self, f'_{self.task}')(outputs, dict(sample.meta or {}), image)

    def _classifier(self, outputs: Sequence[np.ndarray], meta: dict, image: str):
        from mmpretrain.structures import DataSample
        scores = torch.from_numpy(np.asarray(outputs[0])).float().reshape(-1).softmax(0)
        sample = DataSample(metainfo=dict(meta, img_path=image))
        return sample.set_pred_score(scores).set_pred_label(int(scores.argmax()))

    def _segmentor(self, outputs: Sequence[np.ndarray], meta: dict, image: str):
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        out = torch.from_numpy(np.asarray(outputs[0]))
        size = tuple(meta.get('ori_shape') or out.shape[-2:])[:2]
        if out.dtype.is_floating_point:      # logits (1, C, H, W) -> the original size
            logits = F.interpolate(out.float(), size=size, mode='bilinear', align_corners=False)
            label = logits.argmax(1)
        else:                                # an argmax map (1, H, W)
            label = F.interpolate(out.float()[:, None], size=size, mode='nearest')[:, 0].long()
        sample = SegDataSample(metainfo=dict(meta, img_path=image))
        sample.pred_sem_seg = PixelData(data=label.long())
        return sample

    def _detector(self, outputs: Sequence[np.ndarray], meta: dict, image: str):
        from .detections import to_det_sample
        thr = float((self.cfg.model.get('test_cfg') or {}).get('rcnn', {}).get('mask_thr_binary', 0.5))
        return to_det_sample(outputs, dict(meta, img_path=image), thr)
