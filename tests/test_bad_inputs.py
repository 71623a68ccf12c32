"""Bad inputs give a clear error that names the file or value and what is wrong (issue: reliability).

Each case runs the real loader/tool; NaN loss and resume are in test_foundation.py, atomic writes in
test_atomic_write.py, wrong-architecture backbone files in test_checkpoint.py and the backbone tests.
"""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from mixcore.demo_data import make_demo_data


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp('bad_inputs')
    make_demo_data(out, seed=1, size='tiny', only=['ade20k', 'pascal_context', 'coco'], log=lambda *a: None)
    return out


def _truncate(path):
    b = path.read_bytes()
    path.write_bytes(b[: len(b) // 2])


def test_truncated_image_named(data, tmp_path):
    from mixseg.datasets import CheckedLoadImageFromFile
    src = next((data / 'ade/ADEChallengeData2016/images/training').glob('*.jpg'))
    bad = tmp_path / src.name
    shutil.copy(src, bad)
    _truncate(bad)
    t = CheckedLoadImageFromFile()
    assert t(dict(img_path=str(src)))['img'].ndim == 3
    with pytest.raises(ValueError, match=f'{bad}: truncated or corrupt JPEG'):
        t(dict(img_path=str(bad)))
    (tmp_path / 'garbage.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'x' * 100)
    with pytest.raises(ValueError, match='garbage.png: truncated or corrupt PNG'):
        t(dict(img_path=str(tmp_path / 'garbage.png')))
    assert CheckedLoadImageFromFile(on_error='skip')(dict(img_path=str(bad))) is None


@pytest.mark.parametrize('dataset', ['ADE20KDataset', 'PascalContextDataset59'])
def test_segmentation_label_out_of_range_named(data, tmp_path, dataset):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    import mixseg.datasets  # noqa: F401
    init_default_scope('mmseg')
    if dataset == 'ADE20KDataset':
        root = tmp_path / 'ade'
        shutil.copytree(data / 'ade/ADEChallengeData2016', root)
        ann_dir, n, kw = root / 'annotations/training', 150, dict(
            data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'))
    else:
        root = tmp_path / 'voc'
        shutil.copytree(data / 'VOCdevkit/VOC2010', root)
        ann_dir, n, kw = root / 'SegmentationClassContext', 59, dict(
            data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassContext'),
            ann_file='ImageSets/SegmentationContext/train.txt')
    pipeline = [dict(type='mixseg.CheckedLoadImageFromFile'), dict(type='LoadAnnotations', reduce_zero_label=True),
                dict(type='mixseg.CheckSegLabels', num_classes=n)]
    ds = DATASETS.build(dict(type=dataset, data_root=str(root), pipeline=pipeline, **kw))
    ds[0]  # a clean sample passes
    first = sorted(ann_dir.glob('*.png'))[0]
    seg = np.array(Image.open(first))
    seg[:2, :2] = 200
    Image.fromarray(seg).save(first)
    idx = [i for i in range(len(ds)) if ds.get_data_info(i)['seg_map_path'] == str(first)][0]
    with pytest.raises(ValueError, match=rf"{first.name}: label values \[200\] are outside the dataset's {n} classes"):
        ds.prepare_data(idx)


@pytest.mark.parametrize('case', ['polygon', 'box', 'json'])
def test_coco_broken_annotation_named(data, tmp_path, case):
    from mmengine.registry import init_default_scope
    from mmdet.registry import DATASETS

    from mixseg.datasets import CheckedCocoDataset  # noqa: F401
    from mixcore.demo_data import COCO_CLASSES
    init_default_scope('mmdet')
    root = tmp_path / 'coco'
    shutil.copytree(data / 'coco', root)
    ann_file = root / 'annotations/instances_val2017.json'
    js = json.loads(ann_file.read_text())
    ann = js['annotations'][0]
    if case == 'polygon':
        ann['segmentation'] = [[1.0, 2.0, 3.0, 4.0, 5.0]]
        match = f"annotation id {ann['id']} .*polygon 0 is broken \\(5 coordinates"
    elif case == 'box':
        img = next(i for i in js['images'] if i['id'] == ann['image_id'])
        ann['bbox'] = [img['width'] - 5.0, 10.0, 40.0, 20.0]
        match = f"annotation id {ann['id']} \\(image {img['file_name']}.*lies \\(partly\\) outside the image"
    if case == 'json':
        ann_file.write_text(json.dumps(js)[:-20])
        match = 'instances_val2017.json: not valid JSON'
    else:
        ann_file.write_text(json.dumps(js))
    with pytest.raises(ValueError, match=match):
        DATASETS.build(dict(type='CheckedCocoDataset', data_root=str(root), ann_file='annotations/instances_val2017.json',
                            data_prefix=dict(img='val2017/'), metainfo=dict(classes=COCO_CLASSES), pipeline=[]))


def test_image_size_not_divisible_by_patch():
    from pretrain.mix import CutMix, MaskMix
    with pytest.raises(ValueError, match='225'):
        CutMix(num_classes=10, patch_size=16)(torch.rand(2, 3, 225, 224), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match='225'):
        MaskMix(num_classes=10, patch_size=16)(torch.rand(2, 3, 225, 224), torch.tensor([0, 1]))
    # cells thinner than a token are refused (56-px cells on 16-px tokens are snapped, not refused)
    with pytest.raises(ValueError, match='cells of 4 px on 224 px snapped to the 16-px token grid leave an empty'):
        MaskMix(num_classes=10, patch_size=16, mask_patch=4)(torch.rand(2, 3, 224, 224), torch.tensor([0, 1]))


def test_missing_data_root_named(repo_root, tmp_path):
    cfg = sorted((repo_root / 'configs/demo').glob('segmenter-linear_*ade20k*.py'))[0]
    r = subprocess.run([sys.executable, str(repo_root / 'tools/train.py'), str(cfg), '--work-dir', str(tmp_path),
                        '--cfg-options', f'train_dataloader.dataset.data_root={tmp_path}/nowhere'],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert f"data root '{tmp_path}/nowhere' (ADE20KDataset) does not exist" in r.stderr


def test_num_classes_mismatch_named(repo_root, tmp_path, data):
    cfg = sorted((repo_root / 'configs/demo').glob('segmenter-linear_*ade20k*.py'))[0]
    r = subprocess.run([sys.executable, str(repo_root / 'tools/train.py'), str(cfg), '--work-dir', str(tmp_path),
                        '--data-root', str(data / 'ade/ADEChallengeData2016'),
                        '--cfg-options', 'model.decode_head.num_classes=10'],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert ('has num_classes=10, but the train dataset ADE20KDataset at '
            f'{data}/ade/ADEChallengeData2016 has 150 classes (wall, building, sky, floor, tree, ...). '
            'Set num_classes=150') in r.stderr
    assert not list(tmp_path.glob('*.pth'))
