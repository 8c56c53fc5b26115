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

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..scope import toolbox_scope
from .build import ExportModel, load_config
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


class Preparer:
    """Turns one pipeline result into the exported model's input tensor."""

    def __init__(self, em: ExportModel):
        self.em = em
        pre = em.preprocess
        self.mean = torch.tensor(pre.mean).view(1, 3, 1, 1)
        self.std = torch.tensor(pre.std).view(1, 3, 1, 1)
        self.to_rgb = pre.channel_order == 'RGB'

    def __call__(self, image_chw_bgr: torch.Tensor) -> torch.Tensor:
        x = image_chw_bgr.float().unsqueeze(0)
        if self.to_rgb:
            x = x.flip(1)  # mmcv loads BGR
        x = (x - self.mean) / self.std
        if tuple(x.shape[2:]) != tuple(self.em.resolution):
            x = F.interpolate(x, size=tuple(self.em.resolution), mode='bilinear',
                              align_corners=False)
        return x.contiguous()


class InputSource:
    """Samples for one exported model, through its config's test pipeline.

    Without a config (the plain backbone) images are resized to the export resolution and
    normalised with the model's mean / std.
    """

    def __init__(self, em: ExportModel):
        self.em = em
        self.prepare = Preparer(em)
        self.cfg = em.cfg
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
        out = []
        with toolbox_scope(self.scope):
            for f in files:
                out.append(Sample(self.prepare(pipeline(dict(img_path=str(f)))['inputs'])))
        return out

    def _plain(self, path: Path) -> torch.Tensor:
        from PIL import Image
        with Image.open(path) as img:
            rgb = np.asarray(img.convert('RGB'))
        bgr = torch.from_numpy(np.ascontiguousarray(rgb[..., ::-1])).permute(2, 0, 1)
        return self.prepare(bgr)

    # -- datasets ---------------------------------------------------------------------------
    def _dataset(self, cfg, loader: str, data_root: Optional[str]):
        from mmengine.registry import DATASETS
        spec = copy.deepcopy(cfg.get(loader).dataset)
        spec['pipeline'] = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
        if data_root is not None:
            spec['data_root'] = data_root
        with toolbox_scope(self.scope):
            try:
                return DATASETS.build(spec)
            except (FileNotFoundError, OSError) as e:
                raise DeployError(f'cannot read the dataset at {spec.get("data_root")!r} '
                                  f'({type(e).__name__}: {e})') from None

    def from_dataset(self, count: Optional[int] = None, data_root: Optional[str] = None,
                     config: Optional[str] = None, loader: str = 'test_dataloader'
                     ) -> List[Sample]:
        """Samples (with ground truth) of a config's dataset, ``count`` spread over it."""
        cfg = load_config(config) if config else self.cfg
        if cfg is None:
            raise DeployError('reading a dataset needs --config (its test pipeline and layout)')
        dataset = self._dataset(cfg, loader, data_root)
        if len(dataset) == 0:
            raise DeployError(f'the dataset at {data_root or "the config"} is empty')
        indices = spread(range(len(dataset)), count or len(dataset))
        out = []
        with toolbox_scope(self.scope):
            for i in indices:
                item = dataset[i]
                sample = item['data_samples']
                out.append(Sample(self.prepare(item['inputs']), label=_label(sample),
                                  seg_map=_seg_map(sample)))
        return out

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
