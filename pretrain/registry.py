"""Stage-1 registries: children of mmengine's root registries under the scope ``'pretrain'``.

Configs of stage 1 set ``default_scope = 'pretrain'``; mmengine then looks a ``type`` up here first and
falls back to its root registries (``AdamW``, ``CosineAnnealingLR``, ``EMAHook``, ``DefaultSampler`` ...).
``locations`` are the modules mmengine imports the first time a registry is searched, so a config works
even if nothing imported ``pretrain`` beforehand. Every root registry has a (mostly empty) child here, as in
the OpenMMLab libraries, so that building e.g. an optimizer wrapper in this scope needs no fallback.
"""
from mmengine import registry as _root
from mmengine.registry import Registry

SCOPE = 'pretrain'

#: MixClassifier, ClsDataPreprocessor, timm's soft-target CE / BCE, the mixers of pretrain.mix and recipes.
MODELS = Registry('model', parent=_root.MODELS, scope=SCOPE, locations=['pretrain.classifier', 'pretrain.mixers'])
#: ImageNetFolder.
DATASETS = Registry('dataset', parent=_root.DATASETS, scope=SCOPE, locations=['pretrain.data'])
#: RepeatAugSampler (timm's repeated-augmentation sampler, mmengine signature).
DATA_SAMPLERS = Registry('data sampler', parent=_root.DATA_SAMPLERS, scope=SCOPE, locations=['pretrain.data'])
#: TimmTransform (timm's create_transform as a pipeline step).
TRANSFORMS = Registry('transform', parent=_root.TRANSFORMS, scope=SCOPE, locations=['pretrain.data'])
#: Accuracy (top-1/top-5).
METRICS = Registry('metric', parent=_root.METRICS, scope=SCOPE, locations=['pretrain.metrics'])
#: BackboneExportHook.
HOOKS = Registry('hook', parent=_root.HOOKS, scope=SCOPE, locations=['pretrain.export'])
#: TimmCosineLR (timm's cosine schedule, mmengine signature).
PARAM_SCHEDULERS = Registry('parameter scheduler', parent=_root.PARAM_SCHEDULERS, scope=SCOPE,
                            locations=['pretrain.schedulers'])

# Nothing of ours in these yet: children only, so lookups in this scope resolve without a fallback warning.
RUNNERS = Registry('runner', parent=_root.RUNNERS, scope=SCOPE)
RUNNER_CONSTRUCTORS = Registry('runner constructor', parent=_root.RUNNER_CONSTRUCTORS, scope=SCOPE)
LOOPS = Registry('loop', parent=_root.LOOPS, scope=SCOPE)
STRATEGIES = Registry('strategy', parent=_root.STRATEGIES, scope=SCOPE)
MODEL_WRAPPERS = Registry('model_wrapper', parent=_root.MODEL_WRAPPERS, scope=SCOPE)
WEIGHT_INITIALIZERS = Registry('weight initializer', parent=_root.WEIGHT_INITIALIZERS, scope=SCOPE)
OPTIMIZERS = Registry('optimizer', parent=_root.OPTIMIZERS, scope=SCOPE)
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=_root.OPTIM_WRAPPERS, scope=SCOPE)
OPTIM_WRAPPER_CONSTRUCTORS = Registry('optimizer wrapper constructor', parent=_root.OPTIM_WRAPPER_CONSTRUCTORS,
                                      scope=SCOPE)
EVALUATOR = Registry('evaluator', parent=_root.EVALUATOR, scope=SCOPE)
TASK_UTILS = Registry('task util', parent=_root.TASK_UTILS, scope=SCOPE)
VISUALIZERS = Registry('visualizer', parent=_root.VISUALIZERS, scope=SCOPE)
VISBACKENDS = Registry('vis_backend', parent=_root.VISBACKENDS, scope=SCOPE)
LOG_PROCESSORS = Registry('log_processor', parent=_root.LOG_PROCESSORS, scope=SCOPE)
INFERENCERS = Registry('inferencer', parent=_root.INFERENCERS, scope=SCOPE)
FUNCTIONS = Registry('function', parent=_root.FUNCTIONS, scope=SCOPE)
