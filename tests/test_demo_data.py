"""Demo data generator: determinism, counts, label ranges, mask/annotation consistency and the real loaders."""
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mixcore import demo_data as dd
from mixcore.demo_data import (ADE20K_LABELS, COCO_CLASSES, DATA_ROOTS, IMAGENET_CLASSES, PASCAL_CONTEXT59_LABELS,
                              SHAPE_CLASSES, SHAPE_HUES, SHAPE_TO_SEG_CLASS, SIZES, STUFF_CLASSES, make_demo_data)

os.environ.setdefault('CUDA_VISIBLE_DEVICES', '-1')
REPO = Path(__file__).resolve().parents[1]
TINY = SIZES['tiny']
K = len(SHAPE_CLASSES)


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp('demo')
    roots = make_demo_data(out, seed=0, size='tiny', log=None)
    return out, roots


def _tree(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob('*')) if p.is_file()}


def _hue_offsets(rgb: np.ndarray, ref_deg: float) -> np.ndarray:
    """Signed circular distance (degrees) of each pixel's hue from ``ref_deg``; rgb is N×3 uint8."""
    hsv = np.asarray(Image.fromarray(rgb.reshape(1, -1, 3)).convert('HSV')).reshape(-1, 3)
    hue = hsv[:, 0].astype(float) * 360 / 256
    return (hue - ref_deg + 180) % 360 - 180


def _seg_pairs(img_dir: Path, ann_dir: Path):
    imgs = sorted(img_dir.glob('*.jpg'))
    anns = sorted(ann_dir.glob('*.png'))
    assert [p.stem for p in imgs] == [p.stem for p in anns]
    return list(zip(imgs, anns))


# --------------------------------------------------------------------------------------------- generation
def test_api_returns_data_roots_and_markers(demo):
    out, roots = demo
    assert set(roots) == set(dd.DATASETS)
    for name, root in roots.items():
        assert root == out / DATA_ROOTS[name] and root.is_dir()
        marker = dd.read_marker(out, name)
        assert marker['seed'] == 0 and marker['size'] == 'tiny' and marker['dataset'] == name
    assert not [p for p in out.iterdir() if p.name.startswith('.tmp-')]


def test_deterministic_same_seed_identical_bytes(demo, tmp_path):
    out, _ = demo
    make_demo_data(tmp_path / 'a', seed=0, size='tiny', log=None)
    ref = {}
    for d in dd.DATASET_DIRS.values():
        ref.update({f'{d}/{k}': v for k, v in _tree(out / d).items()})
    again = {}
    for d in dd.DATASET_DIRS.values():
        again.update({f'{d}/{k}': v for k, v in _tree(tmp_path / 'a' / d).items()})
    assert len(ref) > 100
    assert again == ref


def test_different_seed_differs(demo, tmp_path):
    out, _ = demo
    make_demo_data(tmp_path / 'b', seed=1, size='tiny', log=None)
    for d in dd.DATASET_DIRS.values():
        a, b = _tree(out / d), _tree(tmp_path / 'b' / d)
        media = [k for k in a if k.endswith(('.JPEG', '.jpg', '.png'))]
        assert media
        if d != 'coco':                      # same file names; coco file names are ids, also the same
            assert set(a) == set(b)
        differing = sum(a[k] != b.get(k) for k in media)
        assert differing >= 0.9 * len(media), d


def test_only_subset_matches_full_run(demo, tmp_path):
    out, _ = demo
    roots = make_demo_data(tmp_path, seed=0, size='tiny', only='coco,ade', log=None)
    assert set(roots) == {'coco', 'ade20k'}
    assert not (tmp_path / 'imagenet').exists() and not (tmp_path / 'VOCdevkit').exists()
    assert _tree(tmp_path / 'coco') == _tree(out / 'coco')
    with pytest.raises(ValueError):
        make_demo_data(tmp_path, size='tiny', only='imagenet,mnist', log=None)
    with pytest.raises(ValueError):
        make_demo_data(tmp_path, size='huge', log=None)


def test_skip_existing_unless_force(tmp_path):
    msgs = []
    make_demo_data(tmp_path, seed=0, size='tiny', only='imagenet', log=msgs.append)
    f = next((tmp_path / 'imagenet' / 'train' / 'circle').iterdir())
    before = f.read_bytes()
    make_demo_data(tmp_path, seed=3, size='tiny', only='imagenet', log=msgs.append)
    assert any(m.startswith('skip imagenet') and 'seed=0' in m for m in msgs)
    assert f.read_bytes() == before and dd.read_marker(tmp_path, 'imagenet')['seed'] == 0
    make_demo_data(tmp_path, seed=3, size='tiny', only='imagenet', force=True, log=msgs.append)
    assert dd.read_marker(tmp_path, 'imagenet')['seed'] == 3
    assert f.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['imagenet']


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    def boom(root, seed, spec):
        (root / 'annotations').mkdir()
        (root / 'annotations' / 'half.json').write_text('{')
        raise KeyboardInterrupt

    monkeypatch.setitem(dd._WRITERS, 'coco', boom)
    with pytest.raises(KeyboardInterrupt):
        make_demo_data(tmp_path, size='tiny', only='coco', log=None)
    assert list(tmp_path.iterdir()) == []


