"""TokenMix's label maps: TokenLabeling format (generator ↔ reader), crop alignment, official label rules."""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.ops import roi_align

from pretrain.label_maps.generate import generate_label_maps, shard_of
from pretrain.label_maps.map_file import (LabelMapError, MissingLabelMapError, label_map_path, read_label_map,
                                          write_label_map)
from pretrain.label_maps.teacher import DenseTeacher
from pretrain.mix import MixedBatch, TokenMix, crop_label_maps, official_tokenmix_targets

torch.set_num_threads(1)


def make_tree(root, classes=2, per_class=3, size=32, seed=0):
    rng = np.random.default_rng(seed)
    for c in range(classes):
        d = root / f'class{c}'
        d.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(d / f'img_{i}.png')
    return root


def one_map(gt_channel: torch.Tensor, gt: int, k: int = 2) -> torch.Tensor:
    """2×k×H×W map whose class ``gt`` scores ``gt_channel`` (index 0) and class gt+1 a constant (index 1)."""
    H, W = gt_channel.shape
    scores = torch.stack([gt_channel, torch.full((H, W), 0.5)])[:k]
    index = torch.stack([torch.full((H, W), float(gt)), torch.full((H, W), float(gt + 1))])[:k]
    return torch.stack([scores, index])


# --- crop alignment ---------------------------------------------------------------------------------------------

def hot_spot_map(H, W, row, col, gt=3):
    ch = torch.zeros(H, W)
    ch[row, col] = 1.
    return one_map(ch, gt)


@pytest.mark.parametrize('flip', [False, True])
def test_hot_spot_lands_on_the_right_token_after_crop_and_flip(flip):
    # 10×10 map over the image; the crop is the right half × top half (x 0.5-1, y 0-0.5): map cells cols 5-9,
    # rows 0-4 → a 5×5 token grid, one cell per token. Hot spot at cell (2, 8) → token (2, 3), flipped (2, 1).
    maps = hot_spot_map(10, 10, 2, 8).unsqueeze(0)
    lm = dict(maps=maps, boxes=torch.tensor([[0.5, 0.0, 1.0, 0.5]]), flip=torch.tensor([flip]))
    a = crop_label_maps(lm, torch.tensor([3]), (5, 5)).view(5, 5)
    assert torch.allclose(a.sum(), torch.tensor(1.), atol=1e-6)
    assert divmod(int(a.argmax()), 5) == (2, 1 if flip else 3)
    assert a.max() > 0.99  # one cell per token: all mass on that token
    if not flip:  # the transposed box of the released code crops rows 5-9 × cols 0-4: the hot spot is not in it
        off = crop_label_maps(lm, torch.tensor([3]), (5, 5), box_order='official')
        assert off.sum() < 1e-6
    # another class's channel is not the ground truth one: class 4 holds 0.5 everywhere → uniform Â
    assert torch.allclose(crop_label_maps(lm, torch.tensor([4]), (5, 5)), torch.full((1, 25), 1 / 25), atol=1e-6)


def test_official_box_order_is_the_transposed_box():
    torch.manual_seed(0)
    maps = torch.stack([one_map(torch.rand(12, 12), 1) for _ in range(3)])
    boxes = torch.tensor([[0.1, 0.3, 0.7, 0.9], [0.0, 0.0, 1.0, 0.6], [0.25, 0.5, 0.5, 1.0]])
    labels = torch.tensor([1, 1, 1])
    no_flip = torch.zeros(3, dtype=torch.bool)
    got = crop_label_maps(dict(maps=maps, boxes=boxes, flip=no_flip), labels, (7, 7), box_order='official')
    want = crop_label_maps(dict(maps=maps, boxes=boxes[:, [1, 0, 3, 2]], flip=no_flip), labels, (7, 7))
    assert torch.allclose(got, want, atol=1e-6)
    # flips: the released code flips the map first and crops it with the flipped image's box
    flip = torch.tensor([True, False, True])
    got = crop_label_maps(dict(maps=maps, boxes=boxes, flip=flip), labels, (7, 7), box_order='official')
    x1, x2 = torch.where(flip, 1 - boxes[:, 2], boxes[:, 0]), torch.where(flip, 1 - boxes[:, 0], boxes[:, 2])
    fb = torch.stack([boxes[:, 1], x1, boxes[:, 3], x2], 1)
    want = crop_label_maps(dict(maps=torch.where(flip.view(3, 1, 1, 1, 1), maps.flip(-1), maps), boxes=fb,
                                flip=no_flip), labels, (7, 7))
    assert torch.allclose(got, want, atol=1e-6)


def _official_weights(maps, coords_yxhw, labels, mask, num_classes, size):
    """Sense-X/TokenMix tokenmix.py, get_featuremaps / get_label / Mixup.__call__ (label part), on the CPU."""
    dense = torch.zeros(maps.size(0), num_classes, maps.size(3), maps.size(4))
    for m, t in zip(dense, maps):
        m.scatter_(0, t[1].long(), t[0].float())
    coords = coords_yxhw.clone()
    coords[:, 2:] += coords[:, :2]
    B = maps.size(0)
    token = roi_align(dense, torch.cat([torch.arange(B).view(B, 1).float(), coords * dense.size(3) - 0.5], 1),
                      output_size=(size, size))
    y1 = token[torch.arange(B), labels]
    y1 = y1 / (y1.sum((1, 2), keepdim=True) + 1e-8)
    y2 = y1.flip(0)
    return (y1 * (1 - mask)).sum((1, 2)), (y2 * mask).sum((1, 2))


