#!/usr/bin/env python
"""Train-step cost of the mixing methods relative to CutMix, measured interleaved in one run.

For one timm model, batch and image size, a full train step (mix → forward (+ class attention) → targets → loss →
backward → AdamW step) is timed for each configuration in round-robin order (the start rotates every round), after
warm-up rounds; the table gives the median step time and its ratio to CutMix. Configurations:

    none            no mixing, probe off
    cutmix          CutMix, probe off (the reference)
    cutmix+probe    CutMix with the class-attention probe on (attention computed, not used): the probe's cost
    transmix        TransMix (probe on, λ from attention)
    mixpro          MixPro's MaskMix batch with PAL (probe on, λ from attention and logits)
    tokenmix        TokenMix as the paper runs it: labels from teacher label maps (B×2×k×H×W, TokenLabeling layout,
                    already on the device as the loader delivers them), cropped to each sample's box and flip by
                    RoIAlign at the token grid (and warped by the recorded RandAugment rotation) inside the step;
                    probe off
    tokenmix-attn   TokenMix with the model's own class attention on the clean images (OpenMixup's substitute: an
                    extra no-grad forward) as the source
    NAME            ``--method NAME=CONFIG``: a method of your own (or a paper's recipe) from its method config
                    (configs/_base_/methods/, README "Your own mixing method"), built as the classifier builds it;
                    probe on when its batches need attention

Example:
    python tools/benchmark_mix.py --model deit_small_patch16_224 --batch 16 --img-size 224 --rounds 5
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mixcore.patches import install as install_patches  # noqa: E402
install_patches()  # every patch of torch/mmengine (safe loading, ...): see mixcore/patches.py

import torch  # noqa: E402
import timm  # noqa: E402
from timm.loss import SoftTargetCrossEntropy  # noqa: E402

import pretrain.models  # noqa: E402,F401  (registers pvt_* with timm)
from pretrain.models import ClassAttentionProbe  # noqa: E402
from pretrain.classifier import finest_stride  # noqa: E402
from pretrain.mix import CutMix, MaskMix, NoMix, TokenMix, TransMix  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--model', default='deit_small_patch16_224')
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--img-size', type=int, default=224)
    p.add_argument('--num-classes', type=int, default=1000)
    p.add_argument('--rounds', type=int, default=5, help='timed rounds (one step per configuration per round)')
    p.add_argument('--warmup', type=int, default=1, help='untimed rounds first')
    p.add_argument('--device', default='cpu')
    p.add_argument('--threads', type=int, default=None, help='torch intra-op threads on CPU')
    p.add_argument('--amp', nargs='?', const='bf16', choices=['bf16', 'fp16'], default=None,
                   help='autocast: bf16 (default with the bare flag) or fp16 (timing only: no loss scaling)')
    p.add_argument('--only', nargs='+', default=None, help='subset of configurations (cutmix is always kept)')
    p.add_argument('--method', action='append', default=[], metavar='NAME=CONFIG',
                   help='also time a mixing method from its method config (e.g. transmix=configs/_base_/methods/'
                        'transmix.py, or one of your own); repeatable')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--map-size', type=int, default=14, help='label-map grid of the tokenmix row (H = W)')
    p.add_argument('--map-topk', type=int, default=5, help='classes per location of the tokenmix row\'s maps')
    return p.parse_args(argv)


def build_configs(num_classes, patch_size, generator, input_unit=None):
    common = dict(num_classes=num_classes, patch_size=patch_size, generator=generator)
    return {
        'none': (NoMix(**{k: v for k, v in common.items() if k != 'generator'}), False),
        'cutmix': (CutMix(**common), False),
        'cutmix+probe': (CutMix(**common), True),
        'transmix': (TransMix(**common), True),
        'mixpro': (MaskMix(pal=True, input_unit=input_unit, **common), True),
        'tokenmix': (TokenMix(source='label_maps', **common), False),
        'tokenmix-attn': (TokenMix(source='attention', **common), True),
    }


def method_configs(items, num_classes, patch_size, input_unit, taken) -> dict:
    """``--method NAME=CONFIG`` as benchmark configurations: (mixer, probe on when its batches need attention)."""
    from pretrain.method_config import build_method_mixer, parse_method_options
    try:
        methods = parse_method_options(items)
    except ValueError as e:
        raise SystemExit(f'error: {e}')
    out = {}
    for name, method in methods.items():
        if name in taken:
            raise SystemExit(f'error: --method {name}=...: {name!r} is a built-in configuration; pick another name')
        mixer = build_method_mixer(method, num_classes, patch_size, input_unit)
        out[name] = (mixer, bool(getattr(mixer, 'needs', frozenset()) & {'attn', 'clean_attn'}))
    return out


def random_label_maps(batch, num_classes, size, topk, device, generator):
    """What the label-map loader delivers for a batch: top-k maps, crop boxes (x1, y1, x2, y2) and flips."""
    scores = torch.rand(batch, topk, size, size, generator=generator)
    index = torch.rand(batch, num_classes, size, size, generator=generator).argsort(1)[:, :topk].float()
    lo = torch.rand(batch, 2, generator=generator) * 0.5
    boxes = torch.cat([lo, lo + 0.3 + torch.rand(batch, 2, generator=generator) * 0.2], 1)
    flip = torch.rand(batch, generator=generator) < 0.5
    # RandAugment's geometric ops as the pipeline records them (here: a small rotation each)
    t = (torch.rand(batch, generator=generator) - 0.5) * 0.5
    affine = torch.stack([torch.stack([t.cos(), -t.sin(), torch.zeros(batch)], 1),
                          torch.stack([t.sin(), t.cos(), torch.zeros(batch)], 1)], 1)
    return {k: v.to(device) for k, v in dict(maps=torch.stack([scores, index], 1), boxes=boxes, flip=flip,
                                             affine=affine).items()}


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    if device.type == 'cuda':
        torch.set_float32_matmul_precision('high')  # TF32, as training (mixcore.gpu.enable_tf32)
    model = timm.create_model(
        args.model, pretrained=False, num_classes=args.num_classes, img_size=args.img_size).to(device).train()
    probe = ClassAttentionProbe(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    criterion = SoftTargetCrossEntropy()
    images = torch.randn(args.batch, 3, args.img_size, args.img_size, device=device)
    labels = torch.randint(0, args.num_classes, (args.batch,), device=device)
    configs = build_configs(args.num_classes, probe.patch_size, torch.Generator().manual_seed(args.seed),
                            finest_stride(model, probe.patch_size))
    label_maps = random_label_maps(args.batch, args.num_classes, args.map_size, args.map_topk, device,
                                   torch.Generator().manual_seed(args.seed))
    if args.only:
        configs = {k: v for k, v in configs.items() if k in set(args.only) | {'cutmix'}}
    configs.update(method_configs(args.method, args.num_classes, probe.patch_size,
                                  finest_stride(model, probe.patch_size), configs))

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)

    def step(mixer, probe_on):
        probe.enabled = probe_on
        with torch.autocast(device.type, dtype=torch.float16 if args.amp == 'fp16' else torch.bfloat16,
                            enabled=args.amp is not None):
            mixed = mixer(images, labels)
            attn = None
            if 'clean_attn' in mixed.needs:
                with torch.no_grad():
                    _, attn = probe(images)
            logits, mixed_attn = probe(mixed.images, with_attn=probe_on and 'clean_attn' not in mixed.needs)
            if 'attn' in mixed.needs:
                attn = mixed_attn
            loss = criterion(logits.float(), mixed.targets(attn=attn, logits=logits, label_maps=label_maps))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    names = list(configs)
    times = {n: [] for n in names}
    start = time.perf_counter()
    for r in range(args.warmup + args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            sync()
            t0 = time.perf_counter()
            step(*configs[name])
            sync()
            if r >= args.warmup:
                times[name].append(time.perf_counter() - t0)
    total = time.perf_counter() - start

    print(f'model={args.model} batch={args.batch} img={args.img_size} device={device} amp={args.amp} '
          f'threads={torch.get_num_threads()} rounds={args.rounds} warmup={args.warmup} torch={torch.__version__} '
          f'timm={timm.__version__} (total {total:.0f} s)')
    ref = statistics.median(times['cutmix'])
    print(f'| {"configuration":<14} | {"median ms":>10} | {"min ms":>8} | {"max ms":>8} | {"vs CutMix":>9} |')
    print(f'|{"-" * 16}|{"-" * 12}|{"-" * 10}|{"-" * 10}|{"-" * 11}|')
    for name in names:
        t = times[name]
        med = statistics.median(t)
        print(f'| {name:<14} | {med * 1e3:>10.1f} | {min(t) * 1e3:>8.1f} | {max(t) * 1e3:>8.1f} | {med / ref:>8.3f}x |')
    return times


if __name__ == '__main__':
    main()
