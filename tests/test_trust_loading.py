"""No code from any checkpoint or URL; files written with the usual permissions; a full disk named (issue 12).

* checkpoints named by URL or by mmengine's model-zoo schemes reach only the safe reader (a loopback HTTP
  server on 127.0.0.1 serves the files; nothing leaves the machine);
* a legacy or plain pickle is refused naming the file, without torch's advice to switch safe loading off;
* the export tool never imports or calls a ``type`` named in a stored config, and exports stage-2 backbones;
* backbone files get ``0666 & ~umask``; a full disk during a save names the file, the previous one stays.
"""
import errno
import functools
import http.server
import os
import pickle
import re
import threading

import pytest
import torch
from torch import nn

from mixcore.weights.backbone_file import save_backbone_file
from mixcore.weights.errors import CheckpointError
from mixcore.weights.state_dict import read_weights
from mixcore.weights.download import cache_entry


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def served(tmp_path, monkeypatch):
    """``(folder, base URL)``: a loopback HTTP server serving ``folder``; torch's hub cache and mmengine's home
    under tmp_path. The server stops at teardown, and on its own after two minutes at the latest."""
    root = tmp_path / 'served'
    root.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setenv('MMENGINE_HOME', str(tmp_path / 'mmengine_home'))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True)
    thread.start()
    deadline = threading.Timer(120, server.shutdown)
    deadline.start()
    try:
        yield root, f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        deadline.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def torch_load_calls(monkeypatch):
    """Every torch.load call's ``weights_only`` (torch.hub's loader passes False)."""
    calls, real = [], torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get('weights_only'))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, 'load', spy)
    return calls


def _zoo(monkeypatch, url_of):
    """Point mmengine's model lists at the loopback server (mmengine reads them from its package files)."""
    from mmengine.runner import checkpoint as mm_ckpt
    monkeypatch.setattr(mm_ckpt, 'get_torchvision_models', lambda: {'toy': url_of('toy.pth')})
    monkeypatch.setattr(mm_ckpt, 'get_external_models', lambda: {'toy': url_of('toy.pth'), 'local': 'local/toy.pth'})
    monkeypatch.setattr(mm_ckpt, 'get_deprecated_model_names', lambda: {'old_toy': 'toy'})
    monkeypatch.setattr(mm_ckpt, 'get_mmcls_models', lambda: {'toy': url_of('toy.pth')})


SCHEMES = ['http://{host}/toy.pth', 'torchvision://toy', 'modelzoo://toy', 'open-mmlab://toy', 'openmmlab://toy',
           'open-mmlab://old_toy', 'open-mmlab://local', 'mmcls://toy']  # (https:// has the http loader)


def _name(scheme, base):
    return scheme.format(host=base[len('http://'):])


@pytest.mark.parametrize('scheme', SCHEMES)
def test_every_checkpoint_scheme_reads_through_the_safe_loader(scheme, served, monkeypatch, torch_load_calls, tmp_path):
    """mmengine's http/torchvision/open-mmlab/mmcls loaders end in torch.hub's loader with weights_only=False:
    a checkpoint URL ran code. Now each scheme downloads into the cache and reads it with weights_only=True."""
    from mmengine.runner.checkpoint import _load_checkpoint
    root, base = served
    _zoo(monkeypatch, lambda f: f'{base}/{f}')
    local = tmp_path / 'mmengine_home' / 'local'
    local.mkdir(parents=True)
    good = {'state_dict': {'backbone.w': torch.arange(3.0)}}
    for folder in (root, local):
        torch.save(good, folder / 'toy.pth')
    name = _name(scheme, base)
    got = _load_checkpoint(name, map_location='cpu')
    key = 'w' if scheme.startswith('mmcls') else 'backbone.w'  # mmengine's mmcls post-processing strips it
    assert torch.equal(got['state_dict'][key], torch.arange(3.0))
    cached = cache_entry(f'{base}/toy.pth') / 'toy.pth'
    if 'local' not in scheme:  # downloaded once into torch's hub cache, keyed by the whole URL
        assert cached.is_file() and cached.is_relative_to(tmp_path / 'torch_home/hub/checkpoints')
    assert torch_load_calls and all(w is True for w in torch_load_calls), torch_load_calls

    marker = tmp_path / 'pwned'
    for folder in (root, local):
        torch.save({'state_dict': {'w': torch.zeros(1)}, 'x': _Evil(marker)}, folder / 'toy.pth')
    cached.unlink(missing_ok=True)  # download the evil one
    with pytest.raises(CheckpointError) as info:
        _load_checkpoint(name, map_location='cpu')
    message = str(info.value)
    assert 'toy.pth' in message and 'cannot be loaded safely' in message and 'posix.system' in message, message
    if 'local' not in scheme:
        assert f'(from {base}/toy.pth)' in message, message  # the URL it came from
    assert not marker.exists()
    assert all(w is True for w in torch_load_calls)


