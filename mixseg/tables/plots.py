"""The tables as a figure: per table the absolute values (published vs ours) and the gains over the baseline;
Table E's occlusion and shuffling curves beside it. matplotlib is imported when a plot is drawn."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from .published import Table, describe_key
from .render import MARK_TEXT, MARKS, baseline_deltas, build_table
from .results import Collection


def plot(tables: Iterable[Table], col: Collection, out: str | Path, note: str = '') -> Path:
    """Per table: the absolute values (published vs ours, every run row and column) and beside them the gain over
    the baseline, Δ = method − baseline, published vs ours. Legends sit outside the axes, never over a bar. With
    Table E, its occlusion and shuffling curves go beside: ``<out stem>_E_curves.png``
    (:func:`plot_robustness_curves`)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mixcore.atomic_write import atomic_write
    tables = list(tables)
    ours_name = 'ours' + (f' ({note})' if note else '')
    fig, axes = plt.subplots(len(tables), 2, figsize=(15, 4.2 * len(tables)), squeeze=False,
                             gridspec_kw=dict(width_ratios=(3, 2)))
    for (ax, dax), table in zip(axes, tables):
        labels, pub, ours, marks = [], [], [], set()
        for row, cells in build_table(table, col):
            if row.reference:
                continue
            for c, cell in zip(table.columns, cells):
                labels.append(f'{" ".join(row.label).strip()}\n{c.name}{MARKS.get(cell.status or "paper", "")}')
                marks.add(cell.status)
                pub.append(cell.published if cell.published is not None else float('nan'))
                ours.append(cell.ours if cell.ours is not None else float('nan'))
        _bars(ax, labels, pub, ours, ours_name)
        legend = ', '.join(f'{MARKS[m]} {MARK_TEXT[m]}' for m in ('demo', 'nonstandard', 'unknown') if m in marks)
        ax.set_title(f'Table {table.name}: {table.title}' + (f'\nours marked: {legend}' if legend else ''),
                     fontsize=9, loc='left')
        ax.set_ylabel('value')
        deltas = baseline_deltas(table, col)
        _bars(dax, [f'{r}\n{c}' for r, c, _, _ in deltas], [d[2] if d[2] is not None else float('nan') for d in deltas],
              [d[3] if d[3] is not None else float('nan') for d in deltas], ours_name)
        dax.axhline(0, color='black', lw=0.6)
        dax.set_title(f'Table {table.name}: gain over the baseline, Δ = method − baseline', fontsize=9, loc='left')
        dax.set_ylabel('Δ')
    # one legend for the figure, above every axes: it cannot cover a bar
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc='upper center', ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (4.2 * len(tables))))

    def write(tmp):
        fig.savefig(tmp, dpi=110, format='png')
    path = atomic_write(out, write)
    plt.close(fig)
    if any(t.name == 'E' for t in tables):
        plot_robustness_curves(col, curves_path(out), note)
    return path


def curves_path(out: str | Path) -> Path:
    """Where :func:`plot` puts Table E's curves, beside its ``out``."""
    out = Path(out)
    return out.with_name(f'{out.stem}_E_curves.png')


def _bars(ax, labels, pub, ours, ours_name):
    xs = list(range(len(labels)))
    ax.bar([x - 0.2 for x in xs], pub, width=0.4, label='published')
    ax.bar([x + 0.2 for x in xs], ours, width=0.4, label=ours_name)
    for x, v in zip(xs, ours):
        if v != v:  # NaN: no result for this cell
            ax.annotate('not run', (x + 0.2, 0), ha='center', va='bottom', fontsize=5, rotation=90, color='grey')
    ax.set_xticks(xs, labels, rotation=60, ha='right', fontsize=6)


def plot_robustness_curves(col: Collection, out: str | Path, note: str = '') -> Path | None:
    """Table E's curves: top-1 against the share of patches dropped (occlusion) and against the shuffle grid,
    one line per (model, method) with results. None when there are no curve results."""
    curves = {}
    for (t, key, tag), r in sorted(col.results.items(), key=lambda kv: str(kv[0])):
        if t != 'E' or tag not in ('occlusion', 'shuffle'):
            continue
        pts = sorted((float(k.split('@', 1)[1].lstrip('g')), float(v)) for k, v in r.metrics.items()
                     if k.startswith('top1@') and isinstance(v, (int, float)))
        curves.setdefault(tag, []).append((describe_key(key) + MARKS.get(r.status, ''), pts))
    if not curves:
        return None
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from mixcore.atomic_write import atomic_write
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, tag, xlabel in ((axes[0], 'occlusion', 'share of patches dropped'),
                            (axes[1], 'shuffle', 'shuffle grid side g (g×g cells)')):
        for label, pts in curves.get(tag, []):
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker='o', ms=3, label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel('top-1 (%)')
        ax.set_title(f'Table E: {tag}' + (f' ({note})' if note else ''), fontsize=9, loc='left')
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)

    def write(tmp):
        fig.savefig(tmp, dpi=100, format='png')
    fig.tight_layout()
    path = atomic_write(out, write)
    plt.close(fig)
    return path
