"""The whole table run of ``tools/reproduce.py``: the plan (:mod:`.plan`), then its steps run on this machine
(:mod:`.runner`) or submitted as Slurm jobs (:mod:`.slurm`), then the tables (:mod:`mixseg.tables`)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from mixseg.tables.plots import plot
from mixseg.tables.published import TABLES
from mixseg.tables.render import missing_cells, render_tables

from .plan import DEMO_NOTE, demo_note, make_plan
from .runner import run_plan
from .steps import ROOT, parse_backbones, rel


def finish_tables(tables, work_root: Path, note: str = '', write: bool = True, out=print, plot_note: str = '',
                  methods=()):
    """Render the tables of ``work_root`` (``methods``: the ``--method`` methods, a row each where the table has a
    baseline row), write ``tables.md`` and ``tables.png``; (the results, the paper cells without a result)."""
    # (a work root that does not exist yet, as in a first dry run, is no reason for a warning)
    col, text = render_tables([work_root] if work_root.is_dir() else [], tables, 'md', note, warn=out,
                              methods=methods)
    out('\n' + text)
    missing = {t: missing_cells(TABLES[t], col) for t in tables}
    if write and work_root.is_dir():
        from mixcore.atomic_write import atomic_write_text
        atomic_write_text(work_root / 'tables.md', text + '\n')
        try:
            png = plot([TABLES[t] for t in tables], col, work_root / 'tables.png', plot_note)  # legend: short
            out(f'\ntables written to {rel(work_root / "tables.md")}, plot to {rel(png)}')
        except ImportError as e:  # matplotlib missing: the markdown is still there
            out(f'\ntables written to {rel(work_root / "tables.md")} (no plot: {e})')
    return col, missing


def amp_option(args) -> Optional[str]:
    """``make_plan``'s ``amp`` from ``--amp``: by default the best AMP the GPU has for real (not demo) runs on
    a GPU launcher, fp32 otherwise; ``--amp off`` / ``fp16`` / ``bf16`` choose."""
    choice = getattr(args, 'amp', None)
    if choice is None:   # (--gpus 0: CPU jobs)
        choice = 'auto' if not args.demo and args.launcher != 'none' and getattr(args, 'gpus', None) != 0 else 'off'
    return None if choice == 'off' else '' if choice == 'auto' else choice


def plan_of(args, out=print) -> list:
    """The plan of ``tools/reproduce.py``'s arguments, with notes on the trainings whose lr is rescaled and
    on the steps that cannot run."""
    steps = make_plan(args.tables, methods=args.methods, demo=args.demo, work_root=args.work_root,
                      launcher=args.launcher, gpus=1 if args.gpus == 0 else args.gpus, partition=args.partition,
                      backbones=parse_backbones(args.backbone), data_root=args.data_root,
                      demo_schedule=args.demo_schedule, amp=amp_option(args),
                      figures=getattr(args, 'figures', False), tensorboard=getattr(args, 'tensorboard', False),
                      extra_methods=getattr(args, 'extra_methods', None))
    scaled = [s for s in steps if s.needed and '--auto-scale-lr' in s.argv]
    if scaled:
        out(f'note: {len(scaled)} training(s) run with another total batch than their paper\'s (GPUs × per-GPU '
            'batch): their lr is rescaled linearly (--auto-scale-lr, from the config\'s base batch size)')
    blocked = [s for s in steps if s.needed and s.blocked]
    if blocked:
        out(f'note: {len(blocked)} step(s) cannot run (no config; see "not run:" below): '
            + ', '.join(s.name for s in blocked))
    return steps


def reproduce(args, out=print) -> int:
    """The whole table run of ``tools/reproduce.py`` (its parsed arguments): plan, run (or print), tables.
    Returns the exit status: 1 when a step failed or, after a real run, a table cell has no result."""
    steps = plan_of(args, out)
    os.chdir(ROOT)   # the configs' relative paths (and the printed commands) are relative to the repository
    if getattr(args, 'submit', False) or getattr(args, 'status', False):   # Slurm jobs; the driver returns
        return _submitted(args, steps, out)
    inproc = args.demo and args.launcher == 'none' and not args.subprocess
    failed = run_plan(steps, args.work_root, dry_run=args.dry_run, inproc=inproc, jobs=args.jobs,
                      threads=args.threads, keep_going=args.keep_going, out=out)
    note = demo_note(args.tables) if args.demo else ''
    _, missing = finish_tables(args.tables, args.work_root, note, write=not args.dry_run, out=out,
                               plot_note=DEMO_NOTE if args.demo else '',
                               methods=list(getattr(args, 'extra_methods', ())))
    if not args.dry_run and any(s.kind == 'figure' for s in steps):
        from .figures import list_figures
        figs = list_figures(args.work_root)
        out(f'\nfigures ({len(figs)}) in {rel(args.work_root / "figures")}:' + ''.join(f'\n  {rel(f)}' for f in figs))
    if failed:
        out(f'\n{len(failed)} step(s) failed or not run: ' + ', '.join(s.name for s in failed))
        return 1
    if not args.dry_run:
        empty = {t: m for t, m in missing.items() if m}
        for t, m in empty.items():
            out(f'table {t}: {len(m)} cell(s) without a result: ' + ', '.join(f'{" ".join(r)}/{c}' for r, c in m))
        if empty:
            return 1
    return 0


def _submitted(args, steps: list, out) -> int:
    """``--submit`` / ``--status``: the steps as Slurm jobs (submitted, or their states), then the tables of the
    results that exist; the exit status."""
    from .slurm import SlurmError, submit_plan
    try:   # --gpus 0: CPU jobs (one task per run, no gres)
        failed, unknown = submit_plan(
            steps, args.work_root, dry_run=args.dry_run, status=args.status, partition=args.partition,
            gpus_per_node=0 if args.gpus == 0 else args.gpus_per_node, cpus_per_task=args.cpus_per_task,
            sbatch_args=tuple(args.sbatch_args), python=getattr(args, 'python', None), out=out)
    except SlurmError as e:
        out(f'error: {e}')
        return 1
    finish_tables(args.tables, args.work_root, demo_note(args.tables) if args.demo else '',
                  write=not args.dry_run, out=out, methods=list(getattr(args, 'extra_methods', ())))
    if failed:
        out(f'\n{len(failed)} step(s) failed or cannot run: ' + ', '.join(s.name for s in failed))
    if unknown:
        out(f'\n{len(unknown)} step(s) in an unknown state (not failed): ' + ', '.join(s.name for s in unknown))
    return 1 if failed or unknown else 0
