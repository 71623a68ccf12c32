# Runtime shared by the segmentation (mmseg) configs.
default_scope = 'mmseg'
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
# Training curves in TensorBoard (mmengine's TensorboardVisBackend, events in <work_dir>/<timestamp>/vis_data/):
# set True here, or `--cfg-options tensorboard=True`, or `tools/train.py --tensorboard` (mixcore.training_curves;
# needs `pip install tensorboard`).
tensorboard = False
log_level = 'INFO'
# a fixed seed: runs repeat, and a run resumed with --resume continues exactly (see mixcore.hooks); vary it
# with `tools/train.py --seed N`. diff_rank_seed: every rank draws its own augmentation and drop-path masks
# (seed + rank; with one seed all ranks would drop the same paths); the train sampler keeps one shared seed
# (tools/train.py pins it, mixcore.runtime.make_reproducible).
randomness = dict(seed=0, diff_rank_seed=True)
load_from = None
resume = False
# multi-scale + flip test (`tools/test.py --tta`): averages the logits of the dataset base's `tta_pipeline`
tta_model = dict(type='SegTTAModel')