def test_cli(tmp_path, capsys):
    cmd = [sys.executable, str(REPO / 'tools' / 'make_demo_data.py'), '--out', str(tmp_path), '--size', 'tiny',
           '--only', 'imagenet', '--seed', '5']
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='-1')
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'wrote imagenet' in r.stdout
    assert dd.read_marker(tmp_path, 'imagenet')['seed'] == 5
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0 and 'skip imagenet' in r.stdout
    from _tools import load_tool
    cli = load_tool('make_demo_data')
    with pytest.raises(SystemExit) as e:
        cli.main(['--out', str(tmp_path), '--only', 'nope'])
    assert e.value.code == 2 and 'unknown demo dataset' in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- ImageNet tree
def test_imagenet_tree_counts_and_images(demo):
    out, roots = demo
    for split, n in (('train', TINY.cls_train), ('val', TINY.cls_val)):
        dirs = sorted(p.name for p in (roots['imagenet'] / split).iterdir())
        assert dirs == list(IMAGENET_CLASSES) and len(dirs) >= 8
        for c in dirs:
            files = sorted((roots['imagenet'] / split / c).iterdir())
            assert len(files) == n and all(f.suffix == '.JPEG' for f in files)
            im = Image.open(files[0])
            assert im.format == 'JPEG' and im.mode == 'RGB' and im.size == (TINY.cls_size, TINY.cls_size)


def test_imagenet_classes_separable_by_hue(demo):
    """Class-typical colour: predicting the class from the hue of saturated pixels beats chance by far."""
    _, roots = demo
    hues = np.array([SHAPE_HUES[c] for c in SHAPE_CLASSES])
    correct = total = 0
    for split in ('train', 'val'):
        for c in IMAGENET_CLASSES:
            for f in sorted((roots['imagenet'] / split / c).iterdir()):
                hsv = np.asarray(Image.open(f).convert('HSV')).reshape(-1, 3).astype(float)
                sel = hsv[hsv[:, 1] > 150]
                assert len(sel) > 0.05 * len(hsv), f      # the dominant shape covers a good part of the image
                ang = sel[:, 0] * 2 * np.pi / 256
                mean = np.degrees(np.arctan2(np.sin(ang).mean(), np.cos(ang).mean())) % 360
                pred = SHAPE_CLASSES[int(np.argmin(np.abs((hues - mean + 180) % 360 - 180)))]
                correct += pred == c
                total += 1
    assert correct / total > 0.8


def test_imagenet_torchvision_imagefolder(demo):
    datasets = pytest.importorskip('torchvision.datasets')
    _, roots = demo
    for split, n in (('train', TINY.cls_train), ('val', TINY.cls_val)):
        ds = datasets.ImageFolder(str(roots['imagenet'] / split))
        assert ds.classes == list(IMAGENET_CLASSES)
        assert len(ds) == n * K
        assert np.bincount(ds.targets).tolist() == [n] * K
        img, target = ds[len(ds) - 1]
        assert img.size == (TINY.cls_size, TINY.cls_size) and target == K - 1


def test_imagenet_timm_dataset(demo):
    timm_data = pytest.importorskip('timm.data')
    _, roots = demo
    ds = timm_data.ImageDataset(str(roots['imagenet'] / 'val'))
    assert len(ds) == TINY.cls_val * K
    img, target = ds[0]
    assert img.size == (TINY.cls_size, TINY.cls_size) and 0 <= target < K


# --------------------------------------------------------------------------------------------- segmentation
def _check_seg_split(pairs, labels: dict, n: int):
    assert len(pairs) == n
    allowed = {dd.IGNORE_VALUE, *labels.values()}
    shape_of = {labels[SHAPE_TO_SEG_CLASS[s]]: s for s in SHAPE_CLASSES}
    seen = set()
    for img_p, ann_p in pairs:
        img, ann = Image.open(img_p), Image.open(ann_p)
        assert img.mode == 'RGB' and ann.mode == 'L' and img.size == ann.size
        a = np.asarray(ann)
        vals = set(np.unique(a).tolist())
        assert vals <= allowed, vals - allowed
        assert len(vals & {labels[s] for s in STUFF_CLASSES}) >= 1
        assert (a == dd.IGNORE_VALUE).mean() < 0.05
        seen |= vals
        rgb = np.asarray(img)
        for v in vals & set(shape_of):              # image pixels under a shape label have its class hue
            px = rgb[a == v]
            if len(px) < 30:
                continue                            # almost fully covered by a later shape
            off = _hue_offsets(px, SHAPE_HUES[shape_of[v]])
            assert np.median(np.abs(off)) < 20, (ann_p.name, shape_of[v])
    assert len(seen & set(shape_of)) >= 3


