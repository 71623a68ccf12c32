"""mmengine's checkpoint loaders replaced by ones that read through :func:`mixcore.weights.read.read_file`.

mmengine resolves ``load_from``, ``--resume``, ``init_cfg=dict(type='Pretrained', checkpoint=...)`` and the
backbones' ``CheckpointLoader.load_checkpoint`` calls through ``CheckpointLoader``'s schemes. Its loaders for
``http(s)://``, ``torchvision://`` / ``modelzoo://``, ``open-mmlab://`` / ``openmmlab://`` and ``mmcls://`` end in
``torch.hub.load_state_dict_from_url``, which unpickles with ``weights_only=False``: a checkpoint URL could run
code. :func:`install` (the ``checkpoint-schemes`` patch of :mod:`mixcore.patches`) replaces every one of them (the
registered schemes and the module attributes other code calls by name, including ``load_url``) by loaders that
download into the cache of :mod:`mixcore.weights.download` and read like a local file, so a refused file is named
together with the URL it came from (and, for an unreadable cached file, the cache folder to delete).
``s3://`` / ``petrel://`` (bytes from mmengine's file backend) and ``pavi://`` are read the same safe way.
mmengine has no hook for this (its scheme table is the extension point), hence the replacement.
"""
from __future__ import annotations

import io
import os.path as osp
import tempfile

from .download import is_url
from .errors import CheckpointError
from .read import read_file, read_url

# signatures as mmengine.runner.checkpoint's loaders


def load_from_local(filename, map_location=None):
    return read_file(filename, map_location)


def load_from_http(filename, map_location=None, model_dir=None, progress=False):
    return read_url(filename, map_location, model_dir=model_dir, progress=progress)


def load_url(url, model_dir=None, map_location=None, progress=False, check_hash=False, file_name=None):
    """Stands in for ``torch.hub.load_state_dict_from_url`` where mmengine calls it (``load_url``)."""
    return read_url(url, map_location, model_dir=model_dir, progress=progress, file_name=file_name,
                    check_hash=check_hash)


def _zoo_entry(filename: str, urls: dict, zoo: str) -> str:
    name = filename.split('://', 1)[1]
    if name not in urls:
        raise CheckpointError(f'{filename}: {zoo} lists no model named {name!r}')
    return urls[name]


def load_from_torchvision(filename, map_location=None):
    from mmengine.runner import checkpoint as mm_ckpt
    return load_from_http(_zoo_entry(filename, mm_ckpt.get_torchvision_models(), 'torchvision'), map_location)


def load_from_openmmlab(filename, map_location=None):
    from mmengine.runner import checkpoint as mm_ckpt
    scheme, name = filename.split('://', 1)
    name = mm_ckpt.get_deprecated_model_names().get(name, name)
    url = _zoo_entry(f'{scheme}://{name}', mm_ckpt.get_external_models(), "mmengine's open-mmlab model list")
    if is_url(url):
        return load_from_http(url, map_location)
    path = osp.join(mm_ckpt._get_mmengine_home(), url)
    return read_file(path, map_location, name=f'{path} (from {filename})')


def load_from_mmcls(filename, map_location=None):
    from mmengine.runner import checkpoint as mm_ckpt
    checkpoint = load_from_http(_zoo_entry(filename, mm_ckpt.get_mmcls_models(), "mmengine's mmcls model list"),
                                map_location)
    return mm_ckpt._process_mmcls_checkpoint(checkpoint)


def load_from_ceph(filename, map_location=None, backend='petrel'):
    from mmengine.fileio import get_file_backend
    file_backend = get_file_backend(filename, backend_args={'backend': backend})
    with io.BytesIO(file_backend.get(filename)) as buffer:
        return read_file(buffer, map_location, name=filename)


def load_from_pavi(filename, map_location=None):
    try:
        from pavi import modelcloud
    except ImportError as e:
        raise ImportError('Please install pavi to load checkpoint from modelcloud.') from e
    model = modelcloud.get(filename[len('pavi://'):])
    with tempfile.TemporaryDirectory() as tmp_dir:
        downloaded = osp.join(tmp_dir, model.name)
        model.download(downloaded)
        return read_file(downloaded, map_location, name=f'{downloaded} (from {filename})')


SCHEMES = {
    '': load_from_local,
    ('http://', 'https://'): load_from_http,
    ('modelzoo://', 'torchvision://'): load_from_torchvision,
    ('open-mmlab://', 'openmmlab://'): load_from_openmmlab,
    'mmcls://': load_from_mmcls,
    'pavi://': load_from_pavi,
    (r'(\S+\:)?s3://', r'(\S+\:)?petrel://'): load_from_ceph,
}


def install() -> None:
    """Register the safe loaders for every scheme of mmengine's ``CheckpointLoader`` and put them in place of
    mmengine's functions of the same names (and of ``load_url``) in ``mmengine.runner.checkpoint``."""
    try:
        from mmengine.runner import checkpoint as mm_ckpt
    except ImportError:
        return
    for prefixes, loader in SCHEMES.items():
        mm_ckpt.CheckpointLoader.register_scheme(prefixes=prefixes, loader=loader, force=True)
        setattr(mm_ckpt, loader.__name__, loader)
    mm_ckpt.load_url = load_url
    import mmengine.utils.dl_utils as dl_utils  # where other OpenMMLab code imports load_url from
    dl_utils.load_url = load_url
    if hasattr(dl_utils, 'hub'):
        dl_utils.hub.load_url = load_url


def unsafe_loaders_left() -> list[str]:
    """Names of CheckpointLoader schemes (and module functions) that are not ours: empty after :func:`install`."""
    from mmengine.runner import checkpoint as mm_ckpt
    ours = set(SCHEMES.values()) | {load_url}
    left = [f'scheme {p!r}' for p, f in mm_ckpt.CheckpointLoader._schemes.items() if f not in ours]
    left += [n for n in ('load_url', *(f.__name__ for f in SCHEMES.values())) if getattr(mm_ckpt, n) not in ours]
    return left


