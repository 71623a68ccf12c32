_base_ = [
    '../_base_/models/swin-s.py', '../_base_/datasets/imagenet_bs128_swin.py',
    '../_base_/schedules/imagenet_adamw_300e_swin.py', '../_base_/default_runtime.py',
]
# TokenMix (ECCV 2022) on Swin: token block masks (λ = 0.5, blocks ≥ 14 tokens) on Swin's 7×7 last-stage grid with
# p 0.5 else Mixup. Swin has no class token, so the activation maps come from a CNN teacher's class activation map
# (the paper's teacher-label source; ResNet-26, the paper's weak-teacher ablation, 80.5 vs NFNet-F6 80.8 on DeiT-S).
# The teacher's weights are a local file the user provides (nothing is downloaded). BCE (paper Table 11).
# (Official TokenMix: a 14×14 grid of 16-px tokens for every model; here the grid is Swin's own 32-px one.)
teacher_checkpoint = 'checkpoints/tokenmix_teacher_resnet26.pth'
model = dict(
    mixer=dict(type='tokenmix_recipe', mask_ratio=0.5, switch_prob=0.5, mixup_alpha=0.8, source='teacher',
               teacher=dict(type='CAMTeacher', model_name='resnet26', checkpoint=teacher_checkpoint),
               variant='paper', label_smoothing=0.1),
    loss=dict(type='BinaryCrossEntropy', smoothing=0.0))

use_ema = False  # True: EMA of the weights (decay 0.99996), used for validation and the exported backbone
custom_hooks = [dict(type='BackboneExportHook')] + ([_base_.ema_hook] if use_ema else [])
