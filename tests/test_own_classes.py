"""Your own segmentation classes (configs/_base_/datasets/custom_seg.py, mixseg.datasets.FolderSegDataset): a
config naming 3 classes trains; the label check follows the dataset's classes (an out-of-range value is an
error naming the file and the value, not a bare IndexError in the loss); .JPG/.jpeg images are read, not
skipped; missing label maps are named before training."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _tools import load_tool

pytest.importorskip('mmseg')
pytestmark = pytest.mark.usefixtures('one_thread')  # see conftest

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ('background', 'road', 'car')
# one file per extension spelling a labelme/camera export produces
NAMES = {'train': ['a.jpg', 'b.JPG', 'c.jpeg', 'd.png', 'sub/e.JPEG'], 'val': ['f.jpg', 'g.JPG']}


def make_own_data(root: Path, size=(40, 56)):
    """Images + label PNGs with values 0..2 and 255 (ignore), in custom_seg.py's layout."""
    rng = np.random.default_rng(0)
    for split, names in NAMES.items():
        for name in names:
            img = root / 'images' / split / name
            img.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(
                img, format='PNG' if name.lower().endswith('png') else 'JPEG')
            label = np.zeros(size, np.uint8)
            label[:, size[1] // 3:] = 1
            label[size[0] // 2:, 2 * size[1] // 3:] = 2
            label[:2] = 255
            ann = root / 'annotations' / split / (name.rsplit('.', 1)[0] + '.png')
            ann.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(label).save(ann)
    return root


def write_config(tmp_path: Path, classes=CLASSES) -> Path:
    """A config as docs/OWN_DATA.md tells one to write it: inherit the bases, name the classes once."""
    base = ROOT / 'configs/_base_'
    cfg = tmp_path / 'own.py'
    cfg.write_text(f"""
_base_ = ['{base}/models/segmenter_vit_linear.py', '{base}/datasets/custom_seg.py', '{base}/seg_runtime.py',
          '{base}/schedules/schedule_80k.py']
classes = {classes!r}
data_root = '{tmp_path / 'data'}'
crop_size = (32, 32)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(arch='vit_tiny_patch16_224', img_size=crop_size, drop_path_rate=0.0,
                  model_kwargs=dict(patch_size=8, embed_dim=32, depth=1, num_heads=2)),
    decode_head=dict(in_channels=32, channels=32, num_classes=len(classes)),
    test_cfg=dict(mode='whole'))
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, metainfo=dict(classes=classes)))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=2)
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=2, by_epoch=False)]
default_hooks = dict(checkpoint=dict(interval=2), logger=dict(interval=1))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
""")
    return cfg


def _build(cfg_path: Path, split='train'):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    import mixseg.datasets  # noqa: F401
    init_default_scope('mmseg')
    cfg = Config.fromfile(str(cfg_path))
    return DATASETS.build(cfg[f'{split}_dataloader']['dataset'])


def test_own_classes_config_trains_two_iterations(tmp_path):
    make_own_data(tmp_path / 'data')
    cfg = write_config(tmp_path)
    work = tmp_path / 'work'
    load_tool('train').main([str(cfg), '--work-dir', str(work)])
    assert (work / 'iter_2.pth').is_file()
    scalars = [json.loads(line) for line in next(work.glob('*/vis_data/scalars.json')).read_text().splitlines()]
    val = [s for s in scalars if 'mIoU' in s]
    assert val and 0 <= val[-1]['mIoU'] <= 100
    import torch
    head = torch.load(work / 'iter_2.pth', map_location='cpu', weights_only=False)['state_dict']
    assert head['decode_head.conv_seg.weight'].shape[0] == 3


def test_jpg_spellings_read_not_skipped(tmp_path):
    make_own_data(tmp_path / 'data')
    ds = _build(write_config(tmp_path))
    got = sorted(Path(ds.get_data_info(i)['img_path']).relative_to(tmp_path / 'data/images/train').as_posix()
                 for i in range(len(ds)))
    assert got == sorted(NAMES['train'])
    assert ds.metainfo['classes'] == CLASSES
    sample = ds[1]  # b.JPG
    assert sample['data_samples'].gt_sem_seg.data.max() <= 255


def test_out_of_range_label_names_file_and_value(tmp_path):
    data = make_own_data(tmp_path / 'data')
    bad = data / 'annotations/train/c.png'
    seg = np.array(Image.open(bad))
    seg[5, 5] = 7
    Image.fromarray(seg).save(bad)
    ds = _build(write_config(tmp_path))
    idx = [i for i in range(len(ds)) if ds.get_data_info(i)['seg_map_path'] == str(bad)][0]
    with pytest.raises(ValueError, match=r"c\.png: label values \[7\] are outside the dataset's 3 classes "
                                         r"\(valid raw values: 0\.\.2, 255 = ignore\)"):
        ds.prepare_data(idx)
    # 4 classes named: the same value 3 passes the check (the check follows the dataset, not a fixed 150)
    seg[5, 5] = 3
    Image.fromarray(seg).save(bad)
    ds4 = _build(write_config(tmp_path, CLASSES + ('person',)))
    ds4.prepare_data(idx)


def test_missing_classes_and_labels_are_named(tmp_path):
    data = make_own_data(tmp_path / 'data')
    (data / 'annotations/train/b.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'1 of 5 images have no label map .*annotations/train.*: b\.JPG'):
        _build(write_config(tmp_path))
    with pytest.raises(ValueError, match=r'no classes given.*metainfo=dict\(classes=classes\)'):
        _build(write_config(tmp_path, ()), split='val')


def test_shipped_own_classes_config_sets_head_and_dataset_together():
    from mmengine.config import Config
    cfg = Config.fromfile(str(ROOT / 'configs/own_data/segmenter-linear_deit-s_own-classes_480x480.py'))
    n = len(cfg.classes)
    assert cfg.model.decode_head.num_classes == n
    for split in ('train', 'val', 'test'):
        ds = cfg[f'{split}_dataloader'].dataset
        assert ds.type == 'FolderSegDataset' and tuple(ds.metainfo.classes) == tuple(cfg.classes)
        checks = [t for t in ds.pipeline if t['type'] == 'mixseg.CheckSegLabels']
        assert checks and all('num_classes' not in t for t in checks)  # follows the dataset


def test_num_classes_option_advice_is_itself_accepted():
    """`--cfg-options num_classes=3` is refused; every entry the refusal advises must be accepted in turn (the
    old advice, `train_pipeline.2.num_classes`, named a config variable the same check refuses)."""
    import re

    from mmengine.config import Config

    from mixcore.cfg_options import check_cfg_options, unread_options
    config = ROOT / 'configs/segmenter/segmenter-linear_deit-s_8xb2-80k_pascal-context-59-480x480.py'
    cfg = Config.fromfile(str(config))
    (msg,) = unread_options(cfg, {'num_classes': 3})
    advised = re.findall(r'([\w.]+)=3', msg.split('instead: ', 1)[1])
    assert 'model.decode_head.num_classes' in advised and 'train_dataloader.dataset.pipeline.2.num_classes' in advised
    assert not any(a.startswith(('train_pipeline', 'test_pipeline')) for a in advised), advised
    check_cfg_options(cfg, {a: 3 for a in advised}, str(config))  # accepted
    assert 'docs/OWN_DATA.md' in msg
