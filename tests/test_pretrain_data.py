"""Stage-1 data: ImageNet folder dataset, timm transforms, repeated-augmentation sampler, top-k metric."""
import shutil
import warnings

import pytest
import torch

import pretrain.data as pdata
from pretrain.data import ImageNetFolder, RepeatAugSampler, TimmTransform, UnreadableImageError
from pretrain.metrics import Accuracy

EVAL = [dict(type='TimmTransform', input_size=64, is_training=False, interpolation='bicubic', crop_pct=0.875)]


@pytest.fixture(scope='module')
def imagenet(demo_data):
    return demo_data / 'imagenet'


@pytest.fixture
def imagenet_copy(imagenet, tmp_path):
    root = tmp_path / 'imagenet'
    shutil.copytree(imagenet, root)
    return root


def test_folder_dataset_classes_labels_and_samples(imagenet):
    from mixcore.demo_data import IMAGENET_CLASSES
    ds = ImageNetFolder(str(imagenet), 'val', pipeline=EVAL)
    assert ds.metainfo['classes'] == tuple(sorted(IMAGENET_CLASSES)) and ds.num_classes == 10
    files = sorted((imagenet / 'val').glob('*/*.JPEG'))
    assert len(ds) == len(files) > 0
    for i in (0, len(ds) - 1):
        info = ds.get_data_info(i)
        cls = info['img_path'].split('/')[-2]
        assert info['gt_label'] == ds.metainfo['classes'].index(cls)
        sample = ds[i]
        assert sample['inputs'].shape == (3, 64, 64) and sample['inputs'].dtype == torch.float32
        assert sample['data_samples'] == info['gt_label']
    # normalised by the timm transform (ImageNet mean/std): values leave [0, 1]
    x = torch.stack([ds[i]['inputs'] for i in range(4)])
    assert x.min() < 0


def test_given_class_list_orders_labels_and_missing_class_is_an_error(imagenet):
    classes = sorted((p.name for p in (imagenet / 'train').iterdir()), reverse=True)
    ds = ImageNetFolder(str(imagenet), 'train', pipeline=EVAL, classes=classes)
    assert ds.get_data_info(0)['img_path'].split('/')[-2] == classes[0]
    assert ds.get_data_info(0)['gt_label'] == 0
    with pytest.raises(FileNotFoundError, match='no folder for classes'):
        ImageNetFolder(str(imagenet), 'train', pipeline=EVAL, classes=classes + ['zebra'])
    with pytest.raises(FileNotFoundError, match='nonexistent'):
        ImageNetFolder(str(imagenet), 'nonexistent', pipeline=EVAL)


def test_unreadable_image_names_the_file(imagenet_copy):
    ds = ImageNetFolder(str(imagenet_copy), 'val', pipeline=EVAL)
    bad = ds.get_data_info(3)['img_path']
    with open(bad, 'wb') as f:
        f.write(b'this is not a JPEG')
    with pytest.raises(UnreadableImageError, match=bad.replace('.', r'\.')):
        ds[3]
    ds[2]  # the others still load


