"""The figure tools (per-layer class attention, occlusion robustness, mixed images) and their model loading, on tiny
models and generated images; the tables plot's Δ panels and legend placement; the TensorBoard switch."""
import json

import numpy as np
import pytest
import timm
import torch

import pretrain.models  # noqa: F401  (pvt_nano)
from mixcore.weights.backbone_file import save_backbone_file
from mixcore.weights.errors import CheckpointError
from _tools import load_tool
from pretrain.models import ClassAttentionProbe
from pretrain.viz.attention import LayerAttention
from pretrain.viz.models import load_model
from pretrain.viz.occlusion import drop_masks, occlude

pytestmark = pytest.mark.usefixtures('one_thread')

PNG = b'\x89PNG\r\n\x1a\n'
# a tiny ViT the way the demo configs write one: a timm arch + model_kwargs that change every shape
VIT = dict(arch='vit_tiny_patch16_224', model_kwargs=dict(patch_size=8, embed_dim=48, depth=3, num_heads=3),
           img_size=32)


def _vit(num_classes=3):
    torch.manual_seed(0)
    return timm.create_model(VIT['arch'], pretrained=False, num_classes=num_classes, img_size=VIT['img_size'],
                             **VIT['model_kwargs']).eval()


def _backbone_file(path, model, arch=VIT['arch'], img_size=VIT['img_size'], kwargs=VIT['model_kwargs']):
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith('head')}
    save_backbone_file(path, sd, arch=arch, img_size=[img_size, img_size], patch_size=8, method='transmix',
                       epochs=2, model_kwargs=kwargs, num_classes=3)
    return path


def _training_checkpoint(path, model, arch=VIT['arch'], img_size=VIT['img_size'], kwargs=VIT['model_kwargs']):
    """What mmengine saves for a stage-1 run: the MixClassifier's weights under 'model.', the config as text."""
    cfg = (f"model = dict(type='MixClassifier', arch='{arch}', num_classes=3, img_size={img_size}, "
           f"model_kwargs={kwargs!r}, mixer=dict(type='tokenmix_recipe', mask_ratio=0.5))\n"
           "train_cfg = dict(by_epoch=True, max_epochs=2)\n")
    torch.save(dict(meta=dict(cfg=cfg, epoch=2), state_dict={f'model.{k}': v for k, v in model.state_dict().items()}),
               path)
    return path


@pytest.fixture(scope='module')
def image_dir(tmp_path_factory):
    """ImageNet-val layout: 3 classes × 3 images of 40×40."""
    from PIL import Image
    root = tmp_path_factory.mktemp('val')
    rng = np.random.default_rng(0)
    for c in ('ant', 'bee', 'cat'):
        (root / c).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / c / f'{c}{i}.png')
    return root


