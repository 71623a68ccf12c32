# METHOD BASE — the DeiT baseline: per batch CutMix (α 1.0) with p 0.5, else Mixup (α 0.8); always mixed; label
# smoothing 0.1. Sources: facebookresearch/deit main.py defaults (--mixup 0.8 --cutmix 1.0 --mixup-prob 1.0
# --mixup-switch-prob 0.5 --smoothing 0.1); the same values in facebookresearch/xcit main.py and
# microsoft/Swin-Transformer config.py (AUG.MIXUP 0.8, AUG.CUTMIX 1.0, AUG.MIXUP_PROB 1.0, AUG.MIXUP_SWITCH_PROB 0.5,
# MODEL.LABEL_SMOOTHING 0.1); docs/paper_facts.md#pretraining-recipe.
#
# A method base gives `mixer` (model.mixer), optionally `loss` (model.loss) and `mixer_imports` (the modules that
# register a method of your own). A pretraining leaf config = model base + method base + data/schedule/runtime bases +
# what differs, and hands the mixer to the model:  model = dict(mixer=_base_.mixer)
# The mixer takes num_classes from the model (model.num_classes alone sets both). pretrain/mix/methods.py: the registry.
mixer = dict(type='deit_mix', mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5, label_smoothing=0.1)
