""" MixPro (Zhao et al., ICLR 2023): MaskMix input mixing and Progressive Attention Labeling (PAL).

MaskMix cuts the image into a grid of square pixel cells at the paper's size (56 px on 224: a 4×4 grid), takes
each cell from the image or its partner, and labels on the attention grid through ↓M, the nearest-neighbour
downsampling of the pixel mask (each attention token takes the cell of its top-left pixel, as TransMix does for
CutMix boxes). Cell edges lie on the model's finest token grid (``input_unit``: ViT: the patch, PVT v1: stage 1's
4 px), so every input token comes from exactly one image:

* ViT-14 (MixPro's DeiT): 56-px cells = 4×4 tokens; ViT-8, 4-px PVT stage 1, Swin's 4-px patches: whole tokens too.
* PVT v1: 56-px cells (14×14 stage-1 tokens); the label side is the 7×7 stage-4 attention grid (32 px), so an
  attention token can straddle a cell edge and ↓M assigns it to the cell of its top-left pixel.
* ViT-16, where 56 px is 3.5 tokens: the cell **edges are snapped to the nearest token edge** (k·56 px rounded
  half up to a multiple of 16: 0, 64, 112, 176, 224), i.e. the 4×4 grid keeps its 16 cells but they are 4, 3, 4, 3
  tokens wide. λ_area is always the real pasted pixel share (Σ of the chosen cells' areas), not n / 16.

Before this, cells were whole attention tokens (32 px = one 7×7 token on PVT v1: MaskMix degenerated into random
token mixing there); the old behaviour is ``mask_patch=32`` on a model whose finest stride divides 32.
"""
from fractions import Fraction
from functools import lru_cache
from typing import FrozenSet, Optional, Tuple

import torch
import torch.nn.functional as F

from .base import MixedBatch, Mixer, attention_share, paste, random_subsets, sample_beta, smooth_one_hot, token_grid
from .methods import MixMethod, register_mix_method

__all__ = ['MaskMix', 'random_cells', 'cell_edges', 'progressive_attention_lam', 'ProgressiveAttentionLabel',
           'PAL_LABELS']

# 'paper': α = cos(softmax(p), ỹ_area) with one-hot ỹ_area, target (1-λ)·y + λ·y_b smoothed as every other method.
# 'official' (fistyee/MixPro main.py, AUG.PAL_ATTN branch): α uses the *smoothed* ỹ_area (utils.mixup_target,
#   ε = MODEL.LABEL_SMOOTHING = 0.1) and the loss is λ·CE(p, y_A) + (1-λ)·CE(p, y_B) on hard labels, which is
#   exactly soft-target CE against the unsmoothed target (1-λ)·y + λ·y_b (CE is linear in its target; λ keeps its
#   gradient either way): the batch's targets are therefore built with ε = 0.
PAL_LABELS = ('paper', 'official')


def random_cells(num_cells: torch.Tensor, grid: Tuple[int, int], generator: Optional[torch.Generator] = None):
    """Bool B×gh×gw: for sample b, ``num_cells[b]`` cells chosen uniformly at random (independently per sample)."""
    B = num_cells.numel()
    return random_subsets(B, grid[0] * grid[1], num_cells, generator).view(B, *grid)


