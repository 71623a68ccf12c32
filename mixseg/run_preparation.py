"""What tools/train.py and tools/test.py check before mmengine runs anything: the work dir holds no other run,
``--resume`` has something to resume, checkpoints must fit the model, and the results land in the table row of
the backbone the run was trained from. The checks live in :mod:`mixcore.workdir`, :mod:`mixcore.hooks` and
:mod:`mixseg.tables.rows`; this module applies them to a config and turns their errors into the tools' error exit
(``SystemExit('error: ...')``, as :func:`mixcore.runtime.load_config`).
"""
from __future__ import annotations

from .tables.rows import (BACKBONE_RECORD, TableRowError, backbone_record, derived_row_of_checkpoint,
                          explicit_row_options, resolve_table_row, row_from_backbone)
from mixcore.provenance import add_setup_hook
from mixcore.workdir import WorkDirError, claim_work_dir, dist_rank, resume_target, run_identity


def add_fit_hook(cfg, allow_partial: bool = False) -> None:
    """Checkpoints loaded by the Runner (``load_from``, ``--resume``) must fit the model
    (:class:`mixcore.hooks.CheckpointFitHook`); ``allow_partial``: ``--allow-partial-load``."""
    import mixcore.hooks  # noqa: F401  (registers the hook)
    hooks = [h for h in (cfg.get('custom_hooks') or []) if h.get('type') != 'mixcore.CheckpointFitHook']
    cfg.custom_hooks = hooks + [dict(type='mixcore.CheckpointFitHook', allow_partial=bool(allow_partial))]


def use_mixseg_checkpoint_hook(cfg) -> None:
    """mmengine's ``CheckpointHook`` → :class:`mixcore.hooks.MixsegCheckpointHook` (same arguments): relative
    ``last_checkpoint``, old checkpoints removed only after the new one is written."""
    import mixcore.hooks  # noqa: F401
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint')
    if checkpoint and checkpoint.get('type') == 'CheckpointHook':
        checkpoint['type'] = 'mixcore.MixsegCheckpointHook'


def _table_row(cfg, derived: dict, source, args, log) -> None:
    try:
        row, notes = resolve_table_row(cfg.get('table_row'), derived, explicit=explicit_row_options(args.cfg_options),
                                       source=source, config=args.config)
    except TableRowError as e:
        raise SystemExit(f'error: {args.config}: {e}') from e
    for note in notes:
        log(f'mixseg: {note}')
    if row is not None:
        cfg.table_row = row
    return row


def record_urls(cfg, args, log=print, keys=None) -> None:
    """Passwords out of the config and the options (they stay in this process), and ``cfg.weights_from_urls``:
    the cached file each weight URL (of ``keys``, default all) is read from
    (:func:`mixcore.weights.url_record.record_weight_urls`; downloaded now on rank 0, whose config is stored)."""
    from mixcore.weights.download import hide_credentials
    from mixcore.weights.url_record import record_weight_urls
    for name in ('checkpoint', 'resume', 'cfg_options'):
        if getattr(args, name, None):
            setattr(args, name, hide_credentials(getattr(args, name)))
    record_weight_urls(cfg, fetch=dist_rank() == 0, keys=keys, log=log)


def prepare_training(cfg, args, log=print) -> None:
    """tools/train.py: resolve ``--resume`` (nothing to resume, an empty ``last_checkpoint`` or a missing file
    are errors), swap in the checkpoint hook and the fit check, record the backbone file the run starts from
    (:data:`mixseg.tables.rows.BACKBONE_RECORD`, stored with the config in every checkpoint) and set ``table_row``
    from its metadata; the run's data and schedule go into every checkpoint (:mod:`mixcore.provenance`)."""
    if args.resume is not None:
        try:
            cfg.resume, cfg.load_from = True, resume_target(cfg.work_dir, args.resume)
        except WorkDirError as e:
            raise SystemExit(f'error: {e}') from e
    use_mixseg_checkpoint_hook(cfg)
    add_fit_hook(cfg, allow_partial=getattr(args, 'allow_partial_load', False))
    record_urls(cfg, args, log)
    add_setup_hook(cfg)  # data, dataset size and schedule into every checkpoint (the tables read them)
    record = backbone_record(cfg.get('model'))
    if record:
        cfg[BACKBONE_RECORD] = record
    _table_row(cfg, row_from_backbone(record) if record else {}, record and record['file'], args, log)


def prepare_testing(cfg, args, log=print):
    """tools/test.py: the fit check, and the table row of the run that wrote ``args.checkpoint`` (from the
    backbone it was trained from). Returns the row (``None``: no row)."""
    add_fit_hook(cfg, allow_partial=getattr(args, 'allow_partial_load', False))
    record_urls(cfg, args, log, keys=('load_from',))  # (a test run reads no backbone weights)
    derived, source = derived_row_of_checkpoint(args.checkpoint) if '://' not in args.checkpoint else ({}, None)
    row = _table_row(cfg, derived, source, args, log)
    return dict(row) if row else None


def claim_run_work_dir(cfg, args, log=print):
    """tools/train.py, right before the Runner: lock the work dir (rank 0), refuse it when another run holds it or
    its files (see :func:`mixcore.workdir.claim_work_dir`) and record this run's identity there. Returns the lock,
    a context manager the run holds until it ends."""
    try:
        return claim_work_dir(cfg.work_dir, run_identity(cfg, args), resume=args.resume is not None,
                       overwrite=getattr(args, 'overwrite_work_dir', False), rank=dist_rank(), log=log)
    except WorkDirError as e:
        raise SystemExit(f'error: {e}') from e
