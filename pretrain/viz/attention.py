"""The class token's attention over the patches at every layer (the TokenMix paper's Fig. 3), for one or several
models side by side on the same images (``tools/visualize_attention.py``).

:class:`LayerAttention` hooks every attention block's query/key projections (timm ViT/DeiT: ``attn.qkv``; PVT v1:
``attn.q`` and ``attn.kv`` of stage 4, the only stage with the class token) and computes only the class-token row
of each block (:func:`pretrain.models.class_attention.class_token_attention`), from the projections the single
forward pass computes anyway: the model keeps its fused attention and no B×heads×N×N matrix is ever formed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn

from ..models.class_attention import class_token_attention
from .models import LoadedModel, list_images, normalize, read_image, spread_over_classes

__all__ = ['LayerAttention', 'draw_attention', 'visualize_attention']


class LayerAttention:
    """``logits, maps = LayerAttention(model)(images)``: ``maps`` is a list (one per attention block, input to
    output) of B×h×w class-token attention over the patch tokens, head-averaged, float32.

    ViT/DeiT: every block; PVT v1: the blocks of stage 4 (stride 32), the only ones the class token takes part in.
    ``layer_names`` says which is which.
    """

    def __init__(self, model: nn.Module):
        if getattr(model, 'cls_token', None) is None:
            raise ValueError(f'{type(model).__name__} has no class token: there is no class attention to draw')
        self.model = model
        self.num_prefix_tokens = model.num_prefix_tokens
        hooks = []
        if hasattr(model, 'blocks') and hasattr(model, 'patch_embed'):  # timm VisionTransformer
            for i, blk in enumerate(model.blocks):
                attn = blk.attn
                if not isinstance(getattr(attn, 'qkv', None), nn.Module):
                    raise ValueError(f'block {i}: attention {type(attn).__name__} has no fused qkv projection')
                hooks.append((attn.qkv.register_forward_hook(self._qkv_hook(i, attn)),))
            self.patch_size = int(model.patch_embed.patch_size[0])
            self.layer_names = [f'layer {i + 1}' for i in range(len(model.blocks))]
        elif hasattr(model, 'block4'):  # mixseg PVT v1: the class token enters at stage 4
            for i, blk in enumerate(model.block4):
                attn = blk.attn
                hooks.append((attn.q.register_forward_hook(self._q_hook(i)),
                              attn.kv.register_forward_hook(self._kv_hook(i, attn))))
            self.patch_size = int(model.output_stride)
            self.layer_names = [f'stage 4 block {i + 1}' for i in range(len(model.block4))]
        else:
            raise ValueError(f'per-layer class attention supports timm VisionTransformer and mixseg PVT v1, '
                             f'got {type(model).__name__}')
        self._handles = [h for hs in hooks for h in hs]
        self._q = {}
        self._maps: dict[int, torch.Tensor] = {}

    @property
    def num_layers(self) -> int:
        return len(self.layer_names)

    def _qkv_hook(self, i, attn):
        dim = getattr(attn, 'attn_dim', attn.num_heads * attn.head_dim)

        def hook(module, args, out):
            # only the class token's query row and the keys are read; the full attention is never formed
            self._maps[i] = class_token_attention(attn, out[:, 0, :dim], out[..., dim:2 * dim], attn.num_heads,
                                                  self.num_prefix_tokens)
        return hook

    def _q_hook(self, i):
        def hook(module, args, out):
            self._q[i] = out[:, 0]
        return hook

    def _kv_hook(self, i, attn):
        dim = attn.num_heads * attn.head_dim

        def hook(module, args, out):
            self._maps[i] = class_token_attention(attn, self._q.pop(i), out[..., :dim], attn.num_heads,
                                                  self.num_prefix_tokens)
        return hook

    def remove(self):
        for h in self._handles:
            h.remove()
        self._handles = []

    @torch.no_grad()
    def __call__(self, images: torch.Tensor):
        H, W = images.shape[-2:]
        h, w = H // self.patch_size, W // self.patch_size
        self._maps, self._q = {}, {}
        logits = self.model(images)
        if len(self._maps) != self.num_layers:
            raise RuntimeError(f'{len(self._maps)} of {self.num_layers} attention blocks ran')
        maps = [self._maps[i] for i in range(self.num_layers)]
        self._maps = {}
        if maps[0].shape[1] != h * w:
            raise ValueError(f'attention over {maps[0].shape[1]} tokens, expected {h}x{w} for a {H}x{W} image')
        return logits, [m.view(-1, h, w) for m in maps]


def _heat(attn_map: torch.Tensor, size) -> torch.Tensor:
    """h×w → H×W (bilinear), scaled to [0, 1] per map (each layer's own range, as the paper's figure)."""
    import torch.nn.functional as F
    m = F.interpolate(attn_map[None, None].float(), size=tuple(size), mode='bilinear', align_corners=False)[0, 0]
    return (m - m.min()) / (m.max() - m.min()).clamp_min(1e-12)


def _wrap(text: str, width: int = 30) -> str:
    import textwrap
    return '\n'.join(textwrap.fill(line, width) for line in text.split('\n'))


def draw_attention(rows: Sequence[dict], out: Path, title: str) -> Path:
    """One figure: a row per model (its input crop, then the map of every layer over the image).

    ``rows``: dicts with ``image`` (3×H×W in [0, 1]), ``maps`` (list of h×w), ``names`` (layer names), ``label``
    (row title) and ``caption`` (under the image: prediction, or why there is none).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mixcore.atomic_write import atomic_write
    cols = 1 + max(len(r['maps']) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.9 * cols, 2.7 * len(rows) + 0.6), squeeze=False,
                             layout='constrained')
    for r, row in enumerate(rows):
        img = row['image'].permute(1, 2, 0).numpy()
        axes[r, 0].imshow(img)
        # wrapped to the panel's width, so that a long model name does not widen the first column
        axes[r, 0].set_title(_wrap(row['label']), fontsize=6, loc='left')
        axes[r, 0].set_xlabel(_wrap(row['caption']), fontsize=6)
        for c, (m, name) in enumerate(zip(row['maps'], row['names']), start=1):
            axes[r, c].imshow(img)
            axes[r, c].imshow(_heat(m, img.shape[:2]).numpy(), cmap='jet', alpha=0.55)
            axes[r, c].set_title(name, fontsize=7)
        for c in range(cols):
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if c > len(row['maps']):
                axes[r, c].axis('off')
    fig.suptitle(title, fontsize=8)

    def write(tmp):
        fig.savefig(tmp, dpi=90, format='png')
    path = atomic_write(out, write)
    plt.close(fig)
    return path