# ------------------------------------------------------------------------------------------ per-layer attention
def _explicit_rows(model, images):
    """Row 0 of every block's full attention (head mean, patch columns), computed the slow way."""
    rows = []

    def hook(module, args, out):
        x = args[0]
        B, N, C = x.shape
        qkv = module.qkv(x).reshape(B, N, 3, module.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k = module.q_norm(qkv[0]), module.k_norm(qkv[1])
        attn = ((q * module.scale) @ k.transpose(-2, -1)).softmax(-1)
        rows.append(attn[:, :, 0, model.num_prefix_tokens:].mean(1))
    handles = [b.attn.register_forward_hook(hook) for b in model.blocks]
    with torch.no_grad():
        model(images)
    for h in handles:
        h.remove()
    return rows


def test_layer_attention_is_every_blocks_class_row():
    model = _vit()
    x = torch.randn(2, 3, 32, 32)
    logits, maps = LayerAttention(model)(x)
    want = _explicit_rows(model, x)
    assert len(maps) == 3 and maps[0].shape == (2, 4, 4)
    for got, ref in zip(maps, want):
        torch.testing.assert_close(got.flatten(1), ref, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(maps[0], maps[-1])  # the layers differ: not one map repeated
    _, last = ClassAttentionProbe(model)(x)
    torch.testing.assert_close(maps[-1].flatten(1), last, atol=1e-6, rtol=1e-5)


def test_layer_attention_pvt_stage4():
    torch.manual_seed(0)
    model = timm.create_model('pvt_nano', pretrained=False, num_classes=3, img_size=64, depths=(1, 1, 1, 2)).eval()
    rows = []

    def explicit(module, args, out):  # stage 4 has no spatial reduction: keys from all tokens, the class token first
        x = args[0]
        B, N, C = x.shape
        q = module.q(x).reshape(B, N, module.num_heads, -1).transpose(1, 2)
        k = module.kv(x)[..., :C].reshape(B, N, module.num_heads, -1).transpose(1, 2)
        rows.append(((q * module.scale) @ k.transpose(-2, -1)).softmax(-1)[:, :, 0, 1:].mean(1))
    handles = [b.attn.register_forward_hook(explicit) for b in model.block4]
    probe = LayerAttention(model)
    x = torch.randn(2, 3, 64, 64)
    _, maps = probe(x)
    for h in handles:
        h.remove()
    assert probe.layer_names == ['stage 4 block 1', 'stage 4 block 2'] and maps[0].shape == (2, 2, 2)
    for got, ref in zip(maps, rows):
        torch.testing.assert_close(got.flatten(1), ref, atol=1e-5, rtol=1e-4)
    _, last = ClassAttentionProbe(model)(x)
    torch.testing.assert_close(maps[-1].flatten(1), last, atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------------------------------ model loading
def test_load_model_reads_arch_and_kwargs_from_each_file_kind(tmp_path):
    model = _vit()
    bb = load_model(_backbone_file(tmp_path / 'b.safetensors', model))
    assert (bb.arch, bb.img_size, bb.has_head, bb.kind, bb.method) == (
        VIT['arch'], (32, 32), False, 'backbone file', 'transmix')
    tc = load_model(_training_checkpoint(tmp_path / 'epoch_2.pth', model))
    assert (tc.has_head, tc.num_classes, tc.method, tc.epochs, tc.kind) == (True, 3, 'tokenmix', 2,
                                                                          'training checkpoint')
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(tc.model(x), model(x))
        torch.testing.assert_close(bb.model.forward_features(x), model.forward_features(x))
    with pytest.raises(CheckpointError, match='backbone file holds the backbone only.*epoch_N.pth'):
        load_model(tmp_path / 'b.safetensors', need_head=True)
    torch.save(model.state_dict(), tmp_path / 'timm.pth')
    with pytest.raises(CheckpointError, match='--arch'):
        load_model(tmp_path / 'timm.pth')
    timm_loaded = load_model(tmp_path / 'timm.pth', arch=VIT['arch'], img_size=32, model_kwargs=VIT['model_kwargs'])
    assert timm_loaded.has_head and timm_loaded.kind == 'timm checkpoint'


def test_stored_config_is_read_as_data_never_executed(tmp_path):
    marker = tmp_path / 'ran'
    torch.save(dict(meta=dict(cfg=f"import os\nos.system('touch {marker}')\nmodel = dict(type='MixClassifier')\n"),
                    state_dict={'model.x': torch.zeros(1)}), tmp_path / 'evil.pth')
    with pytest.raises(CheckpointError, match='not plain data'):
        load_model(tmp_path / 'evil.pth')
    assert not marker.exists()


# ------------------------------------------------------------------------------------------ occlusion
def test_drop_masks_fixed_counts_and_independent_of_batching():
    grid = (4, 4)
    for ratio in (0.0, 0.3, 0.5, 0.9):
        m = drop_masks(range(5), grid, ratio, seed=0)
        assert m.shape == (5, 4, 4) and (m.flatten(1).sum(1) == round(ratio * 16)).all()
    both = drop_masks([3, 4], grid, 0.5, seed=0)
    assert torch.equal(both[1], drop_masks([4], grid, 0.5, seed=0)[0])   # same image, same cells in any batch
    assert not torch.equal(both[0], both[1])                              # other image, other cells
    assert not torch.equal(drop_masks([3], grid, 0.5, seed=1), drop_masks([3], grid, 0.5, seed=0))
    x = torch.ones(2, 3, 16, 16)
    out = occlude(x, both, patch=4)
    cells = out[:, 0].reshape(2, 4, 4, 4, 4).permute(0, 1, 3, 2, 4).reshape(2, 4, 4, 16)
    assert torch.equal(cells.eq(0).all(-1), both) and torch.equal(cells.eq(1).all(-1), ~both)


def test_occlusion_tool_writes_json_and_png(tmp_path, image_dir):
    model = _vit()
    ckpt = _training_checkpoint(tmp_path / 'epoch_2.pth', model)
    tool = load_tool('occlusion_robustness')
    json_path, png = tool.main(['--checkpoint', str(ckpt), str(ckpt), '--images', str(image_dir),
                                '--out', str(tmp_path / 'occ'), '--no-progress', '--batch-size', '4'])
    report = json.loads(json_path.read_text())
    assert report['ratios'] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] and report['num_images'] == 9
    rec = report['models'][0]
    assert rec['grid'] == [4, 4] and rec['patch'] == 8 and len(rec['results']) == 10
    assert report['models'][0]['results'] == report['models'][1]['results']   # fixed seeds: the same drops
    # ratio 0 is the plain accuracy of the classifier on the images as the project evaluates them (timm's eval
    # transform of the demo configs: resize 36 → centre crop 32, ImageNet mean/std)
    from PIL import Image
    from timm.data import create_transform

    from pretrain.viz.models import list_images
    paths, labels, classes = list_images(image_dir)
    t = create_transform(input_size=32, is_training=False, interpolation='bicubic', crop_pct=0.875)
    x = torch.stack([t(Image.open(p).convert('RGB')) for p in paths])
    with torch.no_grad():
        prob = model(x).softmax(-1)
    y = torch.tensor([classes.index(c) for c in labels])
    assert rec['results'][0]['top1'] == pytest.approx(100 * (prob.argmax(-1) == y).float().mean().item())
    assert rec['results'][0]['confidence'] == pytest.approx(prob[torch.arange(9), y].mean().item(), abs=1e-6)
    assert rec['results'][5]['confidence'] != pytest.approx(rec['results'][0]['confidence'])
    assert png.read_bytes()[:8] == PNG and png.stat().st_size > 10_000


def test_occlusion_refuses_a_backbone_file_and_a_class_mismatch(tmp_path, image_dir):
    tool = load_tool('occlusion_robustness')
    bb = _backbone_file(tmp_path / 'b.safetensors', _vit())
    with pytest.raises(SystemExit, match='no classifier head.*training checkpoint'):
        tool.main(['--checkpoint', str(bb), '--images', str(image_dir), '--out', str(tmp_path / 'o')])
    ckpt = _training_checkpoint(tmp_path / 'e.pth', _vit())
    with pytest.raises(SystemExit, match='ImageNet-val layout'):   # plain images: no labels
        tool.main(['--checkpoint', str(ckpt), '--images', str(image_dir / 'ant'), '--out', str(tmp_path / 'o')])
    import shutil
    two = tmp_path / 'two'
    for c in ('ant', 'bee'):
        shutil.copytree(image_dir / c, two / c)
    with pytest.raises(SystemExit, match='3 classes.*2 class folders'):
        tool.main(['--checkpoint', str(ckpt), '--images', str(two), '--out', str(tmp_path / 'o')])
    assert not (tmp_path / 'o').exists()


# ------------------------------------------------------------------------------------------ attention / mix tools
def test_attention_tool_one_png_per_image_with_two_models(tmp_path, image_dir):
    vit = _backbone_file(tmp_path / 'vit.safetensors', _vit())
    pvt_model = timm.create_model('pvt_nano', pretrained=False, num_classes=3, img_size=64).eval()
    pvt = _training_checkpoint(tmp_path / 'pvt.pth', pvt_model, arch='pvt_nano', img_size=64, kwargs={})
    tool = load_tool('visualize_attention')
    written = tool.main(['--checkpoint', str(vit), str(pvt), '--images', str(image_dir), '--out',
                         str(tmp_path / 'att'), '--num-images', '3'])
    assert sorted(p.name for p in written) == ['ant_ant0.png', 'bee_bee0.png', 'cat_cat0.png']
    for p in written:
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 10_000


def test_visualize_mix_reads_the_backbone_file(tmp_path, image_dir):
    """The old tool built deit_tiny_patch16_224 at 224 whatever the file said (shape mismatches on the demo's own
    backbone); now arch, model_kwargs and img_size come from the file, and pairs join different classes."""
    bb = _backbone_file(tmp_path / 'vit.safetensors', _vit())
    tool = load_tool('visualize_mix')
    logs = []
    from pretrain.mix_figure import visualize_mix
    written = visualize_mix(load_model(bb), tmp_path / 'mix', images_dir=image_dir, rows=2, log=logs.append)
    assert [p.name for p in written] == [f'{m}.png' for m in tool.METHODS]
    assert all(p.read_bytes()[:8] == PNG and p.stat().st_size > 5_000 for p in written)
    assert len(tool.main(['--checkpoint', str(bb), '--images', str(image_dir), '--out', str(tmp_path / 'm2'),
                          '--rows', '1', '--methods', 'cutmix'])) == 1


def test_mix_pairs_join_different_classes():
    from pretrain.mix_figure import pick_pairs
    labels = ['a'] * 5 + ['b'] * 5 + ['c'] * 5
    for seed in range(5):
        idx = pick_pairs(labels, 3, torch.Generator().manual_seed(seed))
        assert len(set(idx)) == 6
        assert all(labels[idx[r]] != labels[idx[5 - r]] for r in range(3))


# ------------------------------------------------------------------------------------------ tables plot
def test_tables_plot_deltas_and_legend_outside_the_bars(tmp_path):
    from mixseg.tables.plots import plot
    from mixseg.tables.published import TABLE_A, row_key
    from mixseg.tables.render import baseline_deltas
    from mixseg.tables.results import Collection, Result
    col = Collection()
    for method, ss in (('baseline', 10.0), ('transmix', 12.5)):
        key = row_key(model='deit-s', method=method, decoder='mask')
        col.results[('A', key, 'ss')] = Result('A', key, 'ss', {'mIoU': ss}, tmp_path)
    deltas = {(r, c): (p, o) for r, c, p, o in baseline_deltas(TABLE_A, col)}
    pub, ours = deltas[('DeiT-S + TransMix Segmenter', 'mIoU')]
    assert pub == pytest.approx(50.6 - 49.7) and ours == pytest.approx(2.5)
    assert deltas[('DeiT-S + MixPro Segmenter', 'mIoU')][1] is None            # not run
    assert ('DeiT-S Segmenter', 'mIoU') not in deltas                          # the baseline has no Δ

    import matplotlib.pyplot as plt
    captured = {}
    orig = plt.close
    plt.close = lambda fig=None: None if isinstance(fig, str) else captured.setdefault('fig', fig)  # ('all')
    try:
        path = plot([TABLE_A], col, tmp_path / 't.png')
    finally:
        plt.close = orig
    fig = captured['fig']
    renderer = fig.canvas.get_renderer()
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    assert legends and len(fig.axes) == 2 and path.read_bytes()[:8] == PNG
    for leg in legends:
        box = leg.get_window_extent(renderer)
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent(renderer)), 'legend over a plotting area'
    plt.close(fig)


# ------------------------------------------------------------------------------------------ TensorBoard switch
def test_tensorboard_switch(monkeypatch):
    from mmengine.config import Config

    import mixcore.training_curves as tc
    cfg = Config(dict(tensorboard=False,
                      visualizer=dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])))
    monkeypatch.setattr(tc, 'tensorboard_available', lambda: True)
    assert not tc.enable_tensorboard(cfg)
    assert tc.enable_tensorboard(cfg, True)
    assert [b['type'] for b in cfg.visualizer['vis_backends']] == ['LocalVisBackend', 'TensorboardVisBackend']
    tc.enable_tensorboard(cfg, True)
    assert len(cfg.visualizer['vis_backends']) == 2
    monkeypatch.setattr(tc, 'tensorboard_available', lambda: False)
    with pytest.raises(ModuleNotFoundError, match='pip install tensorboard'):
        tc.enable_tensorboard(Config(dict(tensorboard=True)))


