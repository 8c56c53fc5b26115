"""What to export: model name, task, weights, config -> a fused eval model and its description.

Tasks: ``classifier`` (logits), ``backbone`` (the four dense feature maps, published windowed
layout), ``segmentor`` (the whole Semantic FPN: backbone + neck + head + resize, see
:mod:`.segmentor`) and ``detector`` (the whole Mask / Faster R-CNN: backbone + FPN + RPN + RoI
heads + NMS, see :mod:`.detector`). Inputs are always the normalised NCHW float tensor the toolbox's data
preprocessor produces; its mean / std / channel order travel with the model
(:class:`Preprocess`) into every report. Model names and resolutions are parsed by
:mod:`iformer_mm.models.backbones.iformer_arch`, as everywhere else.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import torch.nn as nn

from ..models.backbones.iformer import IFormer
from ..models.backbones.iformer_arch import parse_model_name
from ..models.backbones.iformer_keys import load_backbone_weights
from ..models.plain_classifier import IFormerClassifier, load_classifier
from ..utils.configs import find_config, load_config
from .mm_model import build_mm_model, fuse_for_export
from .detector import DETECTOR_TASKS, DetectorDenseForExport, DetectorForExport
from .segmentor import SegmentorForExport

TASKS = ('classifier', 'backbone', 'segmentor', 'detector', 'detector-dense')
#: the tasks whose network is a whole mm model built from --config
MM_TASKS = ('segmentor', 'detector', 'detector-dense')
INPUT_NAME = 'image'
BACKBONE_OUTPUTS = ('feat_s4', 'feat_s8', 'feat_s16', 'feat_s32')
DEFAULT_RESOLUTION = {'classifier': 224, 'backbone': 512, 'segmentor': 512, 'detector': 800,
                      'detector-dense': 800}
PUBLISHED_WINDOW_SIZE = 16
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@dataclass
class Preprocess:
    """What the exported model expects: ``(rgb_uint8 - mean) / std``, NCHW float32."""
    mean: Tuple[float, ...] = IMAGENET_MEAN
    std: Tuple[float, ...] = IMAGENET_STD
    channel_order: str = 'RGB'

    def describe(self) -> Dict[str, object]:
        return {'layout': 'NCHW float32', 'channel_order': self.channel_order,
                'mean': list(self.mean), 'std': list(self.std),
                'formula': '(pixel - mean) / std, pixels 0..255'}


@dataclass
class ExportModel:
    """A fused, eval-mode model plus what the exporters and reports need to describe it."""
    model: nn.Module
    arch: str
    task: str
    distilled: bool
    window_size: int
    weights: str
    resolution: Tuple[int, int]
    output_names: Tuple[str, ...]
    preprocess: Preprocess = field(default_factory=Preprocess)
    config: Optional[str] = None
    cfg: Any = field(default=None, repr=False)  # the loaded ``config`` (mmengine Config)
    num_classes: Optional[int] = None
    classes: Optional[List[str]] = None
    palette: Optional[List[Tuple[int, int, int]]] = None  # the checkpoint's, for visualisers
    #: the toolbox's own model behind ``model`` (segmentor / detector; fused, same weights):
    #: the PyTorch reference for accuracy figures
    mm_model: Optional[nn.Module] = field(default=None, repr=False)

    @property
    def input_shape(self) -> Tuple[int, int, int, int]:
        return (1, 3) + tuple(self.resolution)

    @property
    def name(self) -> str:
        return f'iformer_{self.arch}' + ('_distill' if self.distilled else '')

    def stem(self, target: Optional[str] = None, precision: Optional[str] = None) -> str:
        """File name stem, e.g. ``iformer_m_segmentor_win16_512x512_openvino_int8``."""
        win = f'_win{self.window_size}' if self.task != 'classifier' and self.window_size else ''
        h, w = self.resolution
        tail = ''.join(f'_{part}' for part in (target, precision) if part)
        return f'{self.name}_{self.task}{win}_{h}x{w}{tail}'

    def metadata(self) -> Dict[str, str]:
        """Facts stored inside artifacts that can hold metadata."""
        meta = {'iformer.arch': self.arch, 'iformer.task': self.task,
                'iformer.distilled': str(self.distilled),
                'iformer.resolution': 'x'.join(map(str, self.resolution)),
                'iformer.window_size': str(self.window_size), 'iformer.weights': self.weights,
                'iformer.input': f'{self.preprocess.channel_order} float (1,3,H,W), (x - mean) / '
                                 f'std, mean {list(self.preprocess.mean)}, std '
                                 f'{list(self.preprocess.std)}'}
        if self.classes:
            meta['iformer.classes'] = ','.join(self.classes)
        return meta


def check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f'unknown task {task!r}; expected one of {list(TASKS)}')
    return task


def default_config(task: str, arch: str, distilled: bool = False) -> Optional[str]:
    """The shipped published-recipe config for ``task`` (None for the plain backbone, and for a
    variant without a recipe config)."""
    names = {'classifier': f'classification/iformer-{arch}{"-distilled" if distilled else ""}'
                           f'_8xb{128 if arch == "h" else 512}_in1k.py',
             'segmentor': f'segmentation/fpn_iformer-{arch}_8xb4-40k_ade20k-512x512.py',
             'detector': f'detection/mask-rcnn_iformer-{arch}_fpn_1x_coco.py'}
    names['detector-dense'] = names['detector']
    if task not in names:
        return None
    try:
        return find_config(names[task])
    except FileNotFoundError:
        return None


def preprocess_of(cfg) -> Preprocess:
    """Mean / std / channel order of the config's data preprocessor (mmpretrain or mmseg)."""
    pre = cfg.get('data_preprocessor') or cfg.model.get('data_preprocessor') or {}
    rgb = pre.get('to_rgb', pre.get('bgr_to_rgb', True))
    return Preprocess(tuple(pre.get('mean', IMAGENET_MEAN)), tuple(pre.get('std', IMAGENET_STD)),
                      'RGB' if rgb else 'BGR')


