"""A deployed artifact as an mmengine model: ``tools/test.py CONFIG ARTIFACT``.

Why: "the artifact scores what the checkpoint scored" is only worth something when it is
measured by the toolbox's own test loop. :class:`DeployedModel` is an mmengine ``BaseModel``
whose data preprocessor is the config's own (so batches are normalised and padded exactly as the
toolbox does it, batch padding included) and whose ``predict`` runs each image through the
artifact in its runtime and the toolbox's post-processing (:mod:`.predict`), returning the
toolbox's data samples. Placed in the config's ``model`` by :func:`deployed_model_cfg`, it runs
inside the ordinary runner: the config's dataset, pipeline, evaluator, ``--out``,
``--show-dir``, ``--work-dir`` and ``tools/dist_test.sh`` behave as with a checkpoint.
Training it is refused by name. :class:`DeployedModelWrapper` stands in for DDP in distributed
tests (a model without trainable parameters cannot be wrapped by DDP; testing needs no gradient
synchronisation).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch
from mmengine.model import BaseModel
from mmengine.registry import MODEL_WRAPPERS, MODELS

from .artifact import read_artifact, spec_for_config
from .inputs import Prepared
from .predict import Predictor
from .targets import get_target


@MODELS.register_module()
class DeployedModel(BaseModel):
    """The artifact at ``artifact`` (its report beside it) behind the config's data preprocessor.

    ``postprocess``: the running config's host-side test settings (:func:`deployed_model_cfg`
    checks the config against the artifact and derives them); None: the report's.
    ``threads``: runtime intra-op threads (None: the runtime's default).
    """

    def __init__(self, artifact: str, data_preprocessor: Optional[dict] = None,
                 postprocess: Optional[Dict[str, Any]] = None, threads: Optional[int] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.report, self.spec = read_artifact(artifact, 'the artifact')
        if postprocess is not None:
            self.spec = self.spec.completed(postprocess=dict(postprocess))
        self.artifact = artifact
        session = get_target(self.spec.target).session(artifact, threads, self.spec.precision)
        self.predictor = Predictor(self.spec, session)
        # runners move models to a device: keep one (empty) buffer so .to() has something to move
        self.register_buffer('_device', torch.zeros(0), persistent=False)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[List[Any]] = None,
                mode: str = 'predict'):
        if mode != 'predict':
            raise RuntimeError(f'a deployed artifact ({self.artifact}) can be tested, not trained '
                               f"(mode {mode!r}); train the PyTorch model with tools/train.py")
        return [self.predictor(Prepared(inputs[i:i + 1].float().cpu(), sample))
                for i, sample in enumerate(data_samples)]


@MODEL_WRAPPERS.register_module()
class DeployedModelWrapper(torch.nn.Module):
    """Distributed testing of a :class:`DeployedModel`: each rank runs its share of the data."""

    def __init__(self, module: DeployedModel, **kwargs):
        super().__init__()
        self.module = module

    def test_step(self, data):
        return self.module.test_step(data)

    def val_step(self, data):
        return self.module.val_step(data)

    def train_step(self, data, optim_wrapper):
        return self.module.train_step(data, optim_wrapper)


def deployed_model_cfg(cfg, artifact: str, config: str, threads: Optional[int] = None) -> Dict:
    """The ``model`` of ``cfg`` (the loaded ``config``, overrides applied) with the artifact in
    place of the network: checked against the config first (:func:`.artifact.spec_for_config`:
    task, variant, classes, normalisation, the graph's test settings; one line naming the
    difference), behind the config's own data preprocessor, with its host-side test settings."""
    from .spec import data_preprocessor_cfg
    _, spec = read_artifact(artifact, 'the artifact')
    spec = spec_for_config(spec, cfg, config, artifact)
    return dict(type='DeployedModel', artifact=artifact, data_preprocessor=data_preprocessor_cfg(cfg),
                postprocess=spec.postprocess, threads=threads)