def test_label_weights_equal_the_official_rule():
    torch.manual_seed(1)
    B, C, k, H = 4, 6, 3, 9
    scores = torch.rand(B, k, H, H) * 4 - 1  # raw scores, some negative as logits are
    index = torch.stack([torch.randperm(C)[:k].view(k, 1, 1).expand(k, H, H) for _ in range(B)]).float()
    maps = torch.stack([scores, index], 1)
    labels = torch.tensor([0, 2, 5, 1])
    coords = torch.tensor([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0], [0.3, 0.05, 0.4, 0.9],
                           [0.5, 0.5, 0.5, 0.5]])  # (top, left, h, w) as the released transform records them
    mask = (torch.rand(7, 7) < 0.5).float()
    want_self, want_partner = _official_weights(maps, coords, labels, mask, C, 7)
    # our batch: boxes (x1, y1, x2, y2); the released geometry is box_order='official'
    boxes = torch.stack([coords[:, 1], coords[:, 0], coords[:, 1] + coords[:, 3], coords[:, 0] + coords[:, 2]], 1)
    mixer = TokenMix(C, source='label_maps', box_order='official', variant='official')
    mixed = MixedBatch(images=torch.zeros(B, 3, 112, 112), labels=labels, partner=torch.arange(B - 1, -1, -1),
                       token_mask=mask.expand(B, 7, 7), lam_area=mask.mean().expand(B), method='tokenmix',
                       num_classes=C, label_smoothing=0.1, needs=mixer.needs, label_fn=mixer._label)
    lm = dict(maps=maps, boxes=boxes, flip=torch.zeros(B, dtype=torch.bool))
    w_self, w_partner = mixed.label_weights(label_maps=lm)
    assert torch.allclose(w_self, want_self, atol=1e-5) and torch.allclose(w_partner, want_partner, atol=1e-5)
    with pytest.raises(ValueError, match='label maps'):
        mixed.label_weights()


def test_official_smoothing_hand_computed():
    labels, partner = torch.tensor([0, 1]), torch.tensor([1, 0])
    w_self, w_partner = torch.tensor([0.6, 0.01]), torch.tensor([0.3, 0.2])
    t = official_tokenmix_targets(labels, partner, w_self, w_partner, num_classes=4, smoothing=0.1)
    # off = ε/(2C) = 0.0125 from each row; on = w - 0.05 + 0.0125
    want = torch.tensor([[0.6 - 0.05 + 0.025, 0.3 - 0.05 + 0.025, 0.025, 0.025],
                         [0.2 - 0.05 + 0.025, 0.01 - 0.05 + 0.025, 0.025, 0.025]])
    assert torch.allclose(t, want, atol=1e-7)
    assert t[1, 1] < 0  # no clamp, as the released code
    # timm's rule (ỹ = w·smooth(y) + w'·smooth(y')) differs where the weights do not sum to 1, as with label maps
    from pretrain.mix import mix_targets
    assert not torch.allclose(mix_targets(labels, partner, w_partner, 4, 0.1, lam_self=w_self), t, atol=1e-3)
    # through a TokenMix batch: smoothing_rule='official' uses it, 'timm' keeps timm's rule
    x = torch.zeros(2, 3, 32, 32)
    for rule in ('official', 'timm'):
        mixed = TokenMix(4, source='area', variant='official', extra_target_tokens=0, smoothing_rule=rule,
                         label_smoothing=0.1)(x, labels)
        mixed.label_fn = lambda *a: (w_self, w_partner)
        mixed.partner = partner
        want = official_tokenmix_targets(labels, partner, w_self, w_partner, 4, 0.1) if rule == 'official' else \
            mix_targets(labels, partner, w_partner, 4, 0.1, lam_self=w_self)
        assert torch.allclose(mixed.targets(), want)


def test_pvt_grid_and_device_of_the_lookup():
    maps = torch.stack([one_map(torch.rand(14, 14), 2) for _ in range(2)])
    lm = dict(maps=maps, boxes=torch.tensor([[0., 0., 1., 1.], [0.2, 0.1, 0.9, 0.8]]), flip=torch.tensor([True, False]))
    a = crop_label_maps(lm, torch.tensor([2, 2]), (7, 7))
    assert a.shape == (2, 49) and torch.allclose(a.sum(1), torch.ones(2), atol=1e-5)


# --- format: generator ↔ reader, errors ---------------------------------------------------------------------------

def tiny_vit(num_classes=4, seed=0):
    """The same teacher on every call (a resumed run with another teacher is refused)."""
    import timm
    torch.manual_seed(seed)
    return timm.create_model('vit_tiny_patch16_224', pretrained=False, num_classes=num_classes, img_size=32,
                             patch_size=8, embed_dim=32, depth=1, num_heads=2).eval()


def tiny_cnn(num_classes=4):
    import timm
    return timm.create_model('resnet10t', pretrained=False, num_classes=num_classes).eval()


