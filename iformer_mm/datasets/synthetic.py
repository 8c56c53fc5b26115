"""Small, seeded, learnable shape datasets in the on-disk formats OpenMMLab reads.

Why: tests and demos need to train and evaluate with the toolboxes' *real* dataset
classes and metrics, without downloading ImageNet / COCO / ADE20K. Every image is
drawn from a per-image random generator keyed by ``(seed, task, split, index)``, so
the same seed gives byte-identical annotation files and identical images, and image
``i`` does not change when more images are requested.

Layouts written (``root`` is the argument of each function):

Classification (``make_classification``), ImageNet / ImageFolder layout::

    root/train/<class>/<class>_00000.png      root/meta/train.txt  ("<class>/<file> <label>")
    root/val/<class>/<class>_00000.png        root/meta/val.txt

  Both splits load with mmpretrain 1.2.0's standard ``ImageNet`` type::

    dict(type='ImageNet', data_root=root, split='train' | 'val',
         metainfo=dict(classes=SHAPE_CLASSES))

  ``metainfo`` is required: without it ``ImageNet`` carries the 1000 ImageNet names.
  ``split`` picks up ``meta/<split>.txt``. The folder names are sorted, so the labels
  match a plain folder scan: ``dict(type='CustomDataset', data_root=root,
  data_prefix='train')`` (no ``ann_file``) gives the same samples and class names.

Instance segmentation (``make_coco``), COCO 2017 layout for mmdet 3.3.0's
``CocoDataset`` (``metainfo=dict(classes=COCO_CLASSES)``) and ``CocoMetric``::

    root/train2017/000000000001.jpg   root/annotations/instances_train2017.json
    root/val2017/000000000001.jpg     root/annotations/instances_val2017.json

  Fully visible objects get polygon segmentations; objects partly hidden by a later
  one, and a random ~10% of the others, get compressed RLE (``iscrowd=0``, ``counts``
  as str) of their visible pixels. ``bbox`` (xywh) and ``area`` come from pycocotools
  on the written segmentation, so they agree with what ``annToMask`` decodes.
  Note: mmdet's ``LoadAnnotations(poly2mask=False)`` marks RLE instances as ignored;
  use the default ``poly2mask=True`` to train on them.

Semantic segmentation (``make_ade20k``), ADE20K layout for mmseg 1.2.2::

    root/ADEChallengeData2016/images/{training,validation}/ADE_{train,val}_00000001.jpg
    root/ADEChallengeData2016/annotations/{training,validation}/ADE_..._00000001.png

  Label PNGs are single-channel uint8: 0 = ignore (never written), 1 = background,
  2 + k = ``SHAPE_CLASSES[k]``. After ``reduce_zero_label=True`` (k -> k-1, 0 -> 255)
  labels are indices into ``ADE_CLASSES = ('background',) + SHAPE_CLASSES``.
  mmseg's ``ADE20KDataset`` refuses ``metainfo`` classes that are not ADE's own
  (``get_label_map`` raises), so a config with these class names uses::

    dict(type='BaseSegDataset', data_root=root + '/ADEChallengeData2016',
         data_prefix=dict(img_path='images/training',
                          seg_map_path='annotations/training'),
         img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True,
         metainfo=dict(classes=ADE_CLASSES, palette=ADE_PALETTE))

  ``ADE20KDataset`` *without* a ``metainfo`` override also reads the files and yields
  the same label values (under ADE's 150 names).

Each function replaces only the entries it owns under ``root`` (listed above), and
only if ``root`` holds the marker file ``.synthetic_shapes.json`` from an earlier run
(or the entries do not exist yet), so it never deletes someone's real data. Output is
built in a staging folder inside ``root`` and moved into place at the end: an error
leaves no half-written dataset. Each function returns a summary whose
``summary['splits'][split]['dataset']`` is a ready dataset config (type, data_root, ...).
"""
from __future__ import annotations

import json
import math
import operator
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple, Union

import numpy as np
from PIL import Image, ImageDraw

PathLike = Union[str, 'os.PathLike[str]']

#: Shape kinds. Sorted, because ImageFolder-style loaders number classes by sorted folder name.
SHAPE_CLASSES: Tuple[str, ...] = ('circle', 'cross', 'square', 'star', 'triangle')
#: COCO category names; category ``id`` is ``index + 1``.
COCO_CLASSES: Tuple[str, ...] = SHAPE_CLASSES
#: Semantic classes after ``reduce_zero_label`` (label PNG value = index + 1).
ADE_CLASSES: Tuple[str, ...] = ('background', ) + SHAPE_CLASSES
#: One RGB colour per entry of ``ADE_CLASSES``.
ADE_PALETTE: List[List[int]] = [[0, 0, 0], [220, 20, 60], [0, 130, 200], [60, 180, 75],
                                [255, 225, 25], [145, 30, 180]]

