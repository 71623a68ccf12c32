"""Teacher label maps for TokenMix: the TokenLabeling file format, its safe reader, and a generator.

**Format** (TokenLabeling ``generate_label.py``, read by TokenLabeling's and TokenMix's ``DatasetTokenLabel``; the
published NFNet-F6 maps, "label_top5_train_nfnet", are in it): one file per training image,
``<root>/<class folder>/<image stem>.pt``, holding a single tensor of shape ``2×k×H×W`` (float16):
``[0]`` the teacher's top-k class scores at each location of its H×W output grid over the whole image (TokenLabeling's
generator stores the raw scores of the classifier applied at every location), ``[1]`` the k class indices (stored
as floats, exact up to 2048 classes). TokenMix scatters them into a dense map, RoIAligns it to each sample's crop and takes
the ground-truth channel (:func:`pretrain.mix.tokenmix.crop_label_maps`).

The reader loads with ``torch.load(weights_only=True)`` (a tensor, nothing else is accepted) and checks shape and
indices; a missing or corrupt file is a :class:`LabelMapError` naming the image and the file.

**Packed variant** (:func:`pack_label_maps`, CLI ``tools/pack_label_maps.py``; read by :class:`LabelMapPack`): the
same tensors in two memory-mapped ``.npy`` arrays (scores float16, indices int16) and a JSON index. For large runs:
ImageNet's 1.28 M map files become 3 files, so a network or parallel file system serves one open instead of one
per sample, a worker reads a map as a slice of a page-cached array instead of unpacking a zip (``torch.save``'s
format) per sample, and copying the maps to a node's local disk is one transfer (measured on the demo's 400 maps,
one CPU thread: 1.4 ms per map from files, 0.04 ms from the pack). Values are identical (float16 as stored). :func:`open_label_maps` picks the reader from what the folder holds.

**Generator** (:func:`generate_label_maps`, CLI ``tools/make_label_maps.py``): any local teacher — a timm CNN
(classifier applied at every location of the last feature map: the class activation map of every class, plus the
bias, as TokenLabeling's ``TokenLabelHead``) or a ViT/PVT (the head applied to every patch token) — on the whole
image resized to the teacher's input size; top-k kept. Scores: per-location class probabilities (softmax over the
classes, default) or raw scores (``scores='logits'``, TokenLabeling's files). TokenMix takes the ground-truth
channel as an activation map and divides by its sum without a clamp (the official rule): raw scores of a weak
teacher are often negative (demo teacher after one epoch: Â in [-34, 30]), probabilities are not. Resumable (finished files are skipped; each file is written
atomically), sharded over ranks (torchrun ``RANK``/``WORLD_SIZE`` or slurm ``SLURM_PROCID``/``SLURM_NTASKS``),
unreadable images listed in a JSON report.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import time
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

__all__ = ['LabelMapError', 'MissingLabelMapError', 'label_map_path', 'read_label_map', 'write_label_map',
           'read_record', 'LabelMapFolder', 'LabelMapPack', 'open_label_maps', 'pack_label_maps', 'DenseTeacher',
           'build_teacher', 'teacher_fingerprint', 'shard_of', 'list_images', 'generate_label_maps']

SUFFIX = '.pt'
PACK_INDEX = 'label_maps_pack.json'  # written last: its presence marks a complete pack
RECORD = 'label_maps.json'  # the teacher and settings of a folder of maps (generate_label_maps writes it first)
RECORD_FORMAT = 'mixseg-label-maps-1'


class LabelMapError(RuntimeError):
    """A label map that cannot be used; the message names the image and the file."""


class MissingLabelMapError(LabelMapError, FileNotFoundError):
    """No label map file for an image."""


def label_map_path(root: str, img_path: str) -> str:
    """``<root>/<class folder>/<image stem>.pt`` — TokenLabeling's naming (``'/'.join(path.split('/')[-2:])``
    without the extension). The stem drops only the last extension (TokenLabeling cuts at the first '.', the same
    for ImageNet's file names)."""
    folder = osp.basename(osp.dirname(img_path))
    stem = osp.splitext(osp.basename(img_path))[0]
    return osp.join(root, folder, stem + SUFFIX)


def _check(t, path: str, image: str, num_classes: Optional[int]) -> torch.Tensor:
    where = f'{path} (label map of {image})' if image else path
    if not isinstance(t, torch.Tensor):
        raise LabelMapError(f'{where}: holds a {type(t).__name__}, expected one tensor of shape 2×k×H×W '
                            f'(TokenLabeling format)')
    if t.ndim != 4 or t.shape[0] != 2 or min(t.shape) < 1 or not t.is_floating_point():
        raise LabelMapError(f'{where}: tensor {t.dtype} {tuple(t.shape)}, expected float 2×k×H×W (top-k scores '
                            f'and class indices, TokenLabeling format)')
    t = t.float()
    idx = t[1]
    if not torch.isfinite(t).all() or not torch.equal(idx, idx.round()) or (idx < 0).any():
        raise LabelMapError(f'{where}: scores not finite or class indices not non-negative integers: corrupt file')
    if num_classes is not None and int(idx.max()) >= num_classes:
        raise LabelMapError(f'{where}: class index {int(idx.max())} outside the {num_classes} classes')
    return t


def read_label_map(path: str, image: str = '', num_classes: Optional[int] = None) -> torch.Tensor:
    """The ``2×k×H×W`` float32 label map in ``path`` (loaded with ``weights_only=True``, checked)."""
    if not osp.isfile(path):
        raise MissingLabelMapError(f'no label map for image {image or "?"}: {path} does not exist (make the maps '
                                   f'with tools/make_label_maps.py, or point label_map_root at them)')
    try:
        t = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # truncated zip, foreign pickle, refused global, ...
        raise LabelMapError(f'{path} (label map of {image or "?"}): cannot be read safely as a tensor file '
                            f'({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""})') from e
    return _check(t, path, image, num_classes)


def write_label_map(path: str, scores: torch.Tensor, indices: torch.Tensor) -> None:
    """Write ``k×H×W`` top-k ``scores`` and class ``indices`` in the TokenLabeling layout, atomically."""
    from mixseg.checkpoint import atomic_write
    if scores.shape != indices.shape or scores.ndim != 3:
        raise ValueError(f'scores and indices must both be k×H×W, got {tuple(scores.shape)} and '
                         f'{tuple(indices.shape)}')
    # float16 as TokenLabeling stores it; its integers are exact up to 2048, beyond that keep float32
    dtype = torch.float16 if int(indices.max()) < 2048 else torch.float32
    t = torch.stack([scores.detach().float().cpu(), indices.detach().float().cpu()]).to(dtype).contiguous()
    atomic_write(path, lambda tmp: torch.save(t, tmp))


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


def _names(names: Sequence[str], n: int = 5) -> str:
    return ', '.join(map(str, list(names)[:n])) + (f', ... ({len(names)} in all)' if len(names) > n else '')


class _Store:
    """What both layouts share: the check that the maps fit a dataset (:meth:`fit`), done once at open."""
    root: str
    num_classes: Optional[int]
    record: Optional[dict] = None
    record_path: str = ''
    shape: Optional[tuple] = None  # k×H×W every map must have
    shape_from: str = ''

    def class_folders(self) -> list[str]:
        raise NotImplementedError

    def fit(self, classes: Sequence[str], dataset: str, first_image: Optional[str] = None) -> None:
        """Refuse maps whose class indices, class list or shape do not fit the dataset ``classes`` (label
        order); from now on every map read is checked against ``len(classes)`` and one shape."""
        classes, n = list(classes), len(classes)
        rec, where = self.record, self.record_path
        if rec is not None:
            made, tc = rec.get('classes'), (rec.get('teacher') or {}).get('num_classes')
            if made is not None and list(made) != classes:
                raise LabelMapError(
                    f'{where}: the maps were made for the {len(made)} class folders of {rec.get("image_root")} '
                    f'({_names(made)}); the dataset {dataset} has {n} classes ({_names(classes)}): their class '
                    f'indices number other classes. Make maps for this dataset (tools/make_label_maps.py)')
            if tc is not None and tc != n:
                raise LabelMapError(
                    f'{where}: the teacher of these maps scores {tc} classes, the dataset {dataset} has {n}: the '
                    f'maps\' class indices are not the dataset\'s labels. Use a teacher trained on these classes')
        else:
            # no record (e.g. published maps): their indices number the sorted class folders they were made for;
            # folders the dataset lacks, or a label order that is not sorted, mean other classes (a folder the
            # maps lack is a missing map, named by check_maps)
            extra = sorted(set(self.class_folders()) - set(classes))
            if extra or classes != sorted(classes):
                what = (f'maps for class folders the dataset does not have ({_names(extra)})' if extra else
                        f'labels in an order other than the sorted folder names ({_names(classes)})')
                raise LabelMapError(
                    f'{self.root}: holds {what}, while the dataset {dataset} has {n} classes: the maps\' class '
                    f'indices number the sorted class folders they were made for, which are not the dataset\'s '
                    f'labels. Make maps for this dataset (tools/make_label_maps.py)')
        max_index = getattr(self, 'max_index', None)
        if max_index is not None and max_index >= n:
            raise LabelMapError(f'{where}: class index {max_index} outside the {n} classes of the dataset {dataset}')
        self.num_classes = n
        if self.shape is None and rec is not None and rec.get('map_shape'):
            self.shape, self.shape_from = tuple(rec['map_shape'][1:]), where
        if self.shape is None and first_image is not None:
            self.shape, self.shape_from = tuple(self.load(first_image).shape[1:]), self.path(first_image)


class LabelMapFolder(_Store):
    """A folder of label maps in the TokenLabeling layout (``label_map_path``)."""

    def __init__(self, root: str, num_classes: Optional[int] = None):
        if not osp.isdir(root):
            raise MissingLabelMapError(f'{root}: label-map folder not found (make the maps with '
                                       f'tools/make_label_maps.py)')
        self.root = root
        self.num_classes = num_classes
        self.record, self.record_path = read_record(root), osp.join(root, RECORD)

    def class_folders(self) -> list[str]:
        return [e.name for e in os.scandir(self.root) if e.is_dir()]

    def path(self, img_path: str) -> str:
        return label_map_path(self.root, img_path)

    def load(self, img_path: str) -> torch.Tensor:
        path = self.path(img_path)
        t = read_label_map(path, img_path, self.num_classes)
        if self.shape is not None and tuple(t.shape[1:]) != self.shape:
            raise LabelMapError(f'{path} (label map of {img_path}): shape {tuple(t.shape)}, but the maps of '
                                f'{self.root} are {(2, *self.shape)} (from {self.shape_from}): maps of another '
                                f'teacher or settings; remake it with the others\' (tools/make_label_maps.py)')
        return t

    def has(self, img_path: str) -> bool:
        return osp.isfile(self.path(img_path))

    def __repr__(self):
        return f'{type(self).__name__}({self.root!r})'


def _key(img_path: str) -> str:
    """``<class folder>/<image stem>``: how both layouts name an image's map."""
    return f'{osp.basename(osp.dirname(img_path))}/{osp.splitext(osp.basename(img_path))[0]}'


class LabelMapPack(_Store):
    """Label maps packed into memory-mapped arrays (:func:`pack_label_maps`); same ``load`` as
    :class:`LabelMapFolder`. The arrays are opened lazily in each process (a data-loader worker maps them itself).
    Each map read is checked on the CPU (class indices in range, scores finite): the index's ``max_index`` is
    not trusted alone."""

    def __init__(self, root: str, num_classes: Optional[int] = None):
        index = osp.join(root, PACK_INDEX)
        try:
            with open(index) as f:
                meta = json.load(f)
            self.keys = {k: i for i, k in enumerate(meta['keys'])}
            self.shape = tuple(int(v) for v in meta['shape'])
            max_index = meta.get('max_index')
            if max_index is not None and (isinstance(max_index, bool) or not isinstance(max_index, int)):
                raise TypeError(f'max_index is {max_index!r}, not an integer')
            record = meta.get('maps')
            if record is not None and not isinstance(record, dict):
                raise TypeError(f'maps is a {type(record).__name__}, not the settings record')
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise LabelMapError(f'{index}: not a label-map pack index ({type(e).__name__}: {e})') from e
        self.root, self.num_classes, self.max_index = root, num_classes, max_index
        self.record, self.record_path, self.shape_from = record, index, index
        if num_classes is not None and self.max_index is not None and self.max_index >= num_classes:
            raise LabelMapError(f'{index}: class index {self.max_index} outside the {num_classes} classes')
        self._arrays = None

    def class_folders(self) -> list[str]:
        return sorted({k.split('/', 1)[0] for k in self.keys})

    def __getstate__(self):
        return {**self.__dict__, '_arrays': None}

    def _open(self):
        import numpy as np
        if self._arrays is None:
            arrays = []
            for name in ('scores.npy', 'indices.npy'):
                path = osp.join(self.root, name)
                try:
                    a = np.load(path, mmap_mode='r', allow_pickle=False)
                except (OSError, ValueError) as e:
                    raise LabelMapError(f'{path}: cannot be mapped ({type(e).__name__}: {e})') from e
                if a.shape != (len(self.keys), *self.shape):
                    raise LabelMapError(f'{path}: shape {a.shape}, the index says {(len(self.keys), *self.shape)}')
                arrays.append(a)
            self._arrays = arrays
        return self._arrays

    def path(self, img_path: str) -> str:
        return f'{self.root}::{_key(img_path)}'

    def has(self, img_path: str) -> bool:
        return _key(img_path) in self.keys

    def load(self, img_path: str) -> torch.Tensor:
        import numpy as np
        i = self.keys.get(_key(img_path))
        if i is None:
            raise MissingLabelMapError(f'no label map for image {img_path}: {_key(img_path)} is not in the pack '
                                       f'{self.root}')
        scores, indices = self._open()
        s, idx = np.asarray(scores[i], dtype=np.float32), np.asarray(indices[i])
        lo, hi = int(idx.min()), int(idx.max())
        where = f'{self.path(img_path)} (label map of {img_path})'
        if lo < 0 or (self.num_classes is not None and hi >= self.num_classes):
            raise LabelMapError(f'{where}: class index {lo if lo < 0 else hi} outside the {self.num_classes} '
                                f'classes: the pack does not fit the dataset, or is corrupt')
        if not np.isfinite(s).all():
            raise LabelMapError(f'{where}: scores not finite: corrupt pack')
        return torch.stack([torch.from_numpy(s), torch.from_numpy(idx.astype(np.float32))])

    def __repr__(self):
        return f'{type(self).__name__}({self.root!r}, {len(self.keys)} maps)'


def open_label_maps(root: str, num_classes: Optional[int] = None):
    """:class:`LabelMapPack` when ``root`` holds a pack index, else :class:`LabelMapFolder`."""
    if osp.isfile(osp.join(root, PACK_INDEX)):
        return LabelMapPack(root, num_classes)
    return LabelMapFolder(root, num_classes)


def pack_label_maps(src: str, dst: str, num_classes: Optional[int] = None, progress: bool = True) -> dict:
    """Pack the TokenLabeling folder ``src`` (``<class>/<stem>.pt``) into ``dst`` (scores.npy, indices.npy, index).

    Every file is read with :func:`read_label_map` (safe, checked); all maps must have one shape. ``src``'s
    settings record (teacher, settings, the class folders the indices number; ``label_maps.json``), when there is
    one, gives ``num_classes`` and the shape the maps must have and goes into the index (``maps``), so training
    checks the pack against its dataset as it checks the folder. The arrays are written under temporary names and
    renamed, the index last, so an interrupted run leaves no pack that reads as complete. Returns the index.
    """
    import numpy as np
    from tqdm import tqdm

    from mixseg.checkpoint import atomic_write_text
    files = sorted(osp.join(c, f) for c in sorted(os.listdir(src)) if osp.isdir(osp.join(src, c))
                   for f in os.listdir(osp.join(src, c)) if f.endswith(SUFFIX))
    if not files:
        raise MissingLabelMapError(f'{src}: no label maps (<class>/<stem>{SUFFIX})')
    record = read_record(src)  # made by generate_label_maps: checked against, and carried into the pack
    if record is not None and num_classes is None:
        num_classes = (record.get('teacher') or {}).get('num_classes')
    os.makedirs(dst, exist_ok=True)
    first = read_label_map(osp.join(src, files[0]), num_classes=num_classes)
    shape = tuple(first.shape[1:])
    if record is not None and record.get('map_shape') and tuple(record['map_shape'][1:]) != shape:
        raise LabelMapError(f'{osp.join(src, files[0])}: shape {tuple(first.shape)}, but {osp.join(src, RECORD)} '
                            f'records {tuple(record["map_shape"])} for these maps: foreign maps in the folder')
    tmp = {n: osp.join(dst, f'.{n}.part') for n in ('scores.npy', 'indices.npy')}
    scores = np.lib.format.open_memmap(tmp['scores.npy'], mode='w+', dtype=np.float16, shape=(len(files), *shape))
    indices = np.lib.format.open_memmap(tmp['indices.npy'], mode='w+', dtype=np.int16, shape=(len(files), *shape))
    max_index = 0
    try:
        for i, rel in enumerate(tqdm(files, desc='pack label maps', unit='map', disable=not progress)):
            path = osp.join(src, rel)
            t = read_label_map(path, num_classes=num_classes)
            if tuple(t.shape[1:]) != shape:
                raise LabelMapError(f'{path}: shape {tuple(t.shape)}, the first map {files[0]} has {(2, *shape)}: '
                                    f'a pack holds maps of one shape')
            if int(t[1].max()) > np.iinfo(np.int16).max:
                raise LabelMapError(f'{path}: class index {int(t[1].max())} does not fit the pack\'s int16')
            scores[i] = t[0].numpy().astype(np.float16)
            indices[i] = t[1].numpy().astype(np.int16)
            max_index = max(max_index, int(t[1].max()))
        scores.flush(), indices.flush()
        del scores, indices
        for name, part in tmp.items():
            os.replace(part, osp.join(dst, name))
    except BaseException:
        for part in tmp.values():
            if osp.exists(part):
                os.unlink(part)
        raise
    meta = dict(format='tokenlabeling-pack-1', keys=[osp.splitext(f)[0] for f in files], shape=list(shape),
                max_index=max_index, source=osp.abspath(src), maps=record)
    atomic_write_text(osp.join(dst, PACK_INDEX), json.dumps(meta))
    return meta


# --- generating maps --------------------------------------------------------------------------------------------

class DenseTeacher(torch.nn.Module):
    """A classifier's dense class scores ``B×C×h×w``: its classifier applied at every location.

    CNN (``forward_features`` B×F×h×w, a Linear classifier on the pooled features): W·F + b at each location — the
    class activation map of every class (TokenLabeling's ``TokenLabelHead``). Token model (``forward_features``
    B×N×F, ViT/DeiT/PVT): the prefix tokens (class/distillation) dropped, ``fc_norm`` (if any) and the head applied
    to every patch token.
    """

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        head = model.get_classifier()
        if not isinstance(head, torch.nn.Linear):
            raise ValueError(f'DenseTeacher needs a Linear classifier, {type(model).__name__} has '
                             f'{type(head).__name__}')
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.model.forward_features(x)
        if isinstance(feats, (list, tuple)):
            feats = feats[-1]
        if feats.ndim == 4:  # CNN: B×F×h×w
            if feats.shape[1] != self.head.in_features:
                raise ValueError(f'teacher features {tuple(feats.shape)} do not match its classifier '
                                 f'({self.head.in_features} inputs)')
            return torch.einsum('bfhw,cf->bchw', feats.float(), self.head.weight.float()) + \
                self.head.bias.float().view(1, -1, 1, 1)
        if feats.ndim != 3:
            raise ValueError(f'teacher forward_features gave {tuple(feats.shape)}: neither B×F×h×w nor B×N×F')
        B, N, _ = feats.shape
        H, W = x.shape[-2:]
        prefix = int(getattr(self.model, 'num_prefix_tokens', 0))
        n = N - prefix
        h = int(round((n * H / W) ** 0.5))
        w = n // max(h, 1)
        if h * w != n:
            raise ValueError(f'teacher has {n} patch tokens for a {H}x{W} input: not a grid')
        tokens = feats[:, prefix:]
        fc_norm = getattr(self.model, 'fc_norm', None)
        if isinstance(fc_norm, torch.nn.Module):
            tokens = fc_norm(tokens)
        scores = self.head(tokens).float()  # B×n×C
        return scores.transpose(1, 2).reshape(B, -1, h, w)


def build_teacher(model: Optional[str] = None, checkpoint: Optional[str] = None, config: Optional[str] = None,
                  model_kwargs: Optional[dict] = None, num_classes: Optional[int] = None,
                  img_size: Optional[int] = None, random_init: bool = False) -> tuple[torch.nn.Module, dict]:
    """A frozen teacher and its input settings ``dict(img_size, mean, std)``.

    ``config``: a stage-1 config of ours (``model.arch``/``num_classes``/``img_size``/``model_kwargs`` of its
    MixClassifier; e.g. the demo baseline), ``checkpoint`` its training checkpoint or any weight file
    :func:`mixseg.checkpoint.read_weights` reads. ``model``: a timm model name (+ ``model_kwargs``), built with
    ``pretrained=False`` and loaded strictly from the local ``checkpoint`` (nothing is downloaded).
    ``random_init`` allows no checkpoint (tests and smoke runs only).
    """
    import timm

    import mixseg.models  # noqa: F401  (registers PVT v1 with timm)
    from mixseg.checkpoint import load_strict, read_weights
    if (model is None) == (config is None):
        raise ValueError('give the teacher as exactly one of a timm model name (--model) or a stage-1 config '
                         '(--config)')
    if checkpoint is None and not random_init:
        raise ValueError('a teacher needs its weights (--checkpoint); --random-init only for smoke tests')
    kwargs = dict(model_kwargs or {})
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    if config is not None:
        from mmengine.config import Config
        m = Config.fromfile(config).model
        model = m['arch']
        kwargs = {**dict(m.get('model_kwargs') or {}), **kwargs}
        num_classes = num_classes or m.get('num_classes')
        size = m.get('img_size', 224)
        img_size = img_size or (size if isinstance(size, int) else size[0])
        kwargs.setdefault('img_size', img_size)
    extra = {} if num_classes is None else dict(num_classes=num_classes)
    if img_size and 'img_size' not in kwargs:
        try:  # token models take their input size at creation; CNNs do not accept the argument
            net = timm.create_model(model, pretrained=False, img_size=img_size, **extra, **kwargs)
        except TypeError:
            net = timm.create_model(model, pretrained=False, **extra, **kwargs)
    else:
        net = timm.create_model(model, pretrained=False, **extra, **kwargs)
    cfg = getattr(net, 'pretrained_cfg', None) or {}
    img_size = img_size or int(cfg.get('input_size', (3, 224, 224))[-1])
    mean, std = tuple(cfg.get('mean', mean)), tuple(cfg.get('std', std))
    if checkpoint is not None:
        sd, _ = read_weights(checkpoint)
        load_strict(net, sd, source=checkpoint)
    net.eval().requires_grad_(False)
    return net, dict(img_size=img_size, mean=mean, std=std)


def shard_of(env: Optional[dict] = None) -> tuple[int, int]:
    """(rank, world size) from torchrun (``RANK``/``WORLD_SIZE``) or slurm (``SLURM_PROCID``/``SLURM_NTASKS``)."""
    env = os.environ if env is None else env
    for r, w in (('RANK', 'WORLD_SIZE'), ('SLURM_PROCID', 'SLURM_NTASKS')):
        if r in env and w in env:
            rank, world = int(env[r]), int(env[w])
            if not 0 <= rank < world:
                raise ValueError(f'{r}={rank} is not in [0, {w}={world})')
            return rank, world
    return 0, 1


def local_device(env: Optional[dict] = None) -> torch.device:
    env = os.environ if env is None else env
    if torch.cuda.is_available():
        return torch.device('cuda', int(env.get('LOCAL_RANK', env.get('SLURM_LOCALID', 0))))
    return torch.device('cpu')


def list_images(root: str) -> list[str]:
    """Every image of an ImageNet-style folder ``<root>/<class>/<image>``, sorted (the order shards are cut in)."""
    from pretrain.data import IMG_EXTENSIONS, find_classes
    out = []
    for c in find_classes(root):
        d = osp.join(root, c)
        out += sorted(osp.join(d, e.name) for e in os.scandir(d)
                      if e.is_file() and e.name.lower().endswith(IMG_EXTENSIONS))
    if not out:
        raise FileNotFoundError(f'{root}: no images in its class folders')
    return out


class _Images(torch.utils.data.Dataset):
    """(image tensor or None, index, error message) — an unreadable image is reported, not fatal."""

    def __init__(self, paths: Sequence[str], transform: Callable):
        self.paths, self.transform = list(paths), transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from pretrain.data import ImageNetFolder, UnreadableImageError
        try:
            return self.transform(ImageNetFolder.load_image(self.paths[i])), i, ''
        except UnreadableImageError as e:
            return None, i, str(e)


def _collate(batch):
    good = [(x, i) for x, i, _ in batch if x is not None]
    bad = [(i, err) for x, i, err in batch if x is None]
    images = torch.stack([x for x, _ in good]) if good else None
    return images, [i for _, i in good], bad


def teacher_fingerprint(module: torch.nn.Module) -> str:
    """sha256 of a module's state dict (names, dtypes, shapes, bytes): which teacher made a set of maps."""
    import hashlib
    h = hashlib.sha256()
    for name, v in module.state_dict().items():
        t = v.detach().cpu().contiguous().reshape(-1)
        h.update(f'{name}|{t.dtype}|{tuple(v.shape)}|'.encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


_COMPARED = ('teacher.sha256', 'teacher.num_classes', 'settings', 'map_shape', 'classes')


def _record_diff(old: dict, new: dict) -> list[str]:
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
            out.append(f'{key}: {_names(a) if isinstance(a, list) and key == "classes" else a!r} -> '
                       f'{_names(b) if isinstance(b, list) and key == "classes" else b!r}')
    return out


def _claim_out_root(out_root: str, record: dict, mine: Sequence[str], overwrite: bool) -> None:
    """Write the settings record of this run, refusing to add maps to a folder made with other ones."""
    from mixseg.checkpoint import atomic_write_text
    path = osp.join(out_root, RECORD)
    old = None if overwrite else read_record(out_root)
    if old is not None:
        diff = _record_diff(old, record)
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


class _Existing(torch.utils.data.Dataset):
    """Checks the existing map of each image (a resumed run): '' = fine, 'broken: ...' = unreadable (0 bytes,
    truncated; remade), 'foreign: ...' = a readable map that does not fit the record (refused)."""

    def __init__(self, paths: Sequence[str], out_root: str, num_classes: int, shape: tuple):
        self.paths, self.out_root, self.num_classes, self.shape = list(paths), out_root, num_classes, shape

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        path = label_map_path(self.out_root, self.paths[i])
        try:
            t = read_label_map(path, self.paths[i], self.num_classes)
        except LabelMapError as e:
            return i, ('broken: ' if e.__cause__ is not None or osp.getsize(path) == 0 else 'foreign: ') + str(e)
        if tuple(t.shape) != self.shape:
            return i, f'foreign: {path}: shape {tuple(t.shape)}, the settings record says {self.shape}'
        return i, ''


def _as_list(batch):
    return batch


def _check_existing(mine: Sequence[str], out_root: str, record: dict, num_workers: int) -> tuple[list, list]:
    """(images still to do, broken maps to remake) of this shard; a map of other settings is an error."""
    have = [p for p in mine if osp.isfile(label_map_path(out_root, p))]
    if not have:
        return list(mine), []
    status = [''] * len(have)
    loader = torch.utils.data.DataLoader(
        _Existing(have, out_root, record['teacher']['num_classes'], tuple(record['map_shape'])), batch_size=64,
        num_workers=num_workers, collate_fn=_as_list)
    for batch in loader:
        for i, msg in batch:
            status[i] = msg
    foreign = [m for m in status if m.startswith('foreign')]
    if foreign:
        raise LabelMapError(f'{len(foreign)} existing label map(s) in {out_root} do not fit its settings record '
                            f'({RECORD}), e.g. {foreign[0][len("foreign: "):]}; remove them or pass --overwrite')
    broken = [dict(image=p, error=m[len('broken: '):]) for p, m in zip(have, status) if m]
    done = {p for p, m in zip(have, status) if not m}
    return [p for p in mine if p not in done], broken


def _probe(dense: torch.nn.Module, img_size: int, map_size: Optional[int], topk: int, device) -> tuple[int, list]:
    """(teacher classes C, map shape [2, k, H, W]) from one forward pass on a blank image."""
    with torch.no_grad():
        out = dense(torch.zeros(1, 3, img_size, img_size, device=device))
    if map_size is not None and tuple(out.shape[-2:]) != (map_size, map_size):
        out = F.adaptive_avg_pool2d(out, map_size)
    C = int(out.shape[1])
    return C, [2, min(topk, C), int(out.shape[2]), int(out.shape[3])]


def generate_label_maps(teacher: torch.nn.Module, image_root: str, out_root: str, img_size: int = 224,
                        topk: int = 5, map_size: Optional[int] = None, mean=(0.485, 0.456, 0.406),
                        std=(0.229, 0.224, 0.225), batch_size: int = 32, num_workers: int = 2,
                        device=None, rank: Optional[int] = None, world_size: Optional[int] = None,
                        progress: bool = True, interpolation: str = 'bicubic', scores: str = 'probs',
                        teacher_name: Optional[str] = None, overwrite: bool = False) -> dict:
    """Write a label map for every image of ``image_root`` (``<class>/<image>``) under ``out_root``.

    ``teacher``: a classifier (wrapped in :class:`DenseTeacher`) or a module giving B×C×h×w scores. Each image is
    resized whole (no crop: the map must cover the image the training crop is cut from) to ``img_size``², the
    dense scores optionally average-pooled to ``map_size``², turned into per-location class probabilities
    (``scores='probs'``) or kept raw (``'logits'``), and the top ``topk`` classes kept. This rank takes
    every ``world_size``-th image of the sorted list from ``rank`` on.

    Resume: ``out_root/label_maps.json`` records the teacher (``teacher_name``, the sha256 of its weights, its
    classes), the settings, the map shape and the class folders of ``image_root`` before any map is written; a
    later run with another teacher or settings is refused (``overwrite=True`` remakes every map of the shard
    instead), and every existing map of the shard is read back: unreadable ones (0 bytes, truncated) are remade and
    listed, ones of another shape are refused. Returns the report (also written to
    ``out_root/report[_rank<r>].json``): counts, the settings record and the unreadable images with their errors.
    """
    from torchvision import transforms as T
    from tqdm import tqdm

    from mixseg.checkpoint import atomic_write_text
    from pretrain.data import find_classes
    if scores not in ('probs', 'logits'):
        raise ValueError(f"scores must be 'probs' or 'logits', got {scores!r}")
    if rank is None or world_size is None:
        rank, world_size = shard_of()
    device = local_device() if device is None else torch.device(device)
    dense = teacher if not hasattr(teacher, 'get_classifier') else DenseTeacher(teacher)
    fingerprint = teacher_fingerprint(dense)
    dense = dense.to(device).eval()
    paths = list_images(image_root)
    mine = paths[rank::world_size]
    num_classes, map_shape = _probe(dense, img_size, map_size, topk, device)
    record = dict(format=RECORD_FORMAT,
                  teacher=dict(name=teacher_name or type(teacher).__name__, sha256=fingerprint,
                               num_classes=num_classes),
                  settings=dict(img_size=img_size, topk=topk, map_size=map_size, scores=scores,
                                interpolation=interpolation, mean=list(mean), std=list(std)),
                  map_shape=map_shape, classes=find_classes(image_root), image_root=osp.abspath(image_root))
    _claim_out_root(out_root, record, mine, overwrite)
    todo, broken = (list(mine), []) if overwrite else _check_existing(mine, out_root, record, num_workers)
    interp = {'bicubic': T.InterpolationMode.BICUBIC, 'bilinear': T.InterpolationMode.BILINEAR}[interpolation]
    transform = T.Compose([T.Resize((img_size, img_size), interpolation=interp), T.ToTensor(), T.Normalize(mean, std)])
    loader = torch.utils.data.DataLoader(_Images(todo, transform), batch_size=batch_size, num_workers=num_workers,
                                         collate_fn=_collate, shuffle=False)
    unreadable, written = [], 0
    t0 = time.perf_counter()
    bar = tqdm(total=len(todo), desc=f'label maps (rank {rank}/{world_size})', unit='img', disable=not progress,
               dynamic_ncols=True)
    with torch.no_grad():
        for images, idx, bad in loader:
            unreadable += [dict(image=todo[i], error=err) for i, err in bad]
            if images is not None:
                out = dense(images.to(device))
                if map_size is not None and tuple(out.shape[-2:]) != (map_size, map_size):
                    out = F.adaptive_avg_pool2d(out, map_size)
                if scores == 'probs':
                    out = out.softmax(1)
                values, indices = out.topk(min(topk, out.shape[1]), dim=1)
                for j, i in enumerate(idx):
                    write_label_map(label_map_path(out_root, todo[i]), values[j], indices[j])
                written += len(idx)
            bar.update(len(idx) + len(bad))
    bar.close()
    report = dict(image_root=osp.abspath(image_root), out_root=osp.abspath(out_root), rank=rank,
                  world_size=world_size, images_in_shard=len(mine), skipped_existing=len(mine) - len(todo),
                  written=written, remade_broken=broken, unreadable=unreadable, img_size=img_size, topk=topk,
                  scores=scores, teacher=record['teacher'], settings=record['settings'], map_shape=map_shape,
                  overwrite=overwrite, seconds=round(time.perf_counter() - t0, 1))
    name = 'report.json' if world_size == 1 else f'report_rank{rank}.json'
    atomic_write_text(osp.join(out_root, name), json.dumps(report, indent=1))
    return report
