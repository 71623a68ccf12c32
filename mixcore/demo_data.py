"""Generated demo data in the real dataset layouts (docs/CONTRACTS.md#data-locations-mmsegmmdet-conventions).

Images of geometric shapes (the object classes) with varied colour, scale, rotation and texture on
textured backgrounds, written in four layouts that the real loaders read unchanged:

* ImageNet folder tree   ``<out>/imagenet/{train,val}/<class>/*.JPEG``       (torchvision ImageFolder, timm)
* ADE20K                 ``<out>/ade/ADEChallengeData2016/{images,annotations}/{training,validation}``
                         (mmseg ``ADE20KDataset``; PNG 0 = unlabeled, 1..150 = ADE20K classes)
* Pascal Context 59      ``<out>/VOCdevkit/VOC2010/{JPEGImages,SegmentationClassContext,
                         ImageSets/SegmentationContext/{train,val}.txt}`` (mmseg ``PascalContextDataset59``;
                         PNG 0 = background (ignored), 1..59 = classes)
* COCO instances         ``<out>/coco/{train2017,val2017}/*.jpg``, ``<out>/coco/annotations/instances_*.json``
                         (mmdet ``CocoDataset`` with ``metainfo=dict(classes=COCO_CLASSES)``, pycocotools)
* robustness benchmarks  ``<out>/robustness/{imagenet-a,imagenet-r,imagenet-o}/<class>/*.JPEG`` (the released
                         ImageNet-A/-R/-O layout; tools/robustness.py): "A" hard images of half the classes
                         (a small object beside a large one of another class), "R" renditions of the other half
                         (grey outlines on white: no colour, no texture), "O" images of no class (background
                         only) filed under class folders, as ImageNet-O files its images under wnids

Everything is a pure function of ``(seed, size)``: every image has its own random generator keyed by
(seed, dataset, split, index), so the same seed gives byte-identical files (and ``only=`` does not change
what the other datasets contain). Each dataset is generated into ``<out>/.tmp-<dir>.<pid>`` and renamed
into place, then carries a ``.complete`` marker (JSON: dataset, seed, size, version, counts).

Class-discriminative content: each shape class has its own shape and a class-typical hue (jittered);
textures (flat / stripes / checker / noise) and background are random and shared by all classes, so a
tiny model can learn the classes from shape and colour. In the COCO split objects never overlap (placement
by rejection), so each instance polygon is exactly the visible shape; in the segmentation splits objects
may overlap and the masks follow the painting order.
"""
from __future__ import annotations

import colorsys
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

GENERATOR_VERSION = 1
JPEG_QUALITY = 90

# ---------------------------------------------------------------------------------------------------------
# Classes and label mappings
# ---------------------------------------------------------------------------------------------------------
#: The object classes (order = COCO category ids 1..K, and the class-hue order).
SHAPE_CLASSES = ('circle', 'square', 'triangle', 'star', 'ring',
                 'cross', 'diamond', 'hexagon', 'ellipse', 'crescent')
#: COCO categories: ``id = index + 1``, ``name`` = shape name. Copy into ``metainfo=dict(classes=...)``.
COCO_CLASSES = SHAPE_CLASSES
#: ImageNet-tree folder names; ImageFolder/timm index classes in sorted order, i.e. this tuple's order.
IMAGENET_CLASSES = tuple(sorted(SHAPE_CLASSES))
#: Class-typical hue in degrees (each image jitters it by a few degrees).
SHAPE_HUES = {name: 36.0 * i for i, name in enumerate(SHAPE_CLASSES)}

#: Background "stuff" regions of the segmentation scenes (upper part: wall or sky; lower: floor or grass).
STUFF_CLASSES = ('wall', 'sky', 'floor', 'grass')
#: Which real segmentation class each shape is labelled as (same concept in ADE20K and Pascal Context).
SHAPE_TO_SEG_CLASS = {'circle': 'plate', 'square': 'book', 'triangle': 'boat', 'star': 'flower',
                      'ring': 'bicycle', 'cross': 'chair', 'diamond': 'bag', 'hexagon': 'table',
                      'ellipse': 'food', 'crescent': 'bottle'}
