from .class_attention import ClassAttentionProbe  # noqa: F401
from . import deit_patch14, pvt  # noqa: F401
