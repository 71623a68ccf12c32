"""Figures of the papers as library code (the tools in ``tools/`` are their command lines):

* :mod:`.attention` — class-token attention at every layer (TokenMix Fig. 3), ``tools/visualize_attention.py``;
* :mod:`.occlusion` — accuracy/confidence under random patch drop (TokenMix Fig. 4),
  ``tools/occlusion_robustness.py``;
* :mod:`.models` — a classifier or backbone rebuilt from a backbone file, a training checkpoint or a timm ``.pth``.

(The mixed-image figure, ``tools/visualize_mix.py``, needs :mod:`pretrain.mix` and lives with it.)
"""
