"""What the recipe docs state about each config is what the config resolves to.

docs/RECIPES.md (official TransMix / MixPro / TokenMix vs the common protocol) and docs/pretrain_models.md (the
CaiT / XCiT / Swin recipes) hold their values in tables. This test parses every row of those tables and compares
each cell with the value rendered from every config the column describes (a cell ``T/S …; B …`` gives per-model
values; numbers compare by value: ``1e-3`` = ``0.001``). A row the test cannot check is listed in UNCHECKED
with the reason, so that a new row is either checked or deliberately left out.
"""
import re
from pathlib import Path

import pytest
from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[1]
PRETRAIN = ROOT / 'configs/pretrain'
NUM = re.compile(r'(?<![\w.])\d+(?:\.\d+)?(?:e-?\d+)?(?![\w.])')


def norm(text: str) -> str:
    """Markup and spacing removed, every number in one spelling (``1e-3`` → ``0.001``, ``5`` → ``5.0``)."""
    text = ' '.join(text.replace('**', '').split())
    return NUM.sub(lambda m: repr(float(m.group())), text)


def md_table(path: Path, header_start: str) -> tuple[list[str], dict[str, list[str]]]:
    """The table whose header row starts with ``header_start``: (header cells, {row label: cells})."""
    lines = path.read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(header_start)]
    assert len(starts) == 1, f'{path.name}: {len(starts)} tables start with {header_start!r} (want 1)'

    def cells(line):
        return [c.strip() for c in line.strip().strip('|').split('|')]
    header, rows = cells(lines[starts[0]]), {}
    for line in lines[starts[0] + 2:]:
        if not line.startswith('|'):
            break
        row = cells(line)
        assert len(row) == len(header), f'{path.name}: row {row[0]!r} has {len(row)} cells, the header {len(header)}'
        rows[row[0]] = row
    return header, rows


def for_model(cell: str, size: str) -> str:
    """The part of a ``T/S …; B …`` cell for model ``size`` (the whole cell when it has no such parts)."""
    parts = [p.strip() for p in cell.replace('**', '').split(';')]
    tagged = [(re.match(r'([TSB](?:/[TSB])*) ', p), p) for p in parts]
    if not any(m for m, _ in tagged):
        return cell
    for m, p in tagged:
        if m and size in m.group(1).split('/'):
            return p[m.end():]
    untagged = [p for m, p in tagged if not m]
    assert untagged, f'cell {cell!r} gives no value for {size}'
    return untagged[0]


# ------------------------------------------------------------------------------ values rendered from a config
def e(x: float) -> str:
    return f'{x:g}'


def _cosine(cfg):
    """(scheduler kind, warmup epochs, warmup lr, min lr, cosine epochs, lag, per) of a config's lr schedule."""
    lr = cfg.optim_wrapper.optimizer.lr
    if len(cfg.param_scheduler) == 1:
        s, = cfg.param_scheduler
        assert s.type == 'TimmCosineLR'
        per = 'iteration' if s.get('convert_to_iter_based') or not s.get('by_epoch', True) else 'epoch'
        return 'timm', s.warmup_t, s.warmup_lr_init, s.lr_min, s.t_initial, s.get('lag', 0), per
    warm, cos = cfg.param_scheduler
    assert (warm.type, cos.type) == ('LinearLR', 'CosineAnnealingLR') and cos.begin == warm.end
    per = 'iteration' if cos.get('convert_to_iter_based') else 'epoch'
    return 'after', warm.end, warm.start_factor * lr, cos.eta_min, cos.end, 0, per


def schedule(cfg) -> str:
    kind, _, _, _, _, lag, per = _cosine(cfg)
    if kind == 'after':
        return f'per {per}, cosine after the warmup'
    first = 'epoch' if per == 'epoch' else 'step'
    return f'per {per}, timm cosine from {first} 0' + (f', one {per} late' if lag == 1 else '')


def gpus_batch(cfg):
    bs = cfg.train_dataloader.batch_size
    gpus = cfg.auto_scale_lr.base_batch_size // bs
    assert gpus * bs == cfg.auto_scale_lr.base_batch_size
    return gpus, bs


def total_batch_lr(cfg):
    gpus, bs = gpus_batch(cfg)
    return f'{gpus * bs} ({gpus}×{bs}) / {e(cfg.optim_wrapper.optimizer.lr)}'


def ema(cfg):
    hooks = [h for h in cfg.custom_hooks if h.type == 'EMAHook']
    return f'on, decay {round(1 - hooks[0].momentum, 10)}' if hooks else 'off'


def repeats(cfg):
    s = cfg.train_dataloader.sampler
    return f'×{s.num_repeats}' if s.type == 'RepeatAugSampler' else 'none'


def epochs(cfg):
    t = _cosine(cfg)[4]
    cool = cfg.train_cfg.max_epochs - t
    return f'{t}' + (f' + {cool} cooldown at min lr' if cool else '')


