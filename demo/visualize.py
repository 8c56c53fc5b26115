"""Prediction pictures for the demo: a captioned grid, boxes + masks, and label-map overlays.

Why PIL and not the toolboxes' visualizers: the three toolboxes each bring their own visualizer
class with a process-wide instance registry and matplotlib rendering; the demo needs three small,
deterministic PNGs whose exact size a test can check, from plain arrays. Every function here takes
numpy arrays (RGB images, boxes, masks, label maps) and returns a PIL image; :func:`save_png`
writes it atomically.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from iformer_mm.utils.fileio import atomic_path

Colour = Tuple[int, int, int]

#: drawn colour of shape class k (the synthetic ADE palette without its background entry)
CLASS_COLOURS: Tuple[Colour, ...] = ((220, 20, 60), (0, 130, 200), (60, 180, 75), (255, 225, 25),
                                     (145, 30, 180))
RIGHT, WRONG = (40, 160, 40), (200, 30, 30)
CAPTION_HEIGHT = 16
GAP = 4
LEGEND_HEIGHT = CAPTION_HEIGHT + 2 * GAP


def _font(size: int = 12) -> ImageFont.ImageFont:
    """Pillow's bundled font (scalable when FreeType is available, bitmap otherwise)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1 or no FreeType
        return ImageFont.load_default()


def class_colour(label: int) -> Colour:
    return CLASS_COLOURS[label % len(CLASS_COLOURS)]


def upscale(img: np.ndarray, factor: int) -> Image.Image:
    """Nearest-neighbour enlargement, so small demo images stay readable and pixel-exact."""
    if factor < 1:
        raise ValueError(f'upscale factor must be >= 1, got {factor}')
    pil = Image.fromarray(np.ascontiguousarray(img))
    return pil.resize((pil.width * factor, pil.height * factor), Image.NEAREST)


def caption(tile: Image.Image, text: str, colour: Colour) -> Image.Image:
    """``tile`` with a coloured text bar of :data:`CAPTION_HEIGHT` pixels below it."""
    out = Image.new('RGB', (tile.width, tile.height + CAPTION_HEIGHT), colour)
    out.paste(tile.convert('RGB'), (0, 0))
    ImageDraw.Draw(out).text((3, tile.height + 1), text, fill=(255, 255, 255), font=_font())
    return out