@pytest.mark.parametrize('runtime', ['default_runtime', 'seg_runtime', 'det_runtime', 'pretrain_demo_runtime'])
def test_every_runtime_has_the_switch_off(repo_root, runtime):
    from mmengine.config import Config
    assert Config.fromfile(repo_root / 'configs' / '_base_' / f'{runtime}.py').tensorboard is False


def test_demo_plan_has_the_figure_steps(tmp_path):
    """reproduce --demo --figures: per demo model an attention, an occlusion and a mix step after its pretrainings,
    each a valid command line of its tool; --tensorboard reaches every training but not the stamps."""
    from mixseg.reproduce import make_plan
    steps = make_plan(['A', 'B', 'C'], demo=True, launcher='none', work_root=tmp_path / 'w',
                      data_root=tmp_path / 'd', figures=True, tensorboard=True)
    figs = [s for s in steps if s.kind == 'figure']
    assert sorted(s.name for s in figs) == sorted(f'figure_{k}_{m}' for k in ('attention', 'occlusion', 'mix')
                                                  for m in ('vit-nano', 'pvt-nano'))
    for s in figs:
        model = s.name.rsplit('_', 1)[1]
        pre = {steps[d].name for d in s.deps if steps[d].kind == 'pretrain'}
        n = 4 if model == 'vit-nano' else 3
        assert len(pre) == n and all(p.startswith(f'pretrain_{model}_') for p in pre)
        assert s.needed and not s.done and s.command[:2] == ['python', f'tools/{s.script}.py']
        args = load_tool(s.script).parse_args(s.argv)
        assert args.images.endswith('imagenet/val')
        if s.script == 'occlusion_robustness':
            assert len(args.checkpoint) == n and all(c.endswith('/epoch_12.pth') for c in args.checkpoint)
        if s.script == 'visualize_attention':
            assert len(args.checkpoint) == n and all(c.endswith('backbone.safetensors') for c in args.checkpoint)
        if s.script == 'visualize_mix':
            assert f'{model}_transmix' in args.checkpoint
    trains = [s for s in steps if s.kind in ('pretrain', 'train')]
    assert all('tensorboard=True' in s.argv and 'tensorboard=True' not in s.key['argv'] for s in trains)
    plain = make_plan(['A', 'B', 'C'], demo=True, launcher='none', work_root=tmp_path / 'w', data_root=tmp_path / 'd')
    assert not any(s.kind == 'figure' for s in plain)
    assert [s.key for s in plain if s.kind == 'pretrain'] == [s.key for s in steps if s.kind == 'pretrain']


