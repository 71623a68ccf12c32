"""Weights named by a URL or by one of mmengine's model-zoo schemes, read by the same safe reader as local files.

mmengine resolves ``load_from``, ``--resume``, ``init_cfg=dict(type='Pretrained', checkpoint=...)`` and the
backbones' ``CheckpointLoader.load_checkpoint`` calls through ``CheckpointLoader``'s schemes. Its loaders for
``http(s)://``, ``torchvision://`` / ``modelzoo://``, ``open-mmlab://`` / ``openmmlab://`` and ``mmcls://`` end in
``torch.hub.load_state_dict_from_url``, which unpickles with ``weights_only=False``: a checkpoint URL could run
code. :func:`install` replaces every one of them (the registered schemes and the module attributes other code
calls by name, including ``load_url``) by loaders that

* download the file once into a cache keyed by the whole URL (:func:`download`; in a distributed run rank 0
  first, the others after a barrier), then
* read it like a local file: ``.safetensors`` with safetensors, anything else with
  :func:`mixseg.checkpoint.torch_load_safely` (``weights_only=True`` + the allow-list of :mod:`mixseg.safe_load`),
  so a refused file is named together with the URL it came from (and, for an unreadable cached file, the cache
  folder to delete).

The cache: ``<torch hub dir>/checkpoints/mixseg-urls/<sha256 of the URL, 16 hex>/<file name>`` with
``source.json`` beside it (the URL, size and sha256 of the file). torch.hub (and mmengine through it) caches under
the URL's file name only, so ``…/orgA/model.pth`` after ``…/orgB/model.pth`` (or ``dl?id=2`` after ``dl?id=1``)
returned the first file without asking the server. A download must match its ``Content-Length``, stay under
:data:`MAX_DOWNLOAD_ENV` MiB and, where the file name carries torch hub's ``-<sha256 prefix>``, match that
hash; it is written to a temporary name and renamed when complete, so nothing partial is ever cached.

``user:password@`` in a URL is sent as HTTP basic authentication and never shown: errors and logs print
``user:***@`` (:func:`redact`), and :func:`hide_credentials` takes the password out of a config (it stays in this
process only), so neither the stored config nor the logs hold it.

``s3://`` / ``petrel://`` (bytes from mmengine's file backend) and ``pavi://`` are read the same safe way.
mmengine has no hook for this (its scheme table is the extension point), hence the replacement.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import os.path as osp
import re
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

URL_PREFIXES = ('http://', 'https://')
#: environment variable: the largest download accepted, in MiB (default :data:`DEFAULT_MAX_DOWNLOAD_MB`)
MAX_DOWNLOAD_ENV = 'MIXSEG_MAX_DOWNLOAD_MB'
#: 20 GiB: far above any checkpoint of the papers' models (a ViT-B training checkpoint with its optimizer is ~1 GiB)
DEFAULT_MAX_DOWNLOAD_MB = 20480
#: the record of the weight URLs a run reads (stored with its config, see :func:`record_weight_urls`)
URL_RECORD = 'weights_from_urls'
_CACHE_FOLDER = 'mixseg-urls'
_SOURCE_FILE = 'source.json'
_HIDDEN = '***'
_USERINFO = re.compile(r'(://[^/@\s:]*):([^/@\s]*)@')
_PASSWORDS: dict[tuple, str] = {}  # (scheme, user, host:port) -> password, of URLs hide_credentials took it from


def is_url(name) -> bool:
    return isinstance(name, str) and name.startswith(URL_PREFIXES)


def redact(text) -> str:
    """``text`` with the password of every ``scheme://user:password@`` replaced by ``***``."""
    return _USERINFO.sub(rf'\1:{_HIDDEN}@', str(text))


