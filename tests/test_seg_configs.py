"""Every segmentation config (configs/segmenter/, configs/demo/segmenter-*) builds: the model (and a forward
pass of the right shape), the dataset with its train/test/multi-scale pipelines; and each follows the recipe
of docs/paper_facts.md#transfer-recipes that its name states."""
import copy
import re
from pathlib import Path

import pytest
import torch

pytest.importorskip('mmseg')

from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# the 14-px-patch DeiT configs (MixPro's own model, *_deit-s-p14_*) are checked in tests/test_official_recipes.py
SEG_CONFIGS = sorted(p for p in (ROOT / 'configs' / 'segmenter').glob('*.py') if '-p14_' not in p.name)
DEMO_CONFIGS = sorted((ROOT / 'configs' / 'demo').glob('segmenter-*.py'))
ARCHS = {'t': ('deit_tiny_patch16_224', 192, 3), 's': ('deit_small_patch16_224', 384, 6),
         'b': ('deit_base_patch16_224', 768, 12)}
NAME = re.compile(r'segmenter-(?P<dec>mask|linear)_deit-(?P<size>[tsb])(_(?P<method>transmix|mixpro|tokenmix))?_'
                  r'(?P<sched>8xb1-160k_ade20k-512x512|8xb2-80k_pascal-context-59-480x480)\.py$')
RECIPES = {  # dataset type, classes, crop, stride, iterations, images per GPU, test scale
    'ade20k': ('ADE20KDataset', 150, (512, 512), (480, 480), 160000, 1, (2048, 512)),
    'pascal': ('PascalContextDataset59', 59, (480, 480), (320, 320), 80000, 2, (520, 520)),
}


pytestmark = pytest.mark.usefixtures('one_thread')  # see conftest


def _cfg(path):
    init_default_scope('mmseg')
    return Config.fromfile(str(path))


def test_config_sets_are_complete():
    names = {p.name for p in SEG_CONFIGS}
    assert len(SEG_CONFIGS) == 22 and all(NAME.match(n) for n in names), sorted(names)
    for dec in ('mask', 'linear'):
        for size in 'tsb':  # ADE20K and Pascal Context, DeiT-T/S/B; table C: TokenMix on ADE20K
            assert f'segmenter-{dec}_deit-{size}_8xb1-160k_ade20k-512x512.py' in names
            assert f'segmenter-{dec}_deit-{size}_tokenmix_8xb1-160k_ade20k-512x512.py' in names
            assert f'segmenter-{dec}_deit-{size}_8xb2-80k_pascal-context-59-480x480.py' in names
        for method in ('transmix', 'mixpro'):  # table A
            assert f'segmenter-{dec}_deit-s_{method}_8xb2-80k_pascal-context-59-480x480.py' in names
    assert {re.sub(r'_(ade20k|pascal-context-59)-demo.*', '', p.name) for p in DEMO_CONFIGS} == {
        'segmenter-mask_vit-demo_1xb4-200i', 'segmenter-linear_vit-demo_1xb4-200i'}
    assert len(DEMO_CONFIGS) == 4