def precision(cfg):
    return {'OptimWrapper': 'off', 'AmpOptimWrapper': 'fp16 AMP'}[cfg.optim_wrapper.type]


def train_t(cfg):
    return cfg.train_dataloader.dataset.pipeline[0]


def clip(cfg):
    c = cfg.optim_wrapper.get('clip_grad')
    return e(c.max_norm) if c else 'none'


def labels(cfg):
    src = cfg.model.mixer.get('source')
    if src == 'label_maps':
        assert cfg.train_dataloader.dataset.type == 'ImageNetFolderWithLabelMaps' and \
            cfg.train_dataloader.dataset.label_map_root
    return {'label_maps': 'label maps', 'teacher': 'CAM teacher', 'attention': 'class attention'}[src]


def warmup_min(cfg):
    _, w, wl, ml, _, _, _ = _cosine(cfg)
    return f'{w} epochs from {e(wl)} / {e(ml)}'


def maskmix(cfg):
    """The config's MaskMix as a run builds it (the recipe builder fills what the config leaves out)."""
    from mmengine.registry import DefaultScope

    import pretrain.classifier  # noqa: F401  (registers)
    from pretrain import mix
    from pretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('pretrain'):
        switch = MODELS.build(dict(cfg.model.mixer, num_classes=cfg.model.num_classes))
    found = [m for m in switch.mixers if isinstance(m, mix.MaskMix)]
    assert len(found) == 1, cfg.model.mixer
    return found[0]


def contains(text):
    return ('contains', text)


ROWS = {  # row label -> value rendered from a config (the cell starts with it, or ('contains', text))
    'total batch / lr': total_batch_lr,
    'switch prob (TransMix vs Mixup)': lambda c: e(c.model.mixer.switch_prob),
    'weight decay, warmup': lambda c: f'{e(c.optim_wrapper.optimizer.weight_decay)}, {_cosine(c)[1]}',
    'EMA': ema,
    'random erasing': lambda c: e(train_t(c).re_prob),
    'repeated augmentation': repeats,
    'epochs': epochs,
    'lr schedule': schedule,
    'train interpolation': lambda c: train_t(c).interpolation,
    'eval crop': lambda c: e(c.val_dataloader.dataset.pipeline[0].crop_pct),
    'seed': lambda c: str(c.randomness.seed),
    'mixed precision': precision,
    'model': lambda c: contains(f'`{c.model.arch}`'),
    # mask_patch None: the paper's 4×4 grid, 56-px cells at 224 (pretrain/mix/mixpro.py MaskMix)
    'MaskMix cell': lambda c: f'{maskmix(c).mask_patch or c.model.img_size // 4} px',
    'PAL': lambda c: 'on' if maskmix(c).pal else 'off',
    'warmup / min lr': warmup_min,
    'gradient clip': clip,
    'random erasing, repeated aug': lambda c: f'{e(train_t(c).re_prob)}, {repeats(c)}',
    'label source': labels,
    # docs/pretrain_models.md
    'GPUs × batch': lambda c: '{} × {}'.format(*gpus_batch(c)),
    'epochs / warmup': lambda c: f'{c.train_cfg.max_epochs} / {_cosine(c)[1]}',
    'lr / warmup lr / min lr': lambda c: '{} / {} / {}'.format(*map(e, (c.optim_wrapper.optimizer.lr,
                                                                     *_cosine(c)[2:4]))),
    'weight decay': lambda c: e(c.optim_wrapper.optimizer.weight_decay),
    'clip grad': clip,
    'drop path': lambda c: contains(f'{c.key_name} {e(c.model.drop_path_rate)}'),
    'repeated aug': repeats,
    'TokenMix labels': labels,
}
UNCHECKED = {
    'PAL label rule (when on)': 'a loss rule: tests/test_official_recipes.py compares it with the official loss',
    'source': 'where the values come from, not a value',
    'LayerScale init': 'timm model kwargs: tests/test_pretrain_configs_more.py',
}
ONLY = {'TokenMix labels': '_tokenmix_'}  # a row that describes only the configs whose name holds this
SIZES = {'t': 'T', 's': 'S', 'b': 'B'}


def configs(pattern):
    found = sorted(PRETRAIN.glob(pattern))
    assert found, pattern
    return found


def load(path):
    cfg = Config.fromfile(str(path))
    key = path.name.split('_')[0]  # deit-s, cait-xxs24, swin-t
    cfg.key_name = key.split('-', 1)[1].upper()
    return cfg


def check_cell(cell, cfg, path, row):
    want = ROWS[row](cfg)
    got = for_model(cell, SIZES.get(path.name[5], '?')) if path.name.startswith('deit-') else cell
    if isinstance(want, tuple):  # names as in the docs: 'XXS-24 0.05' for cait-xxs24
        ok = norm(want[1].replace('-', '')) in norm(got.replace('-', ''))
    else:  # the cell is the value, or the value then a remark: '(…)', '— …' or '; …'
        g, w = norm(got), norm(want)
        ok = g == w or (g.startswith(w) and re.match(r' \(| —|;', g[len(w):]) is not None)
    assert ok, f'{row!r}: the docs say {got!r}, {path.name} resolves to {want if isinstance(want, str) else want[1]!r}'


