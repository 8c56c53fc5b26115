"""Images as the artifact takes them: the toolbox's own test pipeline and data preprocessor.

Why through the toolbox's own steps: int8 calibration ranges, parity and accuracy figures are
only meaningful on inputs prepared exactly as the toolbox prepares them, and an artifact that
takes anything else does not score what the checkpoint scored. Each image goes through the
config's test pipeline and then the config's data preprocessor (mmpretrain / mmseg / mmdet,
built from the config: normalisation, channel order, the detector's padding to its size divisor)
into a :class:`Prepared` image; :func:`fit` turns that into the artifact's inputs:

* a dynamic artifact (:class:`~.spec.Geometry`) takes it as it is (the detector also its
  ``img_shape``), so it sees exactly what the toolbox's model sees;
* a fixed-size artifact gets the valid part of the image resized, keeping its aspect ratio, to
  fit the size (only when larger), then zero-padded bottom-right, as the toolbox pads; the
  metainfo's ``img_shape`` and ``scale_factor`` follow, so outputs map back to the original
  image (:mod:`.postprocess`). A classifier's crop is resized to the artifact's size.

Sources: image files or folders (calibration, the runner; no labels), or the config's dataset
(with its ground truth: ``--val-data ROOT`` points the test dataset at another root, a dataset
config file selects its training set for calibration). Without a config (the plain backbone)
images are resized to the artifact's size and normalised with the spec's mean / std.
"""
from __future__ import annotations

import contextlib
import copy
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..utils.configs import load_config
from ..utils.scope import toolbox_scope
from .spec import DETECTOR_TASKS, DeploySpec, data_preprocessor_cfg
from .targets.base import DeployError

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')
#: pipeline steps that need annotations, dropped when only images are read
_ANNOTATION_STEPS = ('LoadAnnotations',)


def image_files(folder: str) -> List[Path]:
    """Every image below ``folder``, sorted (so a selection is reproducible)."""
    return sorted(p for p in Path(folder).rglob('*') if p.suffix.lower() in IMAGE_SUFFIXES)


def spread(items: Sequence, count: int) -> list:
    """``count`` items spread evenly over ``items`` (class-sorted folders stay balanced)."""
    if count >= len(items):
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, count).round()]


@dataclass
class Prepared:
    """One image as the toolbox's test path prepares it: ``inputs`` (1, 3, H, W), the data
    preprocessor's output (normalised; padded as the toolbox pads, in a batch to the batch's
    size), and the toolbox's ``data_sample`` (metainfo, ground truth where the source has it)."""
    inputs: torch.Tensor
    data_sample: Any = None

    @property
    def meta(self) -> Dict[str, Any]:
        return dict(self.data_sample.metainfo) if self.data_sample is not None else {}


@dataclass
class ArtifactInput:
    """What one run of the artifact takes (``arrays``, in input order) and the metainfo its
    outputs refer to (``img_shape``: the valid region of the input; ``scale_factor``: original
    image -> input; ``ori_shape``)."""
    arrays: Tuple[np.ndarray, ...]
    meta: Dict[str, Any]

    def tensors(self) -> Tuple[torch.Tensor, ...]:
        return tuple(torch.from_numpy(a) for a in self.arrays)


def _valid_hw(spec: DeploySpec, x: torch.Tensor, meta: Dict[str, Any]) -> Tuple[int, int]:
    """The image's own region of ``x`` (the detector's data preprocessor pads around it)."""
    if spec.task in DETECTOR_TASKS and meta.get('img_shape'):
        return int(meta['img_shape'][0]), int(meta['img_shape'][1])
    return int(x.shape[2]), int(x.shape[3])


def fit(prepared: Prepared, spec: DeploySpec) -> ArtifactInput:
    """The artifact's inputs for one prepared image (module docstring)."""
    x, meta = prepared.inputs, prepared.meta
    h, w = _valid_hw(spec, x, meta)
    meta.setdefault('img_shape', (h, w))
    meta.setdefault('ori_shape', (h, w))
    meta.setdefault('scale_factor', (1.0, 1.0))
    if not spec.geometry.dynamic:
        size = tuple(spec.geometry.size)
        if spec.task == 'classifier' or spec.config is None:
            if tuple(x.shape[2:]) != size:
                x = F.interpolate(x, size=size, mode='bilinear', align_corners=False)
            h, w = size
        else:
            x, h, w = _fit_and_pad(x[:, :, :h, :w], meta, size)
    meta['img_shape'] = (h, w)
    arrays = (np.ascontiguousarray(x.numpy(), dtype=np.float32),)
    if spec.task == 'detector':
        arrays += (np.array([h, w], dtype=np.int64),)
    return ArtifactInput(arrays, meta)


def _fit_and_pad(x: torch.Tensor, meta: Dict[str, Any], size) -> Tuple[torch.Tensor, int, int]:
    """Shrink (keeping the aspect ratio) an image larger than ``size`` to fit, pad with zeros."""
    h, w = int(x.shape[2]), int(x.shape[3])
    if h > size[0] or w > size[1]:
        f = min(size[0] / h, size[1] / w)
        nh, nw = min(size[0], int(h * f + 0.5)), min(size[1], int(w * f + 0.5))
        x = F.interpolate(x, size=(nh, nw), mode='bilinear', align_corners=False)
        sw, sh = meta['scale_factor'][:2]
        meta['scale_factor'] = (sw * nw / w, sh * nh / h)
        h, w = nh, nw
    return F.pad(x, (0, size[1] - w, 0, size[0] - h)), h, w