def test_no_unsafe_loader_is_left_registered():
    from mixcore.weights.mmengine_schemes import unsafe_loaders_left
    assert unsafe_loaders_left() == []


def test_url_weights_through_init_cfg_and_backbone_files(served, torch_load_calls, tmp_path):
    """init_cfg=dict(type='Pretrained', checkpoint=URL) (mmengine's initialiser) and a backbone ``checkpoint`` URL
    (MixsegViT / MixsegPVT read weights with read_weights) go through the same reader."""
    from mmengine.model import BaseModule
    root, base = served
    src = nn.Linear(2, 2)
    torch.save({'state_dict': src.state_dict()}, root / 'lin.pth')

    class Net(BaseModule):
        def __init__(self):
            super().__init__(init_cfg=dict(type='Pretrained', checkpoint=f'{base}/lin.pth'))
            self.weight, self.bias = nn.Parameter(torch.zeros(2, 2)), nn.Parameter(torch.zeros(2))

    net = Net()
    net.init_weights()
    assert torch.equal(net.weight, src.weight) and torch.equal(net.bias, src.bias)

    save_backbone_file(root / 'b.safetensors', {'w': torch.ones(2)}, arch='x', img_size=32, patch_size=16)
    sd, meta = read_weights(f'{base}/b.safetensors')
    assert torch.equal(sd['w'], torch.ones(2)) and meta['arch'] == 'x'
    torch.save({'w': torch.zeros(1), 'x': _Evil(tmp_path / 'pwned')}, root / 'evil.pth')
    with pytest.raises(CheckpointError, match='evil.pth.*cannot be loaded safely'):
        read_weights(f'{base}/evil.pth')
    with pytest.raises(CheckpointError, match='only local files and http'):
        read_weights('torchvision://resnet50')
    with pytest.raises(CheckpointError, match=f'{base}/missing.pth: download failed'):
        read_weights(f'{base}/missing.pth')
    assert not (tmp_path / 'pwned').exists() and all(w is True for w in torch_load_calls)


# ---------------------------------------------------------------------------------------------------------
# item 3: legacy / plain pickles

_ADVICE = re.compile(r'weights_only[`\s]*(=|set to)[`\s]*False|add_safe_globals|safe_globals\(', re.I)


@pytest.mark.parametrize('kind', ['legacy_torch_save_with_code', 'plain_pickle_with_code', 'plain_pickle_of_tensors'])
def test_legacy_pickle_refusal_names_the_file_and_never_advises_unsafe_loading(kind, tmp_path):
    from mmengine.runner import load_checkpoint
    marker = tmp_path / 'pwned'
    path = tmp_path / f'{kind}.pth'
    if kind == 'legacy_torch_save_with_code':
        torch.save({'w': torch.zeros(1), 'x': _Evil(marker)}, path, _use_new_zipfile_serialization=False)
    elif kind == 'plain_pickle_with_code':
        path.write_bytes(pickle.dumps({'w': [1.0], 'x': _Evil(marker)}, protocol=4))
    else:
        path.write_bytes(pickle.dumps({'w': torch.zeros(1)}, protocol=2))
    for load in (read_weights, lambda p: load_checkpoint(nn.Linear(1, 1), str(p), map_location='cpu')):
        with pytest.raises(CheckpointError) as info:
            load(path)
        message = str(info.value)
        assert message.startswith(f'{path}: cannot be loaded safely'), message
        assert not _ADVICE.search(message), message
        assert 'nothing was loaded' in message
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------------------
# item 13: permissions; item 15: full disk

