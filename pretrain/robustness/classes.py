"""Class names of the robustness benchmarks: ImageNet-1k's wnids, and the mapping of a benchmark folder's wnid
sub-folders (ImageNet-A/-R/-O as released: ``<dir>/<wnid>/<image>``) to the model's output indices.

``imagenet_1k_wnids.txt`` (next to this file) holds the 1000 ImageNet-1k wnids in the standard class order — the
sorted folder names of ImageNet train, the order timm/DeiT/PVT heads and our ImageNet dataset use (a copy of timm's
``timm/data/_info/imagenet_synsets.txt``).

A model's label space is ImageNet-1k's (1000 outputs; the class names a training checkpoint records must be these
wnids in this order). ``any_classes`` admits a model trained on other classes (the demo models: shape names), its
label space then being the class names its checkpoint records.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Optional, Sequence

WNIDS_FILE = Path(__file__).with_name('imagenet_1k_wnids.txt')

__all__ = ['imagenet_wnids', 'model_classes', 'folder_classes', 'class_indices', 'WNIDS_FILE']


@lru_cache(maxsize=1)
def imagenet_wnids() -> tuple:
    wnids = tuple(WNIDS_FILE.read_text().split())
    if len(wnids) != 1000 or list(wnids) != sorted(set(wnids)):
        raise RuntimeError(f'{WNIDS_FILE}: expected 1000 distinct sorted wnids, found {len(wnids)}')
    return wnids


def model_classes(loaded, any_classes: bool = False) -> tuple:
    """The class name of each output of ``loaded`` (a :class:`pretrain.viz.models.LoadedModel` with its head).

    Refuses a model whose classes are not ImageNet-1k's (unless ``any_classes``, where the names recorded in the
    checkpoint are the label space)."""
    n, recorded = loaded.num_classes, loaded.classes
    if any_classes:
        if recorded is None:
            if n == 1000:
                return imagenet_wnids()
            raise ValueError(f'{loaded.source}: the file records no class names and has {n} outputs, not '
                             f'ImageNet-1k\'s 1000: the benchmark folders cannot be mapped to its outputs')
        if len(recorded) != n:
            raise ValueError(f'{loaded.source}: records {len(recorded)} class names for {n} outputs')
        return tuple(recorded)
    wnids = imagenet_wnids()
    if n != 1000:
        raise ValueError(f'{loaded.source}: the model has {n} classes, not ImageNet-1k\'s 1000; the robustness '
                         f'benchmarks (ImageNet-A/-O/-R, ImageNet val) need an ImageNet-1k classifier '
                         f'(pass --any-classes only for a model trained on other named classes, e.g. the demo)')
    if recorded is not None and tuple(recorded) != wnids:
        bad = [c for c in recorded if c not in set(wnids)][:5]
        what = f'names not ImageNet-1k wnids: {bad}' if bad else 'the ImageNet-1k wnids in another order'
        raise ValueError(f'{loaded.source}: the model was trained with other classes than ImageNet-1k\'s ({what}); '
                         f'its outputs are not ImageNet-1k\'s classes')
    return wnids


def folder_classes(folder) -> list:
    """Sorted class sub-folder names of a benchmark folder (``<folder>/<wnid>/<image>``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f'{folder}: benchmark folder not found')
    names = sorted(d.name for d in folder.iterdir() if d.is_dir())
    if not names:
        raise FileNotFoundError(f'{folder}: no class sub-folders; expected the released layout <dir>/<wnid>/<image>')
    return names


def class_indices(folder, names: Sequence[str], label_space: Sequence[str],
                  what: Optional[str] = None) -> list:
    """The output index of each of ``names`` (``folder``'s class sub-folders) in ``label_space``; refuses names
    that are not in it, naming the folder."""
    pos = {c: i for i, c in enumerate(label_space)}
    unknown = [c for c in names if c not in pos]
    if unknown:
        space = 'ImageNet-1k classes' if tuple(label_space) == imagenet_wnids() else \
            f'classes of the model ({what or "its recorded class names"})'
        raise ValueError(f'{folder}: {len(unknown)} of its {len(names)} class folders are not {space}: '
                         f'{unknown[:5]}{" ..." if len(unknown) > 5 else ""}; expected the released layout '
                         f'<dir>/<wnid>/<image> with ImageNet-1k wnids as folder names')
    return [pos[c] for c in names]