def test_ade20k_layout_labels_consistent(demo):
    _, roots = demo
    base = roots['ade20k']
    for sub, tag, n in (('training', 'train', TINY.seg_train), ('validation', 'val', TINY.seg_val)):
        pairs = _seg_pairs(base / 'images' / sub, base / 'annotations' / sub)
        assert pairs[0][0].name == f'ADE_{tag}_00000001.jpg'
        _check_seg_split(pairs, ADE20K_LABELS, n)


def test_pascal_context_layout_labels_consistent(demo):
    _, roots = demo
    base = roots['pascal_context']
    for split, n in (('train', TINY.seg_train), ('val', TINY.seg_val)):
        ids = (base / 'ImageSets' / 'SegmentationContext' / f'{split}.txt').read_text().split()
        assert len(ids) == n and all(len(i) == 11 and i[4] == '_' for i in ids)
        for i in ids:
            assert (base / 'JPEGImages' / f'{i}.jpg').is_file()
            assert (base / 'SegmentationClassContext' / f'{i}.png').is_file()
    pairs = _seg_pairs(base / 'JPEGImages', base / 'SegmentationClassContext')
    _check_seg_split(pairs, PASCAL_CONTEXT59_LABELS, TINY.seg_train + TINY.seg_val)


def _mmseg():
    pytest.importorskip('mmseg')
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    import mmseg.datasets as mds
    return mds


_SEG_PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', reduce_zero_label=True)]


def _check_mmseg_dataset(ds, n: int, labels: dict, raw_dir: Path):
    classes = ds.metainfo['classes']
    for name, v in labels.items():                  # the documented mapping names the real classes
        assert classes[v - 1].strip() == name
    assert len(ds) == n
    for i in (0, len(ds) - 1):
        s = ds[i]
        gt = s['gt_seg_map']
        raw = np.asarray(Image.open(raw_dir / Path(s['seg_map_path']).name)).astype(int)
        assert s['img'].shape[:2] == gt.shape == raw.shape
        assert set(np.unique(gt).tolist()) <= set(range(len(classes))) | {255}
        np.testing.assert_array_equal(gt, np.where(raw == 0, 255, raw - 1))
        assert {classes[v].strip() for v in np.unique(gt) if v != 255} <= set(labels)


def test_mmseg_ade20k_dataset(demo):
    mds = _mmseg()
    base = demo[1]['ade20k']
    for sub, n in (('training', TINY.seg_train), ('validation', TINY.seg_val)):
        ds = mds.ADE20KDataset(data_root=str(base), pipeline=_SEG_PIPELINE,
                               data_prefix=dict(img_path=f'images/{sub}', seg_map_path=f'annotations/{sub}'))
        assert len(ds.metainfo['classes']) == 150
        _check_mmseg_dataset(ds, n, ADE20K_LABELS, base / 'annotations' / sub)


def test_mmseg_pascal_context59_dataset(demo):
    mds = _mmseg()
    base = demo[1]['pascal_context']
    for split, n in (('train', TINY.seg_train), ('val', TINY.seg_val)):
        ds = mds.PascalContextDataset59(data_root=str(base), pipeline=_SEG_PIPELINE,
                                        ann_file=f'ImageSets/SegmentationContext/{split}.txt',
                                        data_prefix=dict(img_path='JPEGImages',
                                                         seg_map_path='SegmentationClassContext'))
        assert len(ds.metainfo['classes']) == 59
        _check_mmseg_dataset(ds, n, PASCAL_CONTEXT59_LABELS, base / 'SegmentationClassContext')


# --------------------------------------------------------------------------------------------- COCO
def _coco_json(root: Path, split: str) -> dict:
    return json.loads((root / 'annotations' / f'instances_{split}2017.json').read_text())