def check_table(doc, header_start, columns, required):
    header, rows = md_table(ROOT / 'docs' / doc, header_start)
    assert required <= set(rows), f'{doc}: rows missing: {sorted(required - set(rows))}'
    unknown = set(rows) - set(ROWS) - set(UNCHECKED)
    assert not unknown, f'{doc}: rows neither checked nor in UNCHECKED: {sorted(unknown)}'
    loaded = {col: [(p, load(p)) for p in paths] for col, paths in columns.items()}
    for label, row in rows.items():
        if label in UNCHECKED:
            continue
        for col, cfgs in loaded.items():
            i = header.index(col)
            cell = row[i] if row[i] != 'same' else row[i - 1]
            described = [(p, c) for p, c in cfgs if ONLY.get(label, '') in p.name]
            if cell == '—':  # no config of this column has the value
                assert not described, f'{doc}: {label!r} says — for {col}, but {described[0][0].name} has it'
                continue
            assert described, f'{doc}: {label!r} gives a value for {col}, which has no config it applies to'
            for path, cfg in described:
                check_cell(cell, cfg, path, label)


COMMON = ['total batch / lr', 'EMA', 'epochs', 'lr schedule', 'eval crop', 'seed', 'mixed precision']


@pytest.mark.parametrize('method', ['transmix', 'mixpro', 'tokenmix'])
def test_recipes_tables_state_what_the_configs_resolve_to(method):
    title = {'transmix': 'TransMix', 'mixpro': 'MixPro', 'tokenmix': 'TokenMix'}[method]
    required = {'transmix': {'switch prob (TransMix vs Mixup)', 'weight decay, warmup', 'random erasing',
                             'repeated augmentation', 'train interpolation'},
                'mixpro': {'model', 'PAL', 'warmup / min lr', 'gradient clip', 'random erasing, repeated aug'},
                'tokenmix': {'weight decay, warmup', 'random erasing', 'repeated augmentation', 'label source'},
                }[method] | (set(COMMON) - ({'epochs', 'eval crop', 'seed'} if method == 'mixpro' else set()))
    columns = {f'official {title}': configs(f'deit-*_{method}-official_*.py'),
               'common': configs(f'deit-*_{method}_8xb128-300e_in1k.py')}
    check_table('RECIPES.md', f'| value | official {title} |', columns, required)


def test_pretrain_models_recipe_table_states_what_the_configs_resolve_to():
    columns = {'CaiT': configs('cait-*.py'), 'XCiT': configs('xcit-*.py'),
               'Swin': [p for p in configs('swin-*.py') if '-official' not in p.name],
               "MixPro's Swin (`mixpro-official`)": configs('swin-*_mixpro-official_*.py')}
    required = {'GPUs × batch', 'epochs / warmup', 'lr / warmup lr / min lr', 'lr schedule', 'clip grad',
                'drop path', 'repeated aug', 'eval crop', 'EMA', 'mixed precision', 'TokenMix labels'}
    check_table('pretrain_models.md', '| | CaiT |', columns, required)


def test_no_doc_calls_an_autocast_path_fp32():
    """MixPro's main.py runs the forward under autocast on every path (O1 and O0): none of it is 'fp32'."""
    for path in (ROOT / 'docs/RECIPES.md', ROOT / 'configs/_base_/official/mixpro_deit_in1k.py'):
        assert 'fp32 path' not in path.read_text(), path


def test_for_model_and_norm():
    assert for_model('T/S 1024 (8×128) / 1e-3; B 512 (8×64) / 1e-3', 'B') == '512 (8×64) / 1e-3'
    assert for_model('T/B 0.05, 5; **S 0.03, 20**', 'S') == '0.03, 20'
    assert for_model('off (yaml `X`; paper: on)', 'S') == 'off (yaml `X`; paper: on)'
    assert norm('1e-3 / 1e-6') == norm('0.001 / 0.000001') and norm('0') == norm('0.0') != norm('0.05')
    swin = PRETRAIN / 'swin-t_mixpro-official_8xb128-300e_in1k.py'
    for cell in ('per iteration, cosine after the warmup', 'per iteration, timm cosine from step 0',
                 'per iteration, timm cosine from step 0, one epoch late',
                 'per iteration, timm cosine from step 0, one iteration later'):
        with pytest.raises(AssertionError, match='the docs say'):  # a value that only starts like the config's
            check_cell(cell, load(swin), swin, 'lr schedule')
    check_cell('per iteration, timm cosine from step 0, one iteration late (a remark)', load(swin), swin, 'lr schedule')