@pytest.mark.parametrize('kind', ['vit', 'cnn'])
def test_format_round_trips_through_generator_and_reader(kind, tmp_path):
    images = make_tree(tmp_path / 'train')
    net = tiny_vit() if kind == 'vit' else tiny_cnn()
    rep = generate_label_maps(net, str(images), str(tmp_path / 'maps'), img_size=32, topk=3, batch_size=4,
                              num_workers=0, device='cpu', rank=0, world_size=1, progress=False)
    assert rep['written'] == 6 and rep['unreadable'] == [] and rep['skipped_existing'] == 0
    raw = generate_label_maps(net, str(images), str(tmp_path / 'raw'), img_size=32, topk=3, num_workers=0,
                              device='cpu', rank=0, world_size=1, progress=False, scores='logits')
    assert raw['scores'] == 'logits' and rep['scores'] == 'probs'
    logits = read_label_map(str(tmp_path / 'raw/class1/img_2.pt'))
    assert json.loads((tmp_path / 'maps/report.json').read_text())['written'] == 6
    img = images / 'class1/img_2.png'
    path = tmp_path / 'maps/class1/img_2.pt'
    assert label_map_path(str(tmp_path / 'maps'), str(img)) == str(path)
    raw = torch.load(path, weights_only=True)
    assert raw.dtype == torch.float16 and raw.shape[:2] == (2, 3)  # TokenLabeling: half, [scores; indices]
    m = read_label_map(str(path), str(img), num_classes=4)
    grid = (4, 4) if kind == 'vit' else (1, 1)  # patch 8 at 32²; ResNet stride 32
    assert m.shape == (2, 3, *grid)
    # the stored values are the teacher's top-3 dense scores of the whole image
    from torchvision import transforms as T
    x = T.Compose([T.Resize((32, 32), interpolation=T.InterpolationMode.BICUBIC), T.ToTensor(),
                   T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])(Image.open(img).convert('RGB'))
    with torch.no_grad():
        dense = DenseTeacher(net)(x[None])[0]
    v, i = dense.softmax(0).topk(3, dim=0)  # default: per-location class probabilities
    assert torch.allclose(m[0], v.half().float()) and torch.equal(m[1].long(), i) and (m[0] >= 0).all()
    v, i = dense.topk(3, dim=0)  # scores='logits': TokenLabeling's raw scores
    assert torch.allclose(logits[0], v.half().float()) and torch.equal(logits[1].long(), i)
    if kind == 'vit':  # the head applied to each patch token = the logits of that token alone
        with torch.no_grad():
            tokens = net.forward_features(x[None])[0, net.num_prefix_tokens:]
            assert torch.allclose(dense.flatten(1).T, net.head(tokens), atol=1e-5)


def test_generator_resumes_after_a_kill_without_redoing_finished_images(tmp_path, monkeypatch):
    import pretrain.label_maps.generate as lmod
    images = make_tree(tmp_path / 'train', per_class=4)
    out = tmp_path / 'maps'
    real_write, written = lmod.write_label_map, []

    def dying_write(path, *a):  # killed after 3 files
        if len(written) == 3:
            raise KeyboardInterrupt
        real_write(path, *a)
        written.append(path)

    monkeypatch.setattr(lmod, 'write_label_map', dying_write)
    with pytest.raises(KeyboardInterrupt):
        generate_label_maps(tiny_vit(), str(images), str(out), img_size=32, batch_size=2, num_workers=0,
                            device='cpu', rank=0, world_size=1, progress=False)
    monkeypatch.setattr(lmod, 'write_label_map', real_write)
    done = sorted(out.rglob('*.pt'))
    assert len(done) == 3 and not list(out.rglob('*.part'))  # atomic writes: nothing half-written
    stamps = {p: p.stat().st_mtime_ns for p in done}
    calls = []
    monkeypatch.setattr(lmod, 'write_label_map', lambda p, *a: (calls.append(p), real_write(p, *a)))
    rep = generate_label_maps(tiny_vit(), str(images), str(out), img_size=32, batch_size=2, num_workers=0,
                              device='cpu', rank=0, world_size=1, progress=False)
    assert rep['skipped_existing'] == 3 and rep['written'] == 5 and len(calls) == 5
    assert not {str(p) for p in done} & set(calls)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert len(list(out.rglob('*.pt'))) == 8


def test_shards_are_disjoint_and_cover_everything(tmp_path):
    images = make_tree(tmp_path / 'train', classes=3, per_class=3)
    assert shard_of({'RANK': '1', 'WORLD_SIZE': '4'}) == (1, 4)
    assert shard_of({'SLURM_PROCID': '2', 'SLURM_NTASKS': '3'}) == (2, 3)
    assert shard_of({}) == (0, 1)
    seen = []
    for r in range(2):
        rep = generate_label_maps(tiny_vit(), str(images), str(tmp_path / 'maps'), img_size=32, batch_size=4,
                                  num_workers=0, device='cpu', rank=r, world_size=2, progress=False)
        seen.append(rep['written'])
        assert (tmp_path / f'maps/report_rank{r}.json').is_file()
    assert seen == [5, 4] and len(list((tmp_path / 'maps').rglob('*.pt'))) == 9


def test_unreadable_images_are_named_in_the_report_and_the_exit_status(tmp_path, capsys):
    images = make_tree(tmp_path / 'train')
    (images / 'class0/broken.png').write_bytes(b'not a png')
    from tools.make_label_maps import main
    rc = main([str(images), str(tmp_path / 'maps'), '--model', 'vit_tiny_patch16_224', '--random-init',
               '--num-classes', '4', '--img-size', '32', '--model-kwargs',
               '{"patch_size": 8, "embed_dim": 32, "depth": 1, "num_heads": 2}', '--workers', '0', '--no-progress',
               '--device', 'cpu'])
    assert rc == 2
    rep = json.loads((tmp_path / 'maps/report.json').read_text())
    assert rep['written'] == 6 and [u['image'] for u in rep['unreadable']] == [str(images / 'class0/broken.png')]
    assert 'broken.png' in capsys.readouterr().err
    with pytest.raises(SystemExit, match='--checkpoint'):
        main([str(images), str(tmp_path / 'x'), '--model', 'vit_tiny_patch16_224'])


