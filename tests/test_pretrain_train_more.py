"""Stage 1 end to end for CaiT (class-attention layers) and Swin (no class token): the demo tree, one short epoch,
top-1, backbone file with the arch, export tool from the checkpoint."""
import pytest
import torch
from mmengine.runner import Runner

from mixcore.weights.backbone_file import load_backbone_file
from test_pretrain_train import check_backbone_file, demo_cfg

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures('one_thread')]

TINY = {
    'cait': dict(arch='cait_xxs24_224', model_kwargs=dict(embed_dim=48, depth=2, num_heads=3, init_values=1e-5)),
    'xcit': dict(arch='xcit_tiny_24_p16_224', model_kwargs=dict(embed_dim=48, depth=2, num_heads=3, eta=1e-5)),
    'swin': dict(arch='swin_tiny_patch4_window7_224',
                 model_kwargs=dict(window_size=2, embed_dim=24, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1])),
}


@pytest.mark.parametrize('model,name,method,stride', [
    ('cait', 'pretrain_vit-nano_transmix_demo.py', 'transmix', 16),
    ('xcit', 'pretrain_vit-nano_mixpro_demo.py', 'mixpro', 16),
    ('swin', 'pretrain_vit-nano_baseline_demo.py', 'baseline', 32),
])
def test_new_models_train_evaluate_and_export(model, name, method, stride, demo_data, tmp_path):
    cfg = demo_cfg(name, tmp_path, demo_data / 'imagenet')
    cfg.model.arch = TINY[model]['arch']
    cfg.model.model_kwargs = TINY[model]['model_kwargs']  # replaces the demo ViT's kwargs
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 5 and runner.model.patch_size == stride
    bf = check_backbone_file(tmp_path / 'backbone.safetensors', runner, method)
    assert bf.meta['patch_size'] == stride and bf.meta['arch'] == TINY[model]['arch']
    trained = runner.model.model.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in bf.state_dict.items())
    from tools.export_backbone import main as export_main
    export_main([str(tmp_path / 'epoch_1.pth'), str(tmp_path / 'tool.safetensors')])
    tool = load_backbone_file(tmp_path / 'tool.safetensors')
    assert tool.meta['arch'] == bf.meta['arch'] and tool.meta['patch_size'] == stride
    assert all(torch.equal(v, bf.state_dict[k]) for k, v in tool.state_dict.items())
