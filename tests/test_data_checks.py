"""Data validation (issue 12, items 6-8): wrong data is refused with the file named instead of training or
evaluating on shifted labels, misaligned masks or silently dropped annotations. All data is generated."""
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


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


# --------------------------------------------------------------------------------------------------------
# Segmentation (CheckedLoadImageFromFile, CheckSegLabels in the ADE20K / Pascal Context pipelines)
# --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def seg_data(tmp_path_factory):
    from mixcore.demo_data import make_demo_data
    out = tmp_path_factory.mktemp('seg_checks')
    make_demo_data(out, seed=2, size='tiny', only=['ade20k', 'pascal_context'], log=lambda *a: None)
    return out


def _seg_dataset(seg_data, tmp_path, dataset, split):
    """The dataset of a demo config's train or val loader, on a private copy of the generated data."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    import mixseg.datasets  # noqa: F401
    init_default_scope('mmseg')
    base = 'ade20k_demo' if dataset == 'ade' else 'pascal_context_59_demo'
    cfg = Config.fromfile(ROOT / f'configs/_base_/datasets/{base}.py')
    src = seg_data / ('ade/ADEChallengeData2016' if dataset == 'ade' else 'VOCdevkit/VOC2010')
    root = tmp_path / dataset
    shutil.copytree(src, root)
    ds_cfg = cfg[f'{split}_dataloader'].dataset.to_dict()
    ds_cfg['data_root'] = str(root)
    return DATASETS.build(ds_cfg)


def _label_and_image(ds, idx=0):
    info = ds.get_data_info(idx)
    return info['seg_map_path'], info['img_path']


@pytest.mark.parametrize('dataset', ['ade', 'pascal'])
@pytest.mark.parametrize('split', ['train', 'val'])
def test_seg_label_of_other_size_than_image_names_both(seg_data, tmp_path, dataset, split):
    ds = _seg_dataset(seg_data, tmp_path, dataset, split)
    ds.prepare_data(0)  # a clean sample passes
    label, image = _label_and_image(ds)
    w, h = Image.open(image).size
    Image.open(label).resize((w // 2, h), Image.NEAREST).save(label)
    with pytest.raises(ValueError,
                       match=rf'{label} \({w // 2}×{h}\) and its image {image} \({w}×{h}\) differ in size'):
        ds.prepare_data(0)


@pytest.mark.parametrize('dataset', ['ade', 'pascal'])
def test_seg_rgb_label_png_is_named(seg_data, tmp_path, dataset):
    ds = _seg_dataset(seg_data, tmp_path, dataset, 'train')
    label, _ = _label_and_image(ds)
    seg = np.asarray(Image.open(label))
    Image.fromarray(np.stack([seg, seg, seg], -1)).save(label)  # a grey label map saved as RGB
    with pytest.raises(ValueError, match=rf'{label}: label image has 3 channels; it must be single-channel: '
                                         r'a palette \(P\) or greyscale \(L\) PNG'):
        ds.prepare_data(0)


def test_image_format_from_content_not_extension(seg_data, tmp_path):
    from mixseg.datasets import CheckedLoadImageFromFile
    t = CheckedLoadImageFromFile()
    rgb = np.random.default_rng(0).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    png_as_jpg = tmp_path / 'photo.jpg'
    Image.fromarray(rgb).save(png_as_jpg, 'PNG')
    out = t(dict(img_path=str(png_as_jpg)))
    np.testing.assert_array_equal(out['img'], rgb[..., ::-1])  # lossless: PNG decoded (BGR, as mmcv)
    data = png_as_jpg.read_bytes()
    png_as_jpg.write_bytes(data[:len(data) - 30])
    with pytest.raises(ValueError, match=r'photo\.jpg: truncated or corrupt PNG \(no IEND chunk; the file is '
                                         r'named \.jpg but holds PNG data\)'):
        t(dict(img_path=str(png_as_jpg)))
    jpg_as_png = tmp_path / 'scan.png'
    Image.fromarray(rgb).save(jpg_as_png, 'JPEG')
    assert t(dict(img_path=str(jpg_as_png)))['img'].shape == (12, 20, 3)
    junk = tmp_path / 'junk.jpg'
    junk.write_bytes(b'GIF89a' + b'\0' * 40)
    with pytest.raises(ValueError, match=r"junk\.jpg: not a decodable image \(neither JPEG nor PNG data: "
                                         r"starts with b'GIF89a"):
        t(dict(img_path=str(junk)))


# --------------------------------------------------------------------------------------------------------
# COCO (CheckedCocoDataset, CheckedCocoMetric)
# --------------------------------------------------------------------------------------------------------
COCO_CATS = ('circle', 'square')


def _coco_file(path, first_id=1, n_img=4, per_img=3):
    """A small COCO instance file: n_img 64×48 images, per_img non-overlapping square objects each."""
    images, anns = [], []
    for i in range(n_img):
        images.append(dict(id=i + 1, file_name=f'{i + 1:06d}.jpg', width=64, height=48))
        for k in range(per_img):
            x, y, s = 2 + 20 * k, 4 + 3 * i, 10 + k
            anns.append(dict(id=first_id + len(anns), image_id=i + 1, category_id=1 + (i + k) % 2,
                             bbox=[float(x), float(y), float(s), float(s)], area=float(s * s), iscrowd=0,
                             segmentation=[[x, y, x + s, y, x + s, y + s, x, y + s]]))
    doc = dict(images=images, annotations=anns,
               categories=[dict(id=j + 1, name=n) for j, n in enumerate(COCO_CATS)])
    path.write_text(json.dumps(doc))
    return doc


def _coco_dataset(ann_file, **kw):
    from mmengine.registry import init_default_scope
    from mmdet.registry import DATASETS

    import mixseg.datasets  # noqa: F401
    init_default_scope('mmdet')
    return DATASETS.build(dict(type='CheckedCocoDataset', data_root=str(ann_file.parent), ann_file=ann_file.name,
                               data_prefix=dict(img=''), metainfo=dict(classes=kw.pop('classes', COCO_CATS)),
                               pipeline=[], **kw))


def _n_instances(ds):
    return sum(len(ds.get_data_info(i)['instances']) for i in range(len(ds)))


def _edit(path, fn):
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))
    return doc


@pytest.mark.parametrize('box', [[10.0, 10.0, 8.0, 0.0], [10.0, 10.0, 0.0, 5.0], [10.0, 10.0, 0.5, 5.0]])
def test_coco_degenerate_box_is_refused_or_dropped_with_a_warning(tmp_path, box):
    f = tmp_path / 'ann.json'
    _coco_file(f)
    assert _n_instances(_coco_dataset(f)) == 12

    def degenerate(doc):
        doc['annotations'][4]['bbox'] = box
    _edit(f, degenerate)
    with pytest.raises(ValueError, match=rf'ann\.json: annotation id 5 \(image 000002\.jpg\): box .* mmdet would '
                                         r'drop it silently'):
        _coco_dataset(f)
    with pytest.warns(UserWarning, match=r"ann\.json: 1 annotation dropped as mmdet does .*id 5 \(box"):
        ds = _coco_dataset(f, degenerate_boxes='warn')
    assert _n_instances(ds) == 11


def test_coco_unknown_category_and_foreign_classes_are_refused(tmp_path):
    f = tmp_path / 'ann.json'
    _coco_file(f)

    def unknown(doc):
        doc['annotations'][7]['category_id'] = 9
    _edit(f, unknown)
    with pytest.raises(ValueError, match=r'ann\.json: annotation id 8 \(image 000003\.jpg\): category id 9 is not '
                                         r'among the file\'s categories \(ids \[1, 2\]\)'):
        _coco_dataset(f)
    _coco_file(f)
    with pytest.raises(ValueError, match=r"classes \['ring'\] are not categories of the file"):
        _coco_dataset(f, classes=('circle', 'ring', 'square'))
    with pytest.raises(ValueError, match='in another order than the file'):
        _coco_dataset(f, classes=('square', 'circle'))
    ds = _coco_dataset(f, classes=('square',))  # a subset of the file's categories is a deliberate choice
    assert _n_instances(ds) == 6


def _gt_as_prediction_ap(metric_type, ann_file):
    """bbox mAP of mmdet's CocoMetric (or ours) when every ground-truth box is fed back as a prediction."""
    import torch
    from mmdet.registry import METRICS
    from mmengine.registry import init_default_scope

    import mixseg.datasets  # noqa: F401
    init_default_scope('mmdet')
    doc = json.loads(ann_file.read_text())
    metric = METRICS.build(dict(type=metric_type, ann_file=str(ann_file), metric='bbox'))
    metric.dataset_meta = dict(classes=COCO_CATS)
    samples = []
    for img in doc['images']:
        anns = [a for a in doc['annotations'] if a['image_id'] == img['id']]
        boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)])
        samples.append(dict(img_id=img['id'], ori_shape=(img['height'], img['width']),
                            pred_instances=dict(bboxes=boxes, scores=torch.ones(len(anns)),
                                                labels=torch.tensor([a['category_id'] - 1 for a in anns]))))
    metric.process({}, samples)
    return metric.compute_metrics(metric.results)['bbox_mAP']


def test_coco_annotation_ids_from_zero_keep_full_ap(tmp_path):
    f = tmp_path / 'labelme.json'
    _coco_file(f, first_id=0)
    # pycocotools reads the matched ground-truth id 0 as "unmatched": a perfect prediction loses AP
    assert _gt_as_prediction_ap('CocoMetric', f) < 0.99
    with pytest.warns(UserWarning, match=r'labelme\.json: annotation ids start at 0; pycocotools reads id 0 as '
                                         r'"unmatched".* Renumbered for evaluation: id \+ 1'):
        assert _gt_as_prediction_ap('CheckedCocoMetric', f) == 1.0
    # training reads the same file: nothing is dropped, the user is told which metric to use
    with pytest.warns(UserWarning, match='evaluate with CheckedCocoMetric'):
        ds = _coco_dataset(f)
    assert _n_instances(ds) == 12
    g = tmp_path / 'coco.json'
    _coco_file(g, first_id=1)
    assert _gt_as_prediction_ap('CocoMetric', g) == _gt_as_prediction_ap('CheckedCocoMetric', g) == 1.0