#: Value written in the ADE20K annotation PNGs for each class name (1-based ADE20K index; 0 = unlabeled).
#: After mmseg's reduce_zero_label the training label is ``value - 1`` (ADE20KDataset.METAINFO order).
ADE20K_LABELS = {'wall': 1, 'sky': 3, 'floor': 4, 'grass': 10, 'table': 16, 'chair': 20, 'flower': 67,
                 'book': 68, 'boat': 77, 'bottle': 99, 'bag': 116, 'food': 121, 'bicycle': 128,
                 'plate': 143}
#: Value written in the Pascal Context 59 PNGs (0 = background, ignored; 1..59 in the alphabetical
#: PascalContextDataset59.METAINFO order; training label = ``value - 1``).
PASCAL_CONTEXT59_LABELS = {'bag': 2, 'bicycle': 6, 'boat': 8, 'book': 9, 'bottle': 10, 'chair': 17,
                           'floor': 26, 'flower': 27, 'food': 28, 'grass': 29, 'plate': 38, 'sky': 47,
                           'table': 50, 'wall': 56}
IGNORE_VALUE = 0  # PNG value of the thin unlabeled band along the stuff boundary

# ---------------------------------------------------------------------------------------------------------
# Datasets, directories and sizes
# ---------------------------------------------------------------------------------------------------------
DATASETS = ('imagenet', 'ade20k', 'pascal_context', 'coco', 'robustness')
_ALIASES = {'ade': 'ade20k', 'pascal_context59': 'pascal_context', 'pascal': 'pascal_context',
            'voc': 'pascal_context'}
#: Top-level directory under ``out`` that is generated atomically (and holds the ``.complete`` marker).
DATASET_DIRS = {'imagenet': 'imagenet', 'ade20k': 'ade', 'pascal_context': 'VOCdevkit', 'coco': 'coco',
                'robustness': 'robustness'}
#: The ``data_root`` a config uses, relative to ``out``.
DATA_ROOTS = {'imagenet': 'imagenet', 'ade20k': 'ade/ADEChallengeData2016',
              'pascal_context': 'VOCdevkit/VOC2010', 'coco': 'coco', 'robustness': 'robustness'}
MARKER = '.complete'


@dataclass(frozen=True)
class SizeSpec:
    cls_train: int                      # ImageNet tree: images per class (train)
    cls_val: int                        # ... (val)
    cls_size: int                       # square side
    seg_train: int                      # ADE20K and Pascal Context: images (train)
    seg_val: int
    seg_sizes: tuple                    # (W, H) choices
    seg_objects: tuple                  # (min, max) objects per image
    coco_train: int
    coco_val: int
    coco_sizes: tuple
    coco_objects: tuple


SIZES = {
    'tiny': SizeSpec(cls_train=4, cls_val=2, cls_size=64,
                     seg_train=12, seg_val=6, seg_sizes=((128, 128), (160, 128), (128, 160)),
                     seg_objects=(1, 3),
                     coco_train=12, coco_val=6, coco_sizes=((256, 192), (224, 192)), coco_objects=(2, 4)),
    'small': SizeSpec(cls_train=40, cls_val=10, cls_size=96,
                      seg_train=80, seg_val=20, seg_sizes=((256, 256), (320, 256), (256, 320), (288, 224)),
                      seg_objects=(2, 4),
                      coco_train=60, coco_val=20, coco_sizes=((320, 256), (288, 256), (320, 240)),
                      coco_objects=(2, 5)),
}

_DS_CODE = {'imagenet': 1, 'ade20k': 2, 'pascal_context': 3, 'coco': 4, 'robustness': 5}
_SPLIT_CODE = {'train': 0, 'val': 1, 'imagenet-a': 2, 'imagenet-r': 3, 'imagenet-o': 4}


def _rng(seed: int, dataset: str, split: str, *index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), _DS_CODE[dataset], _SPLIT_CODE[split],
                                                         *map(int, index)]))


# ---------------------------------------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------------------------------------
def _ngon(n: int, r: float, phase: float = 0.0) -> np.ndarray:
    a = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([r * np.cos(a), r * np.sin(a)], 1)


