"""The download cache of weight URLs: each URL downloaded once, checked, and read from its cached copy.

:func:`download` is what :func:`mixcore.weights.read.read_file` calls for an ``http(s)://`` source (mmengine's
URL and model-zoo schemes end there too, :mod:`mixcore.weights.mmengine_schemes`); in a distributed run rank 0
downloads first, the others after a barrier.

The cache: ``<torch hub dir>/checkpoints/mixseg-urls/<sha256 of the URL, 16 hex>/<file name>`` with
``source.json`` beside it (the URL, size and sha256 of the file). torch.hub (and mmengine through it) caches under
the URL's file name only, so ``…/orgA/model.pth`` after ``…/orgB/model.pth`` (or ``dl?id=2`` after ``dl?id=1``)
returned the first file without asking the server. A download must match its ``Content-Length``, stay under
:data:`MAX_DOWNLOAD_ENV` MiB and, where the file name carries torch hub's ``-<sha256 prefix>``, match that
hash; it is written to a temporary name and renamed when complete, so nothing partial is ever cached.

``user:password@`` in a URL is sent as HTTP basic authentication and never shown: errors and logs print
``user:***@`` (:func:`redact`), and :func:`hide_credentials` takes the password out of a config (it stays in this
process only), so neither the stored config nor the logs hold it.
"""
from __future__ import annotations

import hashlib
import json
import os
import os.path as osp
import re
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from .errors import CheckpointError

URL_PREFIXES = ('http://', 'https://')
#: environment variable: the largest download accepted, in MiB (default :data:`DEFAULT_MAX_DOWNLOAD_MB`)
MAX_DOWNLOAD_ENV = 'MIXSEG_MAX_DOWNLOAD_MB'
#: 20 GiB: far above any checkpoint of the papers' models (a ViT-B training checkpoint with its optimizer is ~1 GiB)
DEFAULT_MAX_DOWNLOAD_MB = 20480
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
    from ..atomic_write import atomic_write_text
    atomic_write_text(target.parent / _SOURCE_FILE, json.dumps(dict(
        url=shown, file=target.name, size=size, sha256=digest, content_length=expected,
        downloaded=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())), indent=1) + '\n')


def _copy(response, out, limit: int, shown: str):
    """Copy the body to ``out``: ``(bytes, sha256, Content-Length or None)``; over ``limit`` bytes is an error."""
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