def _check_model_and_data(cfg, num_classes, crop, embed_dim, test_scale, data_root):
    from mmengine.dataset import Compose
    from mmseg.registry import DATASETS, MODELS

    assert cfg.default_scope == 'mmseg'
    assert 'mixseg.backbones.vit' in cfg.custom_imports['imports']
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.checkpoint = None  # weights are not part of this test
    model = MODELS.build(model_cfg)
    assert type(model.backbone).__name__ == 'MixsegViT'
    assert model.backbone.img_size == tuple(crop) and model.backbone.embed_dim == embed_dim
    assert model.backbone.pos_embed.shape[1] == 1 + (crop[0] // model.backbone.patch_size[0]) * (
        crop[1] // model.backbone.patch_size[1])
    assert model.decode_head.num_classes == num_classes
    assert model.data_preprocessor.size == tuple(crop)
    # the whole network wired up right: a forward pass on the meta device (shapes only, no compute)
    model.to('meta')
    with torch.no_grad():
        out = model._forward(torch.empty(2, 3, *crop, device='meta'))
    p = model.backbone.patch_size[0]
    assert tuple(out.shape) == (2, num_classes, crop[0] // p, crop[1] // p)

    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = copy.deepcopy(cfg[loader].dataset)
        ds.lazy_init = True  # builds the dataset object and its pipeline without reading the (empty) folders
        ds.data_root = str(data_root)
        for sub in ds.data_prefix.values():
            (data_root / sub).mkdir(parents=True, exist_ok=True)
        dataset = DATASETS.build(ds)
        assert len(dataset.metainfo['classes']) == num_classes
        assert dataset.reduce_zero_label
    for name, pipeline in (('train', cfg.train_dataloader.dataset.pipeline),
                           ('test', cfg.test_dataloader.dataset.pipeline), ('tta', cfg.tta_pipeline)):
        built = Compose(pipeline)
        # bad inputs are refused by file (mixseg.datasets): the checked loader and the label-range check
        assert type(built.transforms[0]).__name__ == 'CheckedLoadImageFromFile', name
        flat = [t for step in pipeline for t in ([step] if 'transforms' not in step else
                                                 [x for group in step.transforms for x in group])]
        types = [t['type'] for t in flat]
        assert types.index('mixseg.CheckSegLabels') == types.index('LoadAnnotations') + 1, (name, types)
        assert flat[types.index('mixseg.CheckSegLabels')]['num_classes'] == num_classes
        assert flat[types.index('LoadAnnotations')]['reduce_zero_label'], name
    tta = Compose(cfg.tta_pipeline)
    assert cfg.tta_model.type == 'SegTTAModel'
    aug = tta.transforms[1]
    assert type(aug).__name__ == 'TestTimeAug' and len(aug.subroutines) == 6 * 2  # 6 scales x flip
    # the test scale times 0.5 ... 1.75 (as mmseg 0.x and the Segmenter paper)
    assert [tuple(t.scale) for t in cfg.tta_pipeline[1].transforms[0]] == [
        (int(test_scale[0] * r), int(test_scale[1] * r)) for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)]
    assert [t.prob for t in cfg.tta_pipeline[1].transforms[1]] == [0.0, 1.0]
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        assert evaluator.type == 'IoUMetric' and evaluator.iou_metrics == ['mIoU']


@pytest.mark.parametrize('path', SEG_CONFIGS, ids=lambda p: p.stem)
def test_segmenter_config(path, tmp_path):
    m = NAME.match(path.name)
    assert m, path.name
    cfg = _cfg(path)
    arch, dim, heads = ARCHS[m['size']]
    ds_type, num_classes, crop, stride, iters, per_gpu, scale = RECIPES[
        'ade20k' if 'ade20k' in m['sched'] else 'pascal']

    # the weights: one variable at the top, named after size and pretraining method
    assert cfg.pretrained == f'checkpoints/deit-{m["size"]}_{m["method"] or "baseline"}.safetensors'
    bb = cfg.model.backbone
    assert bb.type == 'MixsegViT' and bb.arch == arch and bb.checkpoint == cfg.pretrained
    assert bb.final_norm and bb.drop_path_rate == 0.1 and bb.out_indices == -1
    head = cfg.model.decode_head
    if m['dec'] == 'mask':
        assert head.type == 'SegmenterMaskTransformerHead' and head.num_layers == 2
        assert head.num_heads == heads and head.embed_dims == dim
    else:
        assert head.type == 'FCNHead' and head.num_convs == 0 and not head.concat_input
    assert head.in_channels == head.channels == dim
    # Segmenter's recipe: SGD 1e-3, momentum 0.9, no weight decay, poly to 1e-4, sliding test
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ('SGD', 1e-3, 0.9, 0.0)
    sched, = cfg.param_scheduler
    assert (sched.type, sched.power, sched.eta_min, sched.end) == ('PolyLR', 0.9, 1e-4, iters)
    assert cfg.train_cfg.max_iters == iters
    assert cfg.train_dataloader.batch_size == per_gpu  # x 8 GPUs: 8 (ADE20K) / 16 (Pascal Context)
    assert cfg.model.test_cfg == dict(mode='slide', crop_size=crop, stride=stride)
    assert cfg.train_dataloader.dataset.type == ds_type
    test_resize = [t for t in cfg.test_dataloader.dataset.pipeline if t.type == 'Resize'][0]
    assert tuple(test_resize.scale) == scale
    crop_step = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'RandomCrop'][0]
    assert tuple(crop_step.crop_size) == crop
    # the table rows: A (Pascal Context, DeiT-S, both decoders), C (ADE20K, mask decoder, DeiT-T/S/B); the keys
    # are the tables' row keys (mixseg.tables), as tools/reproduce.py sets them with --cfg-options
    method = m['method'] or 'baseline'
    if 'pascal' in m['sched'] and m['size'] == 's':
        assert cfg.table_row == dict(table='A', model='deit-s', method=method, decoder=m['dec'])
    elif 'ade20k' in m['sched'] and m['dec'] == 'mask':
        assert cfg.table_row == dict(table='C', model=f'deit-{m["size"]}', method=method)
    else:
        assert cfg.get('table_row') is None
    if m['method']:
        return  # model and data are the baseline config's (test_method_variant_differs_only_in_weights)
    _check_model_and_data(cfg, num_classes, crop, dim, scale, tmp_path)


@pytest.mark.parametrize('path', [p for p in SEG_CONFIGS if NAME.match(p.name)['method']], ids=lambda p: p.stem)
def test_method_variant_differs_only_in_weights(path):
    """A table row = the baseline config + another backbone file (nothing else may drift)."""
    m = NAME.match(path.name)
    base_path = path.with_name(path.name.replace(f'_{m["method"]}_', '_'))
    a, b = _cfg(path), _cfg(base_path)
    assert a.model.backbone.checkpoint != b.model.backbone.checkpoint
    a.model.backbone.checkpoint = b.model.backbone.checkpoint
    da, db = a.to_dict(), b.to_dict()
    da.pop('pretrained'), db.pop('pretrained')
    row_a, row_b = da.pop('table_row', None), db.pop('table_row', None)
    assert da == db
    assert row_a == (None if row_b is None else dict(row_b, method=m['method']))  # the method's row, if any


@pytest.mark.parametrize('path', DEMO_CONFIGS, ids=lambda p: p.stem)
def test_demo_config(path, tmp_path):
    cfg = _cfg(path)
    num_classes = 150 if 'ade20k' in path.name else 59
    assert cfg.pretrained is None and cfg.model.backbone.checkpoint is None
    # the demo ViT is the stage-1 demo model (configs/_base_/models/vit-nano.py), so its backbone file fits
    nano = Config.fromfile(str(ROOT / 'configs' / '_base_' / 'models' / 'vit-nano.py')).model
    assert cfg.model.backbone.arch == nano.arch and cfg.model.backbone.model_kwargs == nano.model_kwargs
    root = 'data/demo/ade/ADEChallengeData2016' if 'ade20k' in path.name else 'data/demo/VOCdevkit/VOC2010'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.data_root == root and cfg[loader].num_workers == 0
    assert cfg.train_cfg.max_iters == cfg.param_scheduler[0].end == 200
    scale = (512, 128) if 'ade20k' in path.name else (140, 140)
    _check_model_and_data(cfg, num_classes, (128, 128), nano.model_kwargs['embed_dim'], scale, tmp_path)