def _crescent() -> np.ndarray:
    d, r2 = 0.5, 0.85                                   # bite: circle of radius r2 centred at (d, 0)
    xi = (1 - r2 ** 2 + d ** 2) / (2 * d)
    yi = math.sqrt(1 - xi ** 2)
    a1 = math.atan2(yi, xi)
    outer = np.linspace(a1, 2 * np.pi - a1, 28)
    b0, b1 = math.atan2(-yi, xi - d), math.atan2(yi, xi - d) - 2 * np.pi
    inner = np.linspace(b0, b1, 22)[1:-1]
    pts = np.concatenate([np.stack([np.cos(outer), np.sin(outer)], 1),
                          np.stack([d + r2 * np.cos(inner), r2 * np.sin(inner)], 1)])
    pts[:, 0] += 0.3                                    # roughly centre it
    return pts


def _unit_shape(name: str) -> np.ndarray:
    """Polygon (N×2) of a shape in unit coordinates (fits the unit disc, approximately)."""
    if name == 'circle':
        return _ngon(40, 0.9)
    if name == 'ellipse':
        return _ngon(40, 1.0) * np.array([1.0, 0.55])
    if name == 'square':
        return np.array([[-.75, -.75], [.75, -.75], [.75, .75], [-.75, .75]])
    if name == 'diamond':
        return np.array([[0, -1.0], [.6, 0], [0, 1.0], [-.6, 0]])
    if name == 'triangle':
        return _ngon(3, 1.0, -np.pi / 2)
    if name == 'hexagon':
        return _ngon(6, 0.95)
    if name == 'star':
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
        return _ngon(10, 1.0, -np.pi / 2) * r[:, None]
    if name == 'cross':
        a = 0.3
        return np.array([[-a, -1], [a, -1], [a, -a], [1, -a], [1, a], [a, a],
                         [a, 1], [-a, 1], [-a, a], [-1, a], [-1, -a], [-a, -a]], dtype=float)
    if name == 'ring':
        # One "keyhole" polygon: outer circle, a zero-width slit, inner circle backwards. Its fill (PIL,
        # pycocotools) and its shoelace area are the annulus.
        outer, inner = _ngon(40, 1.0), _ngon(40, 0.58)
        return np.concatenate([outer, outer[:1], inner[:1], inner[:0:-1], inner[:1]])
    if name == 'crescent':
        return _crescent()
    raise KeyError(name)


_UNIT_SHAPES = {name: _unit_shape(name) for name in SHAPE_CLASSES}


def _shape_polygon(name: str, cx: float, cy: float, r: float, angle: float, stretch: float) -> np.ndarray:
    p = _UNIT_SHAPES[name] * np.array([1 + stretch, 1 / (1 + stretch)])
    c, s = math.cos(angle), math.sin(angle)
    p = p @ np.array([[c, s], [-s, c]])
    return p * r + np.array([cx, cy])


