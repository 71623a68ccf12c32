# OFFICIAL FAMILY (MixPro as its official code ran it): DeiT-B with 14-px patches (deit_base_patch14_224, 16x16
# tokens at 224), fistyee/MixPro configs/deit/deit_base_patch14_mask112_224_alpha1_attn_all.yaml (the name says
# mask112, the file sets MASK_PATCH_SIZE 56) + config.py + main.py: 8 GPUs x 64 (README), lr 1e-3 (main.py's
# constant, also at this batch), warmup 20, 300 epochs, MaskMix 56 px with p 0.5, no EMA.
# Every value and its source: configs/_base_/official/mixpro_deit_in1k.py. The COMMON-PROTOCOL config of the same
# method (16-px DeiT, one recipe for every method): deit-b_mixpro_8xb128-300e_in1k.py.
_base_ = '../_base_/official/mixpro_deit_in1k.py'

pal = False  # MP/yaml AUG.PAL_ATTN: False (the released run); True: the paper's MaskMix + PAL
batch_per_gpu = 64  # MP/README DeiT-B: --batch-size 64
model = dict(
    arch='deit_base_patch14_224',  # MP/yaml MODEL.DEIT: PATCH_SIZE 14, EMBED_DIM 768, NUM_HEADS 12, DEPTHS 12
    drop_path_rate=0.1,            # MP/yaml MODEL.DROP_PATH_RATE: 0.1
    mixer=dict(pal=pal))
train_dataloader = dict(batch_size=batch_per_gpu)
val_dataloader = dict(batch_size=batch_per_gpu)
test_dataloader = dict(batch_size=batch_per_gpu)
auto_scale_lr = dict(base_batch_size=_base_.gpus * batch_per_gpu)  # 512: the lr 1e-3 belongs to 8 x 64 here
