"""The backbone file (stage 1 → stage 2 contract) and reading foreign weight files safely."""
import json
import os
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from mixcore.weights.backbone_file import load_backbone_file, save_backbone_file
from mixcore.weights.errors import CheckpointError
from mixcore.weights.load import CheckpointMismatchError, load_strict, resize_pos_embed
from mixcore.weights.state_dict import read_weights

ROOT = Path(__file__).resolve().parents[1]


class Tiny(nn.Module):
    def __init__(self, dim=8):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.randn(1, 5, dim))
        self.fc = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)


def test_backbone_file_roundtrip_with_metadata(tmp_path):
    m = Tiny()
    p = save_backbone_file(tmp_path / 'b.safetensors', m.state_dict(), arch='tiny', img_size=224, patch_size=16,
                           method='mixpro', epochs=300, top1=81.3, source_config='configs/pretrain/x.py')
    bf = load_backbone_file(p)
    assert bf.meta['arch'] == 'tiny' and bf.meta['img_size'] == 224 and bf.meta['top1'] == 81.3
    assert bf.meta['format'] == 'mixseg-backbone' and bf.meta['format_version'] == 1
    assert 'mixseg_version' in bf.meta and bf.meta['epochs'] == 300
    m2 = Tiny()
    load_strict(m2, bf.state_dict, source=p)
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))


@pytest.mark.parametrize('wrap', ['flat', 'model', 'state_dict', 'mmengine'])
def test_read_weights_unwraps_known_formats(tmp_path, wrap):
    sd = Tiny().state_dict()
    obj = {'flat': sd, 'model': {'model': sd, 'epoch': 3},
           'state_dict': {'state_dict': {f'module.{k}': v for k, v in sd.items()}},
           'mmengine': {'meta': {'epoch': 2}, 'state_dict': {**{f'backbone.{k}': v for k, v in sd.items()},
                                                            'decode_head.conv.weight': torch.zeros(1)}}}[wrap]
    torch.save(obj, tmp_path / 'w.pth')
    got, meta = read_weights(tmp_path / 'w.pth')
    assert set(got) == set(sd)
    if wrap == 'mmengine':
        assert meta == {'epoch': 2}


def test_mismatch_error_lists_keys_and_shapes(tmp_path):
    sd = Tiny(dim=8).state_dict()
    sd['extra.weight'] = torch.zeros(2)
    del sd['norm.bias']
    with pytest.raises(CheckpointMismatchError) as e:
        load_strict(Tiny(dim=16), sd, source='some/file.safetensors')
    msg = str(e.value)
    assert msg.startswith('some/file.safetensors')
    assert 'missing keys (1): norm.bias' in msg and 'unexpected keys (1): extra.weight' in msg
    assert 'shape mismatch: fc.weight: file (8, 8) vs model (16, 16)' in msg
    m = Tiny(dim=8)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(CheckpointMismatchError):
        load_strict(m, {**Tiny(dim=8).state_dict(), 'extra.weight': torch.zeros(2)})
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items()), 'partial load happened'
    load_strict(m, {**Tiny(dim=8).state_dict(), 'head.weight': torch.zeros(2)}, ignore_unexpected=('head.',))


def test_code_carrying_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f'touch {tmp_path}/pwned',))

    torch.save({'state_dict': {'w': torch.zeros(1)}, 'x': Evil()}, tmp_path / 'evil.pth')
    with pytest.raises(CheckpointError, match='evil.pth: cannot be loaded safely'):
        read_weights(tmp_path / 'evil.pth')
    assert not (tmp_path / 'pwned').exists()


def _evil_checkpoint(tmp_path):
    """An mmengine-looking checkpoint whose unpickling would run a shell command."""
    class Evil:
        def __reduce__(self):
            return (os.system, (f'touch {tmp_path}/pwned',))

    path = tmp_path / 'evil.pth'
    torch.save({'meta': {'note': Evil()}, 'state_dict': {'w': torch.zeros(1)}}, path)
    return path


