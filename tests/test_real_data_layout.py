"""Real downloads as a new user lays them out: a --data-root one level off for ADE20K gets the folder to use,
not a bare FileNotFoundError; ADE20K images named .JPG/.jpeg/.png are refused by name instead of silently
skipped; a missing Pascal Context split file says how it is made; Pascal Context 59 is converted from the
release's .mat files (tools/convert_pascal_context.py) without trainval_merged.json or `detail`."""
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _tools import load_tool

pytest.importorskip('mmseg')

ROOT = Path(__file__).resolve().parents[1]
ADE_DEMO = ROOT / 'configs/demo/segmenter-linear_vit-demo_1xb4-200i_ade20k-demo-128x128.py'
PC_DEMO = ROOT / 'configs/demo/segmenter-linear_vit-demo_1xb4-200i_pascal-context-59-demo-128x128.py'


def _train_error(config, data_root, tmp_path) -> str:
    """What tools/train.py stops with (before building anything): the data check of its --data-root."""
    from mmengine.config import Config

    from mixcore.runtime import override_data_root
    from mixseg.data_roots import check_data_roots
    cfg = Config.fromfile(str(config))
    override_data_root(cfg, str(data_root))
    with pytest.raises(FileNotFoundError) as e:  # tools/train.py and tools/test.py print these as `error: ...`
        check_data_roots(cfg, str(config), splits=('train', 'val'))
    return str(e.value)


def test_ade_data_root_one_level_off_names_the_right_folder(demo_data, tmp_path):
    ade = demo_data / 'ade'  # holds ADEChallengeData2016/: the level above the data root
    msg = _train_error(ADE_DEMO, ade, tmp_path)
    assert "data_prefix.img_path folder" in msg and 'images/training' in msg and '(ADE20KDataset) does not exist' in msg
    assert f'--data-root {ade}/ADEChallengeData2016 holds' in msg
    with pytest.raises(SystemExit, match=f'error: .*--data-root {ade}/ADEChallengeData2016 holds'):
        load_tool('train').main([str(ADE_DEMO), '--work-dir', str(tmp_path / 'work'), '--data-root', str(ade)])
    assert not list(tmp_path.glob('work/**/*.pth'))
    # one level too low (the images folder itself)
    msg = _train_error(ADE_DEMO, ade / 'ADEChallengeData2016/images', tmp_path)
    assert f'--data-root {ade}/ADEChallengeData2016 holds' in msg


def test_ade_images_with_other_suffix_are_refused_by_name(demo_data, tmp_path):
    root = tmp_path / 'ADEChallengeData2016'
    shutil.copytree(demo_data / 'ade/ADEChallengeData2016', root)
    imgs = sorted((root / 'images/training').glob('*.jpg'))
    imgs[0].rename(imgs[0].with_suffix('.JPG'))
    imgs[1].rename(imgs[1].with_suffix('.jpeg'))
    msg = _train_error(ADE_DEMO, root, tmp_path)
    assert f"2 images in {root}/images/training do not end in '.jpg' and ADE20KDataset would skip them" in msg
    assert imgs[0].with_suffix('.JPG').name in msg and imgs[1].with_suffix('.jpeg').name in msg
    assert 'FolderSegDataset' in msg


def test_pascal_context_missing_split_says_how_it_is_made(demo_data, tmp_path):
    root = tmp_path / 'VOC2010'
    shutil.copytree(demo_data / 'VOCdevkit/VOC2010', root)
    shutil.rmtree(root / 'ImageSets/SegmentationContext')
    msg = _train_error(PC_DEMO, root, tmp_path)
    assert 'ImageSets/SegmentationContext/train.txt' in msg and 'No download contains it' in msg
    assert 'tools/convert_pascal_context.py' in msg and 'trainval.tar.gz' in msg
    shutil.rmtree(root / 'SegmentationClassContext')
    msg = _train_error(PC_DEMO, root, tmp_path)
    assert 'SegmentationClassContext' in msg and 'tools/convert_pascal_context.py' in msg


# --- the converter, on input in the release's format -------------------------------------------------------