def test_corrupt_or_missing_map_files_are_clear_errors(tmp_path):
    img = '/data/train/n01/n01_1.JPEG'
    with pytest.raises(MissingLabelMapError, match=r'n01_1\.JPEG.*does not exist'):
        read_label_map(str(tmp_path / 'n01/n01_1.pt'), img)
    bad = tmp_path / 'bad.pt'
    bad.write_bytes(b'\x00garbage')
    with pytest.raises(LabelMapError, match=r'bad\.pt.*n01_1\.JPEG.*cannot be read'):
        read_label_map(str(bad), img)
    cases = {
        'dict': {'a': torch.zeros(2, 5, 4, 4)},
        'shape': torch.zeros(5, 4, 4),
        'index': torch.stack([torch.zeros(5, 4, 4), torch.full((5, 4, 4), 0.5)]),
        'range': torch.stack([torch.zeros(5, 4, 4), torch.full((5, 4, 4), 7.)]),
    }
    for name, obj in cases.items():
        torch.save(obj, tmp_path / f'{name}.pt')
        with pytest.raises(LabelMapError, match=rf'{name}\.pt'):
            read_label_map(str(tmp_path / f'{name}.pt'), img, num_classes=5)

    class Evil:
        def __reduce__(self):
            return (os.system, ('echo pwned',))

    torch.save(Evil(), tmp_path / 'evil.pt')
    with pytest.raises(LabelMapError, match='evil.pt'):
        read_label_map(str(tmp_path / 'evil.pt'), img)
    write_label_map(str(tmp_path / 'ok/x.pt'), torch.rand(5, 4, 4), torch.randint(0, 5, (5, 4, 4)))
    assert read_label_map(str(tmp_path / 'ok/x.pt'), num_classes=5).shape == (2, 5, 4, 4)


# --- the data pipeline ------------------------------------------------------------------------------------------

def _blob_tree(root, n=4, size=96):
    """Black images with one white square at a random place; its label map is the square at 12×12 cells."""
    rng = np.random.default_rng(3)
    d = root / 'train/c0'
    d.mkdir(parents=True)
    maps = root / 'maps/c0'
    maps.mkdir(parents=True)
    for i in range(n):
        a = np.zeros((size, size, 3), np.uint8)
        y, x = rng.integers(0, size - 24, 2)
        a[y:y + 24, x:x + 24] = 255
        Image.fromarray(a).save(d / f'{i}.png')
        cells = torch.from_numpy(a[..., 0].astype(np.float32) / 255).view(12, 8, 12, 8).mean((1, 3))
        torch.save(one_map(cells, 0).half(), maps / f'{i}.pt')
    (root / 'train/c1').mkdir()
    Image.fromarray(np.zeros((size, size, 3), np.uint8)).save(root / 'train/c1/0.png')
    return root


def _dataset(root, auto_augment=None, **kw):
    from pretrain.label_map_data import ImageNetFolderWithLabelMaps
    pipe = [dict(type='TimmTransform', input_size=64, is_training=True, scale=(0.2, 1.0), interpolation='bilinear',
                 auto_augment=auto_augment, color_jitter=None, re_prob=0.0)]
    return ImageNetFolderWithLabelMaps(data_root=str(root), split='train', pipeline=pipe,
                                       label_map_root=str(root / 'maps'), **kw)


def test_dataset_delivers_the_map_of_the_crop_the_image_shows(tmp_path):
    from torch.utils.data import default_collate
    root = _blob_tree(tmp_path)
    with pytest.raises(MissingLabelMapError, match=r'c1/0\.png'):
        _dataset(root)  # c1/0.png has no map: named at start
    ds = _dataset(root, check_maps=False)
    with pytest.raises(MissingLabelMapError, match=r'c1/0\.png'):
        ds[4]
    torch.manual_seed(0)
    right, wrong = [], []
    for trial in range(24):
        batch = default_collate([ds[trial % 4]])
        lm = batch['label_maps']
        # the white square after crop and flip (normalised: white 2.2, black -2.1)
        bright = (batch['inputs'][0, 0] > 1.).float().view(8, 8, 8, 8).mean((1, 3)).flatten()
        if bright.max() - bright.min() < 0.5:
            continue  # the crop missed the square (or holds only it)
        assert torch.equal(lm['affine'][0], torch.tensor([[1., 0, 0], [0, 1, 0]]))  # no geometric op here
        a = crop_label_maps(lm, batch['data_samples'], (8, 8))[0]
        right.append(torch.corrcoef(torch.stack([a, bright]))[0, 1])
        if lm['flip'][0]:  # the same map without the recorded flip
            a = crop_label_maps(dict(lm, flip=torch.tensor([False])), batch['data_samples'], (8, 8))[0]
            wrong.append(torch.corrcoef(torch.stack([a, bright]))[0, 1])
    assert len(right) >= 12 and len(wrong) >= 3
    assert torch.stack(right).min() > 0.8 and torch.stack(right).mean() > 0.9
    assert torch.stack(wrong).mean() < 0.5


