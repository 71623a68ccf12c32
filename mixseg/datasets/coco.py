"""A COCO instance dataset that validates annotations as it parses them, and a COCO metric whose ground
truth has annotation ids pycocotools can match."""
from __future__ import annotations

import json
import math
import warnings

from mmdet.datasets import CocoDataset
from mmdet.evaluation import CocoMetric
from mmdet.registry import DATASETS, METRICS


def check_coco_annotation(ann: dict, img: dict, ann_file: str, tol: float = 1.0) -> None:
    """Raise ``ValueError`` for a box outside the image or a broken polygon (``tol`` pixels of slack)."""
    w_img, h_img = img['width'], img['height']
    where = f'{ann_file}: annotation id {ann.get("id")} (image {img.get("file_name")}, {w_img}×{h_img})'
    box = ann.get('bbox')
    if not (isinstance(box, (list, tuple)) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)
            and all(math.isfinite(v) for v in box)):
        raise ValueError(f'{where}: bbox {box!r} is not four finite numbers [x, y, w, h]')
    x, y, w, h = box
    if w < 0 or h < 0 or x < -tol or y < -tol or x + w > w_img + tol or y + h > h_img + tol:
        raise ValueError(f'{where}: bbox {box} lies (partly) outside the image')
    seg = ann.get('segmentation')
    if isinstance(seg, list):  # polygons; RLE (dict) is validated by pycocotools itself
        if not seg:
            raise ValueError(f'{where}: empty polygon list')
        for i, poly in enumerate(seg):
            if not isinstance(poly, (list, tuple)) or len(poly) < 6 or len(poly) % 2:
                n = len(poly) if isinstance(poly, (list, tuple)) else poly
                raise ValueError(f'{where}: polygon {i} is broken ({n} coordinates; needs an even number ≥ 6)')
            xs, ys = poly[0::2], poly[1::2]
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in poly):
                raise ValueError(f'{where}: polygon {i} has non-numeric or non-finite coordinates')
            if min(xs) < -tol or min(ys) < -tol or max(xs) > w_img + tol or max(ys) > h_img + tol:
                raise ValueError(f'{where}: polygon {i} lies (partly) outside the image')


def degenerate_box_reason(ann: dict, img: dict):
    """Why mmdet's ``CocoDataset.parse_data_info`` would drop this (non-ignored) box, or ``None``.

    mmdet 3.3.0 skips, without a word, a box that does not overlap the image, whose ``area`` is ≤ 0, or
    whose width or height is under 1 pixel.
    """
    x, y, w, h = ann['bbox']
    inter_w = max(0, min(x + w, img['width']) - max(x, 0))
    inter_h = max(0, min(y + h, img['height']) - max(y, 0))
    if inter_w * inter_h == 0:
        return f'box {ann["bbox"]} has no area inside the image'
    if w < 1 or h < 1:
        return f'box {w}×{h} is under 1 pixel wide or high'
    if ann.get('area', 1) <= 0:
        return f'area {ann.get("area")} is not positive'
    return None


def shift_annotation_ids(dataset: dict, source) -> int:
    """Renumber annotation ids in place so that the smallest is 1 (all shifted by the same amount, so the
    ids stay unique and in order); returns the shift (0: ids already ≥ 1).

    pycocotools' ``COCOeval.evaluateImg`` stores the id of the matched ground truth per detection and
    reads 0 as "unmatched": a correct detection of annotation 0 is counted as a false positive (and a
    negative id can be matched repeatedly). Exporters such as labelme's number annotations from 0.
    """
    anns = dataset.get('annotations') or []
    ids = [a.get('id') for a in anns]
    if not ids or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        return 0  # pycocotools / mmdet report missing or odd ids themselves
    shift = 1 - min(ids)
    if shift <= 0:
        return 0
    for a in anns:
        a['id'] += shift
    warnings.warn(f'{source}: annotation ids start at {min(ids)}; pycocotools reads id 0 as "unmatched", so a '
                  f'correct detection of that annotation would count as a false positive and lower AP. '
                  f'Renumbered for evaluation: id + {shift}', stacklevel=3)
    return shift


