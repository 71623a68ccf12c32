"""What each mixing method does, drawn: one PNG per method (``tools/visualize_mix.py``).

Each row is one mixed sample: the image (A), its partner (B, another class), the mixed image with the pasted token
region outlined, and the attention the label is built from (the class attention of the mixed image; for TokenMix
the clean-image maps of the tokens each image keeps), with λ and the label weights of that very sample. A method of
your own (its method config: :mod:`pretrain.method_config`) is drawn the same way, as ``<name>.png``.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from pretrain.models import ClassAttentionProbe
from pretrain.viz.models import LoadedModel, list_images, normalize, read_image

from .mix import CutMix, MaskMix, Mixup, TokenMix, TransMix

METHODS = ('mixup', 'cutmix', 'transmix', 'maskmix', 'tokenmix')
_TITLES = {'mixup': 'Mixup', 'cutmix': 'CutMix', 'transmix': 'TransMix (CutMix region, attention label)',
           'maskmix': 'MixPro (MaskMix + progressive attention label)', 'tokenmix': 'TokenMix'}


def pick_pairs(labels, rows: int, generator: torch.Generator) -> list[int]:
    """``2·rows`` indices ordered for the mixers' ``partner='flip'`` (sample r pairs with sample 2·rows-1-r) so
    that every pair joins two different classes (when the folder has at least two)."""
    by_class: dict = {}
    for i, c in enumerate(labels):
        by_class.setdefault(c, []).append(i)
    names = [list(by_class)[int(j)] for j in torch.randperm(len(by_class), generator=generator)]
    for c in names:
        order = torch.randperm(len(by_class[c]), generator=generator).tolist()
        by_class[c] = [by_class[c][j] for j in order]
    used = {c: 0 for c in names}

    def take(c):
        i = by_class[c][used[c] % len(by_class[c])]
        used[c] += 1
        return i
    a, b = [], []
    for r in range(rows):
        ca = names[(2 * r) % len(names)]
        cb = names[(2 * r + 1) % len(names)]
        a.append(take(ca))
        b.append(take(cb))
    return a + b[::-1]


def generated_images(size: int, count: int, generator: torch.Generator):
    """Smooth random colour fields with a bright disc each: distinct enough to see what was pasted."""
    low = torch.rand(count, 3, 4, 4, generator=generator)
    images = F.interpolate(low, size=(size, size), mode='bicubic', align_corners=False).clamp(0, 1)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing='ij')
    centres = torch.rand(count, 2, generator=generator) * size * 0.6 + size * 0.2
    for i in range(count):
        disc = ((yy - centres[i, 0]) ** 2 + (xx - centres[i, 1]) ** 2) < (size * 0.18) ** 2
        images[i, :, disc] = torch.rand(3, 1, generator=generator)
    return images, torch.arange(count), [f'gen{i}' for i in range(count)]


def folder_images(folder, size, rows: int, generator: torch.Generator, crop_pct: float = 0.875):
    """``2·rows`` images of ``folder`` (class sub-folders give the labels) in pair order, as the model sees them."""
    paths, labels, classes = list_images(folder)
    idx = pick_pairs(labels, rows, generator)
    # labels index all class folders (sorted), as in training: a classifier's logits then match them (PAL)
    names = list(classes) + (['image'] if any(labels[i] is None for i in idx) else [])
    images = torch.stack([read_image(paths[i], size, crop_pct) for i in idx])
    return images, torch.tensor([names.index(labels[i] or 'image') for i in idx]), names


def build_mixer(method, num_classes, patch_size, grid, generator, per_sample: bool, pal: bool):
    mode = 'elem' if per_sample else 'batch'
    common = dict(num_classes=num_classes, patch_size=patch_size, generator=generator, partner='flip')
    if method == 'tokenmix':
        # the paper's blocks have >= 14 tokens; a small demo grid (PVT 4×4) takes blocks of at most half of it
        masked = int(round(0.5 * grid[0] * grid[1]))
        return TokenMix(source='attention', per_sample=per_sample, min_block_tokens=min(14, masked), **common)
    return {
        'mixup': lambda: Mixup(mode=mode, **common),
        'cutmix': lambda: CutMix(mode=mode, **common),
        'transmix': lambda: TransMix(mode=mode, **common),
        'maskmix': lambda: MaskMix(pal=pal, mode=mode, **common),
    }[method]()


def _heat(attn_map, size):
    """h×w map → size×size (nearest: one block per token), scaled to [0, 1] for display."""
    m = F.interpolate(attn_map[None, None], size=(size, size), mode='nearest')[0, 0]
    return (m - m.min()) / (m.max() - m.min()).clamp_min(1e-12)


def draw(method, x, labels, classes, mixed, label_map, w_self, w_partner, rows, path, note):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mixcore.atomic_write import atomic_write
    size = x.shape[-1]
    fig, axes = plt.subplots(rows, 4, figsize=(4 * 2.6, rows * 2.9 + 0.7), squeeze=False)
    for r in range(rows):
        b = int(mixed.partner[r])
        mask = mixed.token_mask[r]
        pixel_mask = mask.repeat_interleave(size // mask.shape[0], 0).repeat_interleave(size // mask.shape[1], 1)
        panels = [
            (x[r], f'A: {classes[labels[r]]}'),
            (x[b], f'B: {classes[labels[b]]}'),
            (mixed.images[r].clamp(0, 1), f'λ_area(B) = {mixed.lam_area[r]:.3f}'),
            (None, f'label: w_A = {w_self[r]:.3f}  w_B = {w_partner[r]:.3f}'),
        ]
        for c, (img, text) in enumerate(panels):
            ax = axes[r, c]
            if img is None:
                ax.imshow(mixed.images[r].clamp(0, 1).permute(1, 2, 0).numpy())
                ax.imshow(_heat(label_map[r], size).numpy(), cmap='jet', alpha=0.5)
            else:
                ax.imshow(img.permute(1, 2, 0).numpy())
            if c == 2:
                if mixed.method == 'mixup':
                    text += ' (global)'
                elif 0 < pixel_mask.sum() < pixel_mask.numel():
                    ax.contour(pixel_mask.numpy(), levels=[0.5], colors='yellow', linewidths=1.5)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(text, fontsize=8)
    uses_attn = bool(mixed.needs & {'attn', 'clean_attn'})
    for c, title in enumerate(('image A', 'partner B', 'mixed (B region outlined)',
                               'kept activation (clean maps)' if mixed.method == 'tokenmix'
                               else 'class attention' + ('' if uses_attn else ' (not used by the label)'))):
        axes[0, c].set_title(title, fontsize=9)
    import textwrap
    note = '\n'.join(textwrap.fill(line, 110) for line in note.split('\n'))   # the figure is ~110 characters wide
    fig.suptitle(f'{_TITLES.get(method, method)}\n{note}', fontsize=9)
    fig.tight_layout()

    def write(tmp):
        fig.savefig(tmp, dpi=80, format='png')
    out = atomic_write(path, write)
    plt.close(fig)
    return out


def lam_note(mixed, per_sample: bool, own: bool = False) -> str:
    if own:
        return 'the draws of its method config'
    if mixed.method == 'tokenmix':
        return ('one block mask per sample' if per_sample else 'one block mask for the batch (official)') + \
            ', λ = 0.5 of the tokens'
    if mixed.method == 'maskmix':
        return ('ratio r drawn per sample' if per_sample else 'ratio r drawn once for the batch') + \
            ', cells chosen per sample'
    return 'λ drawn per sample' if per_sample else 'one λ for the batch (timm/DeiT default)'


@torch.no_grad()
def visualize_mix(loaded: LoadedModel, out_dir, *, images_dir=None, rows: int = 3, methods=METHODS, seed: int = 0,
                  per_sample: bool = True, crop_pct: float = 0.875, extra_methods=None, log=print) -> list[Path]:
    """Write ``out_dir/<method>.png`` for each method with ``loaded``'s class attention (random-init model: said
    in every figure); ``extra_methods``: ``{name: MethodConfig}`` of methods of your own, drawn after them."""
    from pretrain.classifier import mixer_tree
    from pretrain.method_config import build_method_mixer
    from pretrain.mix.methods import method_title
    g = torch.Generator().manual_seed(seed)
    size = loaded.img_size[0]
    if loaded.img_size[0] != loaded.img_size[1]:
        raise ValueError(f'{loaded.source}: the figure needs a square input, the model has {loaded.img_size}')
    if images_dir:
        x, labels, classes = folder_images(images_dir, size, rows, g, crop_pct)
    else:
        x, labels, classes = generated_images(size, 2 * rows, g)
    rows = min(rows, x.shape[0] // 2)
    probe = ClassAttentionProbe(loaded.model)
    grid = probe.grid_size((size, size))
    num_classes = max(len(classes), 2)
    use_logits = loaded.has_head and loaded.num_classes == num_classes
    if loaded.kind == 'untrained':
        source = (f'attention of an UNTRAINED (random-init) {loaded.arch}: maps and attention-based weights are '
                  f'meaningless')
    else:
        source = f'attention of {loaded.label}, {Path(loaded.source).name}'
        if loaded.has_head and not use_logits:
            source += f' (its {loaded.num_classes} classes are not the {num_classes} class folders)'
    written = []
    own = dict(extra_methods or {})
    for method in (*methods, *own):
        pal = method == 'maskmix' and use_logits
        if method in own:   # as the classifier builds it; its draws from this figure's seeded generator
            mixer = build_method_mixer(own[method], num_classes, probe.patch_size)
            for m in mixer_tree(mixer):
                if hasattr(m, 'generator'):
                    m.generator = g
        else:
            mixer = build_mixer(method, num_classes, probe.patch_size, grid, g, per_sample, pal)
        mixed = mixer(x, labels)
        logits, attn = probe(normalize(mixed.images, loaded))
        if 'clean_attn' in mixed.needs:
            _, clean = probe(normalize(x, loaded))
            w_self, w_partner = mixed.label_weights(attn=clean)
            maps = clean / clean.sum(1, keepdim=True)
            m = mixed.token_mask.flatten(1)
            label_map = (1 - m) * maps + m * maps[mixed.partner]
        else:
            w_self, w_partner = mixed.label_weights(attn=attn, logits=logits if use_logits else None)
            label_map = attn
        note = f'{lam_note(mixed, per_sample, own=method in own)}; {source}'
        if method == 'maskmix' and not pal:
            note += '\n(no classifier head for these classes: MaskMix labelled by area, PAL needs the logits)'
        title = f'{method_title(method)} (method config {own[method].path.name})' if method in own else method
        path = draw(title, x, labels, classes, mixed, label_map.view(-1, *grid), w_self, w_partner, rows,
                    Path(out_dir) / f'{method}.png', note)
        written.append(path)
        log(f'{method:<9} -> {path}  λ_area={[round(float(v), 3) for v in mixed.lam_area[:rows]]}  '
            f'w_B={[round(float(w), 3) for w in w_partner[:rows]]}')
    return written