def test_map_follows_randaugment_rotate_shear_translate(tmp_path):
    from torch.utils.data import default_collate

    from pretrain.label_map_data import GEOMETRIC_OPS, TimmTransformWithCoords
    root = _blob_tree(tmp_path)
    ds = _dataset(root, auto_augment='rand-m9-n2-mstd0.5', check_maps=False)
    tt = next(t for t in ds.pipeline.transforms if isinstance(t, TimmTransformWithCoords))
    ra = next(t for t in tt.steps if hasattr(t, 'ops'))
    ra.ops = [o for o in ra.ops if o.name in GEOMETRIC_OPS]  # only the ops that move pixels, always applied
    assert {o.name for o in ra.ops} == {'Rotate', 'ShearX', 'ShearY', 'TranslateXRel', 'TranslateYRel'}
    for o in ra.ops:
        o.prob = 1.0
    torch.manual_seed(0)
    np.random.seed(0)
    right, unwarped = [], []
    for trial in range(24):
        batch = default_collate([ds[trial % 4]])
        lm = batch['label_maps']
        bright = (batch['inputs'][0, 0] > 1.).float().view(8, 8, 8, 8).mean((1, 3)).flatten()
        if bright.max() - bright.min() < 0.5:
            continue
        a = crop_label_maps(lm, batch['data_samples'], (8, 8))[0]
        right.append(torch.corrcoef(torch.stack([a, bright]))[0, 1])
        a = crop_label_maps(dict(lm, affine=None), batch['data_samples'], (8, 8))[0]
        unwarped.append(torch.corrcoef(torch.stack([a, bright]))[0, 1].nan_to_num(0.))
    right, unwarped = torch.stack(right), torch.stack(unwarped)
    assert len(right) >= 10 and right.mean() > 0.85 and right.mean() > unwarped.mean() + 0.2


def test_pipeline_records_the_same_crop_timm_draws():
    from timm.data import create_transform

    from pretrain.label_map_data import TimmTransformWithCoords
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 120, 3), dtype=np.uint8))
    kw = dict(input_size=48, is_training=True, auto_augment='rand-m9-mstd0.5-inc1', interpolation='bicubic',
              re_prob=0.25, re_mode='pixel')
    t = TimmTransformWithCoords(**kw)
    plain = create_transform(**kw)
    for seed in range(3):
        import random
        random.seed(seed), torch.manual_seed(seed), np.random.seed(seed)
        out = t(dict(img=img))
        random.seed(seed), torch.manual_seed(seed), np.random.seed(seed)
        assert torch.equal(out['img'], plain(img))
        x1, y1, x2, y2 = out['crop_box'].tolist()
        assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1


def test_classifier_passes_label_maps_to_tokenmix():
    from pretrain.classifier import MixClassifier
    m = MixClassifier('vit_tiny_patch16_224', num_classes=4, img_size=32, drop_path_rate=0.,
                      model_kwargs=dict(patch_size=8, embed_dim=32, depth=1, num_heads=2),
                      mixer=dict(type='TokenMix', min_block_tokens=2),
                      loss=dict(type='BinaryCrossEntropy', smoothing=0.0)).train()
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([0, 3])
    lm = dict(maps=torch.stack([one_map(torch.rand(6, 6), 0), one_map(torch.rand(6, 6), 3)]),
              boxes=torch.tensor([[0., 0., 1., 1.], [0.1, 0.2, 0.6, 0.9]]), flip=torch.tensor([False, True]))
    data = m.data_preprocessor(dict(inputs=x, data_samples=y, label_maps=lm), True)
    assert set(data) == {'inputs', 'data_samples', 'label_maps'}
    loss = m(**data, mode='loss')['loss']
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match='label maps'):
        m(x, y, mode='loss')


def test_demo_plan_makes_label_maps_with_the_baseline_before_tokenmix(tmp_path):
    from mixseg.reproduce.plan import make_plan
    steps = make_plan(['C'], methods=['tokenmix'], demo=True, launcher='none', work_root=tmp_path / 'w',
                      data_root=tmp_path / 'data')
    by_name = {s.name: i for i, s in enumerate(steps)}
    maps = steps[by_name['label-maps_vit-nano_baseline']]
    teacher = by_name['pretrain_vit-nano_baseline']
    tokenmix = steps[by_name['pretrain_vit-nano_tokenmix']]
    assert maps.kind == 'maps' and maps.script == 'make_label_maps' and teacher in maps.deps
    assert '--config' in maps.argv and maps.argv[maps.argv.index('--checkpoint') + 1].endswith('epoch_12.pth')
    assert by_name['label-maps_vit-nano_baseline'] in tokenmix.deps
    out = maps.argv[1]
    assert f'train_dataloader.dataset.label_map_root={out}' in tokenmix.argv
    assert all(s.needed for s in (maps, steps[teacher], tokenmix))