def _userinfo(url: str):
    """``(url without user:password@, (user, password) or None)``; a password :func:`hide_credentials` took out
    is looked up here (it never leaves this process)."""
    from mixseg.safe_load import CheckpointError
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None
    host = parts.hostname + (f':{parts.port}' if parts.port else '')
    user, password = unquote(parts.username or ''), unquote(parts.password or '')
    if password == _HIDDEN:
        key = (parts.scheme, user, host)
        if key not in _PASSWORDS:
            raise CheckpointError(f'{url}: the password of {user}@{host} was left out (a stored config or log never '
                                  'holds it): give the URL with its password again, e.g. --cfg-options '
                                  'load_from=URL or model.backbone.checkpoint=URL')
        password = _PASSWORDS[key]
    return urlunsplit(parts._replace(netloc=host)), (user, password)


def hide_credentials(value):
    """``value`` (a URL, or any nest of dicts/lists/strings) with each ``user:password@`` replaced by
    ``user:***@``; the passwords are kept in this process, where :func:`download` finds them again."""
    if isinstance(value, str):
        if '://' not in value or not _USERINFO.search(value):
            return value
        parts = urlsplit(value)
        if parts.password and parts.password != _HIDDEN:
            host = parts.hostname + (f':{parts.port}' if parts.port else '')
            _PASSWORDS[(parts.scheme, unquote(parts.username or ''), host)] = unquote(parts.password)
        return redact(value)
    if isinstance(value, dict):
        for k in list(value):
            value[k] = hide_credentials(value[k])
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(hide_credentials(v) for v in value)
    return value


def cache_dir(model_dir=None) -> Path:
    """Where downloaded weights go: ``model_dir`` or ``<torch hub dir>/checkpoints`` (``$TORCH_HOME``)."""
    import torch.hub
    return Path(model_dir) if model_dir else Path(torch.hub.get_dir()) / 'checkpoints'


def cache_entry(url: str, model_dir=None) -> Path:
    """The cache folder of ``url``: named by the sha256 of the whole URL (query included; the password left out)."""
    key = hashlib.sha256(redact(url).encode()).hexdigest()[:16]
    return cache_dir(model_dir) / _CACHE_FOLDER / key


def max_download_bytes(max_mb=None) -> int:
    """The size cap: ``max_mb`` MiB, else ``$MIXSEG_MAX_DOWNLOAD_MB``, else :data:`DEFAULT_MAX_DOWNLOAD_MB`."""
    value = max_mb if max_mb is not None else os.environ.get(MAX_DOWNLOAD_ENV) or DEFAULT_MAX_DOWNLOAD_MB
    try:
        mb = float(value)
        if not mb > 0:
            raise ValueError
    except ValueError:
        raise ValueError(f'{MAX_DOWNLOAD_ENV}={value!r}: give the largest download accepted in MiB (a number > 0)')
    return int(mb * 2**20)


def published_hash(url: str, check_hash: bool = False):
    """The sha256 prefix the URL's file name publishes (torch hub's ``name-<hex>.ext``: torch's ``HASH_REGEX``,
    which ``check_hash`` of ``torch.hub.load_state_dict_from_url`` verifies). It is verified whenever it has at least
    8 hex digits (the length torch hub and OpenMMLab publish), every length with ``check_hash``."""
    from torch.hub import HASH_REGEX
    m = HASH_REGEX.search(osp.basename(urlsplit(url).path))
    if m and (len(m.group(1)) >= 8 or (check_hash and m.group(1))):
        return m.group(1)
    return None


def _dist_info():
    try:
        from mmengine.dist import get_dist_info
        return get_dist_info()
    except ImportError:  # mixing code without mmengine
        return 0, 1


def cached_source(path) -> dict | None:
    """``source.json`` of a cached download if it describes ``path`` as it is now (name and size), else ``None``."""
    path = Path(path)
    try:
        source = json.loads((path.parent / _SOURCE_FILE).read_text())
        if source.get('file') == path.name and source.get('size') == path.stat().st_size:
            return source
    except (OSError, ValueError, AttributeError):
        pass
    return None


