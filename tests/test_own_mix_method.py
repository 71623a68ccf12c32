"""Issue 23 item 4: a mixing method of the user's own, end to end. A method is one module (its mixer registered in
pretrain's MODELS, its MixMethod in the method registry) plus one method config (``mixer``, ``mixer_imports``);
``tools/reproduce.py --method NAME=CONFIG`` gives it a row next to every baseline row of every table, trains it,
fills the rows, draws it in the mix figure, and ``tools/benchmark_mix.py --method`` times it.

The toy method lives in a temporary folder and is loaded only through the configs (``custom_imports`` of the
generated pretraining configs, ``mixer_imports`` of its method config), in subprocesses, so the method registry of
this test process stays the papers'."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

HALFMIX = textwrap.dedent('''
    """HalfMix: the right half of every image (whole tokens) comes from its partner; labels by area."""
    import torch

    from pretrain.mix.base import Mixer, paste
    from pretrain.mix.methods import MixMethod, register_mix_method
    from pretrain.registry import MODELS


    @MODELS.register_module()
    class HalfMix(Mixer):
        method = 'halfmix'

        def _mix(self, images, labels, grid):
            B, _, H, W = images.shape
            partner = self._partner(B, images.device)
            cols = grid[1] // 2 * self.patch_size            # the right half, on token borders
            mask = torch.zeros(1, H, W, device=images.device)
            mask[..., W - cols:] = 1
            lam = torch.tensor(cols / W, device=images.device)   # the partner's share
            token_mask = mask[:, ::self.patch_size, ::self.patch_size]
            return self._batch(paste(images, partner, mask), labels, partner, token_mask, lam)


    register_mix_method(MixMethod('halfmix', 'HalfMix', recipe='HalfMix'))
''')
CONFIG = "mixer = dict(type='HalfMix', label_smoothing=0.1)\nmixer_imports = ['halfmix']\n"


@pytest.fixture
def own_method(tmp_path):
    """(its folder, its method config, the environment that finds its module)."""
    folder = tmp_path / 'my_methods'
    folder.mkdir()
    (folder / 'halfmix.py').write_text(HALFMIX)
    config = folder / 'halfmix_config.py'
    config.write_text(CONFIG)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(folder), os.environ.get('PYTHONPATH', '')]),
               PYTHONWARNINGS='ignore', CUDA_VISIBLE_DEVICES='')
    return folder, config, env


def _run(args, env, timeout=900):
    r = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def test_the_papers_method_configs_are_their_recipes():
    """configs/_base_/methods/<name>.py of every paper method: read as the tools read a user's, its mixer is the
    method's registered recipe; the leaf configs take their mixer from it."""
    from pretrain.method_config import read_method_config
    from pretrain.mix.methods import list_mix_methods
    for m in list_mix_methods(papers_only=True):
        mc = read_method_config(ROOT / f'configs/_base_/methods/{m.name}.py', m.name)
        assert mc.mixer['type'] == m.recipe and mc.method is m and mc.imports == ()
    assert read_method_config(ROOT / 'configs/_base_/methods/tokenmix.py').loss['type'] == 'BinaryCrossEntropy'


def test_method_config_errors_name_the_file(tmp_path):
    from pretrain.method_config import parse_method_options, read_method_config
    cases = {
        "mixer = dict(type='transmix_recipe')\nmodel = dict(num_classes=2)\n": 'also sets model',
        "loss = dict(type='BinaryCrossEntropy')\n": '`mixer` must be a dict with a `type`',
        "mixer = dict(type='NoSuchMix')\n": "'NoSuchMix' is not registered in pretrain's MODELS",
        "mixer = dict(type='Mixup')\n": "'Mixup' is no registered method's recipe: register MixMethod",
        "mixer = dict(type='HalfMix')\nmixer_imports = ['no_such_module_here']\n": 'mixer_imports: .*PYTHONPATH',
    }
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f'm{i}.py'
        path.write_text(text)
        with pytest.raises(ValueError, match=message) as e:
            read_method_config(path)
        assert str(path) in str(e.value)
    with pytest.raises(ValueError, match="recipe of method 'transmix', not 'mymix'"):
        read_method_config(ROOT / 'configs/_base_/methods/transmix.py', 'mymix')
    with pytest.raises(ValueError, match='expected NAME=CONFIG'):
        parse_method_options(['configs/_base_/methods/transmix.py'])