MIN_IMAGE_SIZE = 32
MAX_IMAGE_SIZE = 2048
MAX_IMAGES_PER_SPLIT = 100_000
MARKER_NAME = '.synthetic_shapes.json'

_TASK_IDS = {'cls': 1, 'coco': 2, 'ade': 3}
_SPLIT_IDS = {'train': 0, 'val': 1}
_STAR_INNER_RADIUS = 0.45
_CROSS_HALF_WIDTH = 0.3
_MIN_COLOUR_DISTANCE = 150  # L1 over RGB between a shape and the background mean
_RLE_FRACTION = 0.1         # share of fully visible COCO objects written as RLE anyway
_MAX_PAIR_OVERLAP = 0.15    # max overlap of two COCO/ADE objects, as share of the smaller


# ----------------------------------------------------------------------------- validation
def _check_count(name: str, value: Any) -> int:
    """Reject non-integer, zero, negative or absurd image counts, naming the argument."""
    try:
        if isinstance(value, bool):
            raise TypeError
        count = operator.index(value)
    except TypeError:
        raise ValueError(f'{name} must be a positive integer, got {value!r}') from None
    if count < 1:
        raise ValueError(f'{name} must be a positive integer (>= 1), got {count}')
    if count > MAX_IMAGES_PER_SPLIT:
        raise ValueError(f'{name} must be at most {MAX_IMAGES_PER_SPLIT}, got {count}')
    return count


def _check_size(value: Any) -> int:
    """Reject sizes the shapes cannot be drawn legibly in (or that would be huge)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        size = operator.index(value)
    except TypeError:
        raise ValueError(f'image_size must be an integer number of pixels, got {value!r}') from None
    if not MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE:
        raise ValueError(f'image_size must be between {MIN_IMAGE_SIZE} (minimum) and '
                         f'{MAX_IMAGE_SIZE} pixels, got {size}')
    return size


def _check_seed(value: Any) -> int:
    """Seeds feed numpy's SeedSequence, which needs a non-negative integer."""
    try:
        if isinstance(value, bool):
            raise TypeError
        seed = operator.index(value)
    except TypeError:
        raise ValueError(f'seed must be a non-negative integer, got {value!r}') from None
    if seed < 0:
        raise ValueError(f'seed must be a non-negative integer, got {seed}')
    return seed


def _check_root(root: PathLike, owned: Sequence[str]) -> Path:
    """Fail before writing if ``root`` cannot hold the dataset or holds foreign data."""
    if root is None or str(root) == '':
        raise ValueError('root must be a directory path, got an empty value')
    path = Path(root).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f'root {str(path)!r} exists and is not a directory')
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise NotADirectoryError(
            f'cannot create root {str(path)!r}: {str(existing)!r} is a file, not a directory')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f'cannot write root {str(path)!r}: {str(existing)!r} is not writable')
    if path.is_dir() and not (path / MARKER_NAME).is_file():
        clash = [name for name in owned if (path / name).exists()]
        if clash:
            raise FileExistsError(
                f'refusing to overwrite {clash} in {str(path)!r}: it has no {MARKER_NAME} '
                'marker, so it was not written by iformer_mm.datasets.synthetic')
    return path


