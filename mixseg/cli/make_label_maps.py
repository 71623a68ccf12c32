"""Write TokenMix/TokenLabeling label maps for an ImageNet-style folder with a local teacher.

    python tools/make_label_maps.py IMAGES OUT --model resnet50 --checkpoint resnet50.pth [--topk 5]
    python tools/make_label_maps.py IMAGES OUT --config configs/demo/pretrain_vit-nano_baseline_demo.py \\
        --checkpoint work_dirs/demo/.../epoch_12.pth
    torchrun --nproc-per-node 8 tools/make_label_maps.py ...      # one disjoint shard per rank (slurm: srun)

IMAGES is ``<class>/<image>`` (e.g. data/imagenet/train); OUT receives ``<class>/<image stem>.pt`` (2×k×H×W:
top-k scores and class indices, the TokenLabeling format; pretrain/label_maps/). A CNN teacher gives the class
activation map of every class (its classifier at every location), a ViT/PVT its head on every patch token, on the
whole image resized to the teacher's input size. Rerunning resumes: finished files are kept (each is written
atomically; each is read back, and an unreadable one is remade). OUT/label_maps.json records the teacher (sha256 of
its weights) and the settings: resuming with another teacher, --topk, --map-size, --scores or --img-size is refused
(--overwrite remakes every map instead). Unreadable images are listed in OUT/report*.json and make the exit status 2.
"""
import argparse
import json
import sys


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('images', help='ImageNet-style folder <class>/<image> (e.g. data/imagenet/train)')
    p.add_argument('out', help='output folder of the label maps')
    t = p.add_mutually_exclusive_group(required=True)
    t.add_argument('--model', help='timm model name of the teacher')
    t.add_argument('--config', help='a stage-1 config of this project whose model is the teacher')
    p.add_argument('--checkpoint', help='local teacher weights (timm/torch file, safetensors, or our checkpoint)')
    p.add_argument('--model-kwargs', type=json.loads, default=None, help='JSON dict of timm.create_model kwargs')
    p.add_argument('--num-classes', type=int, default=None)
    p.add_argument('--img-size', type=int, default=None, help='teacher input size (default: the model\'s)')
    p.add_argument('--topk', type=int, default=5, help='classes kept per location (TokenLabeling: 5)')
    p.add_argument('--scores', choices=('probs', 'logits'), default='probs',
                   help='per-location class probabilities (default; non-negative, as TokenMix\'s sum-normalised '
                        'map needs) or raw scores (TokenLabeling\'s generator)')
    p.add_argument('--map-size', type=int, default=None,
                   help='average-pool the score map to this size (default: the teacher\'s output grid)')
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--device', default=None, help='default: cuda:LOCAL_RANK when a GPU is there, else cpu')
    p.add_argument('--threads', type=int, default=None, help='torch threads (CPU)')
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--overwrite', action='store_true',
                   help='remake every map of OUT (default: resume, refused when OUT was made with another teacher '
                        'or settings)')
    p.add_argument('--random-init', action='store_true', help='no checkpoint: random teacher (smoke tests only)')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from pretrain.label_maps.generate import generate_label_maps
    from pretrain.label_maps.map_file import LabelMapError
    from pretrain.label_maps.teacher import build_teacher
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        teacher, inp = build_teacher(model=args.model, checkpoint=args.checkpoint, config=args.config,
                                     model_kwargs=args.model_kwargs, num_classes=args.num_classes,
                                     img_size=args.img_size, random_init=args.random_init)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        raise SystemExit(f'make_label_maps: {e}')
    name = ' '.join(f'{k}={v}' for k, v in (('model', args.model), ('config', args.config),
                                             ('checkpoint', args.checkpoint), ('model_kwargs', args.model_kwargs),
                                             ('random_init', args.random_init or None)) if v is not None)
    try:
        report = generate_label_maps(teacher, args.images, args.out, img_size=inp['img_size'], topk=args.topk,
                                     map_size=args.map_size, mean=inp['mean'], std=inp['std'],
                                     batch_size=args.batch_size, num_workers=args.workers, device=args.device,
                                     progress=not args.no_progress, scores=args.scores, teacher_name=name,
                                     overwrite=args.overwrite)
    except (LabelMapError, FileNotFoundError) as e:
        raise SystemExit(f'make_label_maps: {e}')
    print(f"rank {report['rank']}/{report['world_size']}: {report['written']} written, "
          f"{report['skipped_existing']} already there, {len(report['remade_broken'])} broken ones remade, "
          f"{len(report['unreadable'])} unreadable "
          f"({report['seconds']} s) -> {args.out}")
    if report['unreadable']:
        for u in report['unreadable']:
            print(f"  unreadable: {u['image']}: {u['error']}", file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
