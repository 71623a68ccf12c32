"""What tools/train.py and tools/test.py share: one set of tools for the three scopes (stage-1 pretraining,
mmseg and mmdet configs). mmengine's Runner does the work; this module only adapts the config to the
command line and to machines without a GPU.
"""
from __future__ import annotations

import json
import math
import os
import os.path as osp
from pathlib import Path

import torch

from mixcore.atomic_write import atomic_write, atomic_write_text


def setup_cpu_distributed(cfg, launcher: str) -> None:
    """Multi-process training without a GPU.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and fails on a CPU-only machine, and its
    default DDP wrapper passes ``device_ids=[LOCAL_RANK]``. On CPU we therefore initialise the process
    group with ``gloo`` ourselves (before the Runner, which then skips its own initialisation) and wrap the
    model with ``device_ids=None``. On GPUs nothing changes (``nccl``, ``device_ids=[local_rank]``).
    """
    if launcher == 'none' or torch.cuda.is_available():
        return
    import torch.distributed as dist
    if launcher == 'slurm':  # map SLURM's variables onto the ones torch.distributed reads (as mmengine does)
        import subprocess
        os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
        os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
        os.environ.setdefault('LOCAL_RANK', os.environ['SLURM_LOCALID'])
        os.environ.setdefault('MASTER_PORT', '29500')
        if 'MASTER_ADDR' not in os.environ:  # the first node of the allocation
            nodes = os.environ.get('SLURM_NODELIST', '')
            first = subprocess.getoutput(f'scontrol show hostname {nodes} | head -n1').strip() if nodes else ''
            os.environ['MASTER_ADDR'] = first or '127.0.0.1'
    elif launcher == 'mpi':  # Open MPI's variables (mmengine's _init_dist_mpi reads the same)
        for ours, ompi in (('RANK', 'OMPI_COMM_WORLD_RANK'), ('WORLD_SIZE', 'OMPI_COMM_WORLD_SIZE'),
                           ('LOCAL_RANK', 'OMPI_COMM_WORLD_LOCAL_RANK')):
            os.environ.setdefault(ours, os.environ[ompi])
        os.environ.setdefault('MASTER_PORT', '29500')
        if 'MASTER_ADDR' not in os.environ:
            raise KeyError('launcher mpi: set MASTER_ADDR to the address of rank 0')
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    env_cfg = dict(cfg.get('env_cfg') or {})
    env_cfg['dist_cfg'] = dict(env_cfg.get('dist_cfg') or {}, backend='gloo')
    cfg.env_cfg = env_cfg
    # mmengine's own default wrapper (used when the config has none) sets these two; keep them
    wrapper = cfg.get('model_wrapper_cfg') or dict(type='MMDistributedDataParallel', broadcast_buffers=False,
                                                   find_unused_parameters=cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = dict(wrapper, device_ids=None)



def end_distributed() -> None:
    """Leave the process group cleanly once a run has finished on every rank: a barrier, so no rank exits while
    another still talks to it (rank 0 saving the last checkpoint), then ``destroy_process_group``. mmengine never
    destroys the group; a rank whose interpreter exits with gloo's threads still running aborts ("terminate called
    without an active exception", SIGABRT) and torchrun reports the whole run failed. Only on success: after an
    error the other ranks may never reach the barrier."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()

def load_config(args, before_options=None):
    """The config as both tools start from it: ``args.config`` with ``--cfg-options``, ``--data-root``,
    ``--launcher`` and the work dir (``--work-dir``, the config's, or ``./work_dirs/<config name>``).
    ``before_options(cfg)``: applied to the config as read, before the options (which win over it)."""
    from mmengine.config import Config
    if not osp.isfile(args.config):
        raise SystemExit(f'error: config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if before_options is not None:
        before_options(cfg)
    if args.cfg_options:
        from .cfg_options import check_cfg_options
        check_cfg_options(cfg, args.cfg_options, args.config)  # top-level keys nothing reads: an error
        cfg.merge_from_dict(args.cfg_options)
    if args.data_root:
        override_data_root(cfg, args.data_root)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or default_work_dir(args.config)
    return cfg


def install_atomic_checkpoints() -> None:
    """Make mmengine write checkpoints to a temporary file and rename it into place.

    mmengine's ``save_checkpoint`` writes straight into ``iter_N.pth``, so a run killed mid-write leaves a
    truncated checkpoint that ``--resume`` then picks up. Local paths go through
    :func:`mixcore.atomic_write.atomic_write`; other backends (``s3://``, ``pavi://``) keep mmengine's path.
    """
    import mmengine.runner.runner as mm_runner
    from mmengine.runner import checkpoint as mm_checkpoint
    if getattr(mm_runner.save_checkpoint, '_mixseg_atomic', False):
        return
    original = mm_checkpoint.save_checkpoint

    def save_checkpoint(checkpoint, filename, file_client_args=None, backend_args=None):
        if '://' in str(filename) or file_client_args is not None or backend_args is not None:
            return original(checkpoint, filename, file_client_args=file_client_args, backend_args=backend_args)
        # a run killed while saving leaves its temporary file (as large as a checkpoint); only rank 0 saves,
        # so any such file in the work dir is stale
        for stale in Path(filename).parent.glob('.*.pth.*.part'):
            stale.unlink(missing_ok=True)
        atomic_write(filename, lambda tmp: torch.save(checkpoint, tmp))

    save_checkpoint._mixseg_atomic = True
    mm_runner.save_checkpoint = save_checkpoint


def add_default_hooks(cfg) -> None:
    """Hooks every training run gets: the NaN guard, the num_classes check and the per-iteration reseeding
    that makes a resumed run draw what an uninterrupted one draws (see mixcore.hooks)."""
    import mixcore.hooks  # noqa: F401  (registers the hooks)
    hooks = list(cfg.get('custom_hooks') or [])
    for name in ('mixcore.NaNGuardHook', 'mixcore.NumClassesCheckHook', 'mixcore.ResumableRandomnessHook'):
        if not any(h.get('type') == name for h in hooks):
            hooks.append(dict(type=name))
    cfg.custom_hooks = hooks


def by_epoch(cfg) -> bool:
    """Whether the config trains with an epoch-based loop (``by_epoch=True`` or an ``Epoch...`` loop type)."""
    train_cfg = cfg.get('train_cfg') or {}
    return bool(train_cfg.get('by_epoch', 'Epoch' in str(train_cfg.get('type', ''))))


def make_reproducible(cfg) -> list:
    """Settings that make a run with a fixed seed repeat exactly, also across ``--resume``; returns what
    was changed (for the log).

    * With ``randomness.diff_rank_seed`` mmengine hands the samplers no seed, and they draw a fresh random
      one on every start, so two runs with the same seed — or a run and its resumption — shuffle
      differently. The train sampler gets the run's seed (the same on every rank, as samplers need).
    * In deterministic mode the persistent workers of an epoch-based train loop are turned off: persistent
      workers carry their random state from epoch to epoch, and a run resumed at epoch k cannot restore it.
      The workers started per epoch are seeded from (seed, epoch, worker, rank) by
      :func:`mixcore.hooks.epoch_seeded_worker_init_fn` (mmengine's would repeat one stream every epoch).
    """
    changes = []
    randomness = cfg.get('randomness') or {}
    loader = cfg.get('train_dataloader')
    if not loader:
        return changes
    sampler = loader.get('sampler') or {}
    seed = randomness.get('seed')
    if randomness.get('diff_rank_seed') and seed is not None and sampler and sampler.get('seed') is None:
        sampler['seed'] = int(seed)
        changes.append(f'train_dataloader sampler seed = {seed} (diff_rank_seed gives samplers none)')
    if (randomness.get('deterministic') and by_epoch(cfg) and loader.get('num_workers', 0) > 0
            and loader.get('persistent_workers')):
        loader['persistent_workers'] = False
        changes.append('train_dataloader.persistent_workers = False (deterministic mode, epoch-based loop)')
        if 'worker_init_fn' not in loader:
            import mixcore.hooks  # noqa: F401  (registers the function)
            loader['worker_init_fn'] = dict(type='mixcore.epoch_seeded_worker_init_fn')
            changes.append('train_dataloader.worker_init_fn = epoch_seeded_worker_init_fn (new seeds every epoch)')
    return changes


def dataset_configs(cfg_dataset):
    """The leaf dataset configs under dataset wrappers (RepeatDataset, ConcatDataset, ...)."""
    if not cfg_dataset:
        return
    if 'dataset' in cfg_dataset:
        yield from dataset_configs(cfg_dataset['dataset'])
    elif 'datasets' in cfg_dataset:
        for d in cfg_dataset['datasets']:
            yield from dataset_configs(d)
    else:
        yield cfg_dataset


def override_data_root(cfg, new_root: str) -> None:
    """Point every dataloader and evaluator of a config at another copy of the dataset.

    ``--cfg-options data_root=X`` cannot do this: a config's ``data_root`` variable is substituted into the
    dataloaders (and into COCO evaluators' ``ann_file``) when the file is parsed.
    """
    old = cfg.get('data_root')
    new_root = str(new_root)
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        for ds in dataset_configs(loader.get('dataset') if loader else None):
            if 'data_root' in ds:
                ds['data_root'] = new_root
        evaluators = cfg.get(f'{split}_evaluator')
        for ev in evaluators if isinstance(evaluators, list) else [evaluators] if evaluators else []:
            ann = ev.get('ann_file')
            if old and isinstance(ann, str) and ann.startswith(str(old)):
                ev['ann_file'] = osp.join(new_root, ann[len(str(old)):].lstrip('/'))
    cfg.data_root = new_root


def enable_amp(cfg, amp: str = 'fp16') -> None:
    """Mixed precision in the optim wrapper: 'fp16' (mmengine's AmpOptimWrapper, as mmseg/mmdet's ``--amp``) or
    'bf16' (no loss scaling); see :func:`mixcore.gpu.configure_amp`."""
    from .gpu import configure_amp
    configure_amp(cfg, amp)


def enable_tta(cfg, config_path: str) -> None:
    """Multi-scale + flip test (mmseg ``SegTTAModel`` / mmdet ``DetTTAModel``) from ``tta_model``/``tta_pipeline``."""
    if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
        raise ValueError(f'{config_path}: --tta needs `tta_model` and `tta_pipeline` in the config')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def default_work_dir(config_path: str) -> str:
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def _jsonable(v):
    if hasattr(v, 'item') and getattr(v, 'ndim', 0) == 0:
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)


def write_results(work_dir: str, tag: str, *, config: str, checkpoint: str | None, tta: bool, metrics: dict,
                  table_row: dict | None = None, setup: dict | None = None) -> Path:
    """``<work_dir>/results/<tag>.json``, written atomically; the tables tool (mixseg.tables) reads these.
    ``table_row`` (from the config) says which row of the papers' tables the run belongs to; ``setup`` what it
    was trained and tested on (:func:`mixcore.provenance.result_setup`; None: unknown)."""
    record = dict(config=config, checkpoint=checkpoint, tag=tag, tta=tta, table_row=_jsonable(table_row),
                  metrics=_jsonable(dict(metrics)), setup=_jsonable(setup))
    return atomic_write_text(Path(work_dir) / 'results' / f'{tag}.json', json.dumps(record, indent=2) + '\n')