def _stage2_vit(path):
    from mixseg.backbones.vit import MixsegViT
    MixsegViT(arch='deit_tiny_patch16_224', img_size=32, checkpoint=str(path)).init_weights()


def _stage2_pvt(path):
    from mixseg.backbones.pvt import MixsegPVT
    MixsegPVT(arch='nano', checkpoint=str(path)).init_weights()


def _export_tool(path):
    from pretrain.export import export_checkpoint
    export_checkpoint(str(path), str(path.with_suffix('.safetensors')))


def _tokenmix_teacher(path):
    from pretrain.mix.tokenmix import CAMTeacher
    CAMTeacher('resnet18', checkpoint=str(path), num_classes=10)


def _mmengine_load_checkpoint(path):
    # what tools/test.py (load_from) and --resume go through (the patches are installed: tests/conftest.py)
    from mmengine.runner import load_checkpoint
    load_checkpoint(nn.Linear(1, 1), str(path), map_location='cpu')


@pytest.mark.parametrize('loader', [read_weights, _stage2_vit, _stage2_pvt, _export_tool, _tokenmix_teacher,
                                    _mmengine_load_checkpoint])
def test_every_loader_refuses_a_code_carrying_pickle(loader, tmp_path):
    path = _evil_checkpoint(tmp_path)
    with pytest.raises(Exception) as info:
        loader(path)
    message = str(info.value)
    # all name the file (mmengine's loader is replaced by ours, mixcore.weights.mmengine_schemes) and the refused global
    assert 'evil.pth: cannot be loaded safely' in message, message
    assert 'posix.system' in message or 'os.system' in message, message
    assert not (tmp_path / 'pwned').exists()
    assert not path.with_suffix('.safetensors').exists()  # nothing half-written


def test_unreadable_files_named(tmp_path):
    (tmp_path / 'bad.safetensors').write_bytes(b'\x00garbage')
    with pytest.raises(CheckpointError, match='bad.safetensors: not a readable safetensors file'):
        read_weights(tmp_path / 'bad.safetensors')
    (tmp_path / 'trunc.pth').write_bytes(b'PK\x03\x04trunc')
    with pytest.raises(CheckpointError, match='trunc.pth'):
        read_weights(tmp_path / 'trunc.pth')
    with pytest.raises(CheckpointError, match='missing.pth: weight file not found'):
        read_weights(tmp_path / 'missing.pth')


def test_resize_pos_embed_bicubic():
    pe = torch.randn(1, 1 + 4 * 4, 8)
    out = resize_pos_embed(pe, (8, 6), num_prefix_tokens=1)
    assert out.shape == (1, 1 + 48, 8) and torch.equal(out[:, :1], pe[:, :1])
    grid = pe[:, 1:].reshape(1, 4, 4, 8).permute(0, 3, 1, 2)
    ref = torch.nn.functional.interpolate(grid, size=(8, 6), mode='bicubic', align_corners=False)
    assert torch.allclose(out[:, 1:], ref.permute(0, 2, 3, 1).reshape(1, 48, 8), atol=1e-6)


def test_no_unsafe_torch_load_in_source():
    """Every torch.load in the project passes weights_only=True."""
    offenders = []
    for d in ('pretrain', 'mixseg', 'tools', 'configs'):
        for f in (ROOT / d).rglob('*.py'):
            text = f.read_text()
            for m in re.finditer(r'torch\.load\(', text):
                depth, i = 1, m.end()
                while depth and i < len(text):
                    depth += {'(': 1, ')': -1}.get(text[i], 0)
                    i += 1
                call = text[m.start():i]
                if not re.search(r'weights_only\s*=\s*True', call):
                    offenders.append(f'{f.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}: {call}')
    assert not offenders, 'torch.load without weights_only=True:\n' + '\n'.join(offenders)