def test_pack_holds_the_same_maps_and_the_dataset_reads_it(tmp_path):
    from pretrain.label_maps.pack import pack_label_maps
    from pretrain.label_maps.stores import LabelMapFolder, LabelMapPack, open_label_maps
    images = make_tree(tmp_path / 'train')
    generate_label_maps(tiny_vit(num_classes=2), str(images), str(tmp_path / 'maps'), img_size=32, num_workers=0,
                        device='cpu', rank=0, world_size=1, progress=False)
    meta = pack_label_maps(str(tmp_path / 'maps'), str(tmp_path / 'pack'), num_classes=2, progress=False)
    assert len(meta['keys']) == 6 and sorted(p.name for p in (tmp_path / 'pack').iterdir()) == [
        'indices.npy', 'label_maps_pack.json', 'scores.npy']
    folder, pack = open_label_maps(str(tmp_path / 'maps')), open_label_maps(str(tmp_path / 'pack'))
    assert isinstance(folder, LabelMapFolder) and isinstance(pack, LabelMapPack)
    for img in sorted(images.rglob('*.png')):
        assert torch.equal(folder.load(str(img)), pack.load(str(img)))
    import pickle
    assert pickle.loads(pickle.dumps(pack))._arrays is None  # workers map the arrays themselves
    with pytest.raises(MissingLabelMapError, match=r'other/x\.png'):
        pack.load('/d/other/x.png')
    from pretrain.label_map_data import ImageNetFolderWithLabelMaps
    ds = ImageNetFolderWithLabelMaps(
        data_root=str(tmp_path), split='train', label_map_root=str(tmp_path / 'pack'),
        pipeline=[dict(type='TimmTransform', input_size=32, is_training=True, re_prob=0.)])
    assert torch.equal(ds[0]['label_maps']['maps'], folder.load(ds.get_data_info(0)['img_path']))
    # a map of another shape cannot join a pack; nothing that reads as a pack is left behind
    torch.save(torch.zeros(2, 5, 3, 3, dtype=torch.float16), tmp_path / 'maps/class0/odd.pt')
    with pytest.raises(LabelMapError, match=r'odd\.pt.*one shape'):
        pack_label_maps(str(tmp_path / 'maps'), str(tmp_path / 'pack2'), progress=False)
    assert not (tmp_path / 'pack2/label_maps_pack.json').exists() and not list((tmp_path / 'pack2').iterdir())


def _killed_run(images, out, n):
    """Child process: generate maps and SIGKILL itself (no cleanup of any kind) in the middle of file n + 1."""
    import signal

    import pretrain.label_maps.generate as lmod
    import pretrain.label_maps.map_file as map_file
    real, count = map_file.atomic_write, [0]

    def dying(path, write):
        if not str(path).endswith('.pt'):  # the settings record
            return real(path, write)
        if count[0] == n:  # the temporary file is half written when the kill comes
            def half(tmp):
                with open(tmp, 'wb') as f:
                    f.write(b'PK\x03\x04 half a zip')
                os.kill(os.getpid(), signal.SIGKILL)
            return real(path, half)
        count[0] += 1
        return real(path, write)

    map_file.atomic_write = dying
    torch.manual_seed(0)
    lmod.generate_label_maps(tiny_vit(), images, out, img_size=32, batch_size=2, num_workers=0, device='cpu',
                             rank=0, world_size=1, progress=False)


def test_generator_resumes_after_sigkill(tmp_path):
    import multiprocessing as mp
    images = make_tree(tmp_path / 'train', per_class=4)
    out = tmp_path / 'maps'
    p = mp.get_context('fork').Process(target=_killed_run, args=(str(images), str(out), 5))
    p.start()
    p.join(120)
    assert p.exitcode == -9
    done = sorted(out.rglob('*.pt'))
    assert len(done) == 5 and all(read_label_map(str(f)).shape[0] == 2 for f in done)  # only whole files
    stamps = {f: f.stat().st_mtime_ns for f in done}
    rep = generate_label_maps(tiny_vit(), str(images), str(out), img_size=32, batch_size=2, num_workers=0,
                              device='cpu', rank=0, world_size=1, progress=False)
    assert rep['skipped_existing'] == 5 and rep['written'] == 3
    assert all(f.stat().st_mtime_ns == t for f, t in stamps.items())
    assert len(list(out.rglob('*.pt'))) == 8


# --- trust: maps must fit the dataset, resume must not mix teachers (issue 20 items 3, 4, 12; issue 22 item 7) ----

PIPE = [dict(type='TimmTransform', input_size=32, is_training=True, re_prob=0.)]


def _maps_dataset(root, maps, **kw):
    from pretrain.label_map_data import ImageNetFolderWithLabelMaps
    return ImageNetFolderWithLabelMaps(data_root=str(root), split='train', label_map_root=str(maps), pipeline=PIPE,
                                       **kw)


def _published_style_maps(images, out, bad_image=None, bad_index=2):
    """Maps without a settings record (as the published ones): class index = the image's folder label, except
    ``bad_image``, whose second channel holds ``bad_index``."""
    for c, folder in enumerate(sorted(p.name for p in images.iterdir())):
        for img in sorted((images / folder).iterdir()):
            idx = torch.stack([torch.full((4, 4), c), torch.full((4, 4), 1 - c)])
            if img.name == bad_image and folder == 'class1':
                idx[1, 0, 0] = bad_index
            write_label_map(label_map_path(str(out), str(img)), torch.rand(2, 4, 4), idx)