class InputSource:
    """Prepared images for one deployment, through its config's test pipeline and data
    preprocessor (module docstring)."""

    def __init__(self, spec, cfg=None):
        if not isinstance(spec, DeploySpec):  # an ExportModel
            spec, cfg = spec.spec, spec.cfg
        self.spec, self.cfg = spec, cfg
        self.scope = cfg.get('default_scope') if cfg is not None else None
        self._preprocessor = None

    # -- the toolbox's steps -----------------------------------------------------------------
    def data_preprocessor(self):
        """The config's data preprocessor, built once (inside the toolbox's scope)."""
        if self._preprocessor is None:
            from mmengine.registry import MODELS
            pre = data_preprocessor_cfg(self.cfg)
            with toolbox_scope(self.scope):
                self._preprocessor = MODELS.build(pre).eval()
        return self._preprocessor

    def prepare(self, items: Sequence[dict]) -> List[Prepared]:
        """Pipeline results (``inputs`` + ``data_samples``) -> prepared images, one by one."""
        from mmengine.dataset import pseudo_collate
        preprocessor = self.data_preprocessor()
        out = []
        with toolbox_scope(self.scope), torch.no_grad():
            for item in items:
                data = preprocessor(pseudo_collate([item]), False)
                out.append(Prepared(data['inputs'].float(), data['data_samples'][0]))
        return out

    def _image_pipeline(self):
        from mmengine.dataset import Compose
        steps = [s for s in self.cfg.test_dataloader.dataset.pipeline
                 if s['type'] not in _ANNOTATION_STEPS]
        with toolbox_scope(self.scope):
            return Compose(copy.deepcopy(steps))

    # -- image files ------------------------------------------------------------------------
    def from_images(self, paths: Sequence[str]) -> List[Prepared]:
        """Image files as the toolbox's test path prepares them (no labels)."""
        if self.cfg is None:
            return [Prepared(self._plain(Path(p))) for p in paths]
        pipeline = self._image_pipeline()
        with toolbox_scope(self.scope):
            items = [pipeline(dict(img_path=str(p), img_id=i)) for i, p in enumerate(paths)]
        return self.prepare(items)

    def from_image(self, path: str) -> Prepared:
        return self.from_images([path])[0]

    def from_folder(self, folder: str, count: int) -> List[Prepared]:
        files = image_files(folder)
        if not files:
            raise DeployError(f'--calib-data {folder} holds no images ({", ".join(IMAGE_SUFFIXES)})')
        return self.from_images(spread(files, count))

    def _plain(self, path: Path) -> torch.Tensor:
        """No config (the plain backbone): resized to the artifact's size, normalised."""
        from PIL import Image
        with Image.open(path) as img:
            rgb = np.asarray(img.convert('RGB'), dtype=np.float32)
        pre = self.spec.preprocess
        x = torch.from_numpy(rgb if pre.channel_order == 'RGB' else rgb[..., ::-1].copy())
        x = x.permute(2, 0, 1)[None]
        x = (x - torch.tensor(pre.mean).view(1, 3, 1, 1)) / torch.tensor(pre.std).view(1, 3, 1, 1)
        return F.interpolate(x, size=tuple(self.spec.geometry.size), mode='bilinear',
                             align_corners=False)

    # -- datasets ---------------------------------------------------------------------------
    def _dataset(self, cfg, loader: str, data_root: Optional[str]):
        from mmengine.registry import DATASETS
        spec = copy.deepcopy(cfg.get(loader).dataset)
        spec['pipeline'] = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
        if data_root is not None:
            spec['data_root'] = data_root
        with toolbox_scope(self.scope), contextlib.redirect_stdout(io.StringIO()):
            try:  # (pycocotools prints while it indexes a COCO annotation file)
                return DATASETS.build(spec)
            except (FileNotFoundError, OSError) as e:
                raise DeployError(f'cannot read the dataset at {spec.get("data_root")!r} '
                                  f'({type(e).__name__}: {e})') from None

    def from_dataset(self, count: Optional[int] = None, data_root: Optional[str] = None,
                     config: Optional[str] = None, loader: str = 'test_dataloader'
                     ) -> List[Prepared]:
        """Prepared images (with ground truth) of a config's dataset, ``count`` spread over it."""
        cfg = load_config(config, '--calib-data') if config else self.cfg
        if cfg is None:
            raise DeployError('reading a dataset needs --config (its test pipeline and layout)')
        dataset = self._dataset(cfg, loader, data_root)
        if len(dataset) == 0:
            raise DeployError(f'the dataset at {data_root or "the config"} is empty')
        indices = spread(range(len(dataset)), count or len(dataset))
        with toolbox_scope(self.scope):
            items = [dataset[i] for i in indices]
        return self.prepare(items)

    def calibration(self, calib_data: str, count: int) -> List[Tuple[torch.Tensor, ...]]:
        """``--calib-data`` (an image folder, or a dataset config: its training set) as the
        artifact's inputs."""
        if calib_data.endswith('.py') and os.path.isfile(calib_data):
            prepared = self.from_dataset(count, config=calib_data, loader='train_dataloader')
        elif os.path.isdir(calib_data):
            prepared = self.from_folder(calib_data, count)
        else:
            raise DeployError(f'--calib-data {calib_data} is neither an image folder nor a dataset '
                              'config (.py)')
        return [fit(p, self.spec).tensors() for p in prepared]
