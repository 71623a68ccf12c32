"""Installs the patches of both stages (:mod:`mixcore.patches`, :mod:`pretrain.patches`) on import: the one
module of pretrain with a side effect, by design; stage-1 configs name it in ``custom_imports``."""
from .patches import install

install()
