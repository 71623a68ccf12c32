"""Every detection config (configs/mask_rcnn/, configs/demo/mask-rcnn_*) builds — the model with our PVT backbone
(and a forward pass), the dataset objects with their pipelines — and follows the official PVT Mask R-CNN 1x
recipe of docs/paper_facts.md#transfer-recipes (AdamW lr 2e-4, wd 1e-4, 12 epochs, steps 8/11, warmup 500, batch 16 as 8x2, 1333x800;
PVT-L: lr 2e-4/1.4 with 8x1 images; backbone drop path 0.1 for T/S, 0 for M/L, as whai362/PVT detection/)."""
import copy
import re
from pathlib import Path

import pytest
import torch

pytest.importorskip('mmdet')

from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DET_CONFIGS = sorted((ROOT / 'configs' / 'mask_rcnn').glob('*.py'))
DEMO_CONFIGS = sorted((ROOT / 'configs' / 'demo').glob('mask-rcnn_pvt-demo_*.py'))
NAME = re.compile(r'^mask-rcnn_pvt-(?P<size>[tsml])(_(?P<method>transmix|mixpro))?_fpn_8xb(?P<bpg>[12])-1x_coco\.py$')
# whai362/PVT detection/configs/mask_rcnn_pvt_l_fpn_1x_coco.py: lr 0.0002 / 1.4, samples_per_gpu=1; pvt.py drop paths
LR = {'t': 2e-4, 's': 2e-4, 'm': 2e-4, 'l': 2e-4 / 1.4}
IMAGES_PER_GPU = {'t': 2, 's': 2, 'm': 2, 'l': 1}
DROP_PATH = {'t': 0.1, 's': 0.1, 'm': 0.0, 'l': 0.0}
ARCH = {'t': 'tiny', 's': 'small', 'm': 'medium', 'l': 'large'}
DEPTHS = {'t': (2, 2, 2, 2), 's': (3, 4, 6, 3), 'm': (3, 4, 18, 3), 'l': (3, 8, 27, 3)}


def _cfg(path):
    init_default_scope('mmdet')
    return Config.fromfile(str(path))


def test_config_set_is_complete():
    names = {p.name for p in DET_CONFIGS}
    assert names == {'mask-rcnn_pvt-t_fpn_8xb2-1x_coco.py', 'mask-rcnn_pvt-s_fpn_8xb2-1x_coco.py',
                     'mask-rcnn_pvt-m_fpn_8xb2-1x_coco.py', 'mask-rcnn_pvt-l_fpn_8xb1-1x_coco.py',
                     'mask-rcnn_pvt-s_transmix_fpn_8xb2-1x_coco.py', 'mask-rcnn_pvt-s_mixpro_fpn_8xb2-1x_coco.py'}
    assert len(DEMO_CONFIGS) == 1


def _pipeline_types(pipeline):
    return [t['type'] for t in pipeline]


@pytest.mark.parametrize('path', DET_CONFIGS, ids=lambda p: p.stem)
def test_config_follows_the_official_pvt_recipe(path):
    m = NAME.match(path.name)
    assert m, path.name
    size, method = m['size'], m['method'] or 'baseline'
    cfg = _cfg(path)
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports == dict(imports=['mixseg.install_patches', 'mixseg.backbones.pvt', 'mixseg.datasets'],
                                      allow_failed_imports=False)
    assert cfg.train_dataloader.dataset.type == 'CheckedCocoDataset'
    assert cfg.train_dataloader.dataset.pipeline[0].type == 'mixseg.CheckedLoadImageFromFile'
    # the checkpoint is chosen by the `pretrained` variable
    assert cfg.pretrained == f'checkpoints/pvt-{size}_{method}.safetensors'
    assert cfg.model.backbone.checkpoint == cfg.pretrained
    assert cfg.model.type == 'MaskRCNN' and cfg.model.backbone.type == 'MixsegPVT'
    assert cfg.model.backbone.arch == ARCH[size] and cfg.model.backbone.drop_path_rate == DROP_PATH[size]
    assert cfg.model.neck.type == 'FPN' and cfg.model.neck.in_channels == [64, 128, 320, 512]
    assert cfg.model.neck.out_channels == 256 and cfg.model.neck.num_outs == 5
    assert cfg.model.roi_head.bbox_head.num_classes == 80 and cfg.model.roi_head.mask_head.num_classes == 80
    # optimiser and schedule
    opt = cfg.optim_wrapper.optimizer
    assert cfg.optim_wrapper.type == 'OptimWrapper' and cfg.optim_wrapper.get('clip_grad') is None
    assert opt.type == 'AdamW' and opt.lr == LR[size] and opt.weight_decay == 1e-4
    assert cfg.train_cfg.type == 'EpochBasedTrainLoop' and cfg.train_cfg.max_epochs == 12
    warmup, steps = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and warmup.by_epoch is False and (warmup.begin, warmup.end) == (0, 500)
    assert warmup.start_factor == 0.001
    assert steps.type == 'MultiStepLR' and steps.by_epoch and steps.milestones == [8, 11] and steps.gamma == 0.1
    # data: batch 16 as 8 GPUs x 2 images (PVT-L: 8 x 1), single scale 1333x800, COCO 2017, bbox + segm AP
    bpg = IMAGES_PER_GPU[size]
    assert int(m['bpg']) == bpg and cfg.train_dataloader.batch_size == bpg
    assert cfg.auto_scale_lr == dict(base_batch_size=8 * bpg, enable=False)
    assert cfg.data_root == 'data/coco/'
    for loader, split in ((cfg.train_dataloader, 'train'), (cfg.val_dataloader, 'val'), (cfg.test_dataloader, 'val')):
        ds = loader.dataset
        assert ds.type == 'CheckedCocoDataset' and ds.data_root == 'data/coco/'
        assert ds.ann_file == f'annotations/instances_{split}2017.json'
        resize = [t for t in ds.pipeline if t['type'] == 'Resize']
        assert len(resize) == 1 and tuple(resize[0]['scale']) == (1333, 800) and resize[0]['keep_ratio']
    assert _pipeline_types(cfg.train_dataloader.dataset.pipeline) == [
        'mixseg.CheckedLoadImageFromFile', 'LoadAnnotations', 'Resize', 'RandomFlip', 'PackDetInputs']
    assert cfg.train_dataloader.dataset.pipeline[1]['with_mask']
    for ev in (cfg.val_evaluator, cfg.test_evaluator):
        assert ev.type == 'CheckedCocoMetric' and ev.metric == ['bbox', 'segm']
        assert ev.ann_file == 'data/coco/annotations/instances_val2017.json'
    # table B rows (PVT-S only)
    if size == 's':
        assert cfg.table_row == dict(table='B', model='pvt-s', method=method)
    else:
        assert cfg.table_row is None