def test_backbone_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        p = save_backbone_file(tmp_path / 'b.safetensors', {'w': torch.ones(2)}, arch='x', img_size=32, patch_size=16)
        torch.save({'w': torch.ones(2)}, tmp_path / 'ref.pth')
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == 0o644 == (tmp_path / 'ref.pth').stat().st_mode & 0o777


@pytest.mark.parametrize('failure', ['torch_unexpected_pos', 'enospc'])
def test_full_disk_names_the_file_and_keeps_the_previous_checkpoint(failure, tmp_path, monkeypatch):
    import mmengine.runner.runner as mm_runner

    from mixcore.atomic_write import DiskFullError
    from mixcore.runtime import install_atomic_checkpoints
    install_atomic_checkpoints()
    target = tmp_path / 'iter_4.pth'
    torch.save({'meta': {'iter': 2}}, target)
    real = torch.save

    def full(obj, f, *args, **kwargs):
        with open(f, 'wb') as fh:
            fh.write(b'partial')
        if failure == 'enospc':
            raise OSError(errno.ENOSPC, 'No space left on device')
        raise RuntimeError('[enforce fail at inline_container.cc:664] . unexpected pos 4160 vs 4054')

    monkeypatch.setattr(torch, 'save', full)
    with pytest.raises(DiskFullError) as info:
        mm_runner.save_checkpoint({'meta': {'iter': 4}}, str(target))
    monkeypatch.setattr(torch, 'save', real)
    message = str(info.value)
    assert message.startswith(f'{target}: not written: the disk is full'), message
    assert info.value.errno == errno.ENOSPC and 'MiB free' in message
    assert torch.load(target, weights_only=True) == {'meta': {'iter': 2}}  # the previous file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ['iter_4.pth']  # no temporary file left


# ---------------------------------------------------------------------------------------------------------
# items 1 and 14: the export tool

def _stored_config_checkpoint(tmp_path, text, state=None):
    path = tmp_path / 'ckpt.pth'
    torch.save({'meta': {'cfg': text, 'epoch': 1}, 'state_dict': state or {'w': torch.zeros(1)}}, path)
    return path


