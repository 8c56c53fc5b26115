"""Real images as the exported model sees them: calibration, parity and evaluation inputs.

Why through the config's own test pipeline: int8 calibration ranges and accuracy figures are only
meaningful on inputs prepared exactly as the toolbox prepares them (resize / crop, then the data
preprocessor's channel order and mean / std). Each sample becomes the normalised NCHW float32
tensor the exported model takes; when the pipeline's output size differs from the export
resolution it is resized bilinearly to it (a no-op for the repository's configs at their own
resolution).

Sources: an image folder (any depth; calibration only, no labels) or the config's dataset (with
its labels: ``--val-data ROOT`` points the test dataset at another root, a dataset config file
selects its training set for calibration).
"""
from __future__ import annotations

import contextlib
import copy
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..utils.scope import toolbox_scope
from ..utils.configs import load_config
from .build import ExportModel, Preprocess
from .detector import DETECTOR_TASKS
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
class Sample:
    inputs: torch.Tensor                 # (1, 3, H, W) normalised float32
    label: Optional[int] = None          # classification ground truth
    seg_map: Optional[np.ndarray] = None  # segmentation ground truth (H0, W0), 255 = ignore
    meta: Optional[dict] = None          # the pipeline's metainfo (img_id, ori_shape, img_shape,
                                         # scale_factor...), as the exported input has it


@dataclass
class InputSpec:
    """What the exported model takes: task, fixed size, normalisation, the config it came from.

    Built from an :class:`~.build.ExportModel` when exporting, from the artifact's JSON report
    when running one (:mod:`.runner`).
    """
    task: str
    resolution: Tuple[int, int]
    preprocess: Preprocess
    cfg: object = None   # mmengine Config (None: the plain backbone)

    @classmethod
    def of(cls, em: ExportModel) -> 'InputSpec':
        return cls(em.task, tuple(em.resolution), em.preprocess, em.cfg)


class Preparer:
    """Turns one pipeline result into the exported model's input tensor (and its metainfo).

    Classifier / segmentor: resized bilinearly to the fixed size when the pipeline's output
    differs. Detector: padded bottom-right with zeros (after normalisation, as mmdet's
    ``DetDataPreprocessor`` pads), first shrunk to fit when the pipeline's keep-ratio resize
    does not fit the fixed input (a portrait image in a landscape input); ``img_shape`` and
    ``scale_factor`` follow, so boxes map back to the original image.
    """

    def __init__(self, spec: InputSpec):
        self.spec = spec
        pre = spec.preprocess
        self.mean = torch.tensor(pre.mean).view(1, 3, 1, 1)
        self.std = torch.tensor(pre.std).view(1, 3, 1, 1)
        self.to_rgb = pre.channel_order == 'RGB'

    def __call__(self, image_chw_bgr: torch.Tensor, meta: Optional[dict] = None
                 ) -> Tuple[torch.Tensor, Optional[dict]]:
        x = image_chw_bgr.float().unsqueeze(0)
        if self.to_rgb:
            x = x.flip(1)  # mmcv loads BGR
        x = (x - self.mean) / self.std
        size = tuple(self.spec.resolution)
        if self.spec.task in DETECTOR_TASKS:
            x, meta = self._fit_and_pad(x, dict(meta or {}), size)
        elif tuple(x.shape[2:]) != size:
            x = F.interpolate(x, size=size, mode='bilinear', align_corners=False)
        return x.contiguous(), meta

    @staticmethod
    def _fit_and_pad(x: torch.Tensor, meta: dict, size) -> Tuple[torch.Tensor, dict]:
        h, w = x.shape[2:]
        if h > size[0] or w > size[1]:
            f = min(size[0] / h, size[1] / w)
            nh, nw = min(size[0], int(h * f + 0.5)), min(size[1], int(w * f + 0.5))
            x = F.interpolate(x, size=(nh, nw), mode='bilinear', align_corners=False)
            sw, sh = meta.get('scale_factor', (1.0, 1.0))[:2]
            meta['scale_factor'] = (sw * nw / w, sh * nh / h)
            h, w = nh, nw
        meta['img_shape'] = (int(h), int(w))
        meta['batch_input_shape'] = meta['pad_shape'] = tuple(int(s) for s in size)
        meta.setdefault('scale_factor', (1.0, 1.0))
        meta.setdefault('ori_shape', (int(h), int(w)))
        return F.pad(x, (0, size[1] - w, 0, size[0] - h)), meta