def resolution_of(cfg, task: str) -> Optional[Tuple[int, int]]:
    """The input size the config's test pipeline produces: the classification centre crop, the
    segmentor's preprocessor size, the detector's keep-ratio test scale (landscape) padded to a
    multiple of 32, e.g. (1333, 800) -> 800x1344 (None when the config does not fix one)."""
    if task == 'segmentor':
        size = (cfg.model.get('data_preprocessor') or {}).get('size')
        return tuple(int(s) for s in size) if size else None
    for step in (cfg.get('test_dataloader') or {}).get('dataset', {}).get('pipeline', []):
        if task in DETECTOR_TASKS and step.get('type') == 'Resize' and step.get('scale'):
            scale = step['scale']
            short, long = (scale, scale) if isinstance(scale, int) else sorted(scale)
            return (32 * math.ceil(short / 32), 32 * math.ceil(long / 32))
        if task not in DETECTOR_TASKS and step.get('type') == 'CenterCrop':
            crop = step['crop_size']
            return (int(crop), int(crop)) if isinstance(crop, int) else tuple(int(c) for c in crop[::-1])
    return None


def classes_of(cfg) -> Optional[List[str]]:
    """Class names from the config's test dataset metainfo, if it names them."""
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    classes = (dataset.get('metainfo') or {}).get('classes')
    return list(classes) if classes else None


def build_export_model(name: str, task: str = 'classifier', checkpoint: Optional[str] = None,
                       config: Optional[str] = None, resolution: Optional[Tuple[int, int]] = None,
                       window_size: Optional[int] = None,
                       seg_output: str = 'logits') -> ExportModel:
    """Build, load, fuse and eval the model to export (random weights without a checkpoint).

    ``window_size`` (backbone / segmentor / detector): None = the published dense layout (16x16 windows in
    stage 2), 0 = global attention. ``config`` gives the preprocessing (and, for the segmentor,
    the network); the repository's recipe config is the default where one exists.
    """
    arch, distilled = parse_model_name(name)
    check_task(task)
    config = config or default_config(task, arch, distilled)
    cfg = load_config(config, '--config') if config else None
    if task in MM_TASKS and cfg is None:
        raise ValueError(f'--task {task} needs --config (an mmseg Semantic FPN / mmdet Mask R-CNN '
                         'config), e.g. configs/detection/mask-rcnn_iformer-m_fpn_1x_coco.py')
    resolution = tuple(resolution or (cfg is not None and resolution_of(cfg, task))
                       or (DEFAULT_RESOLUTION[task],) * 2)
    num_classes = mm_model = None
    if task == 'classifier':
        if window_size:
            raise ValueError('window_size applies to --task backbone / segmentor / detector only (the '
                             f'classifier uses global attention), got {window_size}')
        model = (load_classifier(arch, checkpoint, distilled) if checkpoint
                 else IFormerClassifier(arch, num_classes=1000, distilled=distilled))
        distilled, num_classes, window_size, outputs = model.distilled, model.num_classes, 0, ('logits',)
        model.eval().switch_to_deploy()
    elif task == 'backbone':
        window_size = PUBLISHED_WINDOW_SIZE if window_size is None else window_size
        model = IFormer(arch, out_indices=(0, 1, 2, 3), window_size=window_size)
        if checkpoint:
            load_backbone_weights(model, checkpoint)
        model.eval().switch_to_deploy()
        outputs = BACKBONE_OUTPUTS
    else:
        mm_model = build_mm_model(cfg, 'detector' if task in DETECTOR_TASKS else task, checkpoint)
        backbone = mm_model.backbone
        if backbone.arch_name != 'custom' and parse_model_name(str(backbone.arch_name))[0] != arch:
            raise ValueError(f'--config {config} builds an iFormer-{str(backbone.arch_name).upper()} '
                             f'{task}, not iFormer-{arch.upper()} (--model {name})')
        if window_size is not None:
            backbone.set_window(window_size)
        window_size = backbone.window_size
        fuse_for_export(mm_model)
        if task == 'segmentor':
            model = SegmentorForExport(mm_model, seg_output).eval()
            outputs = ('seg_logits',) if seg_output == 'logits' else ('seg_map',)
        else:
            model = (DetectorForExport(mm_model, resolution) if task == 'detector'
                     else DetectorDenseForExport(mm_model)).eval()
            outputs = model.output_names
        num_classes = model.num_classes
    trained_meta = dict(getattr(mm_model, 'dataset_meta', None) or {})
    return ExportModel(model=model, arch=arch, task=task, distilled=distilled,
                       window_size=window_size, resolution=resolution, output_names=outputs,
                       weights=str(checkpoint) if checkpoint else 'random (no checkpoint)',
                       preprocess=preprocess_of(cfg) if cfg is not None else Preprocess(),
                       config=config, cfg=cfg, num_classes=num_classes,
                       classes=(classes_of(cfg) if cfg is not None else None) or
                       _list(trained_meta.get('classes')),
                       palette=_list(trained_meta.get('palette')), mm_model=mm_model)


def _list(value) -> Optional[list]:
    return [list(v) if isinstance(v, (list, tuple)) else v for v in value] if value else None
