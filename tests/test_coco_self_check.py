"""tools/check_coco_annotations.py: one's own COCO file evaluated against itself scores AP 1.0, and where it
does not, the report names the cause in the file."""
import json

import pytest

from _tools import load_tool

pytest.importorskip('mmdet')


def _coco(n_per_image=(3, 2), first_id=1):
    images, anns, k = [], [], first_id
    for i, n in enumerate(n_per_image, start=1):
        images.append(dict(id=i, file_name=f'img{i}.jpg', width=640, height=480))
        for j in range(n):
            x, y = 5 + (j % 60) * 10, 5 + (j // 60) * 20
            poly = [x, y, x + 8, y, x + 8, y + 16, x, y + 16]
            anns.append(dict(id=k, image_id=i, category_id=(1 if j % 2 else 7), iscrowd=0, area=8 * 16,
                             bbox=[x, y, 8, 16], segmentation=[poly]))
            k += 1
    cats = [dict(id=7, name='cup'), dict(id=1, name='cat')]  # file order is not id order
    return dict(images=images, annotations=anns, categories=cats)


def _check(tmp_path, data, *extra):
    path = tmp_path / 'instances.json'
    path.write_text(json.dumps(data))
    return load_tool('check_coco_annotations').main([str(path), *extra])


def test_clean_file_scores_one(tmp_path):
    report = _check(tmp_path, _coco())
    assert report['ok'] and report['metrics'] == {'bbox_mAP': 1.0, 'segm_mAP': 1.0}


def test_ids_from_zero_still_one_with_note(tmp_path):
    report = _check(tmp_path, _coco(first_id=0))
    assert report['ok'] and report['metrics'] == {'bbox_mAP': 1.0, 'segm_mAP': 1.0}
    assert any('annotation ids start below 1' in n for n in report['notes'])


def test_crowded_image_named(tmp_path):
    """mmdet's CocoMetric keeps at most 1000 detections per image (proposal_nums[-1])."""
    report = _check(tmp_path, _coco(n_per_image=(1010, 2)), '--metrics', 'bbox')
    assert not report['ok'] and report['metrics']['bbox_mAP'] < 1.0
    assert any('1 images have more than 1000 annotations' in n and 'img1.jpg (1010)' in n for n in report['notes'])


def test_duplicate_annotation_ids_named(tmp_path):
    data = _coco()
    data['annotations'][1]['id'] = data['annotations'][0]['id']
    report = _check(tmp_path, data)
    assert not report['ok'] and not report['metrics']
    assert '1 annotation ids are used more than once (e.g. [1])' in report['errors'][0]


def test_broken_file_refused_by_name(tmp_path):
    data = _coco()
    data['annotations'][2]['bbox'] = [600, 10, 100, 50]  # outside the 640-wide image
    report = _check(tmp_path, data)
    assert not report['ok'] and report['errors'] and not report['metrics']
    assert 'annotation id 3 (image img1.jpg, 640×480): bbox [600, 10, 100, 50] lies (partly) outside' \
        in report['errors'][0]
    data = _coco()
    data['annotations'][0]['image_id'] = 99
    report = _check(tmp_path, data)
    assert 'refer to image ids not in "images"' in report['errors'][0]


def test_shipped_own_coco_config_sets_heads_datasets_and_evaluator_together(repo_root):
    from mmengine.config import Config
    cfg = Config.fromfile(str(repo_root / 'configs/own_data/mask-rcnn_pvt-s_fpn_own-coco.py'))
    n = len(cfg.classes)
    assert cfg.model.roi_head.bbox_head.num_classes == n and cfg.model.roi_head.mask_head.num_classes == n
    for split in ('train', 'val', 'test'):
        ds = cfg[f'{split}_dataloader'].dataset
        assert tuple(ds.metainfo.classes) == tuple(cfg.classes) and ds.data_root == cfg.data_root
        assert ds.degenerate_boxes == 'raise'
    assert cfg.test_evaluator.ann_file == cfg.data_root + cfg.test_dataloader.dataset.ann_file
    assert cfg.table_row is None  # own data lands in no paper table
