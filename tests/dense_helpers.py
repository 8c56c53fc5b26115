"""Helpers for the dense-prediction tests: build mmdet / mmseg models from config files and
feed them tiny synthetic batches (real DetDataSample / SegDataSample objects, no dataset)."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[1]
DET_DIR = REPO / 'configs' / 'detection'
SEG_DIR = REPO / 'configs' / 'segmentation'
SWAP_DIR = REPO / 'configs' / 'swap_examples'
VARIANTS = ('t', 's', 'm', 'l', 'l2')
# published dims, written out here so that a wrong table in the package cannot hide a wrong config
DIMS = {'t': [32, 64, 128, 256], 's': [32, 64, 176, 320], 'm': [48, 96, 192, 384],
        'l': [48, 96, 256, 384], 'l2': [64, 128, 256, 512]}


def det_config(variant: str) -> Path:
    return DET_DIR / f'mask-rcnn_iformer-{variant}_fpn_1x_coco.py'


def seg_config(variant: str) -> Path:
    return SEG_DIR / f'fpn_iformer-{variant}_8xb4-40k_ade20k-512x512.py'


def load_config(path: Path, backbone_init: Optional[dict] = None) -> Config:
    """Config with the backbone's checkpoint init replaced (no weights exist in tests)."""
    cfg = Config.fromfile(str(path))
    cfg.model.backbone.init_cfg = backbone_init
    return cfg


def build_model(cfg: Config) -> torch.nn.Module:
    """Build ``cfg.model`` in the config's scope, as the runner does on one CPU process."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS, init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model = MODELS.build(copy.deepcopy(cfg.model))
    return revert_sync_batchnorm(model)


def det_batch(h: int = 128, w: int = 128, num_images: int = 1,
              seed: int = 0) -> Dict[str, list]:
    """uint8 images + DetDataSample with two boxes, labels and bitmap masks each."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(num_images):
        inputs.append(torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8))
        sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             scale_factor=(1., 1.), img_id=0))
        boxes = [(w * .1, h * .1, w * .5, h * .6), (w * .4, h * .3, w * .95, h * .9)]
        masks = torch.zeros(len(boxes), h, w, dtype=torch.uint8)
        for i, (x1, y1, x2, y2) in enumerate(boxes):
            masks[i, int(y1):int(y2), int(x1):int(x2)] = 1
        gt = InstanceData()
        gt.bboxes = torch.tensor(boxes, dtype=torch.float32)
        gt.labels = torch.tensor([1, 3])
        gt.masks = BitmapMasks(masks.numpy(), h, w)
        sample.gt_instances = gt
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def seg_batch(h: int = 128, w: int = 128, num_classes: int = 150, num_images: int = 1,
              seed: int = 0) -> Dict[str, list]:
    """uint8 images + SegDataSample with a label map of three regions (and some ignore=255)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(num_images):
        inputs.append(torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8))
        label = torch.zeros(1, h, w, dtype=torch.long)
        label[:, h // 4:, :w // 2] = 1 % num_classes
        label[:, :, w // 2:] = 2 % num_classes
        label[:, :2] = 255
        sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             pad_shape=(h, w)))
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def train_step(model: torch.nn.Module, optim_wrapper,
               data: dict) -> Tuple[dict, Dict[str, torch.Tensor]]:
    """One optimisation step (what ``model.train_step`` does), keeping the gradients to inspect.

    Returns the logged losses and ``{param name: grad}`` captured before the optimizer clears them.
    """
    model.train()
    data = model.data_preprocessor(data, True)
    losses = model(**data, mode='loss')
    loss, log_vars = model.parse_losses(losses)
    optim_wrapper.backward(loss)
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    optim_wrapper.step()
    optim_wrapper.zero_grad()
    return log_vars, grads


def num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