def _nearest_existing(path: Path) -> Path:
    """The closest ancestor (or ``path`` itself) that exists, to test writability."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return Path(path.anchor)


def check_arguments(task: str, root: PathLike, num_train: Any, num_val: Any, image_size: Any,
                    seed: Any) -> Dict[str, Any]:
    """Validate one request without writing, so a CLI can check several before any write.

    ``task`` is ``'cls'``, ``'coco'`` or ``'ade'``. Returns the normalised arguments.
    """
    if task not in _OWNED:
        raise ValueError(f'task must be one of {sorted(_OWNED)}, got {task!r}')
    train_name = 'num_train_per_class' if task == 'cls' else 'num_train'
    val_name = 'num_val_per_class' if task == 'cls' else 'num_val'
    return dict(num_train=_check_count(train_name, num_train),
                num_val=_check_count(val_name, num_val), image_size=_check_size(image_size),
                seed=_check_seed(seed), root=_check_root(root, _OWNED[task]))


# ----------------------------------------------------------------------------- drawing
def _rng(seed: int, task: str, split: str, index: int) -> np.random.Generator:
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


def _place(kind: str, center: Tuple[float, float], radius: float, angle: float) -> np.ndarray:
    """Rotate, scale and move a unit outline into image coordinates."""
    c, s = math.cos(angle), math.sin(angle)
    rotated = _unit_outline(kind) @ np.array([[c, s], [-s, c]])
    return rotated * radius + np.asarray(center, dtype=np.float64)


def _rasterize(polygon: np.ndarray, size: int) -> np.ndarray:
    """Boolean mask of a filled polygon (the same raster is used for pixels and labels)."""
    canvas = Image.new('L', (size, size), 0)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in polygon.tolist()], fill=1)
    return np.asarray(canvas, dtype=bool)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Float RGB texture: a colour gradient, low-frequency blobs and pixel noise."""
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    theta = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    t = (math.cos(theta) * xs + math.sin(theta) * ys)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    img = c0 + (c1 - c0) * t[..., None]
    coarse = rng.uniform(-1, 1, (4, 4, 3)).astype(np.float32)
    blobs = np.stack([np.asarray(Image.fromarray(coarse[..., i]).resize(
        (size, size), Image.BILINEAR)) for i in range(3)], -1)
    return img + 35 * blobs + rng.normal(0, 10, (size, size, 3))


def _shape_colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A random colour far enough from the background mean to stay visible."""
    mean = background.reshape(-1, 3).mean(0)
    best, best_dist = mean, -1.0
    for _ in range(20):
        colour = rng.uniform(0, 255, 3)
        dist = float(np.abs(colour - mean).sum())
        if dist >= _MIN_COLOUR_DISTANCE:
            return colour
        if dist > best_dist:
            best, best_dist = colour, dist
    return best


def _paint(img: np.ndarray, mask: np.ndarray, colour: np.ndarray, rng: np.random.Generator) -> None:
    """Fill ``mask`` with a slightly noisy colour, in place."""
    img[mask] = colour + rng.normal(0, 8, (int(mask.sum()), 3))


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _random_object(rng: np.random.Generator, size: int, min_frac: float,
                   max_frac: float) -> Tuple[int, np.ndarray]:
    """A class index and its outline, fully inside the image."""
    label = int(rng.integers(len(SHAPE_CLASSES)))
    radius = rng.uniform(min_frac, max_frac) * size
    cx, cy = rng.uniform(radius, size - 1 - radius, 2)
    outline = _place(SHAPE_CLASSES[label], (cx, cy), radius, rng.uniform(0, 2 * math.pi))
    return label, outline


def _scene(rng: np.random.Generator, size: int,
           max_objects: int) -> Tuple[np.ndarray, List[Tuple[int, np.ndarray, np.ndarray]]]:
    """Background with 1..max_objects shapes that overlap at most a little.

    Returns the uint8 image and ``(label, outline, full_mask)`` per object in paint order
    (later objects are drawn on top of earlier ones).
    """
    img = _background(rng, size)
    wanted = int(rng.integers(1, max_objects + 1))
    objects: List[Tuple[int, np.ndarray, np.ndarray]] = []
    for _ in range(wanted * 10):
        if len(objects) == wanted:
            break
        label, outline = _random_object(rng, size, 0.1, 0.24)
        mask = _rasterize(outline, size)
        if mask.sum() >= 8 and _overlap_ok(mask, [m for _, _, m in objects]):
            objects.append((label, outline, mask))
    for _, _, mask in objects:
        _paint(img, mask, _shape_colour(rng, img), rng)
    return _to_uint8(img), objects


def _overlap_ok(mask: np.ndarray, others: Sequence[np.ndarray]) -> bool:
    """True if ``mask`` covers at most a small share of each other object and vice versa."""
    area = int(mask.sum())
    for other in others:
        inter = int(np.logical_and(mask, other).sum())
        if inter > _MAX_PAIR_OVERLAP * min(area, int(other.sum())):
            return False
    return True


def _visible_masks(masks: Sequence[np.ndarray]) -> List[np.ndarray]:
    """What remains of each mask after the later (upper) ones are drawn."""
    visible, above = [], np.zeros_like(masks[0]) if masks else None
    for mask in reversed(masks):
        visible.append(np.logical_and(mask, ~above))
        above = np.logical_or(above, mask)
    return visible[::-1]


# ----------------------------------------------------------------------------- writing
def _save_image(img: np.ndarray, path: Path) -> None:
    """PNG for lossless label maps / classification, JPEG (fixed settings) for photos."""
    pil = Image.fromarray(img)
    if path.suffix == '.jpg':
        pil.save(path, format='JPEG', quality=92, optimize=False, progressive=False)
    else:
        pil.save(path, format='PNG', optimize=False, compress_level=6)


def _write_text(path: Path, text: str) -> None:
    """Write via a temp file + os.replace, so readers never see a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8', newline='\n') as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600; use normal perms
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_json(path: Path, obj: Any) -> None:
    _write_text(path, json.dumps(obj, separators=(',', ':'), ensure_ascii=True) + '\n')


