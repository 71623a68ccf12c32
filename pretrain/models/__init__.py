from .class_attention import ClassAttentionProbe, has_class_token, token_stride  # noqa: F401
from . import deit_patch14, pvt  # noqa: F401
