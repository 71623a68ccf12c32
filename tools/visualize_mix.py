#!/usr/bin/env python
"""Draw what each mixing method does: one PNG per method.

Each row is one mixed sample: the image (A), its partner (B), the mixed image with the pasted token region outlined,
and the attention the label is built from (class attention of the mixed image; for TokenMix the clean-image maps of
the tokens each image keeps), with the label weights written under the images.

    python tools/visualize_mix.py --images data/demo/imagenet/val --out work_dirs/visualize_mix
    python tools/visualize_mix.py                      # generated images, random-init DeiT-Tiny, no downloads
    python tools/visualize_mix.py --model deit_small_patch16_224 --checkpoint backbone.safetensors

The model is random-init unless ``--checkpoint`` is given (any file ``mixseg.checkpoint.read_weights`` reads); its
attention is then meaningless, but regions, masks and the bookkeeping of the label weights are still shown.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib  # noqa: E402

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import timm  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD  # noqa: E402

import mixseg.models  # noqa: E402,F401  (registers pvt_* with timm)
from mixseg.models import ClassAttentionProbe  # noqa: E402
from pretrain.classifier import finest_stride  # noqa: E402
from pretrain.mix import CutMix, MaskMix, Mixup, TokenMix, TransMix  # noqa: E402

IMAGE_EXTS = {'.jpg', '.jpeg', '.png', '.bmp', '.webp'}
METHODS = ('mixup', 'cutmix', 'transmix', 'maskmix', 'tokenmix')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--images', default=None, help='folder of images (class sub-folders give the labels)')
    p.add_argument('--out', default='work_dirs/visualize_mix')
    p.add_argument('--model', default='deit_tiny_patch16_224')
    p.add_argument('--checkpoint', default=None)
    p.add_argument('--img-size', type=int, default=224)
    p.add_argument('--rows', type=int, default=3, help='samples shown per method')
    p.add_argument('--methods', nargs='+', default=list(METHODS), choices=METHODS)
    p.add_argument('--seed', type=int, default=0)
    return p.parse_args(argv)


def load_images(folder, size, count, generator):
    """count images in [0,1] (resize shorter side + centre crop) and labels from their parent folders."""
    from PIL import Image
    paths = sorted(p for p in Path(folder).rglob('*') if p.suffix.lower() in IMAGE_EXTS)
    if not paths:
        raise FileNotFoundError(f'no images ({", ".join(sorted(IMAGE_EXTS))}) under {folder}')
    pick = torch.randperm(len(paths), generator=generator)[:count].tolist()
    paths = [paths[i] for i in pick]
    classes = sorted({p.parent.name for p in paths})
    images = []
    for p in paths:
        img = Image.open(p).convert('RGB')
        scale = size / min(img.size)
        img = img.resize((max(size, round(img.width * scale)), max(size, round(img.height * scale))), Image.BICUBIC)
        left, top = (img.width - size) // 2, (img.height - size) // 2
        img = img.crop((left, top, left + size, top + size))
        images.append(torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.).permute(2, 0, 1))
    labels = torch.tensor([classes.index(p.parent.name) for p in paths])
    return torch.stack(images), labels, classes


def generated_images(size, count, generator):
    """Smooth random colour fields with a bright disc each: distinct enough to see what was pasted."""
    low = torch.rand(count, 3, 4, 4, generator=generator)
    images = F.interpolate(low, size=(size, size), mode='bicubic', align_corners=False).clamp(0, 1)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing='ij')
    centres = torch.rand(count, 2, generator=generator) * size * 0.6 + size * 0.2
    for i in range(count):
        disc = ((yy - centres[i, 0]) ** 2 + (xx - centres[i, 1]) ** 2) < (size * 0.18) ** 2
        images[i, :, disc] = torch.rand(3, 1, generator=generator)
    labels = torch.arange(count)
    return images, labels, [f'gen{i}' for i in range(count)]


def build_model(args, num_classes):
    kwargs = dict(pretrained=False, num_classes=num_classes, img_size=args.img_size)
    if args.checkpoint is None:
        return timm.create_model(args.model, **kwargs).eval()
    from mixseg.checkpoint import load_strict, read_weights
    sd, _ = read_weights(args.checkpoint)
    if 'head.weight' in sd:
        kwargs['num_classes'] = sd['head.weight'].shape[0]
    model = timm.create_model(args.model, **kwargs)
    load_strict(model, sd, source=args.checkpoint, ignore_missing=('head', 'head_dist'))
    return model.eval()


def build_mixer(method, num_classes, patch_size, generator, input_unit=None):
    common = dict(num_classes=num_classes, patch_size=patch_size, generator=generator, partner='flip')
    return {
        'mixup': lambda: Mixup(**common),
        'cutmix': lambda: CutMix(**common),
        'transmix': lambda: TransMix(**common),
        'maskmix': lambda: MaskMix(pal=True, input_unit=input_unit, **common),
        'tokenmix': lambda: TokenMix(source='attention', **common),
    }[method]()


def heat(attn_map, size):
    """h×w map → size×size, scaled to [0, 1] for display."""
    m = F.interpolate(attn_map[None, None], size=(size, size), mode='nearest')[0, 0]
    return (m - m.min()) / (m.max() - m.min()).clamp_min(1e-12)


def draw(method, x, labels, classes, mixed, label_map, w_self, w_partner, rows, path):
    size = x.shape[-1]
    fig, axes = plt.subplots(rows, 4, figsize=(4 * 2.6, rows * 2.9), squeeze=False)
    for r in range(rows):
        b = int(mixed.partner[r])
        mask = mixed.token_mask[r]
        pixel_mask = mask.repeat_interleave(size // mask.shape[0], 0).repeat_interleave(size // mask.shape[1], 1)
        panels = [
            (x[r], f'A: {classes[labels[r]]}'),
            (x[b], f'B: {classes[labels[b]]}'),
            (mixed.images[r].clamp(0, 1), f'λ_area(B) = {mixed.lam_area[r]:.3f}'),
            (None, f'w_A = {w_self[r]:.3f}  w_B = {w_partner[r]:.3f}'),
        ]
        for c, (img, text) in enumerate(panels):
            ax = axes[r, c]
            if img is None:
                ax.imshow(mixed.images[r].clamp(0, 1).permute(1, 2, 0).numpy())
                ax.imshow(heat(label_map[r], size).numpy(), cmap='jet', alpha=0.5)
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
    for c, title in enumerate(('image A', 'partner B', 'mixed (B region outlined)',
                               'label attention' if mixed.method != 'tokenmix' else 'kept activation (clean maps)')):
        axes[0, c].set_title(title, fontsize=9)
    fig.suptitle(f'{method}', fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


@torch.no_grad()
def main(argv=None):
    args = parse_args(argv)
    g = torch.Generator().manual_seed(args.seed)
    count = 2 * args.rows  # flip partner: sample r pairs with sample count-1-r
    if args.images:
        x, labels, classes = load_images(args.images, args.img_size, count, g)
    else:
        x, labels, classes = generated_images(args.img_size, count, g)
    count = x.shape[0]
    rows = min(args.rows, count)
    model = build_model(args, max(len(classes), 2))
    probe = ClassAttentionProbe(model)
    mean = torch.tensor(IMAGENET_DEFAULT_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_DEFAULT_STD).view(1, 3, 1, 1)
    grid = probe.grid_size((args.img_size, args.img_size))
    labels = labels % model.num_classes
    written = []
    for method in args.methods:
        mixer = build_mixer(method, model.num_classes, probe.patch_size, g, finest_stride(model, probe.patch_size))
        mixed = mixer(x, labels)
        logits, attn = probe((mixed.images - mean) / std)
        if 'clean_attn' in mixed.needs:
            _, clean = probe((x - mean) / std)
            w_self, w_partner = mixed.label_weights(attn=clean)
            maps = clean / clean.sum(1, keepdim=True)
            m = mixed.token_mask.flatten(1)
            label_map = (1 - m) * maps + m * maps[mixed.partner]
        else:
            w_self, w_partner = mixed.label_weights(attn=attn, logits=logits)
            label_map = attn
        label_map = label_map.view(-1, *grid)
        path = Path(args.out) / f'{method}.png'
        draw(method, x, labels, classes, mixed, label_map, w_self, w_partner, rows, path)
        written.append(path)
        print(f'{method:<9} -> {path}  λ_area={mixed.lam_area[:rows].tolist()}  '
              f'w_B={[round(float(w), 3) for w in w_partner[:rows]]}')
    return written


if __name__ == '__main__':
    main()