def _release(tmp_path: Path, ids_train=('2008_000002', '2008_000003'), ids_val=('2008_000007',)):
    """A VOC2010 tree (JPEGImages, ImageSets/Main) and Pascal Context's trainval/<id>.mat (LabelMap, uint16)."""
    import scipy.io
    voc = tmp_path / 'VOCdevkit/VOC2010'
    (voc / 'ImageSets/Main').mkdir(parents=True)
    (voc / 'JPEGImages').mkdir()
    (voc / 'trainval').mkdir()
    (voc / 'ImageSets/Main/train.txt').write_text(''.join(f'{i}\n' for i in ids_train))
    (voc / 'ImageSets/Main/val.txt').write_text(''.join(f'{i}\n' for i in (*ids_val, '2008_000099')))
    maps = {}
    for k, i in enumerate((*ids_train, *ids_val)):
        Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(voc / 'JPEGImages' / f'{i}.jpg')
        # 0 = unlabelled, 2 = aeroplane, 9 = bag, 458 = wood (the last of the 59), 1 = accordion (not in the 59),
        # 459 = the last label of labels.txt (not in the 59)
        lm = np.array([[0, 2, 9, 458, 1, 459, 2 + k, 115]] * 6, np.uint16)
        scipy.io.savemat(voc / 'trainval' / f'{i}.mat', {'LabelMap': lm})
        maps[i] = lm
    return voc, maps


def test_convert_pascal_context_from_release_mat_files(tmp_path):
    voc, maps = _release(tmp_path)
    counts = load_tool('convert_pascal_context').main([str(voc)])
    assert counts == {'train': 2, 'val': 1}  # 2008_000099 has no .mat: left out
    assert (voc / 'ImageSets/SegmentationContext/train.txt').read_text().split() == ['2008_000002', '2008_000003']
    assert (voc / 'ImageSets/SegmentationContext/val.txt').read_text().split() == ['2008_000007']
    png = np.array(Image.open(voc / 'SegmentationClassContext/2008_000002.png'))
    assert png.dtype == np.uint8 and png.shape == (6, 8)
    # aeroplane -> 1, bag -> 2, wood -> 59, 115 ('door', the 24th of the 59 ids ascending, as labels.txt is
    # alphabetical) -> 24;
    # unlabelled and the rarer labels -> 0 (background, ignored with reduce_zero_label)
    assert png[0].tolist() == [0, 1, 2, 59, 0, 0, 1, 24]
    assert np.array(Image.open(voc / 'SegmentationClassContext/2008_000003.png'))[0, 6] == 0  # id 3: not in the 59
    # mmseg's PascalContextDataset59 reads the result, with reduce_zero_label: aeroplane = class 0, 'door' = 23
    from mmengine.registry import init_default_scope
    from mmseg.datasets import PascalContextDataset59
    from mmseg.registry import DATASETS

    import mixseg.datasets  # noqa: F401
    init_default_scope('mmseg')
    assert PascalContextDataset59.METAINFO['classes'][:2] == ('aeroplane', 'bag')
    assert PascalContextDataset59.METAINFO['classes'][23] == 'door'
    assert PascalContextDataset59.METAINFO['classes'][58] == 'wood'
    ds = DATASETS.build(dict(type='PascalContextDataset59', data_root=str(voc), reduce_zero_label=True,
                             data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassContext'),
                             ann_file='ImageSets/SegmentationContext/train.txt',
                             pipeline=[dict(type='LoadAnnotations', reduce_zero_label=True),
                                       dict(type='mixseg.CheckSegLabels', num_classes=59)]))
    seg = ds[0]['gt_seg_map']
    assert seg[0].tolist() == [255, 0, 1, 58, 255, 255, 0, 23]


def test_convert_pascal_context_refuses_bad_input_by_name(tmp_path):
    voc, _ = _release(tmp_path)
    bad = voc / 'trainval/2008_000003.mat'
    import scipy.io
    scipy.io.savemat(bad, {'Other': np.zeros((2, 2))})
    with pytest.raises(SystemExit, match=r'2008_000003\.mat: no LabelMap'):
        load_tool('convert_pascal_context').main([str(voc)])
    assert not (voc / 'ImageSets/SegmentationContext').exists()  # no split file from an interrupted run
    with pytest.raises(SystemExit, match=r'nowhere: no such folder; extract Pascal Context\'s trainval.tar.gz'):
        load_tool('convert_pascal_context').main([str(voc), '--context', str(tmp_path / 'nowhere')])