@pytest.mark.parametrize('case', ['top_level_dotted', 'nested_dotted', 'builtins_eval', 'unregistered_module_name'])
def test_export_never_imports_or_calls_a_type_from_a_stored_config(case, tmp_path, monkeypatch):
    """A literal ``type`` naming ``module.function`` was resolved by mmengine's registry fallback and called
    with the stored arguments (and an unregistered plain name was imported as a module)."""
    from mixseg.dense_export import export_any_checkpoint as export_checkpoint  # tools/export_backbone.py
    marker = tmp_path / 'pwned'
    (tmp_path / 'mixseg_trap.py').write_text(f'open({str(marker)!r}, "w").close()\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    cmd = f'touch {marker}'
    text, key, value = {
        'top_level_dotted': (f"model = dict(type='os.system', command={cmd!r})\n", 'model.type', 'os.system'),
        'nested_dotted': (f"model = dict(type='MixClassifier', arch='deit_tiny_patch16_224', num_classes=2, "
                          f"mixer=dict(type='os.system', command={cmd!r}))\n", 'model.mixer.type', 'os.system'),
        'builtins_eval': ("model = dict(type='MixClassifier', arch='deit_tiny_patch16_224', "
                          "data_preprocessor=dict(type='builtins.eval', source='1'))\n",
                          'model.data_preprocessor.type', 'builtins.eval'),
        'unregistered_module_name': ("model = dict(type='mixseg_trap')\n", 'model.type', 'mixseg_trap'),
    }[case]
    path = _stored_config_checkpoint(tmp_path, "default_scope = 'pretrain'\n" + text)
    with pytest.raises(CheckpointError) as info:
        export_checkpoint(str(path), str(tmp_path / 'out.safetensors'))
    message = str(info.value)
    assert message.startswith(f'{path} (meta.cfg): {key} = {value!r}'), message
    assert 'never imported or called' in message or 'nothing it names is imported or called' in message
    assert not marker.exists() and not (tmp_path / 'out.safetensors').exists()


def _dense_checkpoint(tmp_path, config, scope, backbone_file=None):
    """A stage-2 checkpoint as mmengine writes it: the model's state dict and the config's pretty text."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope, init_default_scope

    import mixseg.backbones.pvt  # noqa: F401
    import mixseg.backbones.vit  # noqa: F401
    cfg = Config.fromfile(config)
    if backbone_file:
        cfg.model.backbone.checkpoint = str(backbone_file)
    init_default_scope(scope)
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(cfg.model)
    torch.manual_seed(0)
    state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    path = tmp_path / f'{scope}_iter_3.pth'
    torch.save({'meta': {'cfg': cfg.pretty_text, 'iter': 3, 'epoch': 1}, 'state_dict': state}, path)
    return path, state


def test_export_of_a_segmentation_checkpoint_writes_its_vit_backbone(tmp_path, repo_root):
    from mixseg.backbones.vit import MixsegViT
    from mixcore.weights.backbone_file import load_backbone_file
    from mixseg.dense_export import export_any_checkpoint as export_checkpoint  # tools/export_backbone.py
    pretrained = save_backbone_file(tmp_path / 'pre.safetensors', {'w': torch.zeros(1)}, arch='vit_tiny_patch16_224',
                                    img_size=128, patch_size=8, method='tokenmix')
    config = str(repo_root / 'configs/demo/segmenter-mask_vit-demo_1xb4-200i_ade20k-demo-128x128.py')
    ckpt, state = _dense_checkpoint(tmp_path, config, 'mmseg', backbone_file=pretrained)
    out = export_checkpoint(str(ckpt), str(tmp_path / 'seg.safetensors'))
    bf = load_backbone_file(out)
    assert bf.meta['arch'] == 'vit_tiny_patch16_224' and bf.meta['img_size'] == [128, 128]
    assert bf.meta['patch_size'] == 8 and bf.meta['method'] == 'tokenmix' and bf.meta['task'] == 'segmentation'
    assert bf.meta['stage'] == 2 and bf.meta['iters'] == 3 and bf.meta['finetuned_from'] == str(pretrained)
    assert bf.meta['model_kwargs'] == dict(patch_size=8, embed_dim=96, depth=4, num_heads=3)
    want = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    assert set(bf.state_dict) == set(want) and all(torch.equal(bf.state_dict[k], v) for k, v in want.items())
    # the file loads back into a stage-2 backbone, also at another crop
    vit = MixsegViT(arch='vit_tiny_patch16_224', img_size=64, model_kwargs=bf.meta['model_kwargs'], checkpoint=str(out))
    vit.init_weights()
    assert torch.equal(vit.blocks[0].attn.qkv.weight, want['blocks.0.attn.qkv.weight'])


def test_export_of_a_detection_checkpoint_writes_its_pvt_backbone(tmp_path, repo_root):
    from mixseg.backbones.pvt import MixsegPVT
    from mixcore.weights.backbone_file import load_backbone_file
    from mixseg.dense_export import export_any_checkpoint as export_checkpoint  # tools/export_backbone.py
    config = str(repo_root / 'configs/demo/mask-rcnn_pvt-demo_fpn_1xb2-4e_coco-demo.py')
    ckpt, state = _dense_checkpoint(tmp_path, config, 'mmdet')
    out = export_checkpoint(str(ckpt), str(tmp_path / 'det.safetensors'))
    bf = load_backbone_file(out)
    assert bf.meta['arch'] == 'pvt_nano' and bf.meta['img_size'] == [128, 128] and bf.meta['patch_size'] == 32
    assert bf.meta['task'] == 'detection' and bf.meta['method'] is None  # random init: no pretraining method
    want = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    assert set(bf.state_dict) == set(want)
    pvt = MixsegPVT(arch='nano', pretrain_img_size=128, checkpoint=str(out))
    pvt.init_weights()
    assert all(torch.equal(v, want[k]) for k, v in pvt.state_dict().items())


def test_export_states_what_it_accepts(tmp_path):
    from mixseg.dense_export import export_any_checkpoint as export_checkpoint  # tools/export_backbone.py
    text = ("default_scope = 'mmdet'\nmodel = dict(type='MaskRCNN', backbone=dict(type='ResNet', depth=50))\n")
    path = _stored_config_checkpoint(tmp_path, text)
    with pytest.raises(CheckpointError, match=r"cannot export model.backbone type 'ResNet' \(model 'MaskRCNN'\): "
                                              r"tools/export_backbone.py reads stage-1 checkpoints \(MixClassifier\) "
                                              r"and stage-2 checkpoints whose backbone is MixsegViT or MixsegPVT"):
        export_checkpoint(str(path), str(tmp_path / 'out.safetensors'))
    assert not (tmp_path / 'out.safetensors').exists()


def test_export_checks_the_stored_backbone_arguments_before_building(tmp_path, monkeypatch):
    """issue 20 item 11: ``model_kwargs`` of a stored config reach ``timm.create_model`` when the export tool
    rebuilds the backbone; ``checkpoint_path`` made timm read the file it names."""
    import timm

    from mixseg.dense_export import export_any_checkpoint as export_checkpoint  # tools/export_backbone.py
    other = tmp_path / 'other.pth'
    torch.save({'w': torch.zeros(1)}, other)
    calls = []
    monkeypatch.setattr(timm, 'create_model', lambda *a, **k: calls.append(k))
    text = ("default_scope = 'mmseg'\nmodel = dict(type='EncoderDecoder', backbone=dict(type='MixsegViT', "
            f"arch='vit_tiny_patch16_224', img_size=32, model_kwargs=dict(checkpoint_path={str(other)!r})))\n")
    path = _stored_config_checkpoint(tmp_path, text, state={'backbone.w': torch.zeros(1)})
    with pytest.raises(CheckpointError) as info:
        export_checkpoint(str(path), str(tmp_path / 'out.safetensors'))
    message = str(info.value)
    assert message.startswith(f'{path} (meta.cfg): model.backbone.model_kwargs.checkpoint_path = '), message
    assert 'nothing was built' in message and calls == [] and not (tmp_path / 'out.safetensors').exists()


# ---------------------------------------------------------------------------------------------------------
# issue 22 item 7: the allow-list holds no callable such as getattr; a file using one is refused

class _GetAttr:
    def __reduce__(self):
        return (getattr, ('text', 'upper'))  # pickled as GLOBAL builtins.getattr + REDUCE


def test_the_safe_load_allow_list_holds_no_callable_that_reaches_code():
    import builtins
    import operator

    from mixcore.weights.safe_globals import safe_globals
    allowed = list(torch.serialization.get_safe_globals()) + safe_globals()
    allowed = [g[0] if isinstance(g, tuple) else g for g in allowed]
    dangerous = {getattr, setattr, delattr, eval, exec, compile, __import__, open, vars, globals,
                 operator.attrgetter, operator.methodcaller, functools.partial, os.system, builtins.breakpoint}
    assert not [g for g in allowed if any(g is d for d in dangerous)], allowed
    modules = ('builtins', 'operator', 'functools', 'os', 'posix', 'subprocess', 'importlib', 'sys', 'runpy')
    functions = [g for g in allowed if not isinstance(g, type) and getattr(g, '__module__', None) in modules]
    assert not functions, functions  # (torch allows the builtin exception classes: calling one runs nothing)
    classes = [g for g in allowed if isinstance(g, type) and g.__module__.split('.')[0] in modules[3:]]
    assert not classes, classes


def test_a_file_using_getattr_is_refused_naming_the_file(tmp_path):
    """HistoryBuffer's state is pickled as getattr(HistoryBuffer, 'min') by stock mmengine: mixseg writes it
    without, so that getattr need not (and must not) be allow-listed."""
    from mmengine.runner import load_checkpoint
    path = tmp_path / 'getattr.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'x': _GetAttr()}, path)
    assert b'getattr' in path.read_bytes()
    for load in (read_weights, lambda p: load_checkpoint(nn.Linear(1, 1), str(p), map_location='cpu')):
        with pytest.raises(CheckpointError) as info:
            load(path)
        message = str(info.value)
        assert message.startswith(f'{path}: cannot be loaded safely'), message
        assert re.search(r'refers to the global (builtins\.)?getattr ', message), message
