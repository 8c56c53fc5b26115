"""Run a deployed artifact on image files and get the toolbox's own data sample back.

Why: a user checks an exported model the way they checked the PyTorch one, with the same
pictures and the same downstream code. :class:`ArtifactRunner` reads the artifact's report and
spec (:mod:`.artifact`: verified, and checked against ``config`` when one is given), loads it in
its runtime, prepares each image with the config's test pipeline and data preprocessor
(:mod:`.inputs`), runs it and post-processes as the toolbox does (:mod:`.predict`), returning
mmpretrain's ``DataSample``, mmseg's ``SegDataSample`` or mmdet's ``DetDataSample``.
"""
from __future__ import annotations

import os
from typing import List, Optional

from ..utils.configs import load_config
from .artifact import read_artifact, spec_for_config, report_path
from .inputs import InputSource
from .predict import Predictor
from .targets import DeployError, get_target

__all__ = ['ArtifactRunner', 'report_path']


class ArtifactRunner:
    """``runner(image_path) -> data sample`` for one artifact written by ``tools/deploy.py``.

    ``config``: the config to prepare images with (default: the one in the report, which must
    then exist here); it is checked against the artifact. ``threads``: runtime threads.
    """

    def __init__(self, artifact: str, config: Optional[str] = None,
                 threads: Optional[int] = None):
        self.report, self.spec = read_artifact(artifact)
        self.task = self.spec.task
        config = config or self.spec.config
        if not config or not os.path.isfile(config):
            raise DeployError(f'--artifact {artifact}: its config {config!r} is not here; pass '
                              '--config (the config it was exported from)')
        self.cfg = load_config(config, '--config')
        self.spec = spec_for_config(self.spec, self.cfg, config, artifact)
        self.classes: Optional[List[str]] = self.spec.classes
        self.palette: Optional[List[List[int]]] = self.spec.palette
        self.source = InputSource(self.spec, self.cfg)
        self.session = get_target(self.spec.target).session(artifact, threads, self.spec.precision)
        self.predictor = Predictor(self.spec, self.session)

    def __call__(self, image: str):
        prepared = self.source.from_image(image)
        sample = self.predictor(prepared)
        sample.set_metainfo(dict(img_path=image))
        return sample
