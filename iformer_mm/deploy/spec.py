"""One description of a deployment, derived once and read by every step.

Why: export, calibration, the parity and accuracy checks, :class:`~.runner.ArtifactRunner` and
``tools/test.py CONFIG ARTIFACT`` (:mod:`.backend_model`) must agree on what the artifact takes
and how its outputs become the toolbox's predictions. Each used to derive those facts again
(model name, task, default config, resolution, preprocessing, file stem); a :class:`DeploySpec`
is derived once, from the request and the config (:func:`plan`), completed once from the built
model (:meth:`DeploySpec.completed`), written into the report as ``spec`` and read back from it
(:meth:`DeploySpec.from_report`).

Input geometry (:class:`Geometry`): ONNX Runtime and OpenVINO artifacts of the segmentor and the
detector are *dynamic* by default: they take the image exactly as the config's test pipeline and
data preprocessor prepare it, any H x W (the detector's padded to the preprocessor's
``pad_size_divisor``, plus its unpadded size as a second input ``img_shape``). ``--resolution``,
and the targets that need one size (ExecuTorch, Core ML), give a *fixed* input: an image is then
resized keeping its aspect ratio to fit and zero-padded (:mod:`.inputs`), never stretched, and
the artifact equals the toolbox only where the pipeline already yields that size.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ..models.backbones.iformer_arch import parse_model_name
from ..utils.configs import find_config, load_config
from .targets.base import DeployError

TASKS = ('classifier', 'backbone', 'segmentor', 'detector', 'detector-dense')
#: the tasks whose network is a whole mm model built from the config
MM_TASKS = ('segmentor', 'detector', 'detector-dense')
#: the tasks that export (a part of) a detector and take the detector's padded input
DETECTOR_TASKS = ('detector', 'detector-dense')
#: tasks whose artifact answers with what a toolbox data sample holds (tools/test.py, runner)
RUNNABLE_TASKS = ('classifier', 'segmentor', 'detector')
#: runtimes whose artifacts take any input size (ONNX dynamic axes, OpenVINO dynamic dims)
DYNAMIC_TARGETS = ('onnxruntime', 'openvino')
#: tasks exported with a dynamic input on those runtimes unless --resolution fixes one
DYNAMIC_TASKS = ('segmentor', 'detector')
#: the toolbox (config ``default_scope``) each runnable task's config belongs to
TASK_SCOPES = {'classifier': 'mmpretrain', 'segmentor': 'mmseg', 'detector': 'mmdet',
               'detector-dense': 'mmdet'}
DEFAULT_SIZE = {'classifier': 224, 'backbone': 512, 'segmentor': 512, 'detector': 800,
                'detector-dense': 800}
PUBLISHED_WINDOW_SIZE = 16
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
#: the report's ``spec`` layout; a report without it (or another version) is refused by name
SPEC_VERSION = 1


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
class Geometry:
    """The artifact's image input: ``dynamic`` (any H x W) or fixed at ``size``.

    ``size`` is the fixed size, or for a dynamic artifact the size it was exported and first
    checked at. ``size_divisor``: the data preprocessor pads H and W to multiples of it (the
    detector's ``pad_size_divisor``; 1 = no padding).
    """
    dynamic: bool
    size: Tuple[int, int]
    size_divisor: int = 1

    def describe(self) -> str:
        if self.dynamic:
            pad = (f', padded to multiples of {self.size_divisor}' if self.size_divisor > 1
                   else '')
            return (f'any H x W{pad}: the image as the config\'s test pipeline and data '
                    'preprocessor prepare it (equal to the toolbox on every image shape)')
        h, w = self.size
        return (f'fixed {h}x{w}: images are resized keeping their aspect ratio to fit and '
                'zero-padded; equal to the toolbox only where its pipeline yields this size')


@dataclass
class DeploySpec:
    """Everything the export, the checks, the runner and the backend model need to agree on."""
    arch: str
    distilled: bool
    task: str
    target: str
    precision: str
    geometry: Geometry
    preprocess: Preprocess = field(default_factory=Preprocess)
    config: Optional[str] = None
    #: stage-2 window (0 = global attention; None before the model is built = as configured)
    window_size: Optional[int] = None
    seg_output: str = 'logits'
    input_names: Tuple[str, ...] = ('image',)
    output_names: Tuple[str, ...] = ()
    num_classes: Optional[int] = None
    classes: Optional[List[str]] = None
    palette: Optional[List[List[int]]] = None
    #: what turns outputs into the toolbox's predictions on the host (:mod:`.postprocess`):
    #: detector ``mask_thr_binary``; segmentor ``align_corners``, ``mode`` (whole / slide),
    #: ``crop_size``, ``stride``. A config given to the runner / tools/test.py supplies its own.
    postprocess: Dict[str, Any] = field(default_factory=dict)
    #: the config's test-time settings the graph computes with (:func:`baked_of`); a config
    #: that asks for others is refused (the artifact cannot honour them)
    baked: Dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f'iformer_{self.arch}' + ('_distill' if self.distilled else '')

    @property
    def scope(self) -> Optional[str]:
        return TASK_SCOPES.get(self.task) if self.config else None

    def stem(self, long: bool = True) -> str:
        """File name stem, e.g. ``iformer_m_segmentor_win16_dynamic_openvino_int8``."""
        win = f'_win{self.window_size}' if self.task != 'classifier' and self.window_size else ''
        size = 'dynamic' if self.geometry.dynamic else 'x'.join(map(str, self.geometry.size))
        tail = f'_{self.target}_{self.precision}' if long else ''
        return f'{self.name}_{self.task}{win}_{size}{tail}'

    def metadata(self, weights: str) -> Dict[str, str]:
        """Facts stored inside artifacts that can hold metadata."""
        meta = {'iformer.arch': self.arch, 'iformer.task': self.task,
                'iformer.distilled': str(self.distilled),
                'iformer.input': self.geometry.describe(),
                'iformer.window_size': str(self.window_size), 'iformer.weights': weights,
                'iformer.normalisation': f'{self.preprocess.channel_order} float (1,3,H,W), '
                                         f'(x - mean) / std, mean {list(self.preprocess.mean)}, '
                                         f'std {list(self.preprocess.std)}'}
        if not self.geometry.dynamic:
            meta['iformer.resolution'] = 'x'.join(map(str, self.geometry.size))
        if self.classes:
            meta['iformer.classes'] = ','.join(self.classes)
        return meta

    def completed(self, **facts) -> 'DeploySpec':
        """The spec with what only the built model knows (classes, window, output names)."""
        return dataclasses.replace(self, **facts)

    # -- the report -------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        doc = dataclasses.asdict(self)
        doc['version'] = SPEC_VERSION
        return doc

    @classmethod
    def from_dict(cls, doc: Dict[str, Any], source: str = 'the report') -> 'DeploySpec':
        if not isinstance(doc, dict) or doc.get('version') != SPEC_VERSION:
            raise DeployError(f'{source} has no deployment spec of version {SPEC_VERSION} '
                              '(written by another iformer-mm version); export it again with '
                              'tools/deploy.py')
        doc = {k: v for k, v in doc.items() if k != 'version'}
        doc['geometry'] = Geometry(doc['geometry']['dynamic'],
                                   tuple(doc['geometry']['size']),
                                   int(doc['geometry']['size_divisor']))
        pre = doc['preprocess']
        doc['preprocess'] = Preprocess(tuple(pre['mean']), tuple(pre['std']),
                                       pre['channel_order'])
        for key in ('input_names', 'output_names'):
            doc[key] = tuple(doc[key])
        return cls(**doc)

    @classmethod
    def from_report(cls, report: Dict[str, Any], source: str = 'the report') -> 'DeploySpec':
        return cls.from_dict(report.get('spec'), source)


# ----------------------------------------------------------------------------------------------
# What a config says
# ----------------------------------------------------------------------------------------------
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


#: each toolbox's data preprocessor type, for configs that leave it to the model's default
DATA_PREPROCESSORS = {'mmpretrain': 'ClsDataPreprocessor', 'mmseg': 'SegDataPreProcessor',
                      'mmdet': 'DetDataPreprocessor'}


def data_preprocessor_cfg(cfg) -> Dict[str, Any]:
    """The config's data preprocessor (the model's, else the top-level one mmengine's runner
    merges into it), with the toolbox's default type where the config names none."""
    pre = dict(cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor') or {})
    pre.setdefault('type', DATA_PREPROCESSORS.get(cfg.get('default_scope'),
                                                  'BaseDataPreprocessor'))
    return pre


def preprocess_of(cfg) -> Preprocess:
    """Mean / std / channel order of the config's data preprocessor (any of the toolboxes)."""
    pre = data_preprocessor_cfg(cfg)
    rgb = pre.get('to_rgb', pre.get('bgr_to_rgb', True))
    return Preprocess(tuple(float(v) for v in pre.get('mean', IMAGENET_MEAN)),
                      tuple(float(v) for v in pre.get('std', IMAGENET_STD)),
                      'RGB' if rgb else 'BGR')


def _pipeline(cfg) -> list:
    return list(((cfg.get('test_dataloader') or {}).get('dataset') or {}).get('pipeline') or [])


def size_of(cfg, task: str) -> Optional[Tuple[int, int]]:
    """The input size the config's test path produces for a typical (landscape) image: the
    classification centre crop; the segmentor's preprocessor / slide crop size; the detector's
    keep-ratio test scale padded to its size divisor, e.g. (1333, 800) -> 800x1344."""
    if task == 'segmentor':
        seg_test = cfg.model.get('test_cfg') or {}
        size = (seg_test.get('crop_size') if seg_test.get('mode') == 'slide'
                else data_preprocessor_cfg(cfg).get('size'))
        return tuple(int(s) for s in size) if size else None
    for step in _pipeline(cfg):
        if task in DETECTOR_TASKS and step.get('type') == 'Resize' and step.get('scale'):
            scale = step['scale']
            short, long = (scale, scale) if isinstance(scale, int) else sorted(scale)
            div = int(data_preprocessor_cfg(cfg).get('pad_size_divisor', 1) or 1)
            return (div * math.ceil(short / div), div * math.ceil(long / div))
        if task == 'classifier' and step.get('type') == 'CenterCrop':
            crop = step['crop_size']
            return (int(crop), int(crop)) if isinstance(crop, int) else tuple(int(c) for c in crop[::-1])
    return None


def classes_of(cfg) -> Optional[List[str]]:
    """Class names from the config's test dataset metainfo, if it names them."""
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    classes = (dataset.get('metainfo') or {}).get('classes')
    return list(classes) if classes else None


def postprocess_of(cfg, task: str) -> Dict[str, Any]:
    """The test-time settings the host step needs (read here, nowhere else)."""
    test_cfg = cfg.model.get('test_cfg') or {}
    if task == 'segmentor':
        head = cfg.model.get('decode_head') or {}
        head = head[-1] if isinstance(head, (list, tuple)) else head
        out = {'align_corners': bool(head.get('align_corners', False)),
               'mode': test_cfg.get('mode', 'whole')}
        if out['mode'] == 'slide':
            out['crop_size'] = [int(s) for s in test_cfg['crop_size']]
            out['stride'] = [int(s) for s in test_cfg['stride']]
        elif out['mode'] != 'whole':
            raise DeployError(f"the config's model.test_cfg.mode is {out['mode']!r}; deployed "
                              "segmentors reproduce mmseg's 'whole' and 'slide' modes")
        return out
    if task in DETECTOR_TASKS:
        rcnn = test_cfg.get('rcnn') or {}
        return {'mask_thr_binary': float(rcnn.get('mask_thr_binary', 0.5))}
    return {}


def baked_of(cfg, task: str) -> Dict[str, Any]:
    """The test-time settings a task's graph computes with: the detector's RPN and R-CNN
    ``test_cfg`` (NMS, thresholds, numbers of boxes; not ``mask_thr_binary``, applied on the
    host), the segmentor head's ``align_corners`` (its resize to the input size)."""
    if task == 'detector':
        test_cfg = cfg.model.get('test_cfg') or {}
        rcnn = {k: v for k, v in dict(test_cfg.get('rcnn') or {}).items() if k != 'mask_thr_binary'}
        return _plain({'rpn': dict(test_cfg.get('rpn') or {}), 'rcnn': rcnn})
    if task == 'segmentor':
        return {'align_corners': postprocess_of(cfg, task)['align_corners']}
    return {}


def _plain(value):
    """Config values as JSON has them (tuples -> lists, ConfigDicts -> dicts)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def scope_task(cfg) -> Optional[str]:
    """The task a config's toolbox serves (mmpretrain -> classifier, ...), None if unknown."""
    return {scope: task for task, scope in TASK_SCOPES.items()
            if task != 'detector-dense'}.get(cfg.get('default_scope'))


# ----------------------------------------------------------------------------------------------
# The plan
# ----------------------------------------------------------------------------------------------
def plan(model: str, task: str, target: str, precision: str = 'fp32',
         config: Optional[str] = None, resolution: Optional[Tuple[int, int]] = None,
         window_size: Optional[int] = None, seg_output: str = 'logits'):
    """The spec of one deployment (before the model is built) and the loaded config (or None)."""
    arch, distilled = parse_model_name(model)
    if task not in TASKS:
        raise DeployError(f'unknown task {task!r}; expected one of {list(TASKS)}')
    config = config or default_config(task, arch, distilled)
    cfg = load_config(config, '--config') if config else None
    if task in MM_TASKS and cfg is None:
        raise DeployError(f'--task {task} needs --config (an mmseg Semantic FPN / mmdet Mask '
                          'R-CNN config), e.g. configs/detection/mask-rcnn_iformer-m_fpn_1x_coco.py')
    if cfg is not None and task in RUNNABLE_TASKS + ('detector-dense',):
        own = scope_task(cfg)
        expected = 'detector' if task == 'detector-dense' else task
        if own is not None and own != expected:
            raise DeployError(f'--config {config} is a {cfg.get("default_scope")} config '
                              f'({own}); --task {task} needs a {TASK_SCOPES[task]} config')
    if window_size and task == 'classifier':
        raise DeployError('--window-size applies to --task backbone / segmentor / detector only '
                          f'(the classifier uses global attention), got {window_size}')
    dynamic = resolution is None and target in DYNAMIC_TARGETS and task in DYNAMIC_TASKS
    size = tuple(resolution or (cfg is not None and size_of(cfg, task))
                 or (DEFAULT_SIZE[task],) * 2)
    divisor = 1
    if task in DETECTOR_TASKS:
        divisor = int(data_preprocessor_cfg(cfg).get('pad_size_divisor', 1) or 1)
    spec = DeploySpec(
        arch=arch, distilled=distilled, task=task, target=target, precision=precision,
        geometry=Geometry(dynamic, (int(size[0]), int(size[1])), divisor),
        preprocess=preprocess_of(cfg) if cfg is not None else Preprocess(), config=config,
        window_size=window_size, seg_output=seg_output,
        input_names=('image', 'img_shape') if task == 'detector' else ('image',),
        classes=classes_of(cfg) if cfg is not None else None,
        postprocess=postprocess_of(cfg, task) if cfg is not None else {},
        baked=baked_of(cfg, task) if cfg is not None else {})
    return spec, cfg
