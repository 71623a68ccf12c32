"""GPU and cluster settings shared by tools/train.py and tools/test.py.

Everything here is a no-op on a machine without CUDA (the CPU demos and tests run unchanged), except what a
flag asks for explicitly. What a CUDA run gets (:func:`prepare_cuda_run`):

* TF32 matmuls and convolutions (:func:`enable_tf32`) — 8× the fp32 throughput of an A100/H100 tensor core;
* fused AdamW/Adam (one kernel for the whole update, and no host read of GradScaler's inf flag under fp16);
* stage 1: uint8 batches from the workers, normalised and randomly erased on the GPU (:func:`device_side_input`);
* validation results gathered through NCCL (``collect_device='gpu'``) instead of pickles in a shared folder;
* data-loader workers capped at the CPUs each rank owns (slurm ``--cpus-per-task`` / torchrun's share);
* a clear stop when a config needs mmcv's CUDA ops (RoIAlign, NMS) and mmcv was built without them.

Flags: ``--amp {fp16,bf16}`` (:func:`configure_amp`; bf16 only where the GPU has it natively, without a
GradScaler), ``--deterministic`` (:func:`deterministic_env` before CUDA starts, :func:`relax_determinism`
after mmengine's strict switch), ``--compile`` (:func:`compile_model`, in place).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Optional

import torch

# --- mixed precision ----------------------------------------------------------------------------------------

AMP_CHOICES = ('fp16', 'bf16')


def bf16_supported() -> bool:
    """A CUDA GPU with native bfloat16 (Ampere, sm_80, and newer); emulated bf16 (Turing) does not count."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)


def resolve_amp(choice: Optional[str], cfg=None) -> Optional[str]:
    """``--amp`` value → 'fp16' | 'bf16' | None. ``'auto'`` (the flag without a value): bf16 where the GPU has
    it natively, else fp16 — and fp16 for configs running mmcv ops (``cfg`` given; mmcv 2.1's RoIAlign/NMS CUDA
    kernels have no bfloat16, mmdet's AMP is fp16). An explicit bf16 that cannot run is an error, not a silent
    slow-down or a crash at the first RoIAlign."""
    if choice is None:
        return None
    if not torch.cuda.is_available():
        raise ValueError('--amp needs a CUDA GPU (none is visible; on CPU train without --amp)')
    if choice not in AMP_CHOICES + ('auto',):
        raise ValueError(f'--amp must be one of {AMP_CHOICES}, got {choice!r}')
    ops = cfg is not None and needs_mmcv_ops(cfg)
    if choice == 'auto':
        return 'bf16' if bf16_supported() and not ops else 'fp16'
    if choice == 'bf16' and not bf16_supported():
        name = torch.cuda.get_device_name()
        raise ValueError(f'--amp bf16: {name} has no native bfloat16 (needs sm_80 or newer); use --amp fp16')
    if choice == 'bf16' and ops:
        raise ValueError('--amp bf16: this model runs mmcv ops (RoIAlign, NMS) whose CUDA kernels have no '
                         'bfloat16; use --amp fp16')
    return choice


def amp_for_config(choice: Optional[str], cfg, config_path: str) -> Optional[str]:
    """:func:`resolve_amp` for a loaded config, stopping with the config named."""
    try:
        return resolve_amp(choice, cfg)
    except ValueError as e:
        raise SystemExit(f'error: {config_path}: {e}') from e


def configure_amp(cfg, amp: str) -> None:
    """Mixed precision in the config's optim wrapper.

    fp16: mmengine's ``AmpOptimWrapper`` with a dynamic GradScaler (as mmseg/mmdet ``--amp``). bf16: our
    :class:`BF16OptimWrapper` — autocast to bfloat16 and a plain optimizer step: bf16 has fp32's exponent
    range, so there is nothing to scale, and no scaler means no skipped steps and no inf check per step.
    """
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper not in ('OptimWrapper', 'AmpOptimWrapper', 'mixcore.BF16OptimWrapper'):
        raise ValueError(f'--amp is only supported with OptimWrapper, the config uses {wrapper}')
    ow = cfg.optim_wrapper
    if amp == 'fp16':
        ow.type = 'AmpOptimWrapper'
        ow.dtype = 'float16'
        ow.setdefault('loss_scale', 'dynamic')
    elif amp == 'bf16':
        ow.type = 'mixcore.BF16OptimWrapper'
        ow.dtype = 'bfloat16'
        ow.pop('loss_scale', None)
    else:
        raise ValueError(f'amp must be one of {AMP_CHOICES}, got {amp!r}')


