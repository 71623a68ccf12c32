"""Weights named by a URL or by one of mmengine's model-zoo schemes, read by the same safe reader as local files.

mmengine resolves ``load_from``, ``--resume``, ``init_cfg=dict(type='Pretrained', checkpoint=...)`` and the
backbones' ``CheckpointLoader.load_checkpoint`` calls through ``CheckpointLoader``'s schemes. Its loaders for
``http(s)://``, ``torchvision://`` / ``modelzoo://``, ``open-mmlab://`` / ``openmmlab://`` and ``mmcls://`` end in
``torch.hub.load_state_dict_from_url``, which unpickles with ``weights_only=False``: a checkpoint URL could run
code. :func:`install` replaces every one of them (the registered schemes and the module attributes other code
calls by name, including ``load_url``) by loaders that

* download the file once into torch's hub cache (``<hub dir>/checkpoints/<file name>``, where torch and
  mmengine put it too; in a distributed run rank 0 first, the others after a barrier), then
* read it like a local file: ``.safetensors`` with safetensors, anything else with
  :func:`mixseg.checkpoint.torch_load_safely` (``weights_only=True`` + the allow-list of :mod:`mixseg.safe_load`),
  so a refused file is named together with the URL it came from.

``s3://`` / ``petrel://`` (bytes from mmengine's file backend) and ``pavi://`` are read the same safe way.
mmengine has no hook for this (its scheme table is the extension point), hence the replacement.
"""
from __future__ import annotations

import io
import os.path as osp
from pathlib import Path
from urllib.parse import urlparse

URL_PREFIXES = ('http://', 'https://')


def is_url(name) -> bool:
    return isinstance(name, str) and name.startswith(URL_PREFIXES)


def cache_dir(model_dir=None) -> Path:
    """Where downloaded weights go: ``model_dir`` or ``<torch hub dir>/checkpoints`` (``$TORCH_HOME``)."""
    import torch.hub
    return Path(model_dir) if model_dir else Path(torch.hub.get_dir()) / 'checkpoints'


def _dist_info():
    try:
        from mmengine.dist import get_dist_info
        return get_dist_info()
    except ImportError:  # mixing code without mmengine
        return 0, 1


def download(url: str, model_dir=None, progress: bool = False, file_name: str | None = None) -> Path:
    """The cached copy of ``url``, downloaded if missing (torch's downloader writes to a temporary file and
    renames it, so a broken download leaves nothing behind). Errors name the URL."""
    import torch.hub

    from mixseg.safe_load import CheckpointError
    name = file_name or osp.basename(urlparse(url).path)
    if not name:
        raise CheckpointError(f'{url}: the URL names no file (nothing to cache it as)')
    target = cache_dir(model_dir) / name
    rank, world_size = _dist_info()

    def fetch():
        if target.is_file():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, str(target), None, progress=progress)
        except Exception as e:  # URLError, HTTPError, OSError, ...
            raise CheckpointError(f'{url}: download failed ({type(e).__name__}: {e})') from e

    if rank == 0:
        fetch()
    if world_size > 1:
        import torch.distributed as dist
        dist.barrier()
        if rank > 0:
            fetch()  # another node with its own cache
    return target


def read_checkpoint(path, map_location=None, *, source: str | None = None):
    """A local weight file as mmengine's loaders return it: safetensors → a flat state dict, anything else →
    :func:`mixseg.checkpoint.torch_load_safely`. ``source`` (e.g. the URL) is named in errors."""
    from mixseg.safe_load import CheckpointError, torch_load_safely
    path = Path(path)
    name = f'{path} (from {source})' if source else str(path)
    if not path.is_file():
        raise FileNotFoundError(f'{name} can not be found.')
    if path.suffix == '.safetensors':
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            state = load_file(str(path), device='cpu')
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f'{name}: not a readable safetensors file ({e})') from e
        if map_location not in (None, 'cpu'):
            state = {k: v.to(map_location) if isinstance(map_location, str) else v for k, v in state.items()}
        return state
    return torch_load_safely(path, map_location=map_location, name=name)


# ---------------------------------------------------------------------------------------------------------
# mmengine's schemes (signatures as mmengine.runner.checkpoint's loaders)


def load_from_local(filename, map_location=None):
    return read_checkpoint(osp.expanduser(filename), map_location)


def load_from_http(filename, map_location=None, model_dir=None, progress=False):
    path = download(filename, model_dir=model_dir, progress=progress)
    return read_checkpoint(path, map_location, source=filename)


def load_url(url, model_dir=None, map_location=None, progress=False, check_hash=False, file_name=None):
    """Stands in for ``torch.hub.load_state_dict_from_url`` where mmengine calls it (``load_url``)."""
    path = download(url, model_dir=model_dir, progress=progress, file_name=file_name)
    return read_checkpoint(path, map_location, source=url)


def _zoo_entry(filename: str, urls: dict, zoo: str) -> str:
    from mixseg.safe_load import CheckpointError
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
    return read_checkpoint(osp.join(mm_ckpt._get_mmengine_home(), url), map_location, source=filename)


def load_from_mmcls(filename, map_location=None):
    from mmengine.runner import checkpoint as mm_ckpt
    checkpoint = load_from_http(_zoo_entry(filename, mm_ckpt.get_mmcls_models(), "mmengine's mmcls model list"),
                                map_location)
    return mm_ckpt._process_mmcls_checkpoint(checkpoint)


def load_from_ceph(filename, map_location=None, backend='petrel'):
    from mmengine.fileio import get_file_backend

    from mixseg.safe_load import torch_load_safely
    file_backend = get_file_backend(filename, backend_args={'backend': backend})
    with io.BytesIO(file_backend.get(filename)) as buffer:
        return torch_load_safely(buffer, map_location=map_location, name=filename)


def load_from_pavi(filename, map_location=None):
    import tempfile
    try:
        from pavi import modelcloud
    except ImportError as e:
        raise ImportError('Please install pavi to load checkpoint from modelcloud.') from e
    model = modelcloud.get(filename[len('pavi://'):])
    with tempfile.TemporaryDirectory() as tmp_dir:
        downloaded = osp.join(tmp_dir, model.name)
        model.download(downloaded)
        return read_checkpoint(downloaded, map_location, source=filename)


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