class InputSource:
    """Samples for one exported model, through its config's test pipeline.

    Without a config (the plain backbone) images are resized to the export resolution and
    normalised with the model's mean / std.
    """

    def __init__(self, spec):
        self.spec = spec if isinstance(spec, InputSpec) else InputSpec.of(spec)
        self.prepare = Preparer(self.spec)
        self.cfg = self.spec.cfg
        self.scope = self.cfg.get('default_scope') if self.cfg is not None else None

    # -- image folders ----------------------------------------------------------------------
    def _image_pipeline(self):
        from mmengine.dataset import Compose
        steps = [s for s in self.cfg.test_dataloader.dataset.pipeline
                 if s['type'] not in _ANNOTATION_STEPS]
        with toolbox_scope(self.scope):
            return Compose(copy.deepcopy(steps))

    def from_folder(self, folder: str, count: int) -> List[Sample]:
        files = image_files(folder)
        if not files:
            raise DeployError(f'--calib-data {folder} holds no images ({", ".join(IMAGE_SUFFIXES)})')
        files = spread(files, count)
        if self.cfg is None:
            return [Sample(self._plain(f)) for f in files]
        pipeline = self._image_pipeline()
        with toolbox_scope(self.scope):
            return [self._sample(pipeline(dict(img_path=str(f)))) for f in files]

    def from_image(self, path: str) -> Sample:
        """One image file as the exported model takes it, with its pipeline metainfo."""
        if self.cfg is None:
            return Sample(self._plain(Path(path)))
        pipeline = self._image_pipeline()
        with toolbox_scope(self.scope):
            return self._sample(pipeline(dict(img_path=str(path), img_id=0)))

    def _sample(self, item: dict) -> Sample:
        """A pipeline result (``inputs`` + ``data_samples``) -> a :class:`Sample`."""
        sample = item['data_samples']
        x, meta = self.prepare(item['inputs'], dict(sample.metainfo))
        return Sample(x, label=_label(sample), seg_map=_seg_map(sample), meta=meta)

    def _plain(self, path: Path) -> torch.Tensor:
        from PIL import Image
        with Image.open(path) as img:
            rgb = np.asarray(img.convert('RGB'))
        bgr = torch.from_numpy(np.ascontiguousarray(rgb[..., ::-1])).permute(2, 0, 1)
        return self.prepare(bgr)[0]

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
                     ) -> List[Sample]:
        """Samples (with ground truth) of a config's dataset, ``count`` spread over it."""
        cfg = load_config(config, '--calib-data') if config else self.cfg
        if cfg is None:
            raise DeployError('reading a dataset needs --config (its test pipeline and layout)')
        dataset = self._dataset(cfg, loader, data_root)
        if len(dataset) == 0:
            raise DeployError(f'the dataset at {data_root or "the config"} is empty')
        indices = spread(range(len(dataset)), count or len(dataset))
        with toolbox_scope(self.scope):
            return [self._sample(dataset[i]) for i in indices]

    def calibration(self, calib_data: str, count: int) -> List[torch.Tensor]:
        """``--calib-data``: an image folder, or a dataset config (its training set)."""
        if calib_data.endswith('.py') and os.path.isfile(calib_data):
            samples = self.from_dataset(count, config=calib_data, loader='train_dataloader')
        elif os.path.isdir(calib_data):
            samples = self.from_folder(calib_data, count)
        else:
            raise DeployError(f'--calib-data {calib_data} is neither an image folder nor a dataset '
                              'config (.py)')
        return [s.inputs for s in samples]


def _label(sample) -> Optional[int]:
    gt = getattr(sample, 'gt_label', None)
    return None if gt is None else int(torch.as_tensor(gt).reshape(-1)[0])


def _seg_map(sample) -> Optional[np.ndarray]:
    gt = getattr(sample, 'gt_sem_seg', None)
    return None if gt is None else gt.data[0].cpu().numpy()