def test_coco_json_structure_and_consistency(demo):
    root = demo[1]['coco']
    ann_ids = set()
    for split, n in (('train', TINY.coco_train), ('val', TINY.coco_val)):
        doc = _coco_json(root, split)
        assert [c['name'] for c in doc['categories']] == list(COCO_CLASSES)
        assert [c['id'] for c in doc['categories']] == list(range(1, K + 1))
        assert len(doc['images']) == n
        by_img = {}
        for a in doc['annotations']:
            assert a['id'] not in ann_ids
            ann_ids.add(a['id'])
            by_img.setdefault(a['image_id'], []).append(a)
        assert len(doc['annotations']) >= 2 * n
        for im in doc['images']:
            pil = Image.open(root / f'{split}2017' / im['file_name'])
            assert pil.size == (im['width'], im['height']) and pil.mode == 'RGB'
            anns = by_img[im['id']]                 # every image has annotations
            assert len(anns) >= TINY.coco_objects[0]
            rgb = np.asarray(pil)
            union = np.zeros((im['height'], im['width']), int)
            for a in anns:
                assert a['iscrowd'] == 0 and 1 <= a['category_id'] <= K
                (poly,) = a['segmentation']
                assert len(poly) >= 6 and len(poly) % 2 == 0
                xy = np.array(poly).reshape(-1, 2)
                assert (xy >= 0).all() and (xy[:, 0] <= im['width']).all() and (xy[:, 1] <= im['height']).all()
                x, y, w, h = a['bbox']
                assert all(isinstance(v, float) for v in a['bbox']) and w > 0 and h > 0
                np.testing.assert_allclose([x, y, x + w, y + h], [*xy.min(0), *xy.max(0)], atol=0.02)
                assert a['area'] == pytest.approx(dd.polygon_area(xy), rel=1e-3)
                assert 0.2 * w * h < a['area'] < w * h
                m = Image.new('L', pil.size, 0)
                ImageDraw.Draw(m).polygon(poly, fill=1)
                m = np.asarray(m, bool)
                assert abs(m.sum() - a['area']) < 0.2 * a['area']
                union += m
                off = _hue_offsets(rgb[m], SHAPE_HUES[COCO_CLASSES[a['category_id'] - 1]])
                assert np.median(np.abs(off)) < 20
            assert union.max() == 1                 # instances do not overlap (no occlusion by design)


def test_coco_pycocotools(demo):
    pytest.importorskip('pycocotools')
    from pycocotools.coco import COCO
    root = demo[1]['coco']
    for split, n in (('train', TINY.coco_train), ('val', TINY.coco_val)):
        coco = COCO(str(root / 'annotations' / f'instances_{split}2017.json'))
        assert len(coco.getImgIds()) == n
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(COCO_CLASSES)
        for img_id in coco.getImgIds():
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
            assert anns
            info = coco.loadImgs([img_id])[0]
            for a in anns:
                m = coco.annToMask(a)
                assert m.shape == (info['height'], info['width'])
                ys, xs = np.nonzero(m)
                x, y, w, h = a['bbox']
                assert xs.min() >= x - 1 and xs.max() <= x + w + 1
                assert ys.min() >= y - 1 and ys.max() <= y + h + 1
                assert abs(m.sum() - a['area']) < 0.05 * a['area'] + 5


def test_mmdet_coco_dataset(demo):
    pytest.importorskip('mmdet')
    pytest.importorskip('pycocotools')
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    from mmdet.datasets import CocoDataset
    root = demo[1]['coco']
    for split, n in (('train', TINY.coco_train), ('val', TINY.coco_val)):
        doc = _coco_json(root, split)
        ds = CocoDataset(data_root=str(root), ann_file=f'annotations/instances_{split}2017.json',
                         data_prefix=dict(img=f'{split}2017/'), metainfo=dict(classes=COCO_CLASSES),
                         filter_cfg=dict(filter_empty_gt=True, min_size=32),
                         pipeline=[dict(type='LoadImageFromFile'),
                                   dict(type='LoadAnnotations', with_bbox=True, with_mask=True)])
        assert len(ds) == n
        assert sum(len(ds.get_data_info(i)['instances']) for i in range(len(ds))) == len(doc['annotations'])
        for i in range(len(ds)):
            for inst in ds.get_data_info(i)['instances']:
                assert 0 <= inst['bbox_label'] < K and inst['ignore_flag'] == 0
        s = ds[0]
        labels = np.asarray(s['gt_bboxes_labels'])
        boxes = s['gt_bboxes'].numpy() if hasattr(s['gt_bboxes'], 'numpy') else np.asarray(s['gt_bboxes'].tensor)
        masks = s['gt_masks'].masks
        assert len(labels) == len(boxes) == len(masks) > 0
        assert ((labels >= 0) & (labels < K)).all()
        h, w = s['img'].shape[:2]
        assert masks.shape[1:] == (h, w)
        for box, m in zip(boxes, masks):
            ys, xs = np.nonzero(m)
            assert xs.min() >= box[0] - 1 and xs.max() <= box[2] + 1
            assert ys.min() >= box[1] - 1 and ys.max() <= box[3] + 1
