"""Which row of the tables a run belongs to: the backbone file's metadata decides the method (and the model);
the config's ``table_row`` and ``--cfg-options table_row.<field>=...`` give the rest (:mod:`mixseg.run_preparation`
applies this to the tools' configs)."""
from __future__ import annotations


#: architecture names stage 1 writes into backbone files (timm; our PVT) → the tables' ``model`` keys
ARCH_MODELS = {'deit_tiny_patch16_224': 'deit-t', 'deit_small_patch16_224': 'deit-s',
               'deit_base_patch16_224': 'deit-b', 'pvt_tiny': 'pvt-t', 'pvt_small': 'pvt-s', 'pvt_medium': 'pvt-m',
               'pvt_large': 'pvt-l'}
# model_kwargs that make another network than the architecture's name says (the demo models)
_SIZE_KWARGS = ('embed_dim', 'embed_dims', 'depth', 'depths', 'num_heads', 'patch_size', 'mlp_ratio', 'mlp_ratios',
                'sr_ratios')


class TableRowError(ValueError):
    """The table row given for a run contradicts the backbone the run was trained from."""


def row_from_backbone(meta: dict) -> dict:
    """The ``table_row`` fields a backbone file's metadata decides: ``method``, and ``model`` when ``arch`` is
    one of the papers' architectures at its own size."""
    out = {}
    if meta.get('method'):
        out['method'] = str(meta['method'])
    kwargs = meta.get('model_kwargs') or {}
    if meta.get('arch') in ARCH_MODELS and not any(k in kwargs for k in _SIZE_KWARGS):
        out['model'] = ARCH_MODELS[meta['arch']]
    return out


def robustness_row(arch: str, model_kwargs: dict | None, method: str | None, model: str | None = None) -> dict:
    """Table E's row of a classifier: ``model`` (given, else the papers' name of its architecture at its own size,
    else the architecture) and ``method`` (what the checkpoint records; 'baseline' for official weights)."""
    derived = row_from_backbone(dict(arch=arch, model_kwargs=model_kwargs))
    return dict(table='E', model=model or derived.get('model', arch), method=method or 'baseline')


def resolve_table_row(row, derived: dict, *, explicit: dict, source: str, config: str):
    """The run's table row: the config's ``row`` with the fields ``derived`` from the backbone (``source``, its
    file) put in. A field given explicitly (``--cfg-options table_row.<field>=...``) that contradicts the backbone
    raises :class:`TableRowError` naming both; a config default it replaces is reported in the notes.
    Returns ``(row, notes)``; ``row`` stays ``None`` when the config is no row of the tables."""
    notes = []
    for k, v in derived.items():
        if k in explicit and str(explicit[k]) != str(v):
            raise TableRowError(
                f'--cfg-options table_row.{k}={explicit[k]} contradicts the backbone the run was trained from: '
                f'{source} says {k}={v!r}. Leave table_row.{k} out (it follows the backbone), or use the backbone '
                f'of {k} {explicit[k]!r}')
    if row is None:
        return None, notes
    out = dict(row)
    for k, v in derived.items():
        if out.get(k) is not None and str(out[k]) != str(v):
            notes.append(f'table_row.{k} = {v!r} from {source} (the config {config} says {out[k]!r})')
        out[k] = v
    return out, notes


def explicit_row_options(cfg_options: dict) -> dict:
    """The ``table_row`` fields set on the command line (``table_row.method=...`` or ``table_row={...}``)."""
    out = {}
    for key, value in (cfg_options or {}).items():
        if key == 'table_row' and isinstance(value, dict):
            out.update(value)
        elif str(key).startswith('table_row.'):
            out[str(key).split('.', 1)[1]] = value
    return out


def backbone_checkpoint(model_cfg) -> str | None:
    """The weight file a config's backbone starts from (``checkpoint``, or ``init_cfg=Pretrained``)."""
    backbone = (model_cfg or {}).get('backbone') or {}
    if isinstance(backbone, dict):
        if backbone.get('checkpoint'):
            return backbone['checkpoint']
        init = backbone.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            return init.get('checkpoint')
    return None


#: top-level config entry in which tools/train.py records the backbone file a run starts from (its metadata at
#: training time); it is stored with the config in every checkpoint, where tools/test.py finds it
BACKBONE_RECORD = 'pretrained_backbone'


def backbone_record(model_cfg) -> dict | None:
    """``dict(file=..., arch=..., method=..., ...)`` of the backbone file a training config starts from, or
    ``None`` (no backbone file, or one without metadata)."""
    from mixcore.weights.backbone_file import read_backbone_meta
    path = backbone_checkpoint(model_cfg)
    meta = read_backbone_meta(path) if path else {}
    if not meta:
        return None
    keep = ('arch', 'method', 'model_kwargs', 'img_size', 'patch_size', 'epochs', 'top1', 'source_config')
    return dict(file=str(path), **{k: meta.get(k) for k in keep})


def derived_row_of_checkpoint(checkpoint: str) -> tuple[dict, str | None]:
    """The row fields of the run that wrote ``checkpoint``: from the backbone record its stored training config
    carries (:data:`BACKBONE_RECORD`, written by ``tools/train.py``), else from the metadata of the backbone file
    that config names (checkpoints of older runs). The stored config is read as data
    (:func:`mixcore.stored_config.plain_config`)."""
    from mixcore.weights.backbone_file import read_backbone_meta
    from mixcore.weights.errors import CheckpointError
    from mixcore.weights.read import read_file
    from mixcore.stored_config import plain_config
    try:
        ckpt = read_file(checkpoint, mmap=True)
        text = ((ckpt.get('meta') or {}) if isinstance(ckpt, dict) else {}).get('cfg')
        stored = plain_config(text, checkpoint).to_dict() if text else {}
    except CheckpointError:
        return {}, None  # the run itself reports the file
    record = stored.get(BACKBONE_RECORD)
    if isinstance(record, dict) and record:
        return row_from_backbone(record), f'{record.get("file")} (the backbone the run that wrote {checkpoint} ' \
                                          f'started from)'
    path = backbone_checkpoint(stored.get('model'))
    meta = read_backbone_meta(path) if path else {}
    if meta:
        return row_from_backbone(meta), f'{path} (the backbone file named by the config stored in {checkpoint})'
    return {}, None