def test_export_reads_the_stored_config_as_data_never_as_code(tmp_path):
    """tools/export_backbone.py without --config rebuilds the model from ``meta['cfg']``: that text comes
    from the (untrusted) checkpoint, so it is parsed as data; mmengine's Config.fromstring would run it."""
    from mmengine.config import Config

    from pretrain.export import export_checkpoint, plain_config
    for name in ('configs/demo/pretrain_vit-nano_transmix_demo.py',
                 'configs/pretrain/deit-s_tokenmix_8xb128-300e_in1k.py',
                 'configs/segmenter/segmenter-mask_deit-s_8xb1-160k_ade20k-512x512.py',
                 'configs/mask_rcnn/mask-rcnn_pvt-s_fpn_8xb2-1x_coco.py'):
        text = Config.fromfile(str(ROOT / name)).pretty_text  # what mmengine stores in meta['cfg']
        assert plain_config(text, name).to_dict() == Config.fromstring(text, '.py').to_dict(), name

    marker = tmp_path / 'pwned'
    text = f"model = dict(type='MixClassifier')\nx = __import__('os').system('touch {marker}')\n"
    path = tmp_path / 'ckpt.pth'
    torch.save({'meta': {'cfg': text}, 'state_dict': {'w': torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match=r'ckpt.pth \(meta.cfg\): the stored config is not plain data and '
                                              r'is not executed \(line 2 \(x = \.\.\.\) is not plain data\); pass'):
        export_checkpoint(str(path), str(tmp_path / 'out.safetensors'))
    assert not marker.exists() and not (tmp_path / 'out.safetensors').exists()


def test_the_weight_reader_imports_neither_stage():
    """mixcore.weights is foundation: no module of it imports mixseg or pretrain (at any depth of the module, lazy
    imports included), so both stages read weights through it."""
    import ast

    import mixcore.weights
    folder = Path(mixcore.weights.__file__).parent
    for path in sorted(folder.glob('*.py')):
        tree = ast.parse(path.read_text())
        imported = [n.module or '' if isinstance(n, ast.ImportFrom) else a.name
                    for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names]
        assert not [m for m in imported if m.startswith(('mixseg', 'pretrain'))], (path, imported)


# ---------------------------------------------------------------------------------------------------------
# issue 20 item 11: backbone-file metadata is checked before anything is built from it

@pytest.fixture
def create_model_calls(monkeypatch):
    import timm
    calls, real = [], timm.create_model

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(timm, 'create_model', spy)
    return calls


@pytest.mark.parametrize('case', ['checkpoint_path', 'pretrained_cfg', 'huge_img_size', 'huge_kwarg_img_size',
                                  'arch_not_a_string', 'arch_not_a_name', 'depth_a_string', 'top1_out_of_range',
                                  'kwargs_not_a_mapping', 'newer_format_version'])
def test_backbone_metadata_is_checked_before_a_model_is_built(case, tmp_path, create_model_calls):
    """The figure tools built ``timm.create_model(meta['arch'], img_size=meta['img_size'], **meta['model_kwargs'])``:
    ``checkpoint_path`` made timm read the file the metadata names, ``img_size=60000`` allocated 21 GB, a non-string
    ``arch`` crashed with an AttributeError."""
    from pretrain.viz.models import load_model
    other = tmp_path / 'other.pth'
    torch.save({'pos_embed': torch.zeros(1)}, other)
    good = dict(arch='vit_tiny_patch16_224', img_size=32, patch_size=16,
                model_kwargs=dict(embed_dim=32, depth=1, num_heads=2))
    meta, key = {
        'checkpoint_path': (dict(model_kwargs=dict(good['model_kwargs'], checkpoint_path=str(other))),
                            'model_kwargs.checkpoint_path'),
        'pretrained_cfg': (dict(model_kwargs=dict(pretrained_cfg=dict(file=str(other)))),
                           'model_kwargs.pretrained_cfg'),
        'huge_img_size': (dict(img_size=60000), 'img_size'),
        'huge_kwarg_img_size': (dict(model_kwargs=dict(img_size=[60000, 60000])), 'model_kwargs.img_size'),
        'arch_not_a_string': (dict(arch=123), 'arch'),
        'arch_not_a_name': (dict(arch='vit_tiny_patch16_224 --rm'), 'arch'),
        'depth_a_string': (dict(model_kwargs=dict(depth='12')), 'model_kwargs.depth'),
        'top1_out_of_range': (dict(top1=812.0), 'top1'),
        'kwargs_not_a_mapping': (dict(model_kwargs=['checkpoint_path']), 'model_kwargs'),
        'newer_format_version': (dict(format_version=99), 'format_version'),
    }[case]
    path = tmp_path / f'{case}.safetensors'
    if 'format_version' in meta:
        from safetensors.torch import save_file
        header = dict(format='mixseg-backbone', **good, **meta)
        save_file({'w': torch.zeros(1)}, str(path), metadata={k: json.dumps(v) for k, v in header.items()})
    else:
        save_backbone_file(path, {'w': torch.zeros(1)}, **{**good, **meta})
    for load in (load_model, read_weights, load_backbone_file):
        with pytest.raises(CheckpointError) as info:
            load(path)
        message = str(info.value)
        assert message.startswith(f'{path}: metadata {key} = '), message
        assert 'the file is refused' in message
    assert create_model_calls == []  # nothing was built
    from mixcore.weights.backbone_file import read_backbone_meta
    assert read_backbone_meta(path) == {}  # (its method/arch are not taken for a table row either)


def test_good_backbone_metadata_still_builds_the_model(tmp_path):
    import timm

    from pretrain.viz.models import load_model
    kwargs = dict(embed_dim=32, depth=1, num_heads=2)
    net = timm.create_model('vit_tiny_patch16_224', img_size=32, num_classes=0, **kwargs)
    path = save_backbone_file(tmp_path / 'b.safetensors', net.state_dict(), arch='vit_tiny_patch16_224',
                              img_size=[32, 32], patch_size=16, method='mixpro', epochs=3, top1=12.5,
                              model_kwargs=kwargs)
    loaded = load_model(path)
    assert loaded.arch == 'vit_tiny_patch16_224' and loaded.img_size == (32, 32) and loaded.model_kwargs == kwargs


# ---------------------------------------------------------------------------------------------------------
# issue 22 item 7: a backbone file of another format is refused

def test_a_backbone_file_of_another_format_is_refused(tmp_path):
    """``format`` other than this project's (or plain safetensors weights) is refused by every reader, and its
    metadata is never used (e.g. for the table row)."""
    from safetensors.torch import save_file

    from mixseg.backbones.vit import MixsegViT
    from mixcore.weights.backbone_file import read_backbone_meta
    from pretrain.viz.models import load_model
    path = tmp_path / 'foreign.safetensors'
    header = dict(format='other-backbone', format_version=1, arch='vit_tiny_patch16_224', img_size=32,
                  patch_size=16, method='transmix')
    save_file({'w': torch.zeros(1)}, str(path), metadata={k: json.dumps(v) for k, v in header.items()})
    vit = MixsegViT(arch='vit_tiny_patch16_224', img_size=32, checkpoint=str(path),
                    model_kwargs=dict(embed_dim=32, depth=1, num_heads=2))
    for load in (read_weights, load_backbone_file, load_model, lambda p: vit.init_weights()):
        with pytest.raises(CheckpointError, match=rf"^{re.escape(str(path))}: format 'other-backbone' is not "
                                                  r"'mixseg-backbone' \(a backbone file of this project\)"):
            load(path)
    assert read_backbone_meta(path) == {}


def test_plain_safetensors_weights_are_read(tmp_path):
    """Hugging Face's plain safetensors files (timm's hub weights) carry ``format='pt'``: weights, no metadata."""
    from safetensors.torch import save_file
    path = tmp_path / 'model.safetensors'
    save_file({'module.w': torch.ones(2)}, str(path), metadata={'format': 'pt'})
    sd, meta = read_weights(path)
    assert torch.equal(sd['w'], torch.ones(2)) and meta == {'format': 'pt'}
