from .class_attention import ClassAttentionProbe  # noqa: F401
from . import pvt  # noqa: F401