def test_class_index_equal_to_num_classes_is_refused_file_and_pack(tmp_path):
    """Training opens the maps with the dataset's num_classes: index 2 of 2 classes is named, from a file and
    from a pack (whose max_index in the JSON is not trusted alone)."""
    from pretrain.label_maps.pack import pack_label_maps
    from pretrain.label_maps.stores import PACK_INDEX
    images = make_tree(tmp_path / 'train')
    _published_style_maps(images, tmp_path / 'maps', bad_image='img_1.png')
    ds = _maps_dataset(tmp_path, tmp_path / 'maps')
    ds[0]
    bad = next(i for i in range(len(ds)) if ds.get_data_info(i)['img_path'].endswith('class1/img_1.png'))
    with pytest.raises(LabelMapError, match=r'class1/img_1\.pt.*class index 2 outside the 2 classes'):
        ds[bad]
    pack_label_maps(str(tmp_path / 'maps'), str(tmp_path / 'pack'), progress=False)
    with pytest.raises(LabelMapError, match=rf'{PACK_INDEX}: class index 2 outside the 2 classes'):
        _maps_dataset(tmp_path, tmp_path / 'pack')
    index = tmp_path / 'pack' / PACK_INDEX
    meta = json.loads(index.read_text())
    index.write_text(json.dumps(dict(meta, max_index=1)))  # an index that lies
    ds = _maps_dataset(tmp_path, tmp_path / 'pack')
    ds[0]
    with pytest.raises(LabelMapError, match=r'pack::class1/img_1 \(label map of .*img_1\.png\): class index 2 '
                                            r'outside the 2 classes'):
        ds[bad]


def test_maps_of_a_teacher_with_other_classes_are_refused_at_open(tmp_path):
    """A 4-class teacher's maps on a 2-class dataset (TokenMix weights from foreign classes, rc 0 before), maps
    made for other class folders, and a pack of them: refused at open, naming the record / pack."""
    from pretrain.label_maps.pack import pack_label_maps
    from pretrain.label_maps.record import RECORD
    images = make_tree(tmp_path / 'train')
    generate_label_maps(tiny_vit(num_classes=4), str(images), str(tmp_path / 'maps'), img_size=32, num_workers=0,
                        device='cpu', rank=0, world_size=1, progress=False)
    with pytest.raises(LabelMapError, match=rf'maps/{RECORD}: the teacher of these maps scores 4 classes, the '
                                            r'dataset .*train has 2'):
        _maps_dataset(tmp_path, tmp_path / 'maps')
    pack_label_maps(str(tmp_path / 'maps'), str(tmp_path / 'pack'), progress=False)
    with pytest.raises(LabelMapError, match=r'pack/label_maps_pack\.json: the teacher of these maps scores 4'):
        _maps_dataset(tmp_path, tmp_path / 'pack')
    # maps made for other class folders (same count): the record names them
    generate_label_maps(tiny_vit(num_classes=2), str(images), str(tmp_path / 'maps2'), img_size=32, num_workers=0,
                        device='cpu', rank=0, world_size=1, progress=False)
    other = tmp_path / 'other'
    (other / 'train').mkdir(parents=True)
    for old, new in (('class0', 'class0'), ('class1', 'zebra')):
        os.symlink(images / old, other / 'train' / new)
    with pytest.raises(LabelMapError, match=r'made for the 2 class folders of .*train \(class0, class1\); the '
                                            r'dataset .*other/train has 2 classes \(class0, zebra\)'):
        _maps_dataset(other, tmp_path / 'maps2', check_maps=False)
    # without a record (published maps): class folders the dataset lacks are refused
    os.unlink(tmp_path / 'maps2' / RECORD)
    with pytest.raises(LabelMapError, match=r"maps2: holds maps for class folders the dataset does not have "
                                            r"\(class1\)"):
        _maps_dataset(other, tmp_path / 'maps2', check_maps=False)
    assert len(_maps_dataset(tmp_path, tmp_path / 'maps2')) == 6  # the data they were made for


def test_maps_of_different_shapes_are_named_before_they_meet_in_a_batch(tmp_path):
    images = make_tree(tmp_path / 'train')
    _published_style_maps(images, tmp_path / 'maps')
    odd = label_map_path(str(tmp_path / 'maps'), str(images / 'class1/img_2.png'))
    write_label_map(odd, torch.rand(2, 7, 7), torch.zeros(2, 7, 7, dtype=torch.long))
    ds = _maps_dataset(tmp_path, tmp_path / 'maps')
    with pytest.raises(LabelMapError, match=r'class1/img_2\.pt \(label map of .*img_2\.png\): shape \(2, 2, 7, 7\), '
                                            r'but the maps of .*maps are \(2, 2, 4, 4\)'):
        torch.utils.data.default_collate([ds[i] for i in range(len(ds))])


def _gen(images, out, teacher=None, **kw):
    args = dict(img_size=32, topk=3, num_workers=0, device='cpu', rank=0, world_size=1, progress=False)
    return generate_label_maps(teacher or tiny_vit(), str(images), str(out), **{**args, **kw})