def test_pkg_resources_warning_is_silenced(repo_root):
    """mmengine resolves the `mmdet::` base of the Mask R-CNN configs with pkg_resources, which setuptools 80 warns
    about on every import; the patches every tool installs first (mixcore.patches.install) silence exactly that
    message."""
    import subprocess
    import sys
    cfg = repo_root / 'configs/demo/mask-rcnn_pvt-demo_fpn_1xb2-4e_coco-demo.py'
    code = 'from mmengine.config import Config; Config.fromfile({!r})'.format(str(cfg))

    def run(pre):
        r = subprocess.run([sys.executable, '-c', pre + code], capture_output=True, text=True, timeout=300,
                           cwd=repo_root)
        assert r.returncode == 0, r.stderr[-2000:]
        return r.stderr
    if 'pkg_resources is deprecated' not in run(''):
        pytest.skip('this mmengine/setuptools pair prints no pkg_resources warning')
    assert 'pkg_resources' not in run('from mixcore.patches import install; install(); ')


def test_occlusion_checks_class_folder_names_against_the_checkpoint(tmp_path, image_dir):
    """Same count, other names (or order): refused by name when the checkpoint records its training classes
    (mmengine stores the training dataset's metainfo as meta.dataset_meta), as the training data checks splits."""
    import shutil
    tool = load_tool('occlusion_robustness')
    model = _vit()
    ckpt = _training_checkpoint(tmp_path / 'e.pth', model)
    obj = torch.load(ckpt, weights_only=True)
    obj['meta']['dataset_meta'] = dict(classes=('ant', 'bee', 'cow'))
    torch.save(obj, ckpt)
    with pytest.raises(SystemExit, match=r"e\.pth: the model was trained with other classes .*only in the model: "
                                         r"\['cow'\]; only in .*: \['cat'\]"):
        tool.main(['--checkpoint', str(ckpt), '--images', str(image_dir), '--out', str(tmp_path / 'o')])
    assert not (tmp_path / 'o').exists()
    renamed = tmp_path / 'renamed'
    for c in ('ant', 'bee', 'cat'):
        shutil.copytree(image_dir / c, renamed / {'cat': 'cow'}.get(c, c))
    json_path, _ = tool.main(['--checkpoint', str(ckpt), '--images', str(renamed), '--out', str(tmp_path / 'ok'),
                              '--no-progress', '--ratios', '0'])
    assert json.loads(json_path.read_text())['num_classes'] == 3