def test_truncated_image_skip_mode_warns_and_substitutes_next(imagenet_copy):
    ds = ImageNetFolder(str(imagenet_copy), 'val', pipeline=EVAL, on_error='skip')
    bad = ds.get_data_info(3)['img_path']
    data = open(bad, 'rb').read()
    with open(bad, 'wb') as f:
        f.write(data[:len(data) // 3])  # truncated: header reads, decoding fails
    with pytest.warns(UserWarning, match=bad.replace('.', r'\.')):
        got = ds[3]
    assert got['data_samples'] == ds.get_data_info(4)['gt_label']
    assert torch.equal(got['inputs'], ds[4]['inputs'])  # eval transform is deterministic
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # warned once per file
        ds[3]


def test_randaugment_posterize_at_magnitude_10_does_not_crash():
    # rand-m9-mstd0.5 reaches magnitude 10 where 'PosterizeIncreasing' keeps 0 bits (Pillow >= 11 raises there)
    from PIL import Image
    from timm.data.auto_augment import AugmentOp
    op = AugmentOp('PosterizeIncreasing', prob=1.0, magnitude=10)
    img = Image.new('RGB', (8, 8), (200, 120, 30))
    out = op(img)
    assert out.size == img.size and out.getextrema() == ((0, 0), (0, 0), (0, 0))
    assert pdata._posterize(img, 4).getpixel((0, 0)) == (192, 112, 16)


def test_train_transform_is_deit():
    t = TimmTransform(input_size=224, is_training=True, color_jitter=0.4, auto_augment='rand-m9-mstd0.5-inc1',
                      interpolation='bicubic', re_prob=0.25, re_mode='pixel', re_count=1)
    names = [type(s).__name__ for s in t.transform.transforms]
    assert names[:3] == ['RandomResizedCropAndInterpolation', 'RandomHorizontalFlip', 'RandAugment']
    assert names[-1] == 'RandomErasing' and t.transform.transforms[-1].probability == 0.25
    assert 'ColorJitter' not in names  # timm drops colour jitter when RandAugment is on, as DeiT
    ev = TimmTransform(input_size=224, is_training=False, interpolation='bicubic', crop_pct=0.875).transform
    assert ev.transforms[0].size == 256 and ev.transforms[1].size == (224, 224)


class _Range(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def _rank_indices(monkeypatch, n, world, epoch=0, seed=7, **kw):
    out = []
    for rank in range(world):
        monkeypatch.setattr(pdata, 'get_dist_info', lambda r=rank: (r, world))
        s = RepeatAugSampler(_Range(n), seed=seed, **kw)
        s.set_epoch(epoch)
        out.append(list(iter(s)))
    return out


def test_repeat_aug_sampler_splits_repeats_over_ranks(monkeypatch):
    n, world = 512, 2
    r0, r1 = _rank_indices(monkeypatch, n, world, num_repeats=3)
    assert len(r0) == len(r1) == n // world  # DeiT: len // 256 * 256 / world per rank
    merged = [x for pair in zip(r0, r1) for x in pair]
    # the interleaved ranks read one shuffled list in which every index appears 3 times in a row
    runs = [merged[i:i + 3] for i in range(0, 3 * (len(merged) // 3), 3)]
    assert all(len(set(r)) == 1 for r in runs)
    assert len(set(merged)) > n // 3 - 2
    # different epochs or seeds reshuffle; the same (seed, epoch) repeats
    assert _rank_indices(monkeypatch, n, world, epoch=1, num_repeats=3)[0] != r0
    assert _rank_indices(monkeypatch, n, world, seed=8, num_repeats=3)[0] != r0
    assert _rank_indices(monkeypatch, n, world, num_repeats=3)[0] == r0


def test_repeat_aug_sampler_single_repeat_covers_small_dataset(monkeypatch):
    r0, r1 = _rank_indices(monkeypatch, 40, 2, num_repeats=1, selected_round=0)
    assert sorted(r0 + r1) == list(range(40))


def test_accuracy_metric():
    m = Accuracy(topk=(1, 5))
    preds = [dict(gt_label=0, topk=[0, 1, 2, 3, 4]),
             dict(gt_label=4, topk=[0, 1, 2, 3, 4]),
             dict(gt_label=9, topk=[0, 1, 2, 3, 4]),
             dict(gt_label=1, topk=[1, 0, 2, 3, 4])]
    m.process(None, preds)
    assert m.compute_metrics(m.results) == {'top1': 50.0, 'top5': 75.0}
    m2 = Accuracy(topk=(1, 5))
    m2.process(None, [dict(gt_label=2, topk=[0, 1, 2], num_classes=3)])  # 3 classes: top-5 says nothing
    assert m2.compute_metrics(m2.results) == {'top1': 0.0, 'top5': 'n/a'}
    m3 = Accuracy(topk=(1, 5))   # exactly 5 classes: the 5 best are all of them, n/a too; 6 classes: a number
    m3.process(None, [dict(gt_label=4, topk=[0, 1, 2, 3, 4], num_classes=5)])
    assert m3.compute_metrics(m3.results) == {'top1': 0.0, 'top5': 'n/a'}
    m4 = Accuracy(topk=(1, 5))
    m4.process(None, [dict(gt_label=5, topk=[0, 1, 2, 3, 4], num_classes=6)])
    assert m4.compute_metrics(m4.results) == {'top1': 0.0, 'top5': 0.0}
