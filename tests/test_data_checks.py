"""Data validation (issue 12, items 6-8): wrong data is refused with the file named instead of training or
evaluating on shifted labels, misaligned masks or silently dropped annotations. All data is generated."""
import json
import shutil
import warnings

import numpy as np
import pytest
from PIL import Image


# --------------------------------------------------------------------------------------------------------
# ImageNet folders (pretrain.data.ImageNetFolder)
# --------------------------------------------------------------------------------------------------------
def _imagenet(root, splits=None, n=2, size=8):
    splits = splits or {'train': ['cat', 'dog', 'fox'], 'val': ['cat', 'dog', 'fox']}
    for split, classes in splits.items():
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                Image.new('RGB', (size, size), (40 * i, 80, 120)).save(d / f'{c}_{i}.JPEG')
    return root


def test_imagenet_val_with_other_class_names_is_refused(tmp_path):
    from pretrain.data import ImageNetFolder
    root = _imagenet(tmp_path, {'train': ['cat', 'dog', 'fox'], 'val': ['cat', 'dog', 'wolf']})
    ImageNetFolder(str(root), 'train')
    with pytest.raises(ValueError, match=r"val: its class folders differ from those of .*train \(3 vs 3 folders\); "
                                         r"only in .*val: \['wolf'\]; only in .*train: \['fox'\]"):
        ImageNetFolder(str(root), 'val')
    # an explicit class list (label order) for both splits is the user's decision: then missing folders count
    with pytest.raises(FileNotFoundError, match=r"no folder for classes \['fox'\]"):
        ImageNetFolder(str(root), 'val', classes=['cat', 'dog', 'fox'])
    ds = ImageNetFolder(str(root), 'val', reference_split=None)  # check switched off explicitly
    assert ds.metainfo['classes'] == ('cat', 'dog', 'wolf')


def test_imagenet_empty_class_folder_is_named(tmp_path):
    from pretrain.data import ImageNetFolder
    root = _imagenet(tmp_path)
    (root / 'train' / 'emu').mkdir()
    (root / 'train' / 'gnu' / 'sub').mkdir(parents=True)
    Image.new('RGB', (8, 8)).save(root / 'train' / 'gnu' / 'sub' / 'x.png')
    with pytest.raises(FileNotFoundError, match=r"train: 2 class folders without images .*'.*train/emu', "
                                                r"'.*train/gnu \(holds 1 sub-folder, which are not read\)'.*"
                                                r"num_classes would be 5 with 2 class\(es\) that have no samples"):
        ImageNetFolder(str(root), 'train')


def test_imagenet_nested_sub_folders_warn_once_with_count(tmp_path):
    from pretrain.data import ImageNetFolder
    root = _imagenet(tmp_path)
    for c, k in (('cat', 3), ('dog', 1)):
        sub = root / 'train' / c / 'extra' / 'deeper'
        sub.mkdir(parents=True)
        for i in range(k):
            Image.new('RGB', (8, 8)).save(sub / f'{i}.jpg')
    with pytest.warns(UserWarning) as rec:
        ds = ImageNetFolder(str(root), 'train')
    msgs = [str(w.message) for w in rec if 'sub-folder' in str(w.message)]
    assert len(msgs) == 1 and '2 sub-folders inside class folders' in msgs[0] and 'holding 4 image(s)' in msgs[0]
    assert len(ds) == 6  # the nested images are not samples
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        ImageNetFolder(str(root), 'val')  # clean split: no warning


def test_imagenet_16bit_png_is_scaled_not_white(tmp_path):
    from pretrain.data import ImageNetFolder, UnreadableImageError
    root = _imagenet(tmp_path)
    ramp = (np.arange(16 * 16, dtype=np.uint32).reshape(16, 16) * 256 + 128).astype(np.uint16)  # 128..65408
    path = root / 'val' / 'cat' / 'cat_16bit.png'
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode == 'I;16'
    img = np.asarray(ImageNetFolder.load_image(str(path)))
    assert img.dtype == np.uint8 and img.shape == (16, 16, 3)
    np.testing.assert_array_equal(img[..., 0], ramp >> 8)  # 0..255, not clipped to 255 (all white)
    assert (img[..., 0] == img[..., 2]).all()
    # 16-bit RGB: Pillow already reduces it; it stays right
    rgb = np.stack([ramp, ramp // 2, ramp // 4], -1)
    import cv2
    cv2.imwrite(str(root / 'val' / 'cat' / 'rgb16.png'), rgb[..., ::-1])
    np.testing.assert_array_equal(np.asarray(ImageNetFolder.load_image(str(root / 'val' / 'cat' / 'rgb16.png'))),
                                  rgb >> 8)
    Image.fromarray(np.full((4, 4), 3.5, np.float32)).save(root / 'val' / 'cat' / 'float.tif')
    with pytest.raises(UnreadableImageError, match=r'float\.tif: floating-point image .* convert it to 8-bit RGB'):
        ImageNetFolder.load_image(str(root / 'val' / 'cat' / 'float.tif'))