@METRICS.register_module()
class CheckedCocoMetric(CocoMetric):
    """mmdet's ``CocoMetric`` whose ground truth (``ann_file``) gets annotation ids ≥ 1.

    The metric reads the annotation file itself; with ids from 0 pycocotools would lose the annotation
    with id 0 as a match (ground truth fed back as prediction scores AP < 1). Training does not use
    annotation ids, so renumbering only here keeps both consistent.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        api = self._coco_api
        if api is not None and shift_annotation_ids(api.dataset, kwargs.get('ann_file') or args[0]):
            cats = api.cats  # keep the category order CocoMetric may have set (sort_categories)
            api.createIndex()
            api.cats, api.img_ann_map, api.cat_img_map = cats, api.imgToAnns, api.catToImgs


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """mmdet's ``CocoDataset`` that refuses broken annotations with the JSON file, annotation id and image.

    mmdet silently drops boxes it cannot use (outside the image, zero area, under one pixel) and
    annotations whose category is not in the file, fails later, without a file name, on malformed polygons,
    and a corrupt JSON file surfaces as a bare ``JSONDecodeError``. Here: broken polygons, boxes outside the
    image and unknown category ids are errors; the dataset's ``classes`` must be categories of the file
    (same order: labels follow the file's order); boxes mmdet would drop are errors too unless
    ``degenerate_boxes='warn'``, which drops them (as mmdet) with one warning that counts and names them.
    Annotation ids below 1 are reported (:class:`CheckedCocoMetric` renumbers them for evaluation).

    Args:
        degenerate_boxes: ``'raise'`` (default) or ``'warn'``.
    """

    def __init__(self, *args, degenerate_boxes: str = 'raise', **kwargs):
        if degenerate_boxes not in ('raise', 'warn'):
            raise ValueError(f"degenerate_boxes must be 'raise' or 'warn', got {degenerate_boxes!r}")
        self.degenerate_boxes = degenerate_boxes
        super().__init__(*args, **kwargs)

    def load_data_list(self):
        self._dropped, self._classes_checked = [], False
        try:
            data_list = super().load_data_list()
        except json.JSONDecodeError as e:
            raise ValueError(f'{self.ann_file}: not valid JSON ({e})') from e
        if self._dropped:
            n = len(self._dropped)
            warnings.warn(f'{self.ann_file}: {n} annotation{"s" * (n > 1)} dropped as mmdet does '
                          f'(degenerate_boxes=\'warn\'): {"; ".join(self._dropped[:5])}'
                          f'{"; ..." if n > 5 else ""}', stacklevel=2)
        return data_list

    def _check_classes(self) -> None:
        names = [c['name'] for c in self.coco.dataset.get('categories', [])]
        wanted = list(self.metainfo['classes'])
        missing = [c for c in wanted if c not in names]
        if missing:
            raise ValueError(f'{self.ann_file}: the dataset\'s classes {missing[:10]} are not categories of the '
                             f'file (its categories: {names[:10]}{" ..." if len(names) > 10 else ""}); their '
                             f'annotations would be missing and later labels shifted')
        order = [n for n in names if n in wanted]
        if order != wanted:
            raise ValueError(f'{self.ann_file}: the dataset\'s classes are in another order than the file\'s '
                             f'categories ({wanted[:10]} vs {order[:10]}); mmdet numbers labels in the file\'s '
                             f'order, so class names and labels would not match')
        if any(isinstance(a.get('id'), int) and a['id'] < 1 for a in self.coco.dataset.get('annotations', [])):
            warnings.warn(f'{self.ann_file}: annotation ids below 1: pycocotools reads id 0 as "unmatched" in '
                          f'evaluation; evaluate with CheckedCocoMetric, which renumbers them (mmdet\'s '
                          f'CocoMetric would count a correct detection of annotation 0 as a false positive)',
                          stacklevel=3)

    def parse_data_info(self, raw_data_info: dict):
        if not self._classes_checked:
            self._check_classes()
            self._classes_checked = True
        img = raw_data_info['raw_img_info']
        for ann in raw_data_info['raw_ann_info']:
            check_coco_annotation(ann, img, self.ann_file)
            where = f'{self.ann_file}: annotation id {ann.get("id")} (image {img.get("file_name")})'
            if ann.get('category_id') not in self.coco.cats:
                raise ValueError(f'{where}: category id {ann.get("category_id")!r} is not among the file\'s '
                                 f'categories (ids {sorted(self.coco.cats)[:10]}'
                                 f'{" ..." if len(self.coco.cats) > 10 else ""})')
            reason = None if ann.get('ignore', False) else degenerate_box_reason(ann, img)
            if reason and self.degenerate_boxes == 'raise':
                raise ValueError(f'{where}: {reason}; mmdet would drop it silently. Fix or remove the '
                                 f'annotation, or give the dataset degenerate_boxes=\'warn\' to drop such boxes '
                                 f'with one warning')
            if reason:
                self._dropped.append(f'id {ann.get("id")} ({reason})')
        return super().parse_data_info(raw_data_info)
