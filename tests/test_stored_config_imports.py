"""A config stored in a checkpoint imports nothing through the keys mmengine turns into imports besides ``type``
(issue 20, item 9): ``_scope_`` (``build_from_cfg`` switches the scope and imports ``<scope>.registry``),
``default_scope``, ``custom_imports`` (``Config.fromfile``), and the ``type``-like ``constructor`` / ``runner_type``.

The trap is a package on ``sys.path`` whose import writes a marker file.
"""
import pytest
import torch

from mixcore.weights.errors import CheckpointError

TRAP = 'mixseg_scope_trap'
MODEL = "dict(type='MixClassifier', arch='deit_tiny_patch16_224', num_classes=2{extra})"


@pytest.fixture
def trap(tmp_path, monkeypatch):
    """The marker file that exists once ``mixseg_scope_trap`` (or its ``registry``) has been imported."""
    marker = tmp_path / 'imported'
    package = tmp_path / 'trap' / TRAP
    package.mkdir(parents=True)
    (package / '__init__.py').write_text(f'open({str(marker)!r}, "a").write("package ")\n')
    (package / 'registry.py').write_text(f'open({str(marker)!r}, "a").write("registry ")\n')
    monkeypatch.syspath_prepend(str(tmp_path / 'trap'))
    return marker


CASES = {  # stored config text, the key named in the error, its value
    'model_scope': (f"model = {MODEL.format(extra=f', _scope_={TRAP!r}')}\n", 'model._scope_', TRAP),
    'nested_scope': ("model = " + MODEL.format(extra=f", mixer=dict(type='TransMix', _scope_={TRAP!r})") + "\n",
                     'model.mixer._scope_', TRAP),
    'os_scope': (f"model = {MODEL.format(extra=', _scope_=' + repr('os'))}\n", 'model._scope_', 'os'),
    'default_scope': (f"model = {MODEL.format(extra='')}\n", 'default_scope', TRAP),
    'custom_imports': (f"custom_imports = dict(imports=['pretrain', {TRAP!r}])\nmodel = {MODEL.format(extra='')}\n",
                       'custom_imports.imports[1]', TRAP),
    'optim_constructor': (f"optim_wrapper = dict(constructor='{TRAP}.Builder')\nmodel = {MODEL.format(extra='')}\n",
                          'optim_wrapper.constructor', f'{TRAP}.Builder'),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_export_refuses_scopes_and_imports_outside_the_project(case, trap, tmp_path):
    from pretrain.export import export_checkpoint
    text, key, value = CASES[case]
    scope = f'default_scope = {TRAP!r}\n' if case == 'default_scope' else "default_scope = 'pretrain'\n"
    path = tmp_path / 'ckpt.pth'
    torch.save({'meta': {'cfg': scope + text, 'epoch': 1}, 'state_dict': {'w': torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError) as info:
        export_checkpoint(str(path), str(tmp_path / 'out.safetensors'))
    assert not trap.exists(), f'imported: {trap.read_text()}'
    message = str(info.value)
    assert message.startswith(f'{path} (meta.cfg): {key} = {value!r}'), message
    assert 'nothing it names is imported or called' in message
    assert not (tmp_path / 'out.safetensors').exists()


def test_the_project_scopes_and_imports_of_real_configs_pass(repo_root):
    from mmengine.config import Config

    from mixcore.stored_config import check_stored_types
    for config, scope in (('configs/demo/pretrain_vit-nano_baseline_demo.py', 'pretrain'),
                          ('configs/demo/segmenter-mask_vit-demo_1xb4-200i_ade20k-demo-128x128.py', 'mmseg')):
        cfg = Config.fromfile(str(repo_root / config)).to_dict()
        assert cfg['custom_imports']['imports']
        check_stored_types(dict(cfg, model=dict(cfg['model'], _scope_=scope)), config, scope,
                           built='model' if scope == 'pretrain' else 'model.backbone')


def test_while_building_the_registries_import_nothing_outside_the_project(trap):
    """The second line of defence: even a ``_scope_`` the check did not see imports no module while a stored
    config is built."""
    from mmengine.registry import DefaultScope

    from mixcore.stored_config import StoredConfigError, no_import_fallback
    from pretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('pretrain'), no_import_fallback('ckpt.pth'):
        with pytest.raises(StoredConfigError, match=f"ckpt.pth: building the stored config would import "
                                                    f"'{TRAP}.registry'"):
            MODELS.build(dict(type='MixClassifier', arch='deit_tiny_patch16_224', num_classes=2, _scope_=TRAP))
    assert not trap.exists()
