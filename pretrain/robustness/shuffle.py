"""Spatial-structure shuffling: the image cut into a g×g grid of equal cells, the cells permuted at random.

TransMix's spatial-structure benchmark, after the shuffle study of Naseer et al. 2021 ("Intriguing properties of
vision transformers"). Default grids ``g`` = 1 (the intact image), 2, 4, 8, 14, i.e. 1 … 196 cells on a 224-px
input (14×14 = DeiT's 16-px token grid); the papers' exact list of grid sizes could not be checked against their
text, so ``grids`` (``--grids``) sets others. When the side is no multiple of ``g`` the left-over border
rows/columns stay in place (only whole cells move).

The permutation of an image depends only on (seed, g, image index) — the same for every model and batch size.
"""
from __future__ import annotations

from typing import Sequence

import torch

#: grid sides of the shuffling benchmark: 1 … 196 cells (see the module doc on their source)
GRIDS = (1, 2, 4, 8, 14)

__all__ = ['GRIDS', 'shuffle_perms', 'shuffle_patches']


def shuffle_perms(indices: Sequence[int], grid: int, seed: int) -> torch.Tensor:
    """Int64 B×g²: the source cell of each target cell, one permutation per image index."""
    n = grid * grid
    out = torch.arange(n).repeat(len(indices), 1)
    if n == 1:
        return out
    g = torch.Generator()
    for row, i in enumerate(indices):
        g.manual_seed((int(seed) * 1_000_003 + int(grid) * 7_919 + int(i) * 104_729 + 17) % (2 ** 63))
        out[row] = torch.randperm(n, generator=g)
    return out


def shuffle_patches(images: torch.Tensor, grid: int, perms: torch.Tensor) -> torch.Tensor:
    """Images B×C×H×W with their g×g cells rearranged: target cell ``j`` (row-major) of image ``b`` is source cell
    ``perms[b, j]``. A permutation of whole cells: nothing is lost, duplicated or blended."""
    B, C, H, W = images.shape
    ch, cw = H // grid, W // grid
    if ch == 0 or cw == 0:
        raise ValueError(f'shuffle grid {grid}×{grid} is finer than the {H}×{W} image')
    if perms.shape != (B, grid * grid):
        raise ValueError(f'perms must be {B}×{grid * grid}, got {tuple(perms.shape)}')
    core = images[:, :, :grid * ch, :grid * cw]
    cells = core.reshape(B, C, grid, ch, grid, cw).permute(0, 2, 4, 1, 3, 5).reshape(B, grid * grid, C, ch, cw)
    idx = perms.to(images.device).view(B, -1, 1, 1, 1).expand_as(cells)
    moved = cells.gather(1, idx).reshape(B, grid, grid, C, ch, cw).permute(0, 3, 1, 4, 2, 5)
    out = images.clone()
    out[:, :, :grid * ch, :grid * cw] = moved.reshape(B, C, grid * ch, grid * cw)
    return out