def download(url: str, model_dir=None, progress: bool = False, file_name: str | None = None, *,
             max_mb=None, check_hash: bool = False) -> Path:
    """The cached copy of ``url`` (see the module doc), downloaded if missing. Errors name the URL (password
    hidden); the log says which file was read."""
    from mixseg.safe_load import CheckpointError
    shown = redact(url)
    name = file_name or osp.basename(urlsplit(url).path) or 'download'
    if name in (_SOURCE_FILE, '.', '..'):
        raise CheckpointError(f'{shown}: {name!r} is no name to cache a weight file under')
    target = cache_entry(url, model_dir) / name
    rank, world_size = _dist_info()

    def fetch():
        if cached_source(target) is None:
            _fetch(url, target, max_download_bytes(max_mb), published_hash(url, check_hash))

    if rank == 0:
        fetch()
    if world_size > 1:
        import torch.distributed as dist
        dist.barrier()
        if rank > 0:
            fetch()  # another node with its own cache
    source = cached_source(target) or {}
    _log(f'mixseg: {shown} read from {target} (sha256 {source.get("sha256", "?")}, {source.get("size", "?")} bytes)')
    return target


def _log(msg: str) -> None:
    try:
        from mmengine.logging import print_log
        print_log(msg, logger='current')
    except ImportError:
        print(msg, flush=True)


def _fetch(url: str, target: Path, limit: int, hash_prefix) -> None:
    """Download ``url`` to a temporary file beside ``target``; checked (length, cap, hash), it is renamed onto
    ``target`` and ``source.json`` written. torch's ``download_url_to_file`` checks neither the length nor a cap,
    and errors would show the password: hence this reader (urllib, as torch's)."""
    import base64
    from urllib.request import Request, urlopen

    from mixseg.safe_load import CheckpointError
    shown = redact(url)
    plain, auth = _userinfo(url)
    request = Request(plain, headers={'User-Agent': 'mixseg'})
    if auth:  # (unredirected: a redirect to another host does not get the password)
        token = base64.b64encode(':'.join(auth).encode()).decode()
        request.add_unredirected_header('Authorization', f'Basic {token}')
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{target.name}.', suffix='.partial', dir=target.parent)
    try:
        with os.fdopen(fd, 'wb') as out:
            try:
                with urlopen(request, timeout=60) as response:
                    size, digest, expected = _copy(response, out, limit, shown)
            except CheckpointError:
                raise
            except Exception as e:  # URLError, HTTPError, OSError, ValueError, ...
                raise CheckpointError(f'{shown}: download failed ({type(e).__name__}: {redact(e)}); nothing was '
                                      'cached') from e
        if expected is not None and size != expected:
            raise CheckpointError(f'{shown}: download incomplete: {size} of the {expected} bytes its Content-Length '
                                  'announces (connection cut?); nothing was cached, run again to retry')
        if hash_prefix and not digest.startswith(hash_prefix):
            raise CheckpointError(f'{shown}: the file name publishes sha256 {hash_prefix}..., the download has '
                                  f'{digest}: not the published file; nothing was cached. (If that part of the '
                                  'name is no hash, download the file yourself and give its local path.)')
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    finally:
        if osp.exists(tmp):
            os.unlink(tmp)
    from mixseg.checkpoint import atomic_write_text
    atomic_write_text(target.parent / _SOURCE_FILE, json.dumps(dict(
        url=shown, file=target.name, size=size, sha256=digest, content_length=expected,
        downloaded=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())), indent=1) + '\n')