def polygon_area(poly: np.ndarray) -> float:
    """Shoelace area of an N×2 polygon."""
    x, y = poly[:, 0], poly[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _rasterize(poly: np.ndarray, w: int, h: int) -> np.ndarray:
    im = Image.new('L', (w, h), 0)
    ImageDraw.Draw(im).polygon(poly.ravel().tolist(), fill=1)
    return np.asarray(im, dtype=bool)


# ---------------------------------------------------------------------------------------------------------
# Colour and texture (vectorised numpy)
# ---------------------------------------------------------------------------------------------------------
def _hsv(h_deg: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb((h_deg % 360) / 360, s, v), dtype=np.float32) * 255


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Bilinearly interpolated value noise in [0, 1], feature size ``cell`` pixels."""
    gh, gw = int(h / cell) + 2, int(w / cell) + 2
    g = rng.random((gh, gw), dtype=np.float32)
    ys, xs = np.arange(h, dtype=np.float32) / cell, np.arange(w, dtype=np.float32) / cell
    y0, x0 = ys.astype(np.intp), xs.astype(np.intp)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = g[np.ix_(y0, x0)] * (1 - fx) + g[np.ix_(y0, x0 + 1)] * fx
    bot = g[np.ix_(y0 + 1, x0)] * (1 - fx) + g[np.ix_(y0 + 1, x0 + 1)] * fx
    return top * (1 - fy) + bot * fy


def _texture(rng: np.random.Generator, kind: str, h: int, w: int, scale: float) -> np.ndarray:
    """h×w float32 pattern in [0, 1]; ``scale`` sets the period in pixels."""
    if kind == 'flat':
        return np.zeros((h, w), np.float32)
    yy = np.arange(h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    if kind == 'stripes':
        period = scale * rng.uniform(0.6, 1.4)
        th = rng.uniform(0, np.pi)
        phase = rng.uniform(0, 2 * np.pi)
        return (np.sin(2 * np.pi * (xx * math.cos(th) + yy * math.sin(th)) / period + phase) > 0
                ).astype(np.float32)
    if kind == 'checker':
        p = max(2.0, scale * rng.uniform(0.5, 1.0))
        ox, oy = rng.uniform(0, p, 2)
        return ((np.floor((xx + ox) / p) + np.floor((yy + oy) / p)) % 2).astype(np.float32)
    if kind == 'noise':
        return _smooth_noise(rng, h, w, max(1.5, scale * rng.uniform(0.3, 0.8)))
    if kind == 'gradient':
        th = rng.uniform(0, 2 * np.pi)
        t = xx * math.cos(th) + yy * math.sin(th)
        return ((t - t.min()) / max(float(t.max() - t.min()), 1e-6)).astype(np.float32)
    raise KeyError(kind)


_OBJ_TEXTURES = ('flat', 'stripes', 'checker', 'noise')
_BG_TEXTURES = ('stripes', 'checker', 'noise', 'gradient')


def _finish(rng: np.random.Generator, img: np.ndarray, sigma: float = 5.0) -> np.ndarray:
    img = img + rng.standard_normal(img.shape[:2], dtype=np.float32)[..., None] * sigma
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Muted two-colour textured background (not class-discriminative)."""
    hue = rng.uniform(0, 360)
    c1 = _hsv(hue, rng.uniform(0, 0.3), rng.uniform(0.3, 0.9))
    c2 = _hsv(hue + rng.uniform(-60, 60), rng.uniform(0, 0.3), rng.uniform(0.3, 0.9))
    t = _texture(rng, _BG_TEXTURES[rng.integers(len(_BG_TEXTURES))], h, w, min(h, w) / rng.uniform(3, 10))
    return c1 * (1 - t[..., None]) + c2 * t[..., None]


def _stuff(rng: np.random.Generator, name: str, h: int, w: int) -> np.ndarray:
    """h×w×3 float image of a stuff class with its typical look."""
    if name == 'sky':
        c1, c2 = _hsv(rng.uniform(195, 225), rng.uniform(0.4, 0.7), rng.uniform(0.7, 0.9)), \
            _hsv(rng.uniform(195, 225), rng.uniform(0.05, 0.25), rng.uniform(0.9, 1.0))
        t = np.linspace(0, 1, h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
        t = np.clip(t + 0.35 * _smooth_noise(rng, h, w, max(4.0, w / 6)) - 0.15, 0, 1)   # haze/clouds
    elif name == 'wall':
        hue = rng.uniform(20, 50)
        c1, c2 = _hsv(hue, rng.uniform(0.1, 0.3), rng.uniform(0.65, 0.85)), _hsv(hue, 0.25, 0.5)
        p = rng.uniform(8, 14)
        yy = np.arange(h, dtype=np.float32)[:, None]
        xx = np.arange(w, dtype=np.float32)[None, :]
        row = np.floor(yy / p)
        mortar = ((yy % p) < 1.5) | (((xx + (row % 2) * p) % (2 * p)) < 1.5)                # bricks
        t = 0.8 * mortar.astype(np.float32) + 0.2 * _smooth_noise(rng, h, w, 3.0)
    elif name == 'floor':
        hue = rng.uniform(20, 35)
        c1, c2 = _hsv(hue, rng.uniform(0.4, 0.6), rng.uniform(0.45, 0.6)), \
            _hsv(hue, rng.uniform(0.4, 0.6), rng.uniform(0.25, 0.4))
        t = _texture(rng, 'checker', h, w, rng.uniform(12, 24))
    elif name == 'grass':
        c1, c2 = _hsv(rng.uniform(95, 125), rng.uniform(0.5, 0.8), rng.uniform(0.45, 0.65)), \
            _hsv(rng.uniform(95, 125), rng.uniform(0.5, 0.8), rng.uniform(0.2, 0.35))
        t = _smooth_noise(rng, h, w, rng.uniform(1.5, 3.0))
    else:
        raise KeyError(name)
    return c1 * (1 - t[..., None]) + c2 * t[..., None]


def _shape_colour(rng: np.random.Generator, name: str) -> np.ndarray:
    return _hsv(SHAPE_HUES[name] + rng.uniform(-8, 8), rng.uniform(0.65, 1.0), rng.uniform(0.6, 1.0))


def _paint(rng: np.random.Generator, img: np.ndarray, poly: np.ndarray, name: str) -> np.ndarray:
    """Paint a textured shape into ``img`` (in place); returns its mask."""
    h, w = img.shape[:2]
    mask = _rasterize(poly, w, h)
    x0, y0 = np.floor(poly.min(0)).astype(int).clip(0)
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 1
    x1, y1 = min(x1, w), min(y1, h)
    sub = mask[y0:y1, x0:x1]
    bh, bw = sub.shape
    tex = _texture(rng, _OBJ_TEXTURES[rng.integers(len(_OBJ_TEXTURES))], bh, bw,
                   max(4.0, min(bh, bw) / rng.uniform(2.5, 5)))
    amp = rng.uniform(0.25, 0.5)
    col = _shape_colour(rng, name)[None, None, :] * (1 - amp * tex[..., None])
    img[y0:y1, x0:x1][sub] = col[sub]
    return mask


def _random_shape(rng, name, cx, cy, r):
    return _shape_polygon(name, cx, cy, r, rng.uniform(0, 2 * np.pi), rng.uniform(-0.12, 0.12))


def _fit_inside(poly: np.ndarray, w: int, h: int, margin: float = 1.0) -> np.ndarray:
    """Shift a polygon so it lies inside [margin, w-1-margin]×[margin, h-1-margin] (if it fits)."""
    lo, hi = poly.min(0), poly.max(0)
    shift = np.maximum(0, margin - lo) - np.maximum(0, hi - (np.array([w, h]) - 1 - margin))
    return poly + shift


# ---------------------------------------------------------------------------------------------------------
# Scenes
# ---------------------------------------------------------------------------------------------------------
def _classification_image(rng: np.random.Generator, cls: str, size: int) -> np.ndarray:
    img = _background(rng, size, size)
    if rng.random() < 0.3:                                   # a small distractor of another class, behind
        other = SHAPE_CLASSES[(SHAPE_CLASSES.index(cls) + rng.integers(1, len(SHAPE_CLASSES)))
                              % len(SHAPE_CLASSES)]
        r = size * rng.uniform(0.08, 0.12)
        cx, cy = rng.uniform(r + 1, size - r - 1, 2)
        _paint(rng, img, _fit_inside(_random_shape(rng, other, cx, cy, r), size, size), other)
    r = size * rng.uniform(0.28, 0.4)
    cx, cy = size / 2 + size * rng.uniform(-0.1, 0.1, 2)
    _paint(rng, img, _fit_inside(_random_shape(rng, cls, cx, cy, r), size, size), cls)
    return _finish(rng, img)


def _segmentation_scene(rng: np.random.Generator, w: int, h: int, n_range, labels: dict):
    """Stuff background (upper wall/sky, lower floor/grass) plus shapes; returns (image, label PNG array)."""
    top = ('wall', 'sky')[rng.integers(2)]
    bottom = ('floor', 'grass')[rng.integers(2)]
    y0 = h * rng.uniform(0.35, 0.65)
    slope = rng.uniform(-0.15, 0.15)
    yy = np.arange(h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    d = yy - (y0 + slope * (xx - w / 2))                     # signed distance-ish to the horizon
    is_top = d < 0
    img = np.where(is_top[..., None], _stuff(rng, top, h, w), _stuff(rng, bottom, h, w))
    label = np.where(is_top, labels[top], labels[bottom]).astype(np.uint8)
    label[np.abs(d) < 1.0] = IGNORE_VALUE                     # thin unlabeled band along the boundary
    for _ in range(int(rng.integers(n_range[0], n_range[1] + 1))):
        name = SHAPE_CLASSES[rng.integers(len(SHAPE_CLASSES))]
        r = min(w, h) * rng.uniform(0.1, 0.25)
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        mask = _paint(rng, img, _fit_inside(_random_shape(rng, name, cx, cy, r), w, h), name)
        label[mask] = labels[SHAPE_TO_SEG_CLASS[name]]
    return _finish(rng, img), label


def _coco_scene(rng: np.random.Generator, w: int, h: int, n_range):
    """Background plus non-overlapping shapes; returns (image, [(shape name, polygon), ...])."""
    img = _background(rng, h, w)
    n = int(rng.integers(n_range[0], n_range[1] + 1))
    placed = []                                               # (cx, cy, reach)
    objects = []
    for _ in range(n):
        for _try in range(40):
            name = SHAPE_CLASSES[rng.integers(len(SHAPE_CLASSES))]
            r = min(w, h) * rng.uniform(0.07, 0.18)
            poly = _random_shape(rng, name, 0.0, 0.0, r)
            reach = float(np.hypot(*poly.T).max())
            cx, cy = rng.uniform(reach + 1, w - reach - 2), rng.uniform(reach + 1, h - reach - 2)
            if all(math.hypot(cx - px, cy - py) > reach + pr + 2 for px, py, pr in placed):
                break
        else:
            continue
        placed.append((cx, cy, reach))
        poly = poly + np.array([cx, cy])
        _paint(rng, img, poly, name)
        objects.append((name, poly))
    return _finish(rng, img), objects


# ---------------------------------------------------------------------------------------------------------
# Writers (each writes one dataset below ``root``, the temporary top directory)
# ---------------------------------------------------------------------------------------------------------
def _save_jpeg(arr: np.ndarray, path: Path) -> None:
    Image.fromarray(arr).save(path, 'JPEG', quality=JPEG_QUALITY)


def _save_png(arr: np.ndarray, path: Path) -> None:
    Image.fromarray(arr).save(path, 'PNG')


def _write_imagenet(root: Path, seed: int, spec: SizeSpec) -> dict:
    counts = {}
    for split, n in (('train', spec.cls_train), ('val', spec.cls_val)):
        for ci, cls in enumerate(SHAPE_CLASSES):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                img = _classification_image(_rng(seed, 'imagenet', split, ci, i), cls, spec.cls_size)
                _save_jpeg(img, d / f'{cls}_{split}_{i:05d}.JPEG')
        counts[split] = n * len(SHAPE_CLASSES)
    return counts


def _seg_split(root_img: Path, root_ann: Path, dataset: str, split: str, n: int, seed: int,
               spec: SizeSpec, labels: dict, name_fn) -> list:
    root_img.mkdir(parents=True, exist_ok=True)
    root_ann.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        rng = _rng(seed, dataset, split, i)
        w, h = spec.seg_sizes[rng.integers(len(spec.seg_sizes))]
        img, label = _segmentation_scene(rng, w, h, spec.seg_objects, labels)
        stem = name_fn(i)
        _save_jpeg(img, root_img / f'{stem}.jpg')
        _save_png(label, root_ann / f'{stem}.png')
        names.append(stem)
    return names


def _write_ade20k(root: Path, seed: int, spec: SizeSpec) -> dict:
    base = root / 'ADEChallengeData2016'
    counts = {}
    for split, sub, tag, n in (('train', 'training', 'train', spec.seg_train),
                               ('val', 'validation', 'val', spec.seg_val)):
        names = _seg_split(base / 'images' / sub, base / 'annotations' / sub, 'ade20k', split, n, seed, spec,
                           ADE20K_LABELS, lambda i, tag=tag: f'ADE_{tag}_{i + 1:08d}')
        counts[split] = len(names)
    return counts


def _write_pascal_context(root: Path, seed: int, spec: SizeSpec) -> dict:
    base = root / 'VOC2010'
    sets = base / 'ImageSets' / 'SegmentationContext'
    sets.mkdir(parents=True)
    counts = {}
    for split, year, n in (('train', 2008, spec.seg_train), ('val', 2010, spec.seg_val)):
        names = _seg_split(base / 'JPEGImages', base / 'SegmentationClassContext', 'pascal_context', split, n,
                           seed, spec, PASCAL_CONTEXT59_LABELS, lambda i, year=year: f'{year}_{i + 1:06d}')
        (sets / f'{split}.txt').write_text(''.join(f'{s}\n' for s in names))
        counts[split] = len(names)
    return counts


def _write_coco(root: Path, seed: int, spec: SizeSpec) -> dict:
    (root / 'annotations').mkdir(parents=True)
    categories = [dict(id=i + 1, name=n, supercategory='shape') for i, n in enumerate(COCO_CLASSES)]
    counts = {}
    for split, n, first_id in (('train', spec.coco_train, 1), ('val', spec.coco_val, 500001)):
        img_dir = root / f'{split}2017'
        img_dir.mkdir()
        images, anns = [], []
        for i in range(n):
            rng = _rng(seed, 'coco', split, i)
            w, h = spec.coco_sizes[rng.integers(len(spec.coco_sizes))]
            img, objects = _coco_scene(rng, w, h, spec.coco_objects)
            img_id = first_id + i
            fname = f'{img_id:012d}.jpg'
            _save_jpeg(img, img_dir / fname)
            images.append(dict(id=img_id, file_name=fname, width=int(w), height=int(h)))
            for name, poly in objects:
                poly = np.round(poly, 2)
                x0, y0 = poly.min(0)
                x1, y1 = poly.max(0)
                anns.append(dict(id=len(anns) + first_id, image_id=img_id,
                                 category_id=COCO_CLASSES.index(name) + 1,
                                 bbox=[round(float(x0), 2), round(float(y0), 2),
                                       round(float(x1 - x0), 2), round(float(y1 - y0), 2)],
                                 segmentation=[[round(float(v), 2) for v in poly.ravel()]],
                                 area=round(polygon_area(poly), 2), iscrowd=0))
        doc = dict(info=dict(description='mixseg generated demo data (shapes)', version=str(GENERATOR_VERSION),
                             seed=int(seed)),
                   licenses=[], images=images, annotations=anns, categories=categories)
        (root / 'annotations' / f'instances_{split}2017.json').write_text(json.dumps(doc))
        counts[split] = n
        counts[f'{split}_instances'] = len(anns)
    return counts


#: the demo robustness benchmarks: which classes each has (ImageNet-A and -R cover 200 of the 1000 classes each)
ROBUSTNESS_CLASSES = {'imagenet-a': IMAGENET_CLASSES[0::2], 'imagenet-r': IMAGENET_CLASSES[1::2],
                      'imagenet-o': IMAGENET_CLASSES[:5]}


def _robustness_image(rng: np.random.Generator, bench: str, cls: str, size: int) -> np.ndarray:
    if bench == 'imagenet-o':                                # no object: what ImageNet-O's images are to its classes
        return _finish(rng, _background(rng, size, size))
    if bench == 'imagenet-r':                                # a rendition: grey outline on white
        img = np.full((size, size, 3), 255.0, np.float32)
        poly = _fit_inside(_random_shape(rng, cls, size / 2, size / 2, size * rng.uniform(0.28, 0.4)), size, size)
        mask = _rasterize(poly, size, size)
        inner = _rasterize(poly.mean(0) + (poly - poly.mean(0)) * 0.8, size, size)
        img[mask & ~inner] = rng.uniform(40, 120)
        return _finish(rng, img)
    img = _background(rng, size, size)                       # natural adversarial: a large distractor, small object
    other = SHAPE_CLASSES[(SHAPE_CLASSES.index(cls) + rng.integers(1, len(SHAPE_CLASSES))) % len(SHAPE_CLASSES)]
    _paint(rng, img, _fit_inside(_random_shape(rng, other, size / 2, size / 2, size * 0.35), size, size), other)
    r = size * rng.uniform(0.12, 0.18)
    cx, cy = rng.uniform(r + 1, size - r - 1, 2)
    _paint(rng, img, _fit_inside(_random_shape(rng, cls, cx, cy, r), size, size), cls)
    return _finish(rng, img)


def _write_robustness(root: Path, seed: int, spec: SizeSpec) -> dict:
    counts = {}
    for bench, classes in ROBUSTNESS_CLASSES.items():
        for cls in classes:
            d = root / bench / cls
            d.mkdir(parents=True)
            ci = SHAPE_CLASSES.index(cls)
            for i in range(spec.cls_val):
                img = _robustness_image(_rng(seed, 'robustness', bench, ci, i), bench, cls, spec.cls_size)
                _save_jpeg(img, d / f'{cls}_{bench}_{i:05d}.JPEG')
        counts[bench] = spec.cls_val * len(classes)
    return counts


_WRITERS: dict = {'imagenet': _write_imagenet, 'ade20k': _write_ade20k,
                  'pascal_context': _write_pascal_context, 'coco': _write_coco, 'robustness': _write_robustness}


# ---------------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------------
def parse_only(only) -> tuple:
    """``None`` → all datasets; a comma-separated string or an iterable of names (aliases: ade, voc...)."""
    if only is None:
        return DATASETS
    items = only.split(',') if isinstance(only, str) else list(only)
    names = []
    for item in items:
        item = item.strip().lower()
        if not item:
            continue
        item = _ALIASES.get(item, item)
        if item not in DATASETS:
            raise ValueError(f'unknown demo dataset {item!r}; choose from {", ".join(DATASETS)}')
        if item not in names:
            names.append(item)
    if not names:
        raise ValueError('no demo dataset selected')
    return tuple(n for n in DATASETS if n in names)


def read_marker(out, dataset: str):
    """The ``.complete`` marker of a generated dataset as a dict, or None when absent/unreadable."""
    path = Path(out) / DATASET_DIRS[parse_only(dataset)[0]] / MARKER
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def make_demo_data(out, seed: int = 0, size: str = 'small', only=None, force: bool = False,
                   log: Callable[[str], None] | None = print) -> dict:
    """Generate the demo datasets under ``out``; returns {dataset: data_root Path} for the selected ones.

    An existing dataset directory is left alone (and reported through ``log``) unless ``force``.
    """
    if size not in SIZES:
        raise ValueError(f'unknown size {size!r}; choose from {", ".join(SIZES)}')
    spec = SIZES[size]
    log = log or (lambda msg: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    roots = {}
    for name in parse_only(only):
        top = out / DATASET_DIRS[name]
        roots[name] = out / DATA_ROOTS[name]
        if top.exists() and not force:
            m = read_marker(out, name)
            what = f'seed={m.get("seed")} size={m.get("size")}' if m else 'no .complete marker'
            note = '' if not m or (m.get('seed') == seed and m.get('size') == size) else \
                f' (requested seed={seed} size={size}; use --force to regenerate)'
            log(f'skip {name}: {top} exists ({what}){note}')
            continue
        tmp = out / f'.tmp-{DATASET_DIRS[name]}.{os.getpid()}'
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        t0 = time.perf_counter()
        try:
            counts = _WRITERS[name](tmp, seed, spec)
            marker = dict(dataset=name, seed=int(seed), size=size, version=GENERATOR_VERSION, counts=counts,
                          data_root=DATA_ROOTS[name])
            (tmp / MARKER).write_text(json.dumps(marker, indent=1, sort_keys=True) + '\n')
            if top.exists():                                   # force: swap, then drop the old tree
                old = out / f'.old-{DATASET_DIRS[name]}.{os.getpid()}'
                os.rename(top, old)
                os.rename(tmp, top)
                shutil.rmtree(old, ignore_errors=True)
            else:
                try:
                    os.rename(tmp, top)
                except OSError:
                    if not top.exists():
                        raise
                    log(f'skip {name}: {top} appeared while generating (another process)')
                    shutil.rmtree(tmp, ignore_errors=True)
                    continue
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log(f'wrote {name}: {roots[name]} {counts} in {time.perf_counter() - t0:.2f}s')
    return roots


__all__ = ['ROBUSTNESS_CLASSES', 'SHAPE_CLASSES', 'COCO_CLASSES', 'IMAGENET_CLASSES', 'SHAPE_HUES', 'STUFF_CLASSES',
           'SHAPE_TO_SEG_CLASS', 'ADE20K_LABELS', 'PASCAL_CONTEXT59_LABELS', 'IGNORE_VALUE', 'DATASETS',
           'DATASET_DIRS', 'DATA_ROOTS', 'SIZES', 'SizeSpec', 'make_demo_data', 'parse_only', 'read_marker',
           'polygon_area']