def test_figure_reader_scales_16bit_grey_and_applies_exif(tmp_path):
    """The figures read images as training does (mixcore.image_io.read_rgb): a 16-bit grey PNG is not white."""
    from PIL import Image

    from pretrain.viz.models import read_image
    ramp = (np.arange(32 * 32, dtype=np.uint32).reshape(32, 32) * 64).astype(np.uint16)   # 0..65472
    Image.fromarray(ramp).save(tmp_path / 'grey16.png')
    x = read_image(tmp_path / 'grey16.png', 32, crop_pct=1.0)
    assert x.shape == (3, 32, 32) and x.mean() < 0.6 and x.min() < 0.05   # Pillow's convert('RGB'): all 1.0
    np.testing.assert_allclose(x[0].numpy() * 255, (ramp >> 8).astype(np.float32), atol=1.01)


def test_figure_tools_name_a_decompression_bomb(tmp_path, image_dir, monkeypatch):
    """Pillow's DecompressionBombError is no OSError: it escaped the tools' handlers; now the tool stops naming
    the file (images of the fixture: 40² = 1600 pixels, under the limit; the bomb 100² > 2 × 2000)."""
    import shutil

    from PIL import Image
    images = tmp_path / 'val'
    shutil.copytree(image_dir, images)
    Image.new('RGB', (100, 100)).save(images / 'bee' / 'bee_huge.png')
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 2000)
    ckpt = _training_checkpoint(tmp_path / 'e.pth', _vit())
    with pytest.raises(SystemExit, match=r'bee_huge\.png: refused as a possible decompression bomb'):
        load_tool('occlusion_robustness').main(['--checkpoint', str(ckpt), '--images', str(images), '--out',
                                                str(tmp_path / 'o'), '--no-progress', '--ratios', '0'])
    bb = _backbone_file(tmp_path / 'vit.safetensors', _vit())
    with pytest.raises(SystemExit, match=r'bee_huge\.png: refused as a possible decompression bomb'):
        load_tool('visualize_attention').main(['--checkpoint', str(bb), '--images', str(images / 'bee'),
                                               '--out', str(tmp_path / 'att'), '--num-images', '4'])