def _copy(response, out, limit: int, shown: str):
    """Copy the body to ``out``: ``(bytes, sha256, Content-Length or None)``; over ``limit`` bytes is an error."""
    from mixseg.safe_load import CheckpointError
    length = response.headers.get('Content-Length')
    expected = int(length) if length and length.strip().isdigit() else None
    too_big = (f'{shown}: larger than the {limit / 2**20:g} MiB download cap ({MAX_DOWNLOAD_ENV}); nothing was '
               f'cached. If the file is right, raise the cap, e.g. {MAX_DOWNLOAD_ENV}=')
    if expected is not None and expected > limit:
        raise CheckpointError(f'{too_big}{expected // 2**20 + 1} (Content-Length: {expected} bytes)')
    from tqdm import tqdm  # a bar with ETA on a terminal (disable=None: none in a log file)
    sha, size = hashlib.sha256(), 0
    with tqdm(total=expected, unit='B', unit_scale=True, unit_divisor=1024, disable=None, leave=False,
              desc=f'download {osp.basename(urlsplit(shown).path) or shown}') as bar:
        while chunk := response.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise CheckpointError(f'{too_big}{2 * limit // 2**20}')
            out.write(chunk)
            sha.update(chunk)
            bar.update(len(chunk))
    return size, sha.hexdigest(), expected


def read_download(url: str, path, map_location=None, reader=None):
    """Read the cached download ``path`` of ``url`` (``reader(path)``, default :func:`read_checkpoint`); an
    unreadable file's error says which cache folder to delete."""
    from mixseg.safe_load import CheckpointError
    try:
        if reader is not None:
            return reader(path)
        return read_checkpoint(path, map_location, source=redact(url))
    except CheckpointError as e:
        raise CheckpointError(f'{e}\n  (the cached download of {redact(url)}: if it is damaged or not what the '
                              f'URL serves now, delete {Path(path).parent} to download it again)') from e


def weight_url_entries(cfg) -> dict:
    """``{config key: URL}`` of the weights a config reads from http(s) URLs: ``load_from`` and every
    ``checkpoint`` / ``pretrained`` entry under ``model``."""
    found = {}
    if is_url(cfg.get('load_from')):
        found['load_from'] = cfg['load_from']

    def walk(node, prefix):
        if isinstance(node, dict):
            for k, v in node.items():
                if k in ('checkpoint', 'pretrained') and is_url(v):
                    found[f'{prefix}.{k}'] = v
                else:
                    walk(v, f'{prefix}.{k}')
        elif isinstance(node, (list, tuple)):
            for i, v in enumerate(node):
                walk(v, f'{prefix}.{i}')

    walk(cfg.get('model'), 'model')
    return found


def record_weight_urls(cfg, *, fetch: bool = True, keys=None, log=print) -> dict:
    """Take the passwords out of ``cfg`` (:func:`hide_credentials`) and record in ``cfg[URL_RECORD]`` which file
    each weight URL (of ``keys``, default all) is read from: ``{key: dict(url, file, sha256, size)}``. ``fetch``:
    download now (the rank whose config is stored; a failure is left to the run's own read, which reports it),
    else only name the cache file. Returns the record."""
    from mixseg.safe_load import CheckpointError
    for key in list(cfg.keys()):  # (an mmengine Config is no dict)
        cfg[key] = hide_credentials(cfg[key])
    record = {}
    for key, url in weight_url_entries(cfg).items():
        if keys is not None and key not in keys:
            continue
        path = cache_entry(url) / (osp.basename(urlsplit(url).path) or 'download')
        if fetch:
            try:
                path = download(url)
            except CheckpointError as e:
                log(f'mixseg: {key}: not downloaded now, the run reads it when it starts ({e})')
        source = cached_source(path) or {}
        record[key] = dict(url=redact(url), file=str(path), sha256=source.get('sha256'), size=source.get('size'))
        log(f'mixseg: {key} = {redact(url)} is read from {path}'
            + (f' (sha256 {source["sha256"]})' if source.get('sha256') else ''))
    if record:
        cfg[URL_RECORD] = record
    return record


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
    return read_download(filename, path, map_location)


def load_url(url, model_dir=None, map_location=None, progress=False, check_hash=False, file_name=None):
    """Stands in for ``torch.hub.load_state_dict_from_url`` where mmengine calls it (``load_url``)."""
    path = download(url, model_dir=model_dir, progress=progress, file_name=file_name, check_hash=check_hash)
    return read_download(url, path, map_location)


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