@pytest.mark.parametrize('path', DET_CONFIGS, ids=lambda p: p.stem)
def test_config_builds_model_and_data_objects(path):
    from mmdet.registry import DATASETS, MODELS
    size = NAME.match(path.name)['size']
    cfg = _cfg(path)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.checkpoint = None  # weights are not part of this test
    model = MODELS.build(model_cfg)
    assert type(model.backbone).__name__ == 'MixsegPVT'
    assert tuple(len(getattr(model.backbone, f'block{i}')) for i in range(1, 5)) == DEPTHS[size]
    model.eval()
    with torch.no_grad():
        feats = model.extract_feat(torch.randn(1, 3, 128, 160))
    assert [tuple(f.shape) for f in feats] == [(1, 256, 32, 40), (1, 256, 16, 20), (1, 256, 8, 10),
                                              (1, 256, 4, 5), (1, 256, 2, 3)]
    # the dataset objects with their pipelines (annotations are not read: lazy_init)
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        ds = DATASETS.build(dict(copy.deepcopy(loader.dataset), lazy_init=True))
        assert type(ds).__name__ == 'CheckedCocoDataset'
        assert [type(t).__name__ for t in ds.pipeline.transforms] == \
            [t.rpartition('.')[2] for t in _pipeline_types(loader.dataset.pipeline)]   # 'mixseg.X': class X


def test_demo_config_builds_on_the_demo_data(demo_data):
    from mmdet.registry import DATASETS, MODELS, METRICS

    from mixcore.demo_data import COCO_CLASSES
    cfg = _cfg(DEMO_CONFIGS[0])
    assert cfg.classes == COCO_CLASSES and cfg.num_classes == len(COCO_CLASSES)
    assert cfg.data_root == 'data/demo/coco/'
    assert cfg.model.backbone.arch == 'nano' and cfg.model.backbone.checkpoint is None
    assert cfg.model.roi_head.bbox_head.num_classes == cfg.model.roi_head.mask_head.num_classes == 10
    root = f'{demo_data / "coco"}/'
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    ds_cfg.data_root = root
    ds = DATASETS.build(ds_cfg)
    assert ds.metainfo['classes'] == COCO_CLASSES and len(ds) > 0
    sample = ds[0]
    assert sample['data_samples'].gt_instances.masks.masks.shape[0] == len(sample['data_samples'].gt_instances)
    assert max(sample['inputs'].shape[1:]) <= 320
    ev = METRICS.build(dict(copy.deepcopy(cfg.val_evaluator), ann_file=root + 'annotations/instances_val2017.json'))
    assert ev.metrics == ['bbox', 'segm']
    model = MODELS.build(cfg.model)
    model.train()
    from mmengine.dataset import pseudo_collate
    data = model.data_preprocessor(pseudo_collate([ds[0], ds[1]]), True)
    losses = model(**data, mode='loss')
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'loss_mask'} <= set(losses)
