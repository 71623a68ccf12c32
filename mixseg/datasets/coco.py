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


# --- ground truth as prediction: an annotation file evaluated against itself ---------------------------------

def coco_structure_problems(data: dict, ann_file: str, max_dets: int = 1000) -> tuple[list, list]:
    """(errors, notes) about a COCO file's structure that make an evaluation against it fail or score below
    what the predictions deserve; errors stop the self-check, notes explain an AP below 1."""
    from collections import Counter
    errors, notes = [], []
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(data.get(key), list):
            errors.append(f'{ann_file}: no {key!r} list')
    if errors:
        return errors, notes
    img_ids = {im.get('id') for im in data['images']}
    cat_ids = {c.get('id') for c in data['categories']}
    anns = data['annotations']
    no_img = [a.get('id') for a in anns if a.get('image_id') not in img_ids]
    if no_img:
        errors.append(f'{ann_file}: {len(no_img)} annotations refer to image ids not in "images" (annotation ids '
                      f'{no_img[:5]})')
    no_cat = [a.get('id') for a in anns if a.get('category_id') not in cat_ids]
    if no_cat:
        errors.append(f'{ann_file}: {len(no_cat)} annotations have a category id not in "categories" (annotation '
                      f'ids {no_cat[:5]})')
    no_area = [a.get('id') for a in anns if not isinstance(a.get('area'), (int, float))]
    if no_area:
        errors.append(f'{ann_file}: {len(no_area)} annotations have no numeric "area" (pycocotools needs it; '
                      f'annotation ids {no_area[:5]})')
    dup = [i for i, n in Counter(a.get('id') for a in anns).items() if n > 1]
    if dup:
        errors.append(f'{ann_file}: {len(dup)} annotation ids are used more than once (e.g. '
                      f'{sorted(dup, key=str)[:5]}): mmdet refuses the file, and pycocotools keeps one annotation '
                      f'per id; give every annotation its own id')
    if any(isinstance(a.get('id'), int) and a['id'] < 1 for a in anns):
        notes.append('annotation ids start below 1: pycocotools reads id 0 as "unmatched" (mmdet\'s CocoMetric '
                     'would count a correct detection of it as a false positive); CheckedCocoMetric, used here and '
                     'in the configs, renumbers them')
    dup_names = [n for n, k in Counter(c.get('name') for c in data['categories']).items() if k > 1]
    if dup_names:
        notes.append(f'category names used twice: {dup_names[:5]}; mmdet finds categories by name')
    per_img = Counter(a.get('image_id') for a in anns if not a.get('iscrowd', 0))
    crowded = {i: n for i, n in per_img.items() if n > max_dets}
    if crowded:
        names = {im.get('id'): im.get('file_name') for im in data['images']}
        notes.append(f'{len(crowded)} images have more than {max_dets} annotations, the most detections '
                     f'mmdet\'s COCO metric keeps per image (maxDets, its proposal_nums[-1]): '
                     + ', '.join(f'{names.get(i)} ({n})' for i, n in list(crowded.items())[:5]))
    return errors, notes


def _gt_as_predictions(coco, data: dict, metrics) -> list:
    """One mmdet data sample per image whose predictions are its non-crowd annotations (score 1)."""
    import numpy as np
    import torch
    order = [c['id'] for c in data['categories']]
    by_img = {im['id']: [] for im in data['images']}
    for a in data['annotations']:
        if not a.get('iscrowd', 0):
            by_img[a['image_id']].append(a)
    samples = []
    for im in data['images']:
        anns = by_img[im['id']]
        boxes = np.array([[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2], a['bbox'][1] + a['bbox'][3]]
                          for a in anns], np.float64).reshape(-1, 4)
        pred = dict(bboxes=torch.from_numpy(boxes), scores=torch.ones(len(anns), dtype=torch.float64),
                    labels=torch.tensor([order.index(a['category_id']) for a in anns], dtype=torch.long))
        if 'segm' in metrics:
            pred['masks'] = [coco.annToRLE(a) for a in anns]
        samples.append(dict(pred_instances=pred, img_id=im['id'], ori_shape=(im['height'], im['width'])))
    return samples


def coco_self_check(ann_file: str, metrics=('bbox', 'segm')) -> dict:
    """Evaluate a COCO annotation file against itself with the project's metric (mmdet's CocoMetric through
    :class:`CheckedCocoMetric`): every AP must be 1.0. Returns ``dict(ok, metrics, per_category, errors,
    notes)``; ``notes`` say why an AP is below 1 where a known cause is found, ``per_category`` lists the
    categories below 1. Errors in the file (those :class:`CheckedCocoDataset` refuses, broken references)
    are reported in ``errors`` and nothing is evaluated.

    Written here because neither pycocotools nor mmdet has such a check; it tells whether a low AP on
    one's own data comes from the file (ids, crowded images, categories) or from the model.
    """
    from mmdet.datasets.api_wrappers import COCO
    try:
        with open(ann_file) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        return dict(ok=False, metrics={}, per_category={}, errors=[f'{ann_file}: not valid JSON ({e})'], notes=[])
    errors, notes = coco_structure_problems(data, ann_file, max_dets=CocoMetric(ann_file=None).proposal_nums[-1])
    if not errors:
        names = tuple(c['name'] for c in data['categories'])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                CheckedCocoDataset(ann_file=ann_file, metainfo=dict(classes=names), data_prefix=dict(img=''),
                                   pipeline=[], test_mode=True)
        except ValueError as e:
            errors.append(str(e))
    if errors:
        return dict(ok=False, metrics={}, per_category={}, errors=errors, notes=notes)
    segm = all(a.get('segmentation') for a in data['annotations'] if not a.get('iscrowd', 0))
    metrics = [m for m in metrics if m != 'segm' or segm]
    if not segm:
        notes.append('not every annotation has a segmentation: mask AP not evaluated')
    results, per_category = {}, {}
    for metric in metrics:
        evaluator = CheckedCocoMetric(ann_file=ann_file, metric=metric, classwise=True)
        evaluator.dataset_meta = dict(classes=names)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            evaluator.process({}, _gt_as_predictions(COCO(ann_file), data, metrics))
            out = evaluator.compute_metrics(evaluator.results)
        results[f'{metric}_mAP'] = out[f'{metric}_mAP']
        per_category[metric] = {k[:-len('_precision')]: v for k, v in out.items()
                                if k.endswith('_precision') and 0 <= v < 1}
    ok = all(v == 1.0 for v in results.values())
    return dict(ok=ok, metrics=results, per_category=per_category, errors=[], notes=notes)
