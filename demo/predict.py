"""Turn a trained runner's predictions on a few validation images into the demo's pictures.

Why a separate pass over a few images (not a hook during ``runner.test()``): the metrics come
from the toolboxes' own test loop untouched; this only re-runs ``model.test_step`` on a few
samples of the same test dataset and pipeline, which is cheap, and reads back what they predict
(``pred_label`` / ``pred_instances`` / ``pred_sem_seg``) at the original image size.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

import numpy as np
import torch
from PIL import Image

from . import visualize as vis

#: detections below this score are not drawn (the picture stays readable)
DET_SCORE_THR = 0.5


def _read_rgb(path: str) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert('RGB'))


def spread(total: int, count: int) -> List[int]:
    """``count`` indices spread evenly over ``range(total)`` (the val sets are sorted by class)."""
    if total < 1:
        raise ValueError(f'the test set is empty (total={total})')
    count = min(count, total)
    return sorted({int(i) for i in np.linspace(0, total - 1, count).round()})


def predictions(runner: Any, count: int, batch_size: int = 8) -> List[Any]:
    """Data samples with the model's predictions for ``count`` test images spread over the set."""
    loader = runner.test_dataloader
    dataset, model = loader.dataset, runner.model
    model.eval()
    out: List[Any] = []
    indices = spread(len(dataset), count)
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            batch = loader.collate_fn([dataset[i] for i in indices[start:start + batch_size]])
            out += model.test_step(batch)
    return out


def _label(value: Any) -> int:
    return int(torch.as_tensor(value).reshape(-1)[0])


def draw_classification(samples: Sequence[Any], classes: Sequence[str]) -> Image.Image:
    tiles = []
    for s in samples:
        pred = _label(s.pred_label)
        score = float(torch.as_tensor(s.pred_score).reshape(-1)[pred])
        tiles.append(vis.classification_tile(_read_rgb(s.img_path), classes[pred],
                                             classes[_label(s.gt_label)], score))
    return vis.grid(tiles, cols=6)


def draw_detection(samples: Sequence[Any], classes: Sequence[str]) -> Image.Image:
    tiles = []
    for s in samples:
        inst = s.pred_instances
        keep = (inst.scores >= DET_SCORE_THR).cpu().numpy()
        masks = inst.masks.cpu().numpy()[keep] if 'masks' in inst else None
        tiles.append(vis.detection_tile(
            _read_rgb(s.img_path), inst.bboxes.cpu().numpy()[keep],
            inst.labels.cpu().numpy()[keep].tolist(), inst.scores.cpu().numpy()[keep].tolist(),
            classes, masks=masks))
    colours = [vis.class_colour(k) for k in range(len(classes))]
    return vis.with_legend(vis.grid(tiles, cols=4), classes, colours)


def draw_segmentation(samples: Sequence[Any], classes: Sequence[str],
                      palette: Sequence[Sequence[int]]) -> Image.Image:
    tiles: List[Image.Image] = []
    for s in samples:
        tiles += vis.segmentation_row(_read_rgb(s.img_path),
                                      s.gt_sem_seg.data[0].cpu().numpy(),
                                      s.pred_sem_seg.data[0].cpu().numpy(), palette)
    return vis.with_legend(vis.grid(tiles, cols=3), classes[1:], [tuple(c) for c in palette[1:]])


def draw(task: str, runner: Any) -> Image.Image:
    """The prediction picture for ``task`` ('cls' | 'det' | 'seg') from a trained runner."""
    meta = runner.test_dataloader.dataset.metainfo
    drawers: Dict[str, Callable[[], Image.Image]] = {
        'cls': lambda: draw_classification(predictions(runner, 18), meta['classes']),
        'det': lambda: draw_detection(predictions(runner, 8), meta['classes']),
        'seg': lambda: draw_segmentation(predictions(runner, 4), meta['classes'],
                                         meta['palette']),
    }
    if task not in drawers:
        raise ValueError(f'no picture for task {task!r}; expected one of {sorted(drawers)}')
    return drawers[task]()


def write_picture(task: str, runner: Any, out_dir: Path) -> Path:
    return vis.save_png(draw(task, runner), Path(out_dir) / f'{task}_predictions.png')
