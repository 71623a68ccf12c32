# Defaults shared by tools/slurm_train.sh, tools/slurm_test.sh and `tools/reproduce.py --submit` (which reads
# this file: mixseg.reproduce.slurm.CPUS_PER_GPU). Sourced, not run.
#
# CPUs per GPU task: one per data-loader worker. The README's loader measurement (DeiT-S at the GPU's rate
# needs 8-9 cores per GPU for the DeiT transform) gives DeiT's 10 workers per GPU, i.e. >= 80 cores per 8-GPU
# node; the tools cap num_workers at the CPUs a rank owns.
CPUS_PER_GPU=10
