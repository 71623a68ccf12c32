"""mixcore's child registries (scope ``'mixcore'``) of mmengine's root registries: the run-wide hooks, the worker
seeding function and the bf16 optimizer wrapper that every run gets, whatever its scope (pretrain, mmseg, mmdet).

Configs and the tools name them with the scope, ``dict(type='mixcore.NaNGuardHook')``: mmengine then imports this
module (``<scope>.registry``) and finds the name here, from any scope; nothing of ours lands in the root registries.
"""
from mmengine import registry as _root
from mmengine.registry import Registry

SCOPE = 'mixcore'

#: NaNGuardHook, NumClassesCheckHook, ResumableRandomnessHook, MixsegCheckpointHook, CheckpointFitHook, RunSetupHook
HOOKS = Registry('hook', parent=_root.HOOKS, scope=SCOPE, locations=['mixcore.hooks', 'mixcore.provenance'])
#: epoch_seeded_worker_init_fn
FUNCTIONS = Registry('function', parent=_root.FUNCTIONS, scope=SCOPE, locations=['mixcore.hooks'])
#: BF16OptimWrapper
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=_root.OPTIM_WRAPPERS, scope=SCOPE, locations=['mixcore.gpu'])


def scoped(name: str) -> str:
    """``'mixcore.<name>'``: how a config names one of these."""
    return f'{SCOPE}.{name}'