def _publish(root: Path, owned: Sequence[str],
             build: Callable[[Path], Dict[str, Any]]) -> Dict[str, Any]:
    """Build into a staging dir inside ``root`` then swap the owned entries into place.

    On any error the staging dir (and ``root`` itself, if this call created it and it is
    still empty) is removed, so nothing half-written is left behind.
    """
    created_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix='.staging-', dir=root))
    try:
        summary = build(staging)
        for name in owned:
            target = root / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            os.replace(staging / name, target)
        _write_json(root / MARKER_NAME, _relative_summary(summary, staging, root))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created_root and root.is_dir() and not any(root.iterdir()):
            root.rmdir()
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return _absolute_summary(summary, staging, root)


def _relative_summary(summary: Dict[str, Any], staging: Path, root: Path) -> Dict[str, Any]:
    """The marker stores paths relative to root, so it is identical across locations."""
    return _map_paths(summary, lambda p: os.path.relpath(p, staging))


def _absolute_summary(summary: Dict[str, Any], staging: Path, root: Path) -> Dict[str, Any]:
    return _map_paths(summary, lambda p: str(root / os.path.relpath(p, staging)))


def _map_paths(obj: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(obj, dict):
        return {k: (fn(v) if isinstance(v, Path) else _map_paths(v, fn)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_map_paths(v, fn) for v in obj]
    return obj


# ----------------------------------------------------------------------------- classification
def _classification_image(rng: np.random.Generator, label: int, size: int) -> np.ndarray:
    """One centred-ish shape of class ``label`` on a textured background."""
    img = _background(rng, size)
    _clutter(img, rng, size)
    radius = rng.uniform(0.22, 0.42) * size
    cx, cy = rng.uniform(radius, size - 1 - radius, 2)
    outline = _place(SHAPE_CLASSES[label], (cx, cy), radius, rng.uniform(0, 2 * math.pi))
    _paint(img, _rasterize(outline, size), _shape_colour(rng, img), rng)
    return _to_uint8(img)


def _clutter(img: np.ndarray, rng: np.random.Generator, size: int) -> None:
    """0-2 thin random strokes, so edges alone do not give the class away."""
    for _ in range(int(rng.integers(0, 3))):
        canvas = Image.new('L', (size, size), 0)
        ends = [tuple(p) for p in rng.uniform(0, size - 1, (2, 2)).tolist()]
        ImageDraw.Draw(canvas).line(ends, fill=1, width=max(1, size // 48))
        img[np.asarray(canvas, dtype=bool)] = rng.uniform(0, 255, 3)


def _build_classification(staging: Path, counts: Dict[str, int], size: int,
                          seed: int) -> Dict[str, Any]:
    splits: Dict[str, Any] = {}
    for split, per_class in counts.items():
        lines = []
        for label, name in enumerate(SHAPE_CLASSES):
            (staging / split / name).mkdir(parents=True)
            for i in range(per_class):
                index = label * MAX_IMAGES_PER_SPLIT + i
                rel = f'{name}/{name}_{i:05d}.png'
                _save_image(_classification_image(_rng(seed, 'cls', split, index), label, size),
                            staging / split / rel)
                lines.append(f'{rel} {label}')
        _write_text(staging / 'meta' / f'{split}.txt', '\n'.join(lines) + '\n')
        splits[split] = dict(
            images=per_class * len(SHAPE_CLASSES), img_dir=staging / split,
            ann_file=staging / 'meta' / f'{split}.txt',
            dataset=dict(type='ImageNet', data_root=staging, split=split,
                         metainfo=dict(classes=list(SHAPE_CLASSES))))
    return dict(task='classification', root=staging, classes=list(SHAPE_CLASSES),
                image_size=size, seed=seed, splits=splits)


def make_classification(root: PathLike, num_train_per_class: int = 40, num_val_per_class: int = 10,
                        image_size: int = 64, seed: int = 0) -> Dict[str, Any]:
    """Write an ImageNet-layout shape classification set; returns a summary dict.

    Why: lets mmpretrain's real ``ImageNet`` dataset + ``Accuracy`` metric run in tests.
    Load with ``dict(type='ImageNet', data_root=root, split='train'|'val',
    metainfo=dict(classes=SHAPE_CLASSES))`` (see the module docstring).
    """
    args = check_arguments('cls', root, num_train_per_class, num_val_per_class, image_size, seed)
    counts = {'train': args['num_train'], 'val': args['num_val']}
    return _publish(args['root'], _OWNED['cls'],
                    lambda st: _build_classification(st, counts, args['image_size'], args['seed']))


# ----------------------------------------------------------------------------- COCO
def _polygon_segmentation(outline: np.ndarray) -> List[List[float]]:
    return [[round(float(v), 2) for v in outline.reshape(-1)]]


def _rle_segmentation(mask: np.ndarray) -> Dict[str, Any]:
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(s) for s in rle['size']], 'counts': rle['counts'].decode('ascii')}


def _segmentation_stats(segmentation: Any, size: int) -> Tuple[float, List[float]]:
    """Area and xywh bbox exactly as pycocotools decodes the written segmentation."""
    from pycocotools import mask as mask_utils
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, size, size))
    else:
        rle = dict(segmentation, counts=segmentation['counts'].encode('ascii'))
    area = float(mask_utils.area(rle))
    bbox = [round(float(v), 2) for v in mask_utils.toBbox(rle)]
    return area, bbox