def _register_bf16_wrapper():
    from mmengine.optim import OptimWrapper

    from .registry import OPTIM_WRAPPERS

    if 'BF16OptimWrapper' in OPTIM_WRAPPERS.module_dict:
        return OPTIM_WRAPPERS.module_dict['BF16OptimWrapper']

    @OPTIM_WRAPPERS.register_module()
    class BF16OptimWrapper(OptimWrapper):
        """``OptimWrapper`` whose forward runs under ``autocast(bfloat16)``; backward and step as fp32.

        mmengine's ``AmpOptimWrapper`` always creates a GradScaler (also for bf16), whose ``step`` reads its
        inf flag back to the host every iteration and which skips steps; bf16 needs neither. Checkpoints of
        an fp16 run (with a ``loss_scaler`` entry) load: the entry is dropped.
        """

        def __init__(self, *args, dtype='bfloat16', **kwargs):
            super().__init__(*args, **kwargs)
            self.cast_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
            if self.cast_dtype is not torch.bfloat16:
                raise ValueError(f'BF16OptimWrapper is for bfloat16, got dtype={dtype}')

        def load_state_dict(self, state_dict: dict) -> None:
            state_dict = dict(state_dict)
            state_dict.pop('loss_scaler', None)
            super().load_state_dict(state_dict)

        @contextmanager
        def optim_context(self, model):
            from mmengine.runner.amp import autocast
            with super().optim_context(model), autocast(dtype=self.cast_dtype):
                yield

    return BF16OptimWrapper


BF16OptimWrapper = None
try:  # registered on import (tools/train.py imports this module before building the runner)
    BF16OptimWrapper = _register_bf16_wrapper()
except ImportError:  # pragma: no cover - mmengine missing
    pass


def use_fused_optimizer(cfg) -> Optional[str]:
    """``fused=True`` for Adam/AdamW on CUDA (one kernel for all parameters; with fp16 the GradScaler then
    hands its inf flag to the kernel instead of reading it on the host). Returns the change, or None."""
    opt = (cfg.get('optim_wrapper') or {}).get('optimizer')
    if not opt or opt.get('type') not in ('AdamW', 'Adam') or 'fused' in opt or opt.get('foreach'):
        return None
    opt['fused'] = True
    return f'optim_wrapper.optimizer.fused = True ({opt["type"]} on CUDA)'


# --- TF32, determinism ----------------------------------------------------------------------------------------

def enable_tf32() -> None:
    """TF32 tensor cores for float32 matmuls and cuDNN convolutions (Ampere and newer; no effect before).

    Uses the legacy switches (``set_float32_matmul_precision('high')`` / ``cudnn.allow_tf32``): torch ≥ 2.9
    raises when a program mixes them with the new ``fp32_precision`` API, and the libraries read the legacy ones.
    """
    torch.set_float32_matmul_precision('high')
    torch.backends.cudnn.allow_tf32 = True


CUBLAS_WORKSPACE = ':4096:8'


def deterministic_env() -> None:
    """Call before CUDA starts: cuBLAS gives repeatable results only with a fixed workspace configuration
    (else ``torch.use_deterministic_algorithms(True)`` raises at the first matmul)."""
    os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', CUBLAS_WORKSPACE)


def relax_determinism() -> None:
    """After mmengine's ``set_random_seed(deterministic=True)`` (strict mode): keep deterministic kernels where
    they exist but only warn for ops without one (the backward of bilinear upsampling in every segmentation
    head and in position-embedding resizing, ``index_add``/``scatter_add`` in mmdet's losses) instead of
    raising at the first such op."""
    torch.use_deterministic_algorithms(True, warn_only=True)


# --- compile ---------------------------------------------------------------------------------------------------

COMPILE_TARGETS = ('model', 'backbone', 'neck', 'decode_head')


def compile_model(model, **kwargs) -> list[str]:
    """``torch.compile`` the networks of a mixseg/mmseg/mmdet model **in place** (``nn.Module.compile``).

    The compiled module stays the same object: forward hooks (the class-attention probe), ``state_dict`` keys
    (no ``_orig_mod.``), checkpoints and the exported backbone file are unchanged. Compiled: the timm network
    of a ``MixClassifier`` (``model``), and ``backbone``/``neck``/``decode_head`` of mmseg/mmdet models —
    not the mixing (CPU generator draws) or RoI heads (data-dependent shapes). Returns the compiled names.
    """
    from mmengine.model import is_model_wrapper
    base = model.module if is_model_wrapper(model) else model
    done = []
    for name in COMPILE_TARGETS:
        sub = getattr(base, name, None)
        if isinstance(sub, torch.nn.Module):
            sub.compile(**kwargs)
            done.append(name)
    if not done:
        raise ValueError(f'--compile: {type(base).__name__} has none of {COMPILE_TARGETS} to compile')
    return done


