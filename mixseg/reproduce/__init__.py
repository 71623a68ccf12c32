"""Reproducing the papers' tables: the planner and runner behind ``tools/reproduce.py`` and ``tools/demo.py``.

* :mod:`.plan` — what each table row needs: its pretraining (one per (model, method), shared by every row and
  table that needs it), its transfer and its tests (Table D: the pretraining and its top-1), on the papers'
  configs or mapped onto the demo models; which of them are done (outputs present, stamped with the current
  arguments), to resume or to start over (:class:`.plan.Planner`: one method per kind of step; ``METHODS``: the
  methods a table run knows, taken from the tables).
* :mod:`.steps` — a step: its command with a launcher (``none`` / ``pytorch`` / ``slurm``), its stamp
  (``<work dir>/<kind>.argv.json``), the final checkpoint of a schedule.
* :mod:`.execute` — running one step here, its output to its log: in this process or as a subprocess.
* :mod:`.runner` — running the needed steps in dependency order (in this process, in worker processes that
  import the OpenMMLab stack once, or as subprocesses), a log per step, progress with an ETA.
* :mod:`.slurm` — the submit mode: every step an sbatch job chained with ``--dependency=afterok``; a later
  call reports the states (work dirs, squeue, sacct) and resubmits what failed.
* :mod:`.table_run` — the whole table run: the plan, run by :mod:`.runner` or submitted by :mod:`.slurm`,
  then the tables (:mod:`mixseg.tables`).

The command line (``tools/reproduce.py``) only parses its arguments and calls :func:`reproduce`.
"""
from .plan import (DEMO_MODELS, DEMO_NOTE, DEMO_SCHEDULE, METHODS, TASKS, demo_note, make_plan,
                   parse_demo_schedule, real_configs)
from .runner import run_plan
from .steps import ROOT, STALE, Step, final_checkpoint_name, parse_backbones, rel
from .table_run import finish_tables, reproduce

__all__ = ['DEMO_MODELS', 'DEMO_NOTE', 'DEMO_SCHEDULE', 'METHODS', 'ROOT', 'STALE', 'TASKS', 'Step', 'demo_note',
           'final_checkpoint_name', 'finish_tables', 'make_plan', 'parse_backbones', 'parse_demo_schedule',
           'real_configs', 'rel', 'reproduce', 'run_plan']