def _coco_annotations(rng: np.random.Generator,
                      objects: Sequence[Tuple[int, np.ndarray, np.ndarray]], size: int,
                      image_id: int, first_ann_id: int) -> List[Dict[str, Any]]:
    """Polygons for fully visible objects, RLE of the visible part for occluded (or random) ones."""
    visible = _visible_masks([m for _, _, m in objects])
    anns = []
    for (label, outline, full), vis in zip(objects, visible):
        occluded = int(vis.sum()) < int(full.sum())
        as_rle = rng.random() < _RLE_FRACTION or occluded
        if vis.sum() < 4:
            continue
        segmentation = _rle_segmentation(vis) if as_rle else _polygon_segmentation(outline)
        area, bbox = _segmentation_stats(segmentation, size)
        if area <= 0 or bbox[2] < 1 or bbox[3] < 1:
            continue
        anns.append(dict(id=first_ann_id + len(anns), image_id=image_id, category_id=label + 1,
                         segmentation=segmentation, area=area, bbox=bbox, iscrowd=0))
    return anns


def _coco_split(staging: Path, split: str, count: int, size: int, seed: int) -> Dict[str, Any]:
    """Images + annotation dict for one split; returns the COCO dict."""
    img_dir = staging / f'{split}2017'
    img_dir.mkdir(parents=True)
    images, annotations = [], []
    for i in range(count):
        rng = _rng(seed, 'coco', split, i)
        img, objects = _scene(rng, size, max_objects=4)
        file_name = f'{i + 1:012d}.jpg'
        _save_image(img, img_dir / file_name)
        images.append(dict(id=i + 1, file_name=file_name, width=size, height=size))
        annotations += _coco_annotations(rng, objects, size, i + 1, len(annotations) + 1)
    categories = [dict(id=k + 1, name=name, supercategory='shape')
                  for k, name in enumerate(COCO_CLASSES)]
    return dict(info=dict(description='iformer_mm synthetic shapes', version='1.0'),
                licenses=[], images=images, annotations=annotations, categories=categories)


def _build_coco(staging: Path, counts: Dict[str, int], size: int, seed: int) -> Dict[str, Any]:
    splits: Dict[str, Any] = {}
    for split, count in counts.items():
        coco = _coco_split(staging, split, count, size, seed)
        ann_file = staging / 'annotations' / f'instances_{split}2017.json'
        _write_json(ann_file, coco)
        n_rle = sum(isinstance(a['segmentation'], dict) for a in coco['annotations'])
        splits[split] = dict(
            images=count, annotations=len(coco['annotations']), rle_annotations=n_rle,
            img_dir=staging / f'{split}2017', ann_file=ann_file,
            dataset=dict(type='CocoDataset', data_root=staging,
                         ann_file=f'annotations/instances_{split}2017.json',
                         data_prefix=dict(img=f'{split}2017/'),
                         metainfo=dict(classes=list(COCO_CLASSES))))
    return dict(task='coco_instance', root=staging, classes=list(COCO_CLASSES), image_size=size,
                seed=seed, splits=splits)


