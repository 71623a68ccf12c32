"""Stage-1 end to end on the generated demo ImageNet tree: train → evaluate top-1 → backbone file → reload.

Each method runs its demo config for one short epoch (40 images, batch 8); a 2-process gloo run checks that
data-parallel replicas end identical; the EMA run checks that hook and tool export the EMA weights.
"""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import timm
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mixcore.weights.backbone_file import load_backbone_file
from mixcore.weights.load import load_strict

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def demo_cfg(name, work_dir, data_root, batch=8, epochs=1):
    cfg = Config.fromfile(str(ROOT / 'configs/demo' / name))
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'{Path(name).stem}_{time.time_ns()}'
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[key].dataset.data_root = str(data_root)
        cfg[key].num_workers = 0
        cfg[key].persistent_workers = False
    cfg.train_dataloader.batch_size = batch
    cfg.train_cfg.max_epochs = epochs
    cfg.default_hooks.logger.interval = 1
    return cfg


@pytest.fixture(scope='module')
def demo_label_maps(demo_data, tmp_path_factory):
    """Label maps of the demo training images from a (random-init) demo ViT, as the demo makes them."""
    from pretrain.label_maps.generate import generate_label_maps
    from pretrain.label_maps.teacher import build_teacher
    teacher, inp = build_teacher(config=str(ROOT / 'configs/demo/pretrain_vit-nano_baseline_demo.py'),
                                 random_init=True)
    out = tmp_path_factory.mktemp('label_maps')
    generate_label_maps(teacher, str(demo_data / 'imagenet/train'), str(out), img_size=inp['img_size'],
                        num_workers=0, device='cpu', rank=0, world_size=1, progress=False)
    return out


def check_backbone_file(path, runner, method):
    bf = load_backbone_file(path)
    meta = bf.meta
    clf = runner.model
    assert meta['arch'] == clf.arch and meta['method'] == method and meta['epochs'] == 1
    assert meta['img_size'] == list(clf.img_size) and meta['patch_size'] == clf.patch_size
    assert meta['model_kwargs'] == clf.model_kwargs and meta['source_config'].endswith('.py')
    top1 = runner.message_hub.get_scalar('val/accuracy/top1').current()
    assert meta['top1'] == pytest.approx(top1) and 0 <= top1 <= 100
    # the weights load into a fresh timm model of the same architecture, nothing missing but the head
    model = timm.create_model(meta['arch'], pretrained=False, num_classes=meta['num_classes'],
                              img_size=meta['img_size'], **meta['model_kwargs'])
    load_strict(model, bf.state_dict, source=path, ignore_missing=('head.',))
    assert not any(k.startswith('head') for k in bf.state_dict)
    return bf


@pytest.mark.parametrize('name,method', [
    ('pretrain_vit-nano_baseline_demo.py', 'baseline'),
    ('pretrain_vit-nano_transmix_demo.py', 'transmix'),
    ('pretrain_vit-nano_mixpro_demo.py', 'mixpro'),
    ('pretrain_vit-nano_tokenmix_demo.py', 'tokenmix'),
    ('pretrain_pvt-nano_transmix_demo.py', 'transmix'),
    ('pretrain_pvt-nano_tokenmix_demo.py', 'tokenmix'),
])
def test_demo_trains_evaluates_and_exports(name, method, demo_data, tmp_path, request):
    cfg = demo_cfg(name, tmp_path, demo_data / 'imagenet')
    if method == 'tokenmix':  # labels from teacher label maps
        cfg.train_dataloader.dataset.label_map_root = str(request.getfixturevalue('demo_label_maps'))
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 5  # 40 images, batch 8, one epoch
    bf = check_backbone_file(tmp_path / 'backbone.safetensors', runner, method)
    trained = runner.model.model.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in bf.state_dict.items())


def test_ema_weights_are_exported_by_hook_and_tool(demo_data, tmp_path):
    cfg = demo_cfg('pretrain_vit-nano_baseline_demo.py', tmp_path, demo_data / 'imagenet')
    cfg.custom_hooks = [dict(type='BackboneExportHook'), dict(cfg.ema_hook, momentum=0.2)]
    runner = Runner.from_cfg(cfg)
    runner.train()
    bf = check_backbone_file(tmp_path / 'backbone.safetensors', runner, 'baseline')
    assert bf.meta['ema'] is True
    ema_hook = next(h for h in runner.hooks if type(h).__name__ == 'EMAHook')
    ema = ema_hook.ema_model.module.model.state_dict()
    raw = runner.model.model.state_dict()
    assert all(torch.equal(v, ema[k]) for k, v in bf.state_dict.items())
    assert not all(torch.equal(v, raw[k]) for k, v in bf.state_dict.items())

    from tools.export_backbone import main as export_main
    ckpt = tmp_path / 'epoch_1.pth'
    assert ckpt.is_file()
    export_main([str(ckpt), str(tmp_path / 'tool.safetensors')])
    tool = load_backbone_file(tmp_path / 'tool.safetensors')
    assert tool.meta['ema'] is True and tool.meta['epochs'] == 1 and tool.meta['arch'] == bf.meta['arch']
    assert tool.state_dict.keys() == bf.state_dict.keys()
    assert all(torch.equal(v, bf.state_dict[k]) for k, v in tool.state_dict.items())
    export_main([str(ckpt), str(tmp_path / 'raw.safetensors'), '--no-ema'])
    rawf = load_backbone_file(tmp_path / 'raw.safetensors')
    assert rawf.meta['ema'] is False
    assert all(torch.equal(v, raw[k]) for k, v in rawf.state_dict.items())


def test_export_tool_refuses_a_checkpoint_of_another_architecture(demo_data, tmp_path):
    cfg = demo_cfg('pretrain_vit-nano_baseline_demo.py', tmp_path, demo_data / 'imagenet')
    cfg.train_cfg.max_epochs = 1
    cfg.train_dataloader.batch_size = 20  # 2 iterations
    Runner.from_cfg(cfg).train()
    other = ROOT / 'configs/demo/pretrain_pvt-nano_baseline_demo.py'
    from tools.export_backbone import main as export_main
    with pytest.raises(SystemExit, match='missing keys'):
        export_main([str(tmp_path / 'epoch_1.pth'), str(tmp_path / 'x.safetensors'), '--config', str(other)])
    assert not (tmp_path / 'x.safetensors').exists()


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_process_gloo_run_keeps_replicas_identical(demo_data, tmp_path):
    root = demo_data / 'imagenet'
    opts = [f'{k}.dataset.data_root={root}' for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    opts += [f'{k}.{a}' for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')
             for a in ('num_workers=0', 'persistent_workers=False')]
    opts += ['train_dataloader.batch_size=4', 'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1',
             'custom_hooks.0.all_ranks=True']
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', str(_free_port()),
           str(ROOT / 'tools/train.py'), str(ROOT / 'configs/demo/pretrain_vit-nano_baseline_demo.py'),
           '--launcher', 'pytorch', '--work-dir', str(tmp_path), '--cfg-options', *opts]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='-1', OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0 = load_backbone_file(tmp_path / 'backbone.safetensors')
    r1 = load_backbone_file(tmp_path / 'backbone.rank1.safetensors')
    # each rank read half of the 40 images (RepeatAugSampler split by rank): 20 / batch 4 = 5 steps
    assert r0.meta['iters'] == r1.meta['iters'] == 5
    assert r0.meta['top1'] is not None and r0.meta['top1'] == r1.meta['top1']
    assert r0.state_dict.keys() == r1.state_dict.keys()
    assert all(torch.equal(v, r1.state_dict[k]) for k, v in r0.state_dict.items())