# --- mmcv ops -----------------------------------------------------------------------------------------------

_OPS_USERS = ('RoIAlign', 'nms', 'DeformConv', 'CARAFE', 'MultiScaleDeformableAttention')


def mmcv_cuda_ops() -> Optional[bool]:
    """Whether the installed mmcv was compiled with CUDA ops; None when mmcv's ops are missing altogether."""
    try:
        from mmcv.ops import get_compiling_cuda_version
    except ImportError:
        return None
    version = str(get_compiling_cuda_version())
    return version not in ('', 'not available')


def needs_mmcv_ops(cfg) -> bool:
    """Whether a config's model runs mmcv ops (mmdet models: RoIAlign, NMS)."""
    if cfg.get('default_scope') == 'mmdet':
        return True
    text = repr(cfg.get('model'))
    return any(name in text for name in _OPS_USERS)


def check_mmcv_ops(cfg, config_path: str) -> None:
    """Stop before building anything when a config needs mmcv's CUDA ops on a GPU and mmcv has CPU ops only
    (RoIAlign/NMS would fail at the first iteration with a bare 'not compiled with GPU support')."""
    if not torch.cuda.is_available() or not needs_mmcv_ops(cfg):
        return
    if mmcv_cuda_ops():
        return
    raise SystemExit(
        f'error: {config_path}: this model runs mmcv ops (RoIAlign, NMS) and the GPU is in use, but the installed '
        f'mmcv has CPU ops only. Rebuild it with CUDA ops on a machine with nvcc: `MMCV_CUDA=1 bash '
        f'tools/install.sh` (cached per torch/CUDA version, see README "GPUs"), or run on CPU with '
        f'CUDA_VISIBLE_DEVICES=-1.')


# --- loaders, evaluators, cluster variables --------------------------------------------------------------------

def cpus_per_rank(launcher: str = 'none') -> int:
    """CPUs one training process may use: slurm's ``--cpus-per-task``, else this process's CPU affinity shared
    among the ranks torchrun started on this node."""
    if os.environ.get('SLURM_CPUS_PER_TASK'):
        n = int(os.environ['SLURM_CPUS_PER_TASK'])
    else:
        n = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else (os.cpu_count() or 1)
    if launcher == 'pytorch':
        n //= max(1, int(os.environ.get('LOCAL_WORLD_SIZE', 1)))
    return max(1, n)


def fit_workers(cfg, launcher: str = 'none') -> list[str]:
    """Cap each dataloader's ``num_workers`` at the CPUs of one rank (more workers than cores only thrash).
    Returns the changes."""
    cap = cpus_per_rank(launcher)
    changes = []
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if loader and loader.get('num_workers', 0) > cap:
            changes.append(f'{split}_dataloader.num_workers = {cap} (was {loader.num_workers}; {cap} CPUs per rank)')
            loader.num_workers = cap
    return changes


def gather_on_gpu(cfg) -> list[str]:
    """Evaluators gather their per-rank results through NCCL (``collect_device='gpu'``). mmengine's default
    ('cpu') pickles them into ``./.dist_test/`` and needs that folder on a file system all nodes share."""
    changes = []
    for split in ('val', 'test'):
        ev = cfg.get(f'{split}_evaluator')
        for e in ev if isinstance(ev, (list, tuple)) else [ev] if ev else []:
            if 'collect_device' not in e and 'collect_dir' not in e:
                e['collect_device'] = 'gpu'
                changes.append(f'{split}_evaluator {e.get("type")}: collect_device = gpu')
    return changes