def make_coco(root: PathLike, num_train: int = 64, num_val: int = 16, image_size: int = 128,
              seed: int = 0) -> Dict[str, Any]:
    """Write a COCO-2017-layout instance segmentation set; returns a summary dict.

    Why: lets mmdet's real ``CocoDataset`` and pycocotools-backed ``CocoMetric`` (bbox and
    segm) run in tests. Several shapes per image, polygon and RLE masks (module docstring).
    """
    args = check_arguments('coco', root, num_train, num_val, image_size, seed)
    counts = {'train': args['num_train'], 'val': args['num_val']}
    return _publish(args['root'], _OWNED['coco'],
                    lambda st: _build_coco(st, counts, args['image_size'], args['seed']))


# ----------------------------------------------------------------------------- ADE20K
def _label_map(objects: Sequence[Tuple[int, np.ndarray, np.ndarray]], size: int) -> np.ndarray:
    """uint8 map: 1 = background, 2 + k = shape class k, later objects on top; no 0s."""
    labels = np.ones((size, size), dtype=np.uint8)
    for label, _, mask in objects:
        labels[mask] = label + 2
    return labels


def _build_ade20k(staging: Path, counts: Dict[str, int], size: int, seed: int) -> Dict[str, Any]:
    base = staging / 'ADEChallengeData2016'
    splits: Dict[str, Any] = {}
    for split, count in counts.items():
        folder, prefix = ('training', 'train') if split == 'train' else ('validation', 'val')
        img_dir, ann_dir = base / 'images' / folder, base / 'annotations' / folder
        img_dir.mkdir(parents=True)
        ann_dir.mkdir(parents=True)
        for i in range(count):
            img, objects = _scene(_rng(seed, 'ade', split, i), size, max_objects=4)
            stem = f'ADE_{prefix}_{i + 1:08d}'
            _save_image(img, img_dir / f'{stem}.jpg')
            _save_image(_label_map(objects, size), ann_dir / f'{stem}.png')
        splits[split] = dict(
            images=count, img_dir=img_dir, ann_dir=ann_dir,
            dataset=dict(type='BaseSegDataset', data_root=base,
                         data_prefix=dict(img_path=f'images/{folder}',
                                          seg_map_path=f'annotations/{folder}'),
                         img_suffix='.jpg', seg_map_suffix='.png', reduce_zero_label=True,
                         metainfo=dict(classes=list(ADE_CLASSES),
                                       palette=[list(c) for c in ADE_PALETTE])))
    return dict(task='ade20k_semantic', root=staging, data_root=base, classes=list(ADE_CLASSES),
                palette=[list(c) for c in ADE_PALETTE], image_size=size, seed=seed, splits=splits,
                label_convention='png value 0 = ignore (never written), 1 = background, '
                                 '2+k = SHAPE_CLASSES[k]; load with reduce_zero_label=True')


def make_ade20k(root: PathLike, num_train: int = 64, num_val: int = 16, image_size: int = 128,
                seed: int = 0) -> Dict[str, Any]:
    """Write an ADE20K-layout semantic segmentation set; returns a summary dict.

    Why: lets mmseg's real dataset loading (``reduce_zero_label=True``) and ``IoUMetric``
    run in tests. Label convention and the dataset config to use: module docstring.
    """
    args = check_arguments('ade', root, num_train, num_val, image_size, seed)
    counts = {'train': args['num_train'], 'val': args['num_val']}
    return _publish(args['root'], _OWNED['ade'],
                    lambda st: _build_ade20k(st, counts, args['image_size'], args['seed']))


#: Top-level entries under ``root`` that each task writes (and may replace).
_OWNED: Dict[str, Tuple[str, ...]] = {
    'cls': ('train', 'val', 'meta'),
    'coco': ('train2017', 'val2017', 'annotations'),
    'ade': ('ADEChallengeData2016', ),
}

__all__ = [
    'SHAPE_CLASSES', 'COCO_CLASSES', 'ADE_CLASSES', 'ADE_PALETTE', 'MIN_IMAGE_SIZE',
    'MAX_IMAGE_SIZE', 'check_arguments', 'make_classification', 'make_coco', 'make_ade20k'
]