def _caption(loaded: LoadedModel, logits, classes, true_class) -> str:
    if not loaded.has_head:
        return 'no head: no prediction'
    p = logits.softmax(-1)[0]
    conf, k = p.max(0)
    name = classes[int(k)] if classes and int(k) < len(classes) else f'class {int(k)}'
    text = f'predicted: {name} ({conf:.2f})'
    if true_class is not None and classes and true_class in classes and loaded.num_classes == len(classes):
        text += ' = true class' if name == true_class else f'; {true_class}: {p[classes.index(true_class)]:.2f}'
    return text


def visualize_attention(models: Sequence[LoadedModel], images_dir, out_dir, num_images: int = 4,
                        crop_pct: float = 0.875) -> list[Path]:
    """Draw one PNG per image (``out_dir/<class>_<name>.png``): every model's per-layer class attention; and
    ``out_dir/attention.json``, what was drawn (models, images, figures), written last."""
    import json

    from mixcore.atomic_write import atomic_write_text
    from .models import describe
    paths, labels, classes = list_images(images_dir)
    probes = [LayerAttention(m.model) for m in models]
    written = []
    try:
        for idx in spread_over_classes(labels, num_images):
            rows = []
            for loaded, probe in zip(models, probes):
                image = read_image(paths[idx], loaded.img_size, crop_pct)
                logits, maps = probe(normalize(image, loaded)[None])
                rows.append(dict(image=image, maps=[m[0] for m in maps], names=probe.layer_names,
                                 label=_row_label(loaded), caption=_caption(loaded, logits, classes, labels[idx])))
            name = f'{labels[idx]}_{paths[idx].stem}' if labels[idx] else paths[idx].stem
            title = (f'{paths[idx].name}' + (f' (class {labels[idx]})' if labels[idx] else '')
                     + ': class-token attention over the patches at every layer, each map scaled to its own range')
            written.append(draw_attention(rows, Path(out_dir) / f'{name}.png', title))
    finally:
        for p in probes:
            p.remove()
    index = dict(images_dir=str(images_dir), models=[dict(describe(m), layers=p.layer_names)
                                                     for m, p in zip(models, probes)],
                 figures=[str(p) for p in written])
    atomic_write_text(Path(out_dir) / 'attention.json', json.dumps(index, indent=2) + '\n')
    return written


def _row_label(loaded: LoadedModel) -> str:
    if loaded.kind == 'untrained':
        return f'{loaded.arch}: random init, the maps are meaningless'
    what = ', '.join(str(x) for x in (loaded.method, f'{loaded.epochs} ep.' if loaded.epochs is not None else None)
                     if x)
    return f'{what + ": " if what else ""}{Path(loaded.source).name}\n{loaded.arch}'