def test_resume_with_another_teacher_or_settings_is_refused(tmp_path):
    from pretrain.label_maps.record import RECORD
    images = make_tree(tmp_path / 'train')
    out = tmp_path / 'maps'
    first = _gen(images, out)
    rec = json.loads((out / RECORD).read_text())
    assert rec['settings']['topk'] == 3 and rec['map_shape'] == [2, 3, 4, 4] and rec['teacher']['num_classes'] == 4
    assert rec['classes'] == ['class0', 'class1'] and first['settings'] == rec['settings']
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob('*.pt')}
    for kw, what in ((dict(teacher=tiny_vit(seed=1)), 'teacher.sha256'), (dict(topk=2), 'topk: 3 -> 2'),
                     (dict(map_size=2), 'map_size: None -> 2'), (dict(scores='logits'), "scores: 'probs' -> 'logits'"),
                     (dict(interpolation='bilinear'), "interpolation: 'bicubic' -> 'bilinear'")):
        with pytest.raises(LabelMapError, match=rf'{RECORD}: the maps in .* were made with another teacher or '
                                                rf'settings \(.*{what}.*--overwrite'):
            _gen(images, out, **kw)
    assert {p: p.stat().st_mtime_ns for p in out.rglob('*.pt')} == stamps and \
        json.loads((out / RECORD).read_text()) == rec  # nothing touched
    assert _gen(images, out)['skipped_existing'] == 6  # the same teacher and settings resume
    rep = _gen(images, out, topk=2, overwrite=True)  # --overwrite remakes every map with the new settings
    assert rep['written'] == 6 and rep['settings']['topk'] == 2
    assert all(read_label_map(str(p)).shape == (2, 2, 4, 4) for p in out.rglob('*.pt'))
    assert json.loads((out / RECORD).read_text())['map_shape'] == [2, 2, 4, 4]
    # maps without a record (another tool, an older version): unknown settings, refused
    os.unlink(out / RECORD)
    with pytest.raises(LabelMapError, match=r'holds label maps .* but no settings record'):
        _gen(images, out, topk=2)
    from tools.make_label_maps import main
    with pytest.raises(SystemExit, match=r'make_label_maps: .*no settings record'):
        main([str(images), str(out), '--model', 'vit_tiny_patch16_224', '--random-init', '--num-classes', '4',
              '--img-size', '32', '--model-kwargs', '{"patch_size": 8, "embed_dim": 32, "depth": 1, "num_heads": 2}',
              '--workers', '0', '--no-progress', '--device', 'cpu'])


def test_resume_reads_existing_maps_back_and_remakes_broken_ones(tmp_path):
    images = make_tree(tmp_path / 'train')
    out = tmp_path / 'maps'
    _gen(images, out)
    empty, half = out / 'class0/img_1.pt', out / 'class1/img_0.pt'
    good = read_label_map(str(empty))
    empty.write_bytes(b'')
    half.write_bytes(half.read_bytes()[:100])
    rep = _gen(images, out)
    assert rep['written'] == 2 and rep['skipped_existing'] == 4
    assert sorted(b['image'] for b in rep['remade_broken']) == [str(images / 'class0/img_1.png'),
                                                                 str(images / 'class1/img_0.png')]
    assert torch.equal(read_label_map(str(empty)), good)
    # a readable map of another shape in the folder: refused, named
    write_label_map(str(out / 'class1/img_2.pt'), torch.rand(3, 7, 7), torch.zeros(3, 7, 7, dtype=torch.long))
    with pytest.raises(LabelMapError, match=r'class1/img_2\.pt: shape \(2, 3, 7, 7\), the settings record says '
                                            r'\(2, 3, 4, 4\)'):
        _gen(images, out)


def test_a_decompression_bomb_is_listed_as_unreadable(tmp_path, monkeypatch):
    images = make_tree(tmp_path / 'train')
    Image.new('RGB', (64, 64)).save(images / 'class0/huge.png')
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1500)  # 64² > 2 × 1500: Pillow's DecompressionBombError
    rep = _gen(images, tmp_path / 'maps')
    assert rep['written'] == 6 and [u['image'] for u in rep['unreadable']] == [str(images / 'class0/huge.png')]
    assert 'decompression bomb' in rep['unreadable'][0]['error']


def test_a_label_map_file_carrying_code_is_refused_and_runs_nothing(tmp_path):
    """The reader itself (folder maps, as training opens them): a crafted pickle whose loading would create a
    file is refused, naming the map, and the file is never created."""
    marker = tmp_path / 'pwned'

    class Evil:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    images = make_tree(tmp_path / 'train')
    _published_style_maps(images, tmp_path / 'maps')
    evil = label_map_path(str(tmp_path / 'maps'), str(images / 'class0/img_2.png'))
    torch.save(Evil(), evil)
    ds = _maps_dataset(tmp_path, tmp_path / 'maps')
    i = next(i for i in range(len(ds)) if ds.get_data_info(i)['img_path'].endswith('class0/img_2.png'))
    with pytest.raises(LabelMapError, match=r'class0/img_2\.pt \(label map of .*img_2\.png\): cannot be read safely'):
        ds[i]
    with pytest.raises(LabelMapError, match=r'img_2\.pt'):
        read_label_map(evil)
    assert not marker.exists()
    import pickle
    import zipfile
    with zipfile.ZipFile(evil) as z:  # the file does carry the call: a plain unpickler runs it
        pickle.loads(z.read(next(n for n in z.namelist() if n.endswith('data.pkl'))))
    assert marker.exists()


def test_demo_plan_remakes_the_maps_of_a_retrained_teacher_with_overwrite(tmp_path):
    """make_label_maps refuses to add a new teacher's maps to an old teacher's: a stale maps step (its stamp
    holds other arguments, or its teacher was retrained) passes --overwrite; a fresh or current one does not."""
    from mixseg.reproduce.plan import make_plan

    def maps_step():
        steps = make_plan(['C'], methods=['tokenmix'], demo=True, launcher='none', work_root=tmp_path / 'w',
                          data_root=tmp_path / 'data')
        return next(s for s in steps if s.kind == 'maps')
    step = maps_step()
    assert '--overwrite' not in step.argv and not step.stale
    step.stamp.parent.mkdir(parents=True)
    step.stamp.write_text(json.dumps(step.key))
    assert '--overwrite' not in maps_step().argv
    step.stamp.write_text(json.dumps(dict(step.key, argv=['other', 'arguments'])))
    stale = maps_step()
    assert stale.stale and stale.argv[-1] == '--overwrite' and stale.key == step.key
