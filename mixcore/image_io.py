"""The one image reader of the project: stage 1 (training, test, label maps) and the figure tools read every image
with :func:`read_rgb`; stage 2 (mmcv's decoder) applies the same rules (:func:`refuse_decompression_bomb`).

Rules, the same everywhere:

* **EXIF orientation is applied**: a photo is used as a viewer shows it (a phone's portrait JPEG is stored
  landscape with an orientation tag). mmcv's loader applies it too (OpenCV's ``IMREAD_COLOR``, or Pillow's
  ``exif_transpose`` for ``imdecode_backend='pillow'``), so both stages see the same picture.
* **16-bit grey** (``I;16*``, or ``I`` from a PNG) is scaled by 1/256 (Pillow's ``convert('RGB')`` clips it at 255:
  nearly all white); 32-bit integer or float images have no agreed 8-bit range and are refused.
* **Decompression bombs**: an image over Pillow's limit (``2 × PIL.Image.MAX_IMAGE_PIXELS`` pixels, Pillow's own
  refusal threshold; Pillow raises ``DecompressionBombError``, which is no ``OSError``) is refused naming the file;
  raise ``PIL.Image.MAX_IMAGE_PIXELS`` for genuinely huge images.

Every failure is an :class:`UnreadableImageError` naming the file. Written by hand because Pillow's
``ImageOps.exif_transpose`` and ``convert`` are the pieces; the 16-bit scaling and the error policy are ours.
"""
from __future__ import annotations

import struct

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ['UnreadableImageError', 'to_rgb', 'read_rgb', 'refuse_decompression_bomb']


class UnreadableImageError(RuntimeError, OSError):
    """An image file that cannot be decoded; the message names the file. Also an ``OSError``, so code that
    handles unreadable files handles it."""

    def __str__(self):  # OSError's formatting would add errno fields
        return str(self.args[0]) if self.args else ''


def to_rgb(img: Image.Image, path: str, fmt: str | None = None) -> Image.Image:
    """8-bit RGB of a decoded image; 16-bit grey (``I;16*``, or ``I`` from a PNG) is scaled by 1/256.

    ``fmt``: the file's format (``img.format`` of the opened file; a transposed copy has none). 16-bit RGB(A) PNGs
    Pillow already reduces to 8 bits itself.
    """
    fmt = fmt or img.format
    if img.mode.startswith('I;16') or (img.mode == 'I' and fmt == 'PNG'):
        arr = np.asarray(img).astype(np.uint32) >> 8
        return Image.fromarray(arr.astype(np.uint8), 'L').convert('RGB')
    if img.mode in ('I', 'F'):
        raise UnreadableImageError(
            f'{path}: {"32-bit integer" if img.mode == "I" else "floating-point"} image (Pillow mode '
            f'{img.mode}) has no defined 8-bit range; convert it to 8-bit RGB')
    return img.convert('RGB')


def _bomb_message(path, e) -> str:
    return (f'{path}: refused as a possible decompression bomb ({e}); if the image is genuine, raise '
            f'PIL.Image.MAX_IMAGE_PIXELS or shrink the file')


def read_rgb(path) -> Image.Image:
    """The image in ``path`` as an 8-bit RGB PIL image, decoded now, EXIF orientation applied (module rules)."""
    try:
        with open(path, 'rb') as f, Image.open(f) as img:
            fmt = img.format
            return to_rgb(ImageOps.exif_transpose(img), str(path), fmt)  # forces decoding: truncated files fail here
    except UnreadableImageError:
        raise
    except Image.DecompressionBombError as e:
        raise UnreadableImageError(_bomb_message(path, e)) from e
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, KeyError, TypeError, IndexError,
            struct.error) as e:  # the last four: malformed EXIF blocks
        raise UnreadableImageError(f'{path}: cannot read image ({type(e).__name__}: {e})') from e


def refuse_decompression_bomb(path) -> None:
    """``ValueError`` naming the file when its header declares more pixels than Pillow accepts (read lazily: only
    the header is parsed). Files Pillow cannot identify pass (another decoder may read them)."""
    try:
        with Image.open(path):
            pass
    except Image.DecompressionBombError as e:
        raise ValueError(_bomb_message(path, e)) from e
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return
