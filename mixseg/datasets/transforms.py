"""Pipeline transforms that turn silently wrong inputs into errors naming the file."""
from __future__ import annotations

import os

import numpy as np
from mmcv.transforms import BaseTransform, LoadImageFromFile
from mmcv.transforms.builder import TRANSFORMS

_JPEG_EOI = b'\xff\xd9'
_PNG_IEND = b'IEND\xaeB`\x82'


def check_image_file(path: str) -> None:
    """Raise ``ValueError`` for an empty or truncated JPEG/PNG file.

    OpenCV decodes a truncated JPEG without an error (the missing part comes out grey), so the end marker
    is checked: a JPEG ends with EOI (possibly followed by padding), a PNG with its IEND chunk. Only the
    last 4 KiB are read.
    """
    size = os.path.getsize(path)
    if size == 0:
        raise ValueError(f'{path}: empty image file')
    ext = os.path.splitext(path)[1].lower()
    if ext not in ('.jpg', '.jpeg', '.png'):
        return
    with open(path, 'rb') as f:
        f.seek(max(0, size - 4096))
        tail = f.read()
    if ext == '.png' and _PNG_IEND not in tail:
        raise ValueError(f'{path}: truncated or corrupt PNG (no IEND chunk)')
    if ext in ('.jpg', '.jpeg') and _JPEG_EOI not in tail:
        raise ValueError(f'{path}: truncated or corrupt JPEG (no end-of-image marker)')


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that refuses truncated/corrupt local images with the file's name.

    ``on_error='raise'`` (default) stops with the error; ``'skip'`` logs a warning and returns ``None``,
    which mmengine's datasets answer by drawing another sample.
    """

    def __init__(self, *args, on_error: str = 'raise', **kwargs):
        super().__init__(*args, **kwargs)
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.on_error = on_error

    def transform(self, results: dict):
        path = results['img_path']
        try:
            if '://' not in str(path):
                check_image_file(path)
            try:
                return super().transform(results)
            except AssertionError as e:  # mmcv: 'failed to load image: <path>'
                raise ValueError(f'{path}: not a decodable image ({e})') from e
        except (ValueError, OSError) as e:
            if self.on_error == 'raise':
                raise
            from mmengine.logging import print_log
            print_log(f'skipping sample: {e}', logger='current', level=30)
            return None


@TRANSFORMS.register_module()
class CheckSegLabels(BaseTransform):
    """Refuse a segmentation map with values outside ``[0, num_classes)`` ∪ ``{ignore_index}``.

    Place after ``LoadAnnotations``. Without it, such a value reaches the loss as an out-of-range target
    (an IndexError without a file name on CPU, a device-side assert on GPU) or silently skews the metric.
    The message gives the raw values in the PNG (before ``reduce_zero_label``).
    """

    def __init__(self, num_classes: int, ignore_index: int = 255):
        self.num_classes, self.ignore_index = int(num_classes), int(ignore_index)

    def transform(self, results: dict) -> dict:
        seg = results['gt_seg_map']
        bad = np.unique(seg[(seg >= self.num_classes) & (seg != self.ignore_index)])
        if bad.size:
            reduced = bool(results.get('reduce_zero_label'))
            raw = (bad + 1) if reduced else bad
            raise ValueError(
                f'{results.get("seg_map_path", "segmentation map")}: label values {raw[:8].tolist()} '
                f'are outside the dataset\'s {self.num_classes} classes '
                f'(valid raw values: {"1..%d, 0 = ignore" % self.num_classes if reduced else "0..%d" % (self.num_classes - 1)}'
                f', {self.ignore_index} = ignore)')
        return results

    def __repr__(self):
        return f'{type(self).__name__}(num_classes={self.num_classes}, ignore_index={self.ignore_index})'
