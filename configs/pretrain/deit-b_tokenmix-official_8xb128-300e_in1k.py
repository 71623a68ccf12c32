# TokenMix, OFFICIAL family: every value as the released code ran it (Sense-X/TokenMix main.py defaults,
# exp/deit_small/run.sh, tokenmix.py; docs/paper_facts.md#tokenmix), each with its source in
# configs/_base_/official/tokenmix_deit_in1k.py. DeiT-T/B: the README reports them (73.2 / 82.9) without a script;
# the DeiT-S command with the model swapped is assumed.
# The common-protocol family (one recipe for all methods) is configs/pretrain/*_tokenmix_8xb128-300e_in1k.py.
# Model: timm's deit_base_patch16_224 (TokenMix's deit.py registers deit_tiny / deit_small only; main.py builds any timm model, its --model default is deit_base_patch16_224); drop 0 (main.py --drop), drop path 0.1 (run.sh --drop-path 0.1) as the base.
_base_ = ['../_base_/models/deit-b.py', '../_base_/official/tokenmix_deit_in1k.py']
model = dict(mixer=_base_.tokenmix_mixer, loss=_base_.tokenmix_loss)
