# METHOD BASE — MixPro (ICLR 2023): with p 0.5 a MaskMix batch (random cells of a 4×4 grid, 56 px on 224² images,
# ratio r ~ Beta(1, 1)) labelled by Progressive Attention Labeling λ = α·λ_attn + (1-α)·λ_area,
# α = cos(softmax(p), ỹ_area) (pal=True: the paper's results; the released configs set PAL_ATTN False, which the
# official family offers); otherwise the DeiT Mixup/CutMix switch. Sources: MixPro paper (MaskMix, PAL sections);
# fistyee/MixPro config.py MASKMIX_PROB 0.5, MASK_PATCH_SIZE 56; docs/paper_facts.md#mixpro.
# PAL needs class attention: on models without a class token (Swin) the leaf sets pal=False (area labels).
mixer = dict(type='mixpro_recipe', maskmix_prob=0.5, pal=True, mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5,
             label_smoothing=0.1)
