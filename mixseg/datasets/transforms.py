"""Pipeline transforms that turn silently wrong inputs into errors naming the file."""
from __future__ import annotations

import os

import numpy as np
from mmcv.transforms import BaseTransform, LoadImageFromFile
from ..registry import TRANSFORMS
from PIL import Image

from mixcore.image_io import refuse_decompression_bomb

_JPEG_SOI = b'\xff\xd8\xff'
_JPEG_EOI = b'\xff\xd9'
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_PNG_IEND = b'IEND\xaeB`\x82'


def sniff_image_format(head: bytes):
    """``'JPEG'``, ``'PNG'`` or ``None`` from a file's first bytes (its magic number), whatever its name."""
    if head.startswith(_JPEG_SOI):
        return 'JPEG'
    if head.startswith(_PNG_SIGNATURE):
        return 'PNG'
    return None


def check_image_file(path: str):
    """Raise ``ValueError`` for an empty or truncated JPEG/PNG file; return the format found (or ``None``).

    The format comes from the file's content, not its extension: a PNG named ``.jpg`` is checked (and
    decoded, by OpenCV) as the PNG it is. OpenCV decodes a truncated JPEG without an error (the missing
    part comes out grey), so the end marker is checked: a JPEG ends with EOI (possibly followed by
    padding), a PNG with its IEND chunk. Only the first 8 bytes and the last 4 KiB are read.
    """
    size = os.path.getsize(path)
    if size == 0:
        raise ValueError(f'{path}: empty image file')
    with open(path, 'rb') as f:
        head = f.read(8)
        f.seek(max(0, size - 4096))
        tail = f.read()
    fmt = sniff_image_format(head)
    ext = os.path.splitext(path)[1].lower()
    named = {'.jpg': 'JPEG', '.jpeg': 'JPEG', '.png': 'PNG'}.get(ext)
    note = f'; the file is named {ext} but holds {fmt} data' if fmt and named and fmt != named else ''
    if fmt == 'PNG' and _PNG_IEND not in tail:
        raise ValueError(f'{path}: truncated or corrupt PNG (no IEND chunk{note})')
    if fmt == 'JPEG' and _JPEG_EOI not in tail:
        raise ValueError(f'{path}: truncated or corrupt JPEG (no end-of-image marker{note})')
    return fmt


def _describe_content(path: str) -> str:
    with open(path, 'rb') as f:
        head = f.read(8)
    fmt = sniff_image_format(head)
    return f'{fmt} data' if fmt else f'neither JPEG nor PNG data: starts with {head!r}'


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that refuses truncated/corrupt local images with the file's name.

    Decompression bombs are refused as stage 1 refuses them (:mod:`mixcore.image_io`: over Pillow's limit, checked
    on the header before OpenCV allocates the image; Pillow's ``DecompressionBombError`` is no ``OSError``), and
    EXIF orientation is applied by mmcv's decoders, as stage 1 applies it.

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
                refuse_decompression_bomb(path)
            try:
                return super().transform(results)
            except AssertionError as e:  # mmcv: 'failed to load image: <path>'
                what = _describe_content(path) if '://' not in str(path) else e
                raise ValueError(f'{path}: not a decodable image ({what})') from e
            except Image.DecompressionBombError as e:  # imdecode_backend='pillow' (remote files included)
                raise ValueError(f'{path}: refused as a possible decompression bomb ({e})') from e
        except (ValueError, OSError) as e:
            if self.on_error == 'raise':
                raise
            from mmengine.logging import print_log
            print_log(f'skipping sample: {e}', logger='current', level=30)
            return None


@TRANSFORMS.register_module()
class CheckSegLabels(BaseTransform):
    """Refuse a segmentation map that is not single-channel, not the size of its image, or holds values
    outside ``[0, num_classes)`` ∪ ``{ignore_index}``.

    Place after ``LoadAnnotations`` (in the test pipeline it may come after ``Resize``: the image size
    compared is ``ori_shape``, the size the image file had). Without it an RGB label image reaches the loss
    with a colour axis, a label of another size than its image is cropped at the same coordinates as the
    image (misaligned supervision, silently) or fails in the metric without a file name, and an out-of-range
    value reaches the loss as an out-of-range target (an IndexError without a file name on CPU, a
    device-side assert on GPU) or silently skews the metric. The messages give the raw values in the PNG
    (before ``reduce_zero_label``).

    ``num_classes=None``: the dataset's number of classes, which ``FolderSegDataset`` puts into each sample
    (a config then names its classes once, in the dataset's ``metainfo``).
    """

    def __init__(self, num_classes: int | None = None, ignore_index: int = 255):
        self._num_classes = None if num_classes is None else int(num_classes)
        self.ignore_index = int(ignore_index)

    @property
    def num_classes(self):
        return self._num_classes

    def transform(self, results: dict) -> dict:
        seg = results['gt_seg_map']
        where = results.get('seg_map_path', 'segmentation map')
        n = self._num_classes if self._num_classes is not None else results.get('num_classes')
        if n is None:
            raise ValueError(f'{where}: CheckSegLabels has no num_classes: give it num_classes=N, or use a dataset '
                             f'that names its classes (FolderSegDataset with metainfo=dict(classes=...))')
        if seg.ndim != 2:
            what = f'{seg.shape[2]} channels' if seg.ndim == 3 else f'shape {seg.shape}'
            raise ValueError(
                f'{where}: label image has {what}; it must be single-channel: a palette (P) or greyscale (L) '
                f'PNG whose pixel values are class indices, not an RGB/RGBA rendering of the colours')
        img_shape = results.get('ori_shape')
        if img_shape is not None and tuple(seg.shape) != tuple(img_shape[:2]):
            raise ValueError(
                f'{where} ({seg.shape[1]}×{seg.shape[0]}) and its image {results.get("img_path")} '
                f'({img_shape[1]}×{img_shape[0]}) differ in size (width×height); labels must be pixel-aligned '
                f'with the image')
        bad = np.unique(seg[(seg >= n) & (seg != self.ignore_index)])
        if bad.size:
            reduced = bool(results.get('reduce_zero_label'))
            raw = (bad + 1) if reduced else bad
            raise ValueError(
                f'{where}: label values {raw[:8].tolist()} '
                f'are outside the dataset\'s {n} classes '
                f'(valid raw values: {"1..%d, 0 = ignore" % n if reduced else "0..%d" % (n - 1)}'
                f', {self.ignore_index} = ignore); map the labels to these values or name more classes '
                f'(docs/OWN_DATA.md)')
        return results

    def __repr__(self):
        return f'{type(self).__name__}(num_classes={self._num_classes}, ignore_index={self.ignore_index})'
