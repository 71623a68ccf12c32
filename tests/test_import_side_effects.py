"""Importing mixseg/pretrain changes nothing global; the patches are listed, documented and installed by install().

Skipped in the import walk: mixseg/install_patches.py and pretrain/install_patches.py, which install the patches
on import by design (configs name them in custom_imports).
"""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THIRD_PARTY = ('scipy', 'sympy', 'matplotlib.pyplot', 'torchvision', 'mmseg.models', 'mmseg.datasets',
               'mmdet.models', 'mmdet.datasets', 'pycocotools.coco')
INSTALLERS = {'mixseg.install_patches', 'pretrain.install_patches'}

SNAPSHOT = r'''
import json, sys, warnings
import torch, timm.data.auto_augment as aa
import mmengine.runner as r, mmengine.runner.checkpoint as c, mmengine.runner.runner as rr
import mmengine.utils.dl_utils as d
from mmengine import registry as reg
from mmengine.logging.history_buffer import HistoryBuffer
def snap():
    return dict(
        safe=sorted(map(repr, torch.serialization.get_safe_globals())),
        schemes={k: repr(v) for k, v in c.CheckpointLoader._schemes.items()},
        attrs={f'{m.__name__}.{n}': repr(getattr(m, n, None)) for m in (r, c, rr, d, getattr(d, 'hub', d))
               for n in ('find_latest_checkpoint', 'load_url', 'save_checkpoint', 'load_from_local',
                         'load_from_http', 'load_from_torchvision', 'load_from_openmmlab', 'load_from_mmcls',
                         'load_from_pavi', 'load_from_ceph')},
        history=repr(HistoryBuffer.__dict__.get('__getstate__')),
        timm=sorted(f'{k}={v!r}' for k, v in aa.NAME_TO_OP.items()),
        roots={n: sorted(getattr(reg, n).module_dict) for n in dir(reg) if n.isupper()
               and hasattr(getattr(reg, n), 'module_dict')},
        warnings=[repr(f) for f in warnings.filters])
'''


def _modules():
    for package in ('mixcore', 'pretrain', 'mixseg'):
        for path in sorted((ROOT / package).rglob('*.py')):
            name = '.'.join(path.relative_to(ROOT).with_suffix('').parts).removesuffix('.__init__')
            if name not in INSTALLERS:
                yield name


def _run(code):
    out = subprocess.run([sys.executable, '-c', SNAPSHOT + code], cwd=ROOT, capture_output=True, text=True,
                         env={'CUDA_VISIBLE_DEVICES': '-1', 'PATH': '/usr/bin:/bin'})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_every_module_changes_nothing_global():
    modules = list(_modules())
    assert 'mixcore.hooks' in modules and 'pretrain.data' in modules and 'pretrain.schedulers' in modules
    result = _run(f'''
import importlib
# third-party libraries add their own warning filters on import (scipy, sympy via mmseg): imported first
for lib in {THIRD_PARTY!r}:
    try:
        importlib.import_module(lib)
    except ImportError:
        pass
before = snap()
for name in {modules!r}:
    importlib.import_module(name)
after = snap()
print(json.dumps({{k: [before[k], after[k]] for k in before if before[k] != after[k] and k != 'roots'}}
                 | {{'roots': {{n: sorted(set(after['roots'][n]) - set(before['roots'][n]))
                               for n in after['roots'] if set(after['roots'][n]) - set(before['roots'][n])}}}}))
''')
    roots = result.pop('roots')
    assert result == {}, f'importing the packages changed global state: {sorted(result)}'
    # our hooks, functions, optimizer wrapper and transforms live in the child registries of mixcore.registry,
    # mixseg.registry and pretrain.registry: nothing of ours in mmengine's root registries
    assert roots == {}, f'registered into mmengine root registries: {roots}'


def test_every_patch_is_documented_and_in_effect_after_install():
    result = _run('''
import pretrain.patches
from mixcore import patches
before = snap()
names = patches.install()
once = snap()
again = patches.install()
twice = snap()
print(json.dumps(dict(patches=[[p.name, p.fixes, p.upstream, p.apply] for p in patches.PATCHES], names=names,
                      again=again, changed=sorted(k for k in before if before[k] != once[k]),
                      same=once == twice, hb=before['history'] != once['history'],
                      timm=[o for o in once['timm'] if 'posterize' in o.lower()],
                      left=__import__('mixcore.weights.mmengine_schemes', fromlist=['_']).unsafe_loaders_left(),
                      found=c.find_latest_checkpoint.__module__,
                      flt=[w for w in once['warnings'] if 'pkg_resources' in w])))
''')
    patches = result['patches']
    assert {p[0] for p in patches} >= {'safe-globals', 'checkpoint-schemes', 'find-latest-checkpoint',
                                       'atomic-checkpoints', 'pkg-resources-warning', 'timm-posterize',
                                       'history-buffer-state'}
    for name, fixes, upstream, apply in patches:
        assert len(fixes) > 30 and any(ch.isdigit() for ch in upstream) and ':' in apply, name
    assert result['names'] == result['again'] == sorted(p[0] for p in patches)
    assert set(result['changed']) >= {'safe', 'schemes', 'attrs', 'history', 'timm', 'warnings'}
    assert result['same'], 'install() twice changed global state again'
    assert all('_posterize' in o and 'mixseg' not in o for o in result['timm']) and result['timm']
    assert result['left'] == [] and result['found'] == 'mixcore.workdir'
    assert len(result['flt']) == 1


def test_timm_cosine_lr_lives_in_the_pretrain_scope():
    from mmengine.registry import PARAM_SCHEDULERS as ROOT_SCHEDULERS, DefaultScope

    from pretrain.registry import PARAM_SCHEDULERS
    import pretrain.schedulers  # noqa: F401
    assert PARAM_SCHEDULERS.get('TimmCosineLR') is pretrain.schedulers.TimmCosineLR
    assert 'TimmCosineLR' not in ROOT_SCHEDULERS.module_dict
    # what mmengine's Runner does with a config of default_scope 'pretrain' (configs/_base_/default_runtime.py)
    with DefaultScope.overwrite_default_scope('pretrain'):
        scheduler = ROOT_SCHEDULERS.build(dict(type='TimmCosineLR', optimizer=_optimizer(), t_initial=10))
    assert isinstance(scheduler, pretrain.schedulers.TimmCosineLR)


def _optimizer():
    import torch
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)


def test_a_config_loaded_by_mmengine_alone_installs_the_patches():
    """A run started with mmseg's/mmdet's own tools/train.py only loads the config: its custom_imports install."""
    result = _run('''
from mmengine.config import Config
from mixcore.weights.mmengine_schemes import unsafe_loaders_left
before = snap()
Config.fromfile('configs/segmenter/segmenter-linear_deit-b_8xb1-160k_ade20k-512x512.py')
seg = unsafe_loaders_left()
Config.fromfile('configs/pretrain/cait-s24_mixpro_8xb128-400e_in1k.py')
after = snap()
print(json.dumps(dict(seg=seg, left=unsafe_loaders_left(), unsafe_before=before['schemes'] != after['schemes'],
                      timm=before['timm'] != after['timm'])))
''')
    assert result == dict(seg=[], left=[], unsafe_before=True, timm=True)
