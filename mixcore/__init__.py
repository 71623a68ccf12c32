"""mixcore: the foundation layer of mixseg — what both stages stand on and that knows neither.

File I/O and safe reading (images, weight files, downloads), work directories and run records, config loading
and checks, the runtime pieces every run adds (hooks, schedules, GPU settings) and the one list of patches of
torch/mmengine/timm. It imports neither :mod:`pretrain` (stage 1) nor :mod:`mixseg` (stage 2 and reproduction);
see docs/CONTRACTS.md for the layers and who may import whom. Importing it changes nothing global.
"""