def grid(tiles: Sequence[Image.Image], cols: int,
         background: Colour = (255, 255, 255)) -> Image.Image:
    """Tiles (all the same size) in rows of ``cols`` with a :data:`GAP`-pixel border."""
    if not tiles:
        raise ValueError('grid needs at least one tile, got none')
    if cols < 1:
        raise ValueError(f'cols must be >= 1, got {cols}')
    w, h = tiles[0].size
    if any(t.size != (w, h) for t in tiles):
        raise ValueError(f'all tiles must be {w}x{h}, got sizes {sorted({t.size for t in tiles})}')
    cols = min(cols, len(tiles))
    rows = -(-len(tiles) // cols)
    out = Image.new('RGB', (cols * (w + GAP) + GAP, rows * (h + GAP) + GAP), background)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        out.paste(tile.convert('RGB'), (GAP + c * (w + GAP), GAP + r * (h + GAP)))
    return out


def grid_size(tile_size: Tuple[int, int], count: int, cols: int) -> Tuple[int, int]:
    """The (width, height) :func:`grid` produces, for tests and callers that lay out pages."""
    w, h = tile_size
    cols = min(cols, count)
    rows = -(-count // cols)
    return cols * (w + GAP) + GAP, rows * (h + GAP) + GAP


def classification_tile(img: np.ndarray, pred: str, truth: str, score: float,
                        factor: int = 2) -> Image.Image:
    """One image, captioned with the predicted class (green if right, red if wrong)."""
    text = f'{pred} {score:.2f}' if pred == truth else f'{pred} ({truth})'
    return caption(upscale(img, factor), text, RIGHT if pred == truth else WRONG)


def blend_masks(img: np.ndarray, masks: np.ndarray, labels: Sequence[int],
                alpha: float = 0.45) -> np.ndarray:
    """RGB image with each boolean mask (N, H, W) tinted in its class colour."""
    out = img.astype(np.float32).copy()
    for mask, label in zip(masks, labels):
        m = mask.astype(bool)
        out[m] = (1 - alpha) * out[m] + alpha * np.asarray(class_colour(int(label)), np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def detection_tile(img: np.ndarray, boxes: np.ndarray, labels: Sequence[int],
                   scores: Sequence[float], class_names: Sequence[str],
                   masks: Optional[np.ndarray] = None, factor: int = 2) -> Image.Image:
    """Image with instance masks tinted, boxes outlined and ``name score`` tags, enlarged."""
    if masks is not None and len(masks):
        img = blend_masks(img, masks, labels)
    tile = upscale(img, factor)
    draw = ImageDraw.Draw(tile)
    font = _font(11)
    for box, label, score in zip(np.asarray(boxes).reshape(-1, 4), labels, scores):
        x1, y1, x2, y2 = (float(v) * factor for v in box)
        colour = class_colour(int(label))
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=2)
        tag = f'{class_names[int(label)]} {float(score):.2f}'
        tx, ty = x1, max(0.0, y1 - 13)
        draw.rectangle(draw.textbbox((tx, ty), tag, font=font), fill=colour)
        draw.text((tx, ty), tag, fill=(0, 0, 0), font=font)
    return tile


def colourize(label_map: np.ndarray, palette: Sequence[Sequence[int]],
              ignore_index: int = 255) -> np.ndarray:
    """(H, W) class indices -> RGB; ``ignore_index`` (and anything off-palette) is grey."""
    lut = np.full((256, 3), 128, dtype=np.uint8)
    lut[:len(palette)] = np.asarray(palette, dtype=np.uint8)
    lut[ignore_index] = 128
    return lut[np.clip(label_map, 0, 255).astype(np.uint8)]


def segmentation_row(img: np.ndarray, truth: np.ndarray, pred: np.ndarray,
                     palette: Sequence[Sequence[int]], factor: int = 2,
                     alpha: float = 1.0) -> List[Image.Image]:
    """Three tiles: the image, ground truth over it, prediction over it (captioned).

    Background (class 0) shows the image; other classes are painted in their palette colour
    (opaque by default: a blend of a shape's own colour and the palette's can look like
    another class).
    """
    tiles = [caption(upscale(img, factor), 'image', (90, 90, 90))]
    for name, labels in (('ground truth', truth), ('prediction', pred)):
        tiles.append(caption(upscale(overlay(img, labels, palette, alpha), factor), name,
                             (90, 90, 90)))
    return tiles


def overlay(img: np.ndarray, labels: np.ndarray, palette: Sequence[Sequence[int]],
            alpha: float = 0.6, background: int = 0) -> np.ndarray:
    """``img`` with every non-background pixel tinted in its class colour."""
    out = img.astype(np.float32).copy()
    tint = labels != background
    out[tint] = (1 - alpha) * out[tint] + alpha * colourize(labels, palette)[tint]
    return np.clip(out, 0, 255).astype(np.uint8)


def with_legend(image: Image.Image, names: Sequence[str],
                colours: Sequence[Colour]) -> Image.Image:
    """``image`` with a :data:`LEGEND_HEIGHT` strip below naming each class in its colour."""
    font = _font()
    strip = Image.new('RGB', (image.width, LEGEND_HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    x = GAP
    for name, colour in zip(names, colours):
        draw.rectangle((x, GAP + 2, x + 10, GAP + 12), fill=tuple(colour))
        draw.text((x + 14, GAP), name, fill=(0, 0, 0), font=font)
        x += 20 + int(draw.textlength(name, font=font))
    out = Image.new('RGB', (image.width, image.height + strip.height), (255, 255, 255))
    out.paste(image, (0, 0))
    out.paste(strip, (0, image.height))
    return out


def save_png(image: Image.Image, path: Union[str, 'os.PathLike[str]']) -> Path:
    """Write a PNG atomically (no half-written picture is ever left behind)."""
    with atomic_path(path, make_dirs=True) as tmp:
        image.save(tmp, format='PNG')
    return Path(path)
