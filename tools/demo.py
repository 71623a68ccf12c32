"""The whole pipeline on the built-in demo data, in minutes on a CPU (``make demo``).

    python tools/demo.py [--work-root work_dirs/demo] [--data-root data/demo] [--dry-run] [--jobs 2]

1. makes the demo data (``data/demo``: ImageNet tree, ADE20K, Pascal Context 59, COCO layouts; reused when
   complete),
2. pretrains the demo backbones with the baseline (DeiT Mixup/CutMix) and each method — the demo ViT with
   baseline / TransMix / MixPro / TokenMix for segmentation, the demo PVT with baseline / TransMix / MixPro for
   detection — one pretraining per (model, method), shared by all rows that need it; TokenMix labels from
   teacher label maps, made first with the demo baseline ViT as teacher (``tools/make_label_maps.py``),
3. transfers them: Segmenter linear + mask decoders on the Pascal Context layout (table A), the mask decoder
   on the ADE20K layout (table C), Mask R-CNN on the COCO layout (table B),
4. evaluates single-scale and multi-scale + flip (A, C) and prints the three tables in the papers' layouts,
   the demo numbers beside the published ones, labelled as toy-scale; writes ``<work root>/tables.md`` and
   ``<work root>/tables.png``,
   Table E runs the robustness benchmarks (tools/robustness.py) on the demo ViT pretrainings with generated
   ImageNet-A/-R/-O folders (``data/demo/robustness``) and draws its curves (``tables_E_curves.png``),
5. draws the papers' figures of the pretrained demo models into ``<work root>/figures/`` (per-layer class
   attention, occlusion robustness, mixed images) and lists them; with the ``tensorboard`` package installed, every
   training also writes TensorBoard curves (``tensorboard --logdir <work root>``).

It is ``tools/reproduce.py A B C --demo --figures [--tensorboard]`` (same steps, same skip logic: a rerun reuses
finished steps); the steps run in two worker processes (one torch thread each) that import the OpenMMLab stack
once. The numbers
are toy-scale: tiny models, a few hundred generated images, schedules of minutes — they show that the
pipeline runs end to end, not the papers' effects.
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a clone without install


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Every other option goes to tools/reproduce.py --demo (python tools/reproduce.py --help), e.g.\n'
               '  --work-root DIR        default work_dirs/demo\n'
               '  --data-root DIR        default data/demo\n'
               '  --dry-run              print the steps and commands, run nothing\n'
               '  --jobs N               steps at a time (default 2)\n'
               '  --threads N            torch threads per step (default: cores / jobs)\n'
               '  --keep-going           go on with the other rows after a failure\n'
               '  --demo-schedule KEY=VALUE ...  data size and schedules (data_size=tiny|small,\n'
               '                         pretrain_epochs=N, seg_iters=N, det_epochs=N)\n'
               'The figures (--figures) are always drawn; --tensorboard is passed when the package is installed.')
    p.add_argument('--tables', nargs='+', default=['A', 'B', 'C', 'E'], type=str.upper,
                   choices=['A', 'B', 'C', 'D', 'E'],
                   help='default A B C E (E: robustness of the demo ViT pretrainings on generated A/R/O folders); '
                        'D adds the ImageNet top-1 of the demo pretrainings (one more of them)')
    args, rest = p.parse_known_args(argv)
    # a CPU demo (mmcv's ops are built for the CPU by `make install`); set CUDA_VISIBLE_DEVICES to use a GPU
    os.environ.setdefault('CUDA_VISIBLE_DEVICES', '-1')

    from mixcore.patches import install as install_patches
    install_patches()   # before the OpenMMLab stack is imported (its pkg_resources warning): see mixcore/patches.py
    from mixseg.cli import reproduce   # tools/reproduce.py's command line
    from mixseg.reproduce.runner import fmt_time
    from mixcore.training_curves import tensorboard_available
    tensorboard = tensorboard_available()
    rargv = [*args.tables, '--demo', '--figures', *(['--tensorboard'] if tensorboard else []), *rest]
    dry_run = reproduce.parse_args(rargv).dry_run
    t0, c0 = time.perf_counter(), _cpu_seconds()
    rc = reproduce.main(rargv)
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    if not dry_run:
        print(f'\ndemo {"finished" if rc == 0 else "stopped"} in {fmt_time(wall)} wall time, '
              f'{fmt_time(cpu)} CPU time on {os.cpu_count()} cores (finished steps are reused on a rerun)')
        where = "each run's <timestamp>/vis_data/"
        print(f'training curves: TensorBoard events in {where} (tensorboard --logdir WORK_ROOT)' if tensorboard else
              f'training curves: scalars.json in {where} (pip install tensorboard for TensorBoard curves)')
    return rc


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker processes)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


if __name__ == '__main__':
    sys.exit(main())