def device_side_input(cfg) -> list[str]:
    """Stage-1 configs: deliver uint8 batches and normalise + random-erase on the device.

    Every ``TimmTransform`` of the train/val/test pipelines gets ``uint8=True`` (no float conversion,
    normalisation or erasing in the workers) and the model's ``ClsDataPreprocessor`` gets their ``mean``/``std``
    and the train transform's erasing (``re_prob``/``re_mode``/``re_count``), as timm's ``PrefetchLoader``.
    Left alone (returns no change) unless all pipelines are single TimmTransforms with one mean/std.
    """
    from timm.data.constants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
    model = cfg.get('model') or {}
    pre = model.get('data_preprocessor') or dict(type='ClsDataPreprocessor')
    if model.get('type') != 'MixClassifier' or pre.get('type') != 'ClsDataPreprocessor':
        return []
    transforms, erasing = [], None
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        pipeline = (loader or {}).get('dataset', {}).get('pipeline') if loader else None
        if pipeline is None:
            continue
        if len(pipeline) != 1 or pipeline[0].get('type') != 'TimmTransform':
            return []
        t = pipeline[0]
        transforms.append(t)
        if split == 'train' and t.get('re_prob', 0) > 0:
            if t.get('re_split') or t.get('re_num_splits'):
                return []
            erasing = dict(probability=float(t['re_prob']), mode=t.get('re_mode', 'const'),
                           max_count=t.get('re_count', 1))
    stats = {(tuple(t.get('mean', IMAGENET_DEFAULT_MEAN)), tuple(t.get('std', IMAGENET_DEFAULT_STD)))
             for t in transforms}
    if not transforms or len(stats) != 1:
        return []
    (mean, std), = stats
    for t in transforms:
        t['uint8'] = True
    model['data_preprocessor'] = dict(pre, mean=list(mean), std=list(std), random_erasing=erasing)
    cfg.model = model
    return ['uint8 batches; normalisation' + (' and random erasing' if erasing else '') + ' on the GPU']


def prepare_cuda_run(cfg, launcher: str = 'none', train: bool = True) -> list[str]:
    """The defaults of a GPU run (no-op without CUDA); returns what was changed for the log."""
    if not torch.cuda.is_available():
        return []
    enable_tf32()
    changes = ['TF32 matmuls/convolutions on']
    if train:
        fused = use_fused_optimizer(cfg)
        changes += [fused] if fused else []
    changes += device_side_input(cfg)
    changes += fit_workers(cfg, launcher)
    changes += gather_on_gpu(cfg)
    return changes


def master_port(default: int = 29500) -> int:
    """A rendezvous port per slurm job (20000 + job id mod 10000, below Linux's ephemeral range), so two jobs
    sharing a node do not collide on 29500; ``default`` outside slurm."""
    job = os.environ.get('SLURM_JOB_ID', '')
    return 20000 + int(job) % 10000 if job.isdigit() else default


def set_launcher_env(launcher: str, local_rank: int = 0) -> None:
    """Environment the launchers leave out: ``LOCAL_RANK`` (Open MPI's local rank under ``--launcher mpi``, the
    ``--local-rank`` argument otherwise) and ``MASTER_PORT`` from the slurm job id (mmengine's slurm and
    MPI initialisation take ``MASTER_PORT`` from the environment when set)."""
    if launcher == 'mpi' and 'OMPI_COMM_WORLD_LOCAL_RANK' in os.environ:
        os.environ['LOCAL_RANK'] = os.environ['OMPI_COMM_WORLD_LOCAL_RANK']
    os.environ.setdefault('LOCAL_RANK', str(local_rank))
    if launcher in ('slurm', 'mpi'):
        os.environ.setdefault('MASTER_PORT', str(master_port()))


# --- the stack, for the smoke script ---------------------------------------------------------------------------

def stack_report() -> dict:
    """torch/CUDA/driver/GPU/bf16/mmcv facts (``python -m mixcore.gpu``)."""
    import platform
    import subprocess
    info = dict(python=platform.python_version(), torch=torch.__version__, torch_cuda=torch.version.cuda,
                torch_arch_list=' '.join(torch.cuda.get_arch_list()) if torch.cuda.is_available() else None,
                cuda_available=torch.cuda.is_available())
    try:
        out = subprocess.run(['nvidia-smi', '--query-gpu=driver_version', '--format=csv,noheader'],
                             capture_output=True, text=True, timeout=30)
        info['driver'] = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.TimeoutExpired):
        info['driver'] = None
    if torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name()
        info['gpus'] = torch.cuda.device_count()
        major, minor = torch.cuda.get_device_capability()
        info['arch'] = f'sm_{major}{minor}'
        info['arch_supported'] = f'sm_{major}{minor}' in torch.cuda.get_arch_list()
        info['bf16'] = bf16_supported()
    try:
        import mmcv
        info['mmcv'] = mmcv.__version__
    except ImportError:
        info['mmcv'] = None
    info['mmcv_cuda_ops'] = mmcv_cuda_ops()
    return info


def short_report(r: dict) -> str:
    gpu = f'{r["gpu"]} {r["arch"]}' if r.get('gpu') else 'no GPU'
    return (f'torch {r["torch"]} (CUDA {r["torch_cuda"]}), {gpu}, driver {r["driver"]}, bf16 {r.get("bf16")}, '
            f'mmcv CUDA ops {r["mmcv_cuda_ops"]}')


if __name__ == '__main__':
    import sys
    report = stack_report()
    if '--short' in sys.argv:
        print(short_report(report))
    else:
        for k, v in report.items():
            print(f'{k:16s} {v}')