def test_num_classes_once(tmp_path):
    """A 2-class run sets model.num_classes only: the mixer takes it from the model (and a mixer that says
    otherwise is an error, not a silent mismatch)."""
    from mmengine.config import Config

    from pretrain.classifier import MixClassifier
    cfg = Config.fromfile(str(ROOT / 'configs/demo/pretrain_vit-nano_transmix_demo.py'))
    cfg.merge_from_dict({'model.num_classes': 2})
    kw = {k: v for k, v in cfg.model.to_dict().items() if k != 'type'}
    model = MixClassifier(**kw)
    assert model.num_classes == 2 and model.mixer.num_classes == 2 and model.method == 'transmix'
    assert all(m.num_classes == 2 for m in model.mixer.mixers)
    out = model.mixer(torch.rand(4, 3, 64, 64), torch.tensor([0, 1, 0, 1]))
    assert out.targets(attn=torch.rand(4, 64).softmax(-1)).shape == (4, 2)
    with pytest.raises(ValueError, match="mixer.num_classes=10 differs from the model's num_classes=2"):
        MixClassifier(**dict(kw, mixer=dict(kw['mixer'], num_classes=10)))


@pytest.mark.slow
def test_a_users_method_end_to_end(own_method, tmp_path):
    folder, config, env = own_method
    work, data = tmp_path / 'w', tmp_path / 'd'
    method = ['--method', f'halfmix={config}']

    # (1) the plan: a HalfMix pretraining per demo model, a row next to every baseline row of every table
    rc, out = _run(['tools/reproduce.py', 'A', 'B', 'C', 'D', 'E', '--demo', '--methods', 'baseline', *method,
                    '--dry-run', '--figures', '--work-root', str(work), '--data-root', str(data)], env)
    assert rc == 0, out[-3000:]
    assert '] pretrain vit-nano halfmix' in out and '] pretrain pvt-nano halfmix' in out
    for row in ('| DeiT-S + HalfMix | Linear |', '| DeiT-S + HalfMix | Segmenter |', '| PVT-S + HalfMix |',
                '| DeiT-B + HalfMix | ✗ |', '| XCiT-L24 | HalfMix | — |', '| DeiT-S | HalfMix | — / not run |'):
        assert row in out, row
    generated = sorted((work / 'configs').rglob('*.py'))   # (a dry run writes these configs only)
    assert [p.name for p in generated] == ['pretrain_pvt-nano_halfmix_demo.py', 'pretrain_vit-nano_halfmix_demo.py']
    assert "'halfmix'" in generated[1].read_text() and not (work / 'pretrain').exists()

    # (2) a tiny demo run of Table D with the figures: the HalfMix rows get numbers, its backbone records the method
    rc, out = _run(['tools/reproduce.py', 'D', '--demo', '--methods', 'baseline', *method, '--figures',
                    '--work-root', str(work), '--data-root', str(data), '--demo-schedule', 'data_size=tiny',
                    'pretrain_epochs=1'], env)
    assert 'FAILED' not in out, out[-3000:]
    tables = (work / 'tables.md').read_text()
    for model in ('DeiT-T', 'PVT-S', 'Swin-T'):
        line, = [x for x in tables.splitlines() if x.startswith(f'| {model} | HalfMix | — | — / ')]
        assert 'not run' not in line, line
    meta = json.loads((work / 'imagenet-1k/D_deit-t_halfmix/results/ss.json').read_text())
    assert meta['table_row']['method'] == 'halfmix'
    from safetensors import safe_open
    with safe_open(str(work / 'pretrain/vit-nano_halfmix/backbone.safetensors'), 'pt') as f:
        assert json.loads(f.metadata()['method']) == 'halfmix'
    for model in ('vit-nano', 'pvt-nano'):   # (3) the mix figure draws it beside the papers' mixers
        assert (work / f'figures/mix/{model}/halfmix.png').stat().st_size > 10_000
        assert (work / f'figures/mix/{model}/transmix.png').is_file()

    # (4) a leaf config of one's own: model base + the method config + the other bases (README); the model's method
    leaf = folder / 'vit-nano_halfmix_leaf.py'
    bases = [ROOT / 'configs/_base_/models/vit-nano.py', config, ROOT / 'configs/_base_/datasets/imagenet_demo.py',
             ROOT / 'configs/_base_/schedules/imagenet_demo_adamw.py', ROOT / 'configs/_base_/pretrain_demo_runtime.py']
    leaf.write_text(f'_base_ = {[str(b) for b in bases]!r}\nmodel = dict(mixer=_base_.mixer)\n'
                    'custom_imports = dict(imports=_base_.custom_imports.imports + _base_.mixer_imports)\n')
    rc, out = _run(['-c', 'from mmengine import Config; from pretrain.classifier import MixClassifier; '
                    f'c = Config.fromfile({str(leaf)!r}); '
                    'm = MixClassifier(**{k: v for k, v in c.model.items() if k != "type"}); '
                    'print("built", m.method, type(m.mixer).__name__, m.mixer.num_classes)'], env)
    assert rc == 0 and 'built halfmix HalfMix 10' in out, out[-3000:]

    # (5) the benchmark times it next to CutMix
    rc, out = _run(['tools/benchmark_mix.py', '--model', 'vit_tiny_patch16_224', '--img-size', '64', '--batch', '4',
                    '--num-classes', '10', '--rounds', '1', '--only', 'cutmix', *method], env)
    assert rc == 0, out[-3000:]
    assert '| halfmix ' in out and '| cutmix ' in out
