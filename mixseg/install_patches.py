"""Installs :mod:`mixcore.patches` on import: the one module of mixseg with a side effect, by design.

Configs name it in ``custom_imports`` so that a run started with mmseg's, mmdet's or mmengine's own
``tools/train.py`` (which never calls :func:`mixcore.patches.install`) gets the same safe loading.
"""
from mixcore.patches import install

install()