@lru_cache(maxsize=64)
def cell_edges(size: int, cell, unit: int, num_cells: Optional[int] = None) -> Tuple[int, ...]:
    """Pixel edges of a row of cells over ``size`` px: k·cell (k = 0..ceil(size/cell), the last cell cut at the
    image border as the official code crops its mask), each rounded half up to a multiple of ``unit``.

    ``num_cells`` instead of ``cell``: that many equal cells (cell = size / num_cells, may be fractional).
    ValueError when snapping makes a cell empty (a cell narrower than about one token).
    """
    if num_cells is not None:
        n, step = int(num_cells), Fraction(size, int(num_cells))
    else:
        step = Fraction(cell)
        n = -(-size // int(cell)) if step.denominator == 1 else int(-(-Fraction(size) // step))
    edges = []
    for k in range(n + 1):
        raw = min(step * k, Fraction(size))
        edges.append(min(int((raw / unit + Fraction(1, 2)) // 1) * unit, size))
    edges[-1] = size
    if any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f'MaskMix cells of {float(step):g} px on {size} px snapped to the {unit}-px token grid '
                         f'leave an empty cell (edges {edges}): use larger cells')
    return tuple(edges)


def _index_of(edges: Tuple[int, ...], positions: torch.Tensor) -> torch.Tensor:
    """Cell index of each pixel position (edges[i] <= pos < edges[i+1])."""
    return torch.bucketize(positions, torch.tensor(edges[1:-1]), right=True)


def progressive_attention_lam(
        lam_area: torch.Tensor,
        lam_attn: torch.Tensor,
        logits: torch.Tensor,
        labels: torch.Tensor,
        partner: torch.Tensor,
        num_classes: int,
        detach_alpha: bool = False,
        smoothing: float = 0.,
) -> torch.Tensor:
    """PAL: λ = α·λ_attn + (1-α)·λ_area with α = cos(softmax(logits), ỹ_area), ỹ_area = (1-λ_area)·y + λ_area·y_b.

    ``smoothing`` = 0 builds ỹ_area from one-hot labels (the paper's definition); the official code smooths them
    (ε = 0.1). α keeps its gradient unless ``detach_alpha`` (the official code does not detach it).
    """
    y = smooth_one_hot(labels, num_classes, smoothing).to(torch.float32)
    y_area = torch.lerp(y, y[partner], lam_area.float().view(-1, 1))
    alpha = F.cosine_similarity(logits.float().softmax(-1), y_area, dim=1)
    if detach_alpha:
        alpha = alpha.detach()
    return alpha * lam_attn + (1. - alpha) * lam_area


class ProgressiveAttentionLabel:
    """Label function of MaskMix batches with PAL (needs the mixed batch's class attention and logits).

    Args:
        detach_alpha: detach α.
        alpha_smoothing: ε of the labels in ỹ_area inside α (paper: 0; official code: 0.1).
    """

    def __init__(self, detach_alpha: bool = False, alpha_smoothing: float = 0.):
        self.detach_alpha = detach_alpha
        self.alpha_smoothing = alpha_smoothing

    def __call__(self, mixed: MixedBatch, attn: torch.Tensor, logits: torch.Tensor):
        lam = progressive_attention_lam(
            mixed.lam_area, attention_share(attn, mixed.token_mask), logits, mixed.labels, mixed.partner,
            mixed.num_classes, self.detach_alpha, self.alpha_smoothing)
        return 1. - lam, lam


class MaskMix(Mixer):
    """MixPro's input mixing: a grid of ``mask_patch``-pixel cells, each taken from the image or its partner.

    r ~ Beta(α, α) (paper: α = 1) once per batch ('batch') or per sample ('elem'); n = ceil(cells·r) cells chosen
    at random per sample; λ_area = the pasted pixel share (n / cells for equal cells). See the module docstring for
    the cell grid, the token alignment and the label grid.

    Args:
        mask_patch: cell side in pixels (official: 56 on 224). None (default): the paper's 4×4 grid at any image
            size (56 px at 224, 16 px on a 64² demo image; an image fewer than 4 tokens wide gets one cell a token). The image need not be a whole number of cells: the
            last row/column is cut at the border (official: ``mask_num = ceil(size / mask_patch)``).
        input_unit: the model's finest token stride in pixels; cell edges are snapped to it. None: ``patch_size``
            (a plain ViT). :class:`~pretrain.classifier.MixClassifier` sets it from its model (PVT v1: 4).
        pal: label with Progressive Attention Labeling (needs attention and logits), else the area label.
        pal_label: 'paper' (default) or 'official' (see :data:`PAL_LABELS`).
        detach_alpha: detach PAL's α.
        partner: default 'randperm' as in the official MixPro code.
    """

    #: why a model without a class token cannot be trained with it, and what to use instead
    CLASS_ATTENTION_NEED = ("MixPro's Progressive Attention Labeling (pal=True) weighs the MaskMix cells by the "
                            "last block's class-token attention (use pal=False: the area labels of MixPro's "
                            'released Swin configs)')
    method = 'maskmix'

    def __init__(
            self,
            num_classes: int = 1000,
            mask_patch: Optional[int] = None,
            alpha: float = 1.0,
            mode: str = 'batch',
            pal: bool = False,
            pal_label: str = 'paper',
            detach_alpha: bool = False,
            partner: str = 'randperm',
            input_unit: Optional[int] = None,
            **kwargs,
    ):
        super().__init__(num_classes=num_classes, partner=partner, **kwargs)
        if mode not in ('batch', 'elem'):
            raise ValueError(f"mode must be 'batch' or 'elem', got {mode!r}")
        if pal_label not in PAL_LABELS:
            raise ValueError(f'pal_label must be one of {PAL_LABELS}, got {pal_label!r}')
        if mask_patch is not None and mask_patch <= 0:
            raise ValueError(f'mask_patch must be positive, got {mask_patch}')
        self.mask_patch = mask_patch
        self.alpha = alpha
        self.mode = mode
        self.pal = pal
        self.pal_label = pal_label
        self.detach_alpha = detach_alpha
        self.input_unit = input_unit

    @property
    def needs(self) -> FrozenSet[str]:
        return frozenset({'attn', 'logits'}) if self.pal else frozenset()

    @property
    def unit(self) -> int:
        """Finest token stride the cell edges snap to."""
        return int(self.input_unit or self.patch_size)

    def edges(self, img_size) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
        """(row edges, column edges) of the cell grid in pixels for this image size."""
        H, W = int(img_size[0]), int(img_size[1])
        token_grid((H, W), self.unit, 'the finest token stride')
        if self.mask_patch is None:  # the paper's 4 cells a side, fewer where the image has fewer tokens a side
            rows = cell_edges(H, None, self.unit, min(4, H // self.unit))
            cols = cell_edges(W, None, self.unit, min(4, W // self.unit))
        else:
            rows, cols = cell_edges(H, self.mask_patch, self.unit), cell_edges(W, self.mask_patch, self.unit)
        if (len(rows) - 1) * (len(cols) - 1) < 2:
            raise ValueError(f'MaskMix mask_patch={self.mask_patch} gives a single cell on {H}x{W}: the region '
                             f'would cover everything or nothing')
        return rows, cols

    def cell_grid(self, img_size) -> Tuple[int, int]:
        rows, cols = self.edges(img_size)
        return len(rows) - 1, len(cols) - 1

    def _mix(self, images, labels, grid):
        B, _, H, W = images.shape
        rows, cols = self.edges((H, W))
        cells = (len(rows) - 1, len(cols) - 1)
        num = cells[0] * cells[1]
        r = sample_beta(self.alpha, 1 if self.mode == 'batch' else B, self.generator)
        n = (r.double() * num).ceil().long().clamp(0, num).expand(B)
        cell_mask = random_cells(n, cells, self.generator)
        # pasted share = Σ chosen cell areas (CPU, O(B·cells)); equal cells: n / cells
        area = torch.tensor(rows).diff().view(-1, 1) * torch.tensor(cols).diff().view(1, -1)
        lam_area = (cell_mask * area).flatten(1).sum(1).float() / float(H * W)
        cell_mask = cell_mask.to(images.device, non_blocking=True)
        partner = self._partner(B, images.device)
        # pixels: each cell repeated over its rows / columns (output_size given: no device sync);
        # attention tokens: ↓M, the cell of each token's top-left pixel
        dev = images.device
        pixel_mask = cell_mask
        for dim, (e, size) in ((1, (rows, H)), (2, (cols, W))):
            sides = [b - a for a, b in zip(e, e[1:])]
            reps = sides[0] if len(set(sides)) == 1 else torch.tensor(sides).to(dev, non_blocking=True)
            pixel_mask = pixel_mask.repeat_interleave(reps, dim=dim, output_size=size)
        mixed = paste(images, partner, pixel_mask)
        P = self.patch_size
        ty, tx = (_index_of(e, torch.arange(0, s, P)).to(dev, non_blocking=True) for e, s in ((rows, H), (cols, W)))
        token_mask = cell_mask[:, ty[:, None], tx[None, :]]
        if token_mask.shape[-2:] != tuple(grid):
            raise ValueError(f'MaskMix: image {H}x{W} does not give the {grid[0]}x{grid[1]} attention grid of '
                             f'patch_size={P}')
        kwargs = {}
        if self.pal:
            official = self.pal_label == 'official'
            kwargs = dict(needs=self.needs, label_fn=ProgressiveAttentionLabel(
                self.detach_alpha, alpha_smoothing=self.label_smoothing if official else 0.))
        out = self._batch(mixed, labels, partner, token_mask, lam_area, **kwargs)
        if self.pal and self.pal_label == 'official':
            out.label_smoothing = 0.  # hard labels: soft-target CE = λ·CE(y_A) + (1-λ)·CE(y_B) (official loss)
        return out

# the method as the planner, tables and figures know it (pretrain.mix.methods)
register_mix_method(MixMethod(
    'mixpro', 'MixPro', recipe='mixpro_recipe', needs="the last block's class-token attention (PAL)",
    paper='MixPro (ICLR 2023)', rank=2))
