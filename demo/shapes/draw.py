"""Drawing: seeded per-image generators, shape outlines, rasterising, backgrounds and scenes.

Pure numpy / PIL on arrays (no files). Why one generator per image: image ``i`` of a split is a
function of ``(seed, task, split, i)`` only, so it does not change when more images are requested.
Pixels and labels come from the same raster of each outline, so masks match the drawn shapes.
Canvases are ``(height, width)`` (numpy order), so landscape and portrait images draw alike; a
square canvas draws exactly what the square-only generator drew.
"""
from __future__ import annotations

import math
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

from .classes import SHAPE_CLASSES

#: One object of a scene: ``(label, outline, full_mask)``.
SceneObject = Tuple[int, np.ndarray, np.ndarray]
#: ``(height, width)`` of a canvas in pixels
HW = Tuple[int, int]

_TASK_IDS = {'cls': 1, 'coco': 2, 'ade': 3}
_SPLIT_IDS = {'train': 0, 'val': 1}
_STAR_INNER_RADIUS = 0.45
_CROSS_HALF_WIDTH = 0.3
_MIN_COLOUR_DISTANCE = 150  # L1 over RGB between a shape and the background mean
_MAX_PAIR_OVERLAP = 0.15    # max overlap of two COCO/ADE objects, as share of the smaller
_MAX_RADIUS_SHORT_SIDE = 0.45  # an object's radius at most this share of the short side


def image_rng(seed: int, task: str, split: str, index: int) -> np.random.Generator:
    """One generator per image, so image ``i`` is independent of how many are made."""
    return np.random.default_rng([seed, _TASK_IDS[task], _SPLIT_IDS[split], index])


def _unit_outline(kind: str) -> np.ndarray:
    """Vertices (N, 2) of a shape of radius 1 centred on the origin."""
    if kind == 'circle':
        angles = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        return np.stack([np.cos(angles), np.sin(angles)], 1)
    if kind in ('square', 'triangle'):
        sides = 4 if kind == 'square' else 3
        angles = np.linspace(0, 2 * math.pi, sides, endpoint=False) - math.pi / 2
        return np.stack([np.cos(angles), np.sin(angles)], 1)
    if kind == 'star':
        angles = np.linspace(0, 2 * math.pi, 10, endpoint=False) - math.pi / 2
        radii = np.where(np.arange(10) % 2 == 0, 1.0, _STAR_INNER_RADIUS)
        return np.stack([radii * np.cos(angles), radii * np.sin(angles)], 1)
    if kind == 'cross':
        a, w = 1 / math.sqrt(1 + _CROSS_HALF_WIDTH**2), _CROSS_HALF_WIDTH
        w *= a  # keep the arm corners on the unit circle
        return np.array([[w, a], [w, w], [a, w], [a, -w], [w, -w], [w, -a], [-w, -a], [-w, -w],
                         [-a, -w], [-a, w], [-w, w], [-w, a]], dtype=np.float64)
    raise ValueError(f'unknown shape kind {kind!r}; expected one of {SHAPE_CLASSES}')


def place(kind: str, center: Tuple[float, float], radius: float, angle: float) -> np.ndarray:
    """Rotate, scale and move a unit outline into image coordinates."""
    c, s = math.cos(angle), math.sin(angle)
    rotated = _unit_outline(kind) @ np.array([[c, s], [-s, c]])
    return rotated * radius + np.asarray(center, dtype=np.float64)


def rasterize(polygon: np.ndarray, hw: HW) -> np.ndarray:
    """Boolean ``hw`` mask of a filled polygon (the same raster is used for pixels and labels)."""
    canvas = Image.new('L', hw[::-1], 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in polygon.tolist()], fill=1)
    return np.asarray(canvas, dtype=bool)


