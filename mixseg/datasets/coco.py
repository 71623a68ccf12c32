"""A COCO instance dataset that validates annotations as it parses them."""
from __future__ import annotations

import json
import math

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS


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


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """mmdet's ``CocoDataset`` that refuses broken annotations with the JSON file, annotation id and image.

    mmdet silently drops boxes it cannot use (outside the image, zero area) and fails later, without a
    file name, on malformed polygons; a corrupt JSON file surfaces as a bare ``JSONDecodeError``.
    """

    def load_data_list(self):
        try:
            return super().load_data_list()
        except json.JSONDecodeError as e:
            raise ValueError(f'{self.ann_file}: not valid JSON ({e})') from e

    def parse_data_info(self, raw_data_info: dict):
        for ann in raw_data_info['raw_ann_info']:
            check_coco_annotation(ann, raw_data_info['raw_img_info'], self.ann_file)
        return super().parse_data_info(raw_data_info)
