"""The three demo tasks: which config, which generated dataset, which metrics, how to re-point data.

Why a table: the rest of the demo (data, training, pictures, report) is task-agnostic and loops
over :data:`TASKS`; everything specific to mmpretrain / mmdet / mmseg is in this file.
The schedules themselves live in the demo configs, so ``tools/train.py CONFIG`` trains the same
thing the demo does.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .data import DataSpec, background_scores

#: (runner metric key, label in the table, divisor that makes it a fraction)
Metric = Tuple[str, str, float]

_LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
_EVALUATORS = ('val_evaluator', 'test_evaluator')


def _set_dataset_root(cfg: Any, value: str) -> None:
    """Every dataloader's ``data_root`` (and the config's own variable, for the saved copy)."""
    if 'data_root' in cfg:
        cfg.data_root = value
    for name in _LOADERS:
        if cfg.get(name):
            cfg[name]['dataset']['data_root'] = value


def point_cls(cfg: Any, root: Path) -> None:
    """ImageNet layout: ``data_root`` is the folder holding train/, val/ and meta/."""
    _set_dataset_root(cfg, str(root))


def point_coco(cfg: Any, root: Path) -> None:
    """COCO layout: dataset roots and the evaluator's copy of the val annotation path."""
    _set_dataset_root(cfg, str(root) + '/')
    for name in _EVALUATORS:
        if cfg.get(name):
            cfg[name]['ann_file'] = str(root / 'annotations' / 'instances_val2017.json')


def point_ade(cfg: Any, root: Path) -> None:
    """ADE20K layout: the datasets read ``<root>/ADEChallengeData2016``."""
    _set_dataset_root(cfg, str(root / 'ADEChallengeData2016'))


def set_backbone(cfg: Any, checkpoint: Path) -> None:
    """Initialise the backbone from the demo's classifier (``init_cfg`` of type Pretrained)."""
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=str(checkpoint),
                                       prefix='backbone.')


def _quick_epochs(cfg: Any) -> None:
    cfg.train_cfg.max_epochs = 1


def _quick_iters(cfg: Any) -> None:
    cfg.train_cfg.max_iters = 2


@dataclass(frozen=True)
class DemoTask:
    """Everything the demo needs to know about one task."""
    name: str                       # CLI name
    title: str
    config: str                     # relative to the repo's configs/ folder
    data: DataSpec                  # the dataset the measured numbers are for
    quick_data: DataSpec            # a tiny one for --quick (tests)
    point_at: Callable[[Any, Path], None]
    shorten: Callable[[Any], None]  # --quick schedule
    metrics: Tuple[Metric, ...]
    trivial: Callable[[Path], Dict[str, float]]  # metric -> fraction a trivial predictor scores
    backbone_from: Optional[str] = None  # task whose checkpoint initialises the backbone


TASKS: Dict[str, DemoTask] = {
    'cls': DemoTask(
        name='cls', title='classification (mmpretrain)',
        config='classification/iformer-t_1xb32_shapes.py',
        data=DataSpec('cls', 'cls', num_train=1000, num_val=40, image_size=64),
        quick_data=DataSpec('cls', 'cls', num_train=2, num_val=2, image_size=64),
        point_at=point_cls, shorten=_quick_epochs,
        metrics=(('accuracy/top1', 'top-1 acc', 100.0), ),
        trivial=lambda root: {'accuracy/top1': 1 / 5}),  # one of 5 balanced classes
    'det': DemoTask(
        name='det', title='instance segmentation (mmdet, Mask R-CNN)',
        config='detection/mask-rcnn_iformer-t_fpn_3e_shapes.py',
        data=DataSpec('coco', 'coco', num_train=400, num_val=50, image_size=128),
        quick_data=DataSpec('coco', 'coco', num_train=2, num_val=2, image_size=128),
        point_at=point_coco, shorten=_quick_epochs,
        metrics=(('coco/bbox_mAP', 'box AP', 1.0), ('coco/bbox_mAP_50', 'box AP50', 1.0),
                 ('coco/segm_mAP', 'mask AP', 1.0)),
        trivial=lambda root: {'coco/bbox_mAP': 0.0, 'coco/bbox_mAP_50': 0.0,
                              'coco/segm_mAP': 0.0},  # no detections
        backbone_from='cls'),
    'seg': DemoTask(
        name='seg', title='semantic segmentation (mmseg, Semantic FPN)',
        config='segmentation/fpn_iformer-t_1xb8-800iter_shapes-128x128.py',
        data=DataSpec('ade', 'ade', num_train=400, num_val=50, image_size=128),
        quick_data=DataSpec('ade', 'ade', num_train=2, num_val=2, image_size=128),
        point_at=point_ade, shorten=_quick_iters,
        metrics=(('mIoU', 'mIoU', 100.0), ('aAcc', 'pixel acc', 100.0)),
        trivial=background_scores,  # 'background' everywhere
        backbone_from='cls'),
}


def with_dependencies(names: Sequence[str]) -> List[str]:
    """``names`` in the demo's order, plus the tasks whose checkpoints they start from."""
    wanted = set(names)
    for name in names:
        if TASKS[name].backbone_from:
            wanted.add(TASKS[name].backbone_from)
    return [name for name in TASKS if name in wanted]