def background(rng: np.random.Generator, hw: HW) -> np.ndarray:
    """Float ``hw`` RGB texture: a colour gradient, low-frequency blobs and pixel noise."""
    height, width = hw
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    theta = rng.uniform(0, 2 * math.pi)
    # both axes scaled by the long side: the gradient keeps its angle on non-square canvases
    ys, xs = np.mgrid[0:height, 0:width] / max(max(hw) - 1, 1)
    t = (math.cos(theta) * xs + math.sin(theta) * ys)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    img = c0 + (c1 - c0) * t[..., None]
    # 4 blob cells across the short side, as many more along the long side: blobs stay round
    cells = tuple(round(4 * side / min(hw)) for side in hw)
    coarse = rng.uniform(-1, 1, (*cells, 3)).astype(np.float32)
    blobs = np.stack([np.asarray(Image.fromarray(coarse[..., i]).resize(
        (width, height), Image.BILINEAR)) for i in range(3)], -1)
    return img + 35 * blobs + rng.normal(0, 10, (height, width, 3))


def shape_colour(rng: np.random.Generator, backdrop: np.ndarray) -> np.ndarray:
    """A random colour far enough from the mean of ``backdrop`` to stay visible on it."""
    mean = backdrop.reshape(-1, 3).mean(0)
    best, best_dist = mean, -1.0
    for _ in range(20):
        colour = rng.uniform(0, 255, 3)
        dist = float(np.abs(colour - mean).sum())
        if dist >= _MIN_COLOUR_DISTANCE:
            return colour
        if dist > best_dist:
            best, best_dist = colour, dist
    return best


def paint(img: np.ndarray, mask: np.ndarray, colour: np.ndarray, rng: np.random.Generator) -> None:
    """Fill ``mask`` with a slightly noisy colour, in place."""
    img[mask] = colour + rng.normal(0, 8, (int(mask.sum()), 3))


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Round and clip a float image to the uint8 pixels that are saved."""
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _random_object(rng: np.random.Generator, hw: HW, min_frac: float,
                   max_frac: float) -> Tuple[int, np.ndarray]:
    """A class index and its outline, fully inside the image, anywhere on it.

    The radius is a share of the geometric mean side (the side of a square of the same area), so
    objects keep their share of the image through a keep-ratio resize on any aspect ratio; it is
    capped so the shape fits across the short side of a very wide or tall image.
    """
    height, width = hw
    label = int(rng.integers(len(SHAPE_CLASSES)))
    radius = min(rng.uniform(min_frac, max_frac) * math.sqrt(height * width),
                 _MAX_RADIUS_SHORT_SIDE * (min(hw) - 1))
    cx, cy = rng.uniform((radius, radius), (width - 1 - radius, height - 1 - radius))
    outline = place(SHAPE_CLASSES[label], (cx, cy), radius, rng.uniform(0, 2 * math.pi))
    return label, outline


def scene(rng: np.random.Generator, hw: HW,
          max_objects: int) -> Tuple[np.ndarray, List[SceneObject]]:
    """``hw`` background with 1..max_objects shapes that overlap at most a little.

    Returns the uint8 image and ``(label, outline, full_mask)`` per object in paint order
    (later objects are drawn on top of earlier ones).
    """
    img = background(rng, hw)
    wanted = int(rng.integers(1, max_objects + 1))
    objects: List[SceneObject] = []
    for _ in range(wanted * 10):
        if len(objects) == wanted:
            break
        label, outline = _random_object(rng, hw, 0.1, 0.24)
        mask = rasterize(outline, hw)
        if mask.sum() >= 8 and _overlap_ok(mask, [m for _, _, m in objects]):
            objects.append((label, outline, mask))
    for _, _, mask in objects:
        paint(img, mask, shape_colour(rng, img), rng)
    return to_uint8(img), objects


def _overlap_ok(mask: np.ndarray, others: Sequence[np.ndarray]) -> bool:
    """True if ``mask`` covers at most a small share of each other object and vice versa."""
    area = int(mask.sum())
    for other in others:
        inter = int(np.logical_and(mask, other).sum())
        if inter > _MAX_PAIR_OVERLAP * min(area, int(other.sum())):
            return False
    return True


def visible_masks(masks: Sequence[np.ndarray]) -> List[np.ndarray]:
    """What remains of each mask after the later (upper) ones are drawn."""
    visible, above = [], np.zeros_like(masks[0]) if masks else None
    for mask in reversed(masks):
        visible.append(np.logical_and(mask, ~above))
        above = np.logical_or(above, mask)
    return visible[::-1]
