""" Class-attention probe: the last block's class-token attention over the patch tokens, at no extra pass.

TransMix and MixPro label a mixed image by the class attention of the last block. Reading the attention matrix
would force the unfused attention path (B×heads×N×N in memory). The probe instead hooks the last block's query/key
projections (timm ViT: ``attn.qkv``; PVT v1: ``attn.q`` and ``attn.kv``; CaiT / XCiT: ``attn.q`` and ``attn.k`` of
the last class-attention layer), keeps the model's fused ``scaled_dot_product_attention`` untouched, and computes
only the class-token row:

    A = mean_heads softmax(q_cls · kᵀ · scale)[:, num_prefix_tokens:]        (O(N·d) per head)

which is exactly row 0 of the full attention matrix with the prefix (cls / dist / register) columns dropped.

CaiT and XCiT have no class token in their self-attention (talking-heads / cross-covariance) blocks: the class
token enters in the class-attention layers after them (timm ``Cait.blocks_token_only``, ``Xcit.cls_attn_blocks``,
both built on ``timm.models.cait.ClassAttn``). There the query is the class token only (``q(x[:, 0])``, B×C) and
the keys are over ``[cls, patches]`` (B×(1+h·w)×C); only the class row is attended (XCiT passes the normalised patch
tokens on without attention), so the row computed here is the whole attention of that layer. The last
class-attention layer is the one read; the grid is the patch embedding's (16 px for ``*_p16`` / ``patch16`` models).
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn

__all__ = ['ClassAttentionProbe', 'class_token_attention', 'has_class_token', 'token_stride']


def has_class_token(model: nn.Module) -> bool:
    """Whether ``model`` has a class token the probe can read (timm ViT/DeiT, CaiT, XCiT, mixseg PVT v1)."""
    return isinstance(getattr(model, 'cls_token', None), torch.Tensor)


def _pair(x) -> Tuple[int, int]:
    return (int(x), int(x)) if isinstance(x, int) else (int(x[0]), int(x[1]))


def token_stride(model: nn.Module) -> int:
    """The token grid of a model's last stage, in pixels: the grid the mixers' labels and the attention live on.

    Models with a class token: the probe's patch size (ViT/CaiT/XCiT 16, PVT v1 32). Hierarchical models without one
    (timm Swin: 4-px patches merged three times) the reduction of their last feature map (Swin: 32, a 7×7 grid at 224).
    """
    if has_class_token(model):
        return ClassAttentionProbe(model, enabled=False).patch_size
    info = getattr(model, 'feature_info', None)
    if info:
        reduction = info[-1]['reduction'] if isinstance(info, (list, tuple)) else info.reduction()[-1]
        return int(reduction)
    patch = getattr(getattr(model, 'patch_embed', None), 'patch_size', None)
    if patch is None:
        raise ValueError(f'cannot tell the token stride of {type(model).__name__}: no feature_info, no patch_embed')
    ph, pw = _pair(patch)
    if ph != pw:
        raise ValueError(f'{type(model).__name__}: non-square patches {patch}')
    return ph


class ClassAttentionProbe:
    """``logits, attn = probe(images)``; attn is B×(h·w), head-averaged, float32, detached.

    Supports timm ``VisionTransformer`` with a class token (``VisionTransformerDistilled`` too; its output is the
    model's own: averaged logits, or the (cls, dist) tuple when ``distilled_training`` is set in train mode),
    timm ``Cait`` and ``Xcit`` (the last class-attention layer) and mixseg's PVT v1 (class token in stage 4, stride 32).

    Not an nn.Module on purpose: a classifier that holds both the model and its probe saves the model's weights once.

    Args:
        model: the network; it is not modified (hooks are added to its last attention block).
        enabled: compute the attention (hooks present). ``probe.enabled = False`` removes the hooks: the
            forward pass is then the bare model's and ``attn`` is None.
    """

    def __init__(self, model: nn.Module, enabled: bool = True):
        self.model = model
        if getattr(model, 'cls_token', None) is None:
            raise ValueError(
                f'ClassAttentionProbe needs a model with a class token, {type(model).__name__} has none '
                f'(timm ViT with class_token=False or global-pool-only models cannot be probed)')
        ca_layers = getattr(model, 'blocks_token_only', None)  # timm Cait
        if ca_layers is None:
            ca_layers = getattr(model, 'cls_attn_blocks', None)  # timm Xcit
        num_prefix = getattr(model, 'num_prefix_tokens', 1)
        if ca_layers is not None:
            if len(ca_layers) == 0:
                raise ValueError(f'ClassAttentionProbe: {type(model).__name__} has no class-attention layer '
                                 f'(pruned head?)')
            attn = ca_layers[-1].attn
            if not all(isinstance(getattr(attn, n, None), nn.Linear) for n in ('q', 'k')):
                raise ValueError(f'ClassAttentionProbe: class-attention layer {type(attn).__name__} has no q / k '
                                 f'projections (timm ClassAttn expected)')
            self._proj = (attn.q, attn.k)
            patch = _pair(model.patch_embed.patch_size)
            self.attn_dim = attn.q.out_features
            num_prefix = 1  # keys over [cls, patches]
        elif hasattr(model, 'blocks') and hasattr(model, 'patch_embed'):
            attn = model.blocks[-1].attn
            if not isinstance(getattr(attn, 'qkv', None), nn.Module):
                raise ValueError(
                    f'ClassAttentionProbe: last block attention {type(attn).__name__} has no fused qkv projection')
            self._proj = (attn.qkv,)
            patch = tuple(model.patch_embed.patch_size)
            self.attn_dim = getattr(attn, 'attn_dim', attn.num_heads * attn.head_dim)
        elif hasattr(model, 'block4'):  # mixseg PVT v1
            attn = model.block4[-1].attn
            if getattr(attn, 'sr_ratio', 1) > 1:
                raise ValueError(f'ClassAttentionProbe: PVT stage 4 has sr_ratio={attn.sr_ratio}, expected 1')
            self._proj = (attn.q, attn.kv)
            patch = (model.output_stride,) * 2
            self.attn_dim = attn.num_heads * attn.head_dim
        else:
            raise ValueError(
                f'ClassAttentionProbe supports timm VisionTransformer, Cait, Xcit and mixseg PVT v1, got '
                f'{type(model).__name__}')
        if patch[0] != patch[1]:
            raise ValueError(f'ClassAttentionProbe expects square patches, got {patch}')
        self.attn_module = attn
        self.patch_size = patch[0]
        self.num_prefix_tokens = num_prefix
        self.num_heads = attn.num_heads
        self._handles = []
        self._q_cls = None
        self._attn = None
        self._capture = False
        self.enabled = enabled

    @property
    def enabled(self) -> bool:
        return bool(self._handles)

    @enabled.setter
    def enabled(self, value: bool):
        if value and not self._handles:
            if len(self._proj) == 1:
                self._handles = [self._proj[0].register_forward_hook(self._qkv_hook)]
            else:
                self._handles = [
                    self._proj[0].register_forward_hook(self._q_hook),
                    self._proj[1].register_forward_hook(self._kv_hook),
                ]
        elif not value:
            self.remove()

    def remove(self):
        """Remove the hooks from the model."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def grid_size(self, img_size) -> Tuple[int, int]:
        """(h, w) token grid of the attention for an image size (H, W)."""
        H, W = (img_size, img_size) if isinstance(img_size, int) else img_size
        if H % self.patch_size or W % self.patch_size:
            raise ValueError(f'image size {H}x{W} is not divisible by the model patch size {self.patch_size}')
        return H // self.patch_size, W // self.patch_size

    def __call__(self, images: torch.Tensor, with_attn: Optional[bool] = None):
        """Run the model; returns (model output, attn B×(h·w) or None).

        ``with_attn=False`` skips the attention for this call while the hooks stay (e.g. a TokenMix step that only
        needs attention on the clean images).
        """
        want = self.enabled if with_attn is None else with_attn
        if want and not self.enabled:
            raise ValueError('with_attn=True on a disabled probe: set probe.enabled = True first')
        grid = self.grid_size(images.shape[-2:])
        self._capture, self._attn, self._q_cls = want, None, None
        try:
            logits = self.model(images)
        finally:
            self._capture = False
        attn, self._attn, self._q_cls = self._attn, None, None
        if want:
            if attn is None:
                raise RuntimeError('ClassAttentionProbe: the last attention block was not run by the forward pass')
            if attn.shape[1] != grid[0] * grid[1]:
                raise ValueError(
                    f'ClassAttentionProbe: attention over {attn.shape[1]} tokens, expected {grid[0]}x{grid[1]}')
        return logits, attn

    # --- hooks: only the class-token row is computed, from the projections the model computes anyway

    def _qkv_hook(self, module, args, out):
        if not self._capture:
            return
        D = self.attn_dim
        self._attn = self._class_attention(out[:, 0, :D], out[..., D:2 * D])

    def _q_hook(self, module, args, out):
        if self._capture:  # PVT: q of all tokens (B×N×D); CaiT / XCiT ClassAttn: q of the class token only (B×D)
            self._q_cls = out if out.ndim == 2 else out[:, 0]

    def _kv_hook(self, module, args, out):
        if not self._capture:
            return
        if self._q_cls is None:
            raise RuntimeError('ClassAttentionProbe: the key projection ran before the query projection')
        self._attn = self._class_attention(self._q_cls, out[..., :self.attn_dim])

    @torch.no_grad()
    def _class_attention(self, q_cls: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return class_token_attention(self.attn_module, q_cls, k, self.num_heads, self.num_prefix_tokens)

    def __repr__(self):
        return (f'ClassAttentionProbe({type(self.model).__name__}, patch_size={self.patch_size}, '
                f'num_prefix_tokens={self.num_prefix_tokens}, enabled={self.enabled})')


@torch.no_grad()
def class_token_attention(attn: nn.Module, q_cls: torch.Tensor, k: torch.Tensor, num_heads: int,
                          num_prefix_tokens: int) -> torch.Tensor:
    """q_cls B×D (class token's query), k B×N×D (keys of one attention block) → B×(N - prefix), the head-mean of
    softmax(q_cls·kᵀ·scale) over the patch tokens. ``attn`` gives ``scale`` and the optional ``q_norm``/``k_norm``
    (timm); also used per layer by :mod:`pretrain.viz.attention`."""
    B, N, _ = k.shape
    q = q_cls.reshape(B, num_heads, -1)
    k = k.reshape(B, N, num_heads, -1)
    q_norm, k_norm = getattr(attn, 'q_norm', None), getattr(attn, 'k_norm', None)
    if q_norm is not None:
        q, k = q_norm(q), k_norm(k)
    device = q.device.type if torch.amp.is_autocast_available(q.device.type) else 'cpu'  # meta: none
    with torch.autocast(device_type=device, enabled=False):  # float32 also inside the step's autocast
        logits = torch.einsum('bhd,bnhd->bhn', q.float(), k.float()) * attn.scale
        return logits.softmax(-1).mean(1)[:, num_prefix_tokens:]
