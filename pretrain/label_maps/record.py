"""The settings record of a folder of label maps (``label_maps.json``): which teacher and settings made the maps and
which class folders their indices number. Written before the first map; a resumed run with other settings is
refused."""
from __future__ import annotations

import json
import os
import os.path as osp
from typing import Optional, Sequence

from mixcore.atomic_write import atomic_write_text

from .map_file import LabelMapError, label_map_path

RECORD = 'label_maps.json'  # the teacher and settings of a folder of maps (generate_label_maps writes it first)
RECORD_FORMAT = 'mixseg-label-maps-1'


def read_record(root: str) -> Optional[dict]:
    """The settings record ``<root>/label_maps.json`` of a folder of maps (teacher, settings, map shape, the class
    folders the indices number), or ``None`` when there is none (e.g. the published NFNet-F6 maps)."""
    path = osp.join(root, RECORD)
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            rec = json.load(f)
    except (OSError, ValueError) as e:
        raise LabelMapError(f'{path}: the settings record of these label maps cannot be read '
                            f'({type(e).__name__}: {e}); remake the maps (tools/make_label_maps.py --overwrite)') from e
    if not isinstance(rec, dict) or rec.get('format') != RECORD_FORMAT:
        raise LabelMapError(f'{path}: not a label-map settings record (format {RECORD_FORMAT!r} expected)')
    return rec


def names_preview(names: Sequence[str], n: int = 5) -> str:
    return ', '.join(map(str, list(names)[:n])) + (f', ... ({len(names)} in all)' if len(names) > n else '')


_COMPARED = ('teacher.sha256', 'teacher.num_classes', 'settings', 'map_shape', 'classes')


def record_diff(old: dict, new: dict) -> list[str]:
    """The compared entries (``_COMPARED``) in which two settings records differ, as 'key: old -> new'."""
    def get(rec, key):
        for part in key.split('.'):
            rec = rec.get(part) if isinstance(rec, dict) else None
        return rec
    out = []
    for key in _COMPARED:
        a, b = get(old, key), json.loads(json.dumps(get(new, key)))
        if key == 'settings' and isinstance(a, dict) and isinstance(b, dict):
            out += [f'{k}: {a.get(k)!r} -> {b.get(k)!r}' for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            out.append(f'{key}: {names_preview(a) if isinstance(a, list) and key == "classes" else a!r} -> '
                       f'{names_preview(b) if isinstance(b, list) and key == "classes" else b!r}')
    return out


def claim_out_root(out_root: str, record: dict, mine: Sequence[str], overwrite: bool) -> None:
    """Write the settings record of this run, refusing to add maps to a folder made with other ones."""
    path = osp.join(out_root, RECORD)
    old = None if overwrite else read_record(out_root)
    if old is not None:
        diff = record_diff(old, record)
        if diff:
            raise LabelMapError(
                f'{path}: the maps in {out_root} were made with another teacher or settings ({"; ".join(diff)}); '
                f'adding maps of this run would mix the two. Rerun with the recorded teacher and settings, write to '
                f'another folder, or pass --overwrite (overwrite=True) to remake every map')
        return
    if not overwrite:
        found = next((label_map_path(out_root, p) for p in mine if osp.isfile(label_map_path(out_root, p))), None)
        if found is not None:
            raise LabelMapError(
                f'{out_root}: holds label maps (e.g. {found}) but no settings record ({RECORD}): which teacher and '
                f'settings made them is unknown, so a resumed run could mix maps. Write to another folder, or pass '
                f'--overwrite (overwrite=True) to remake every map')
    os.makedirs(out_root, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1))
