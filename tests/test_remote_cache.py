"""Weights named by URL (issue 20 items 1, 2, 13): the download cache is keyed by the whole URL and records it, a
published hash is verified, a run states which file it read; truncated, foreign or oversized downloads are never
cached; a URL's password appears nowhere. A loopback HTTP server on 127.0.0.1 serves the files (nothing leaves
the machine); it counts the requests, so a cache hit is seen not to contact it."""
import base64
import hashlib
import http.server
import io
import json
import threading
from argparse import Namespace

import pytest
import torch

from mixcore.weights import download as url_cache
from mixcore.weights.backbone_file import save_backbone_file
from mixcore.weights.errors import CheckpointError
from mixcore.weights.state_dict import read_weights

ENV = 'MIXSEG_MAX_DOWNLOAD_MB'  # the download cap, in MiB (documented in the README)


def _pth(value, n=3) -> bytes:
    buf = io.BytesIO()
    torch.save({'state_dict': {'backbone.w': torch.full((n,), float(value))}}, buf)
    return buf.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.routes[path?query] = dict(body=bytes, length=Content-Length to announce (None: none sent),
    auth='user:password' required)``; counts requests per route in ``server.hits``."""

    def do_GET(self):
        route = self.server.routes.get(self.path)
        self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1
        if route is None:
            self.send_error(404)
            return
        if route.get('auth'):
            want = 'Basic ' + base64.b64encode(route['auth'].encode()).decode()
            if self.headers.get('Authorization') != want:
                self.send_error(401)
                return
        body = route['body']
        self.send_response(200)
        length = route.get('length', len(body))
        if length is not None:
            self.send_header('Content-Length', str(length))
        self.end_headers()
        self.wfile.write(body)  # (a length above len(body): the connection closes early, as a cut download)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """``(routes, hits, base URL)``; torch's hub cache under tmp_path; no password kept from another test."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.setattr(url_cache, '_PASSWORDS', {}, raising=False)
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    srv.routes, srv.hits = {}, {}
    thread = threading.Thread(target=srv.serve_forever, kwargs=dict(poll_interval=0.05), daemon=True)
    thread.start()
    deadline = threading.Timer(120, srv.shutdown)
    deadline.start()
    try:
        yield srv.routes, srv.hits, f'http://127.0.0.1:{srv.server_address[1]}'
    finally:
        deadline.cancel()
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=10)


def _load(url):
    from mmengine.runner.checkpoint import _load_checkpoint
    return _load_checkpoint(url, map_location='cpu')['state_dict']['backbone.w'][0].item()


def _cache_files(tmp_path):
    root = tmp_path / 'torch_home'
    return sorted(str(p.relative_to(root)) for p in root.rglob('*') if p.is_file()) if root.exists() else []


# ---------------------------------------------------------------------------------------------------------
# item 1: one cache entry per URL, with the URL recorded; published hashes verified; the run states its file

@pytest.mark.parametrize('paths', [('/orgA/v1/model.pth', '/orgB/v2/model.pth'), ('/dl?id=1', '/dl?id=2')])
def test_two_urls_with_one_file_name_give_their_own_weights(paths, server):
    """torch.hub/mmengine cached by file name: the second URL returned the first file without asking the server."""
    routes, hits, base = server
    first, second = paths
    routes[first], routes[second] = dict(body=_pth(1)), dict(body=_pth(2))
    assert _load(base + first) == 1
    assert _load(base + second) == 2  # the server was asked, and its file is what was read
    assert hits == {first: 1, second: 1}
    assert _load(base + first) == 1 and _load(base + second) == 2  # both cached now: no new request
    assert hits == {first: 1, second: 1}
    entries = {url_cache.cache_entry(base + p) for p in paths}
    assert len(entries) == 2
    for path, value in zip(paths, (1, 2)):
        source = json.loads((url_cache.cache_entry(base + path) / 'source.json').read_text())
        assert source['url'] == base + path and source['sha256'] == hashlib.sha256(_pth(value)).hexdigest()
        assert source['size'] == len(_pth(value))


def test_hugging_face_style_urls_and_backbone_files_are_kept_apart(server, tmp_path):
    routes, hits, base = server
    for repo, value in (('orgA', 1.0), ('orgB', 2.0)):
        path = tmp_path / f'{repo}.safetensors'
        save_backbone_file(path, {'w': torch.full((2,), value)}, arch='vit_nano', img_size=32, patch_size=8)
        routes[f'/{repo}/model/resolve/main/model.safetensors'] = dict(body=path.read_bytes())
    a, _ = read_weights(f'{base}/orgA/model/resolve/main/model.safetensors')
    b, _ = read_weights(f'{base}/orgB/model/resolve/main/model.safetensors')
    assert a['w'][0] == 1.0 and b['w'][0] == 2.0


def test_a_published_hash_is_verified(server, tmp_path):
    """torch hub's ``name-<sha256 prefix>.pth``: a download that does not match it is refused, nothing cached."""
    routes, hits, base = server
    good = _pth(1)
    prefix = hashlib.sha256(good).hexdigest()[:8]
    routes[f'/hub/model-{prefix}.pth'] = dict(body=good)
    routes['/hub/model-0badc0de.pth'] = dict(body=good)
    assert _load(f'{base}/hub/model-{prefix}.pth') == 1
    with pytest.raises(CheckpointError) as info:
        _load(f'{base}/hub/model-0badc0de.pth')
    message = str(info.value)
    assert message.startswith(f'{base}/hub/model-0badc0de.pth: the file name publishes sha256 0badc0de'), message
    assert 'not the published file; nothing was cached' in message
    assert not any('0badc0de' in f for f in _cache_files(tmp_path)), _cache_files(tmp_path)


def test_a_run_records_and_logs_which_file_each_url_was_read_from(server, tmp_path):
    from mmengine.config import Config

    from mixseg.run_preparation import record_urls
    routes, hits, base = server
    routes['/a/model.pth'], routes['/b/model.pth'] = dict(body=_pth(1)), dict(body=_pth(2))
    cfg = Config(dict(load_from=f'{base}/a/model.pth',
                      model=dict(backbone=dict(type='MixsegViT', checkpoint=f'{base}/b/model.pth'))))
    logged = []
    record_urls(cfg, Namespace(cfg_options=None), log=logged.append)
    record = cfg.weights_from_urls
    assert set(record) == {'load_from', 'model.backbone.checkpoint'}
    for key, path, value in (('load_from', '/a/model.pth', 1), ('model.backbone.checkpoint', '/b/model.pth', 2)):
        entry = record[key]
        assert entry['url'] == base + path and entry['file'] == str(url_cache.cache_entry(base + path) / 'model.pth')
        assert entry['sha256'] == hashlib.sha256(_pth(value)).hexdigest() and entry['size'] == len(_pth(value))
        assert any(key in line and entry['file'] in line and entry['sha256'] in line for line in logged), logged
    assert 'weights_from_urls' in cfg.pretty_text  # stored with the config (mmengine dumps it, checkpoints keep it)
    assert _load(f'{base}/a/model.pth') == 1 and hits == {'/a/model.pth': 1, '/b/model.pth': 1}  # read from cache


# ---------------------------------------------------------------------------------------------------------
# item 2: truncated, oversized and unreadable downloads

def test_a_truncated_download_is_refused_and_never_cached(server, tmp_path):
    routes, hits, base = server
    body = _pth(1)
    routes['/cut/model.pth'] = dict(body=body[:len(body) // 2], length=len(body))
    for attempt in (1, 2):  # each run asks the server again (nothing was cached)
        with pytest.raises(CheckpointError) as info:
            _load(f'{base}/cut/model.pth')
        message = str(info.value)
        assert message.startswith(f'{base}/cut/model.pth: download incomplete: {len(body) // 2} of the {len(body)} '
                                  'bytes'), message
        assert hits['/cut/model.pth'] == attempt and _cache_files(tmp_path) == []  # no partial file either
    routes['/cut/model.pth'] = dict(body=body)  # the server is fixed: the next run downloads it
    assert _load(f'{base}/cut/model.pth') == 1


@pytest.mark.parametrize('announced', [True, False])
def test_the_download_cap(announced, server, tmp_path, monkeypatch):
    routes, hits, base = server
    body = _pth(1, n=2048)  # 8 KiB of weights
    routes['/big.pth'] = dict(body=body, length=len(body) if announced else None)
    monkeypatch.setenv(ENV, '0.001')  # ~1 KiB
    with pytest.raises(CheckpointError) as info:
        _load(f'{base}/big.pth')
    message = str(info.value)
    assert message.startswith(f'{base}/big.pth: larger than the 0.000999451 MiB download cap '
                              f'({ENV}); nothing was cached'), message
    assert f'raise the cap, e.g. {ENV}=' in message and _cache_files(tmp_path) == []
    monkeypatch.setenv(ENV, '1')
    assert _load(f'{base}/big.pth') == 1
    assert url_cache.max_download_bytes(None) == 2**20 and url_cache.max_download_bytes(2) == 2 * 2**20
    monkeypatch.delenv(ENV)
    assert url_cache.max_download_bytes() == url_cache.DEFAULT_MAX_DOWNLOAD_MB * 2**20
    monkeypatch.setenv(ENV, 'lots')
    with pytest.raises(ValueError, match=f"{ENV}='lots': give the largest download"):
        url_cache.max_download_bytes()


def test_an_unreadable_cached_file_names_the_cache_folder_to_delete(server, tmp_path):
    routes, hits, base = server
    routes['/foreign/model.pth'] = dict(body=b'<html>not weights</html>')  # e.g. a login page with status 200
    entry = url_cache.cache_entry(f'{base}/foreign/model.pth')
    for load in (_load, read_weights):
        with pytest.raises(CheckpointError) as info:
            load(f'{base}/foreign/model.pth')
        message = str(info.value)
        assert 'model.pth' in message and f'the cached download of {base}/foreign/model.pth' in message, message
        assert f'delete {entry} to download it again' in message, message
    import shutil
    shutil.rmtree(entry)
    routes['/foreign/model.pth'] = dict(body=_pth(3))
    assert _load(f'{base}/foreign/model.pth') == 3


def test_a_cached_file_that_no_longer_matches_its_record_is_downloaded_again(server):
    routes, hits, base = server
    routes['/m.pth'] = dict(body=_pth(1))
    assert _load(f'{base}/m.pth') == 1
    cached = url_cache.cache_entry(f'{base}/m.pth') / 'm.pth'
    cached.write_bytes(cached.read_bytes()[:100])  # damaged on disk: its size differs from source.json
    assert _load(f'{base}/m.pth') == 1 and hits['/m.pth'] == 2


# ---------------------------------------------------------------------------------------------------------
# item 13: user:password@

def test_a_urls_password_is_used_and_shown_nowhere(server, tmp_path, capsys):
    from mmengine.config import Config

    from mixseg.run_preparation import record_urls
    routes, hits, base = server
    secret = 's3cr%2Ft'  # percent-encoded '/' in the password
    routes['/private/model.pth'] = dict(body=_pth(5), auth='alice:s3cr/t')
    url = base.replace('http://', f'http://alice:{secret}@') + '/private/model.pth'
    shown = base.replace('http://', 'http://alice:***@') + '/private/model.pth'
    assert url_cache.redact(url) == shown

    missing = url.replace('model.pth', 'missing.pth')
    with pytest.raises(CheckpointError) as info:
        _load(missing)
    assert str(info.value).startswith(f'{url_cache.redact(missing)}: download failed (HTTPError: HTTP Error 404')
    assert 's3cr' not in str(info.value)

    capsys.readouterr()  # (mmengine itself logs a URL given to its loader directly: a run's config is redacted first)
    cfg = Config(dict(load_from=url, model=dict(backbone=dict(checkpoint=url))))
    args = Namespace(cfg_options={'load_from': url}, checkpoint=url)
    record_urls(cfg, args)
    assert cfg.load_from == shown and cfg.model.backbone.checkpoint == shown
    assert args.cfg_options == {'load_from': shown} and args.checkpoint == shown
    assert cfg.weights_from_urls['load_from']['url'] == shown and 's3cr' not in cfg.pretty_text
    assert _load(cfg.load_from) == 5  # the password stays in this process only
    source = (url_cache.cache_entry(url) / 'source.json').read_text()
    assert 's3cr' not in source and url_cache.cache_entry(url) == url_cache.cache_entry(shown)
    out = capsys.readouterr()
    assert 's3cr' not in out.out + out.err and shown in out.out + out.err

    url_cache._PASSWORDS.clear()  # another process (e.g. a stored config read again): the password must be given
    import shutil
    shutil.rmtree(url_cache.cache_entry(url))
    with pytest.raises(CheckpointError, match=r'the password of alice@127\.0\.0\.1:\d+ was left out'):
        _load(shown)


def test_a_training_run_from_a_password_url_stores_neither_password_nor_doubt(server, tmp_path, monkeypatch, capsys):
    """tools/train.py with ``load_from`` a URL with ``user:password@``: the weights are read (basic
    authentication), the run's stored config says from which cached file, and no file of the work dir, no
    checkpoint and no log line holds the password."""
    from _tools import load_tool
    from test_foundation import TOY_CONFIG, TOY_MODULE
    (tmp_path / 'toy_mm.py').write_text(TOY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tmp_path / 'toy.py'
    config.write_text(TOY_CONFIG.format(max_iters=2, nan_at=None))
    routes, hits, base = server
    weights = {'fc.weight': torch.full((1, 4), 0.25), 'fc.bias': torch.full((1,), 0.5)}
    buf = io.BytesIO()
    torch.save({'state_dict': weights}, buf)
    routes['/runs/toy.pth'] = dict(body=buf.getvalue(), auth='bob:hunter2')
    url = base.replace('http://', 'http://bob:hunter2@') + '/runs/toy.pth'
    work = tmp_path / 'work'
    load_tool('train').main([str(config), '--work-dir', str(work), '--cfg-options', f'load_from={url}',
                             f'experiment_name=remote_{id(config)}'])
    assert hits == {'/runs/toy.pth': 1}  # read once: the record and the Runner's load share the cache
    ckpt = torch.load(work / 'iter_2.pth', weights_only=True)
    stored = ckpt['meta']['cfg']
    assert "weights_from_urls" in stored and str(url_cache.cache_entry(url) / 'toy.pth') in stored
    assert hashlib.sha256(buf.getvalue()).hexdigest() in stored
    out = capsys.readouterr()
    texts = {'stdout': out.out, 'stderr': out.err, 'stored config': stored}
    texts.update({str(p): p.read_text(errors='replace') for p in work.rglob('*') if p.is_file()
                  and p.suffix in ('.py', '.json', '.log', '')})
    assert f"{url_cache.redact(url)} read from {url_cache.cache_entry(url) / 'toy.pth'}" in out.out  # the log says it
    assert not [name for name, t in texts.items() if 'hunter2' in t]
    assert b'hunter2' not in (work / 'iter_2.pth').read_bytes()


def test_tools_test_records_the_checkpoint_url_it_reads(server):
    """tools/test.py (``prepare_testing``): the checkpoint URL's cached file is recorded and the password hidden
    in the config and in ``args.checkpoint`` (which ``results/<tag>.json`` records)."""
    from mmengine.config import Config

    from mixseg.run_preparation import prepare_testing
    routes, hits, base = server
    routes['/ckpt/iter_2.pth'] = dict(body=_pth(7), auth='carol:pw0rd')
    url = base.replace('http://', 'http://carol:pw0rd@') + '/ckpt/iter_2.pth'
    cfg = Config(dict(load_from=url, model=dict(backbone=dict(checkpoint=f'{base}/never/fetched.pth'))))
    args = Namespace(checkpoint=url, cfg_options=None, config='toy.py', allow_partial_load=False)
    prepare_testing(cfg, args, log=lambda *a: None)
    assert args.checkpoint == cfg.load_from == url_cache.redact(url) and 'pw0rd' not in cfg.pretty_text
    assert set(cfg.weights_from_urls) == {'load_from'} and '/never/fetched.pth' not in hits  # (no backbone read)
    assert cfg.weights_from_urls['load_from']['sha256'] == hashlib.sha256(_pth(7)).hexdigest()
    assert _load(cfg.load_from) == 7 and hits == {'/ckpt/iter_2.pth': 1}


def test_the_table_row_follows_a_backbone_file_named_by_url(server, tmp_path):
    """The backbone record (``pretrained_backbone``: method and arch for the table row) is read from the cached
    copy of a URL backbone, which the run's URL record fetched (it read no metadata from a URL before)."""
    from mmengine.config import Config

    from mixseg.run_preparation import record_urls
    from mixseg.tables.rows import backbone_record
    routes, hits, base = server
    path = save_backbone_file(tmp_path / 'b.safetensors', {'w': torch.zeros(1)}, arch='deit_small_patch16_224',
                              img_size=224, patch_size=16, method='transmix')
    routes['/org/model.safetensors'] = dict(body=path.read_bytes())
    url = f'{base}/org/model.safetensors'
    cfg = Config(dict(model=dict(backbone=dict(type='MixsegViT', checkpoint=url))))
    record_urls(cfg, Namespace(cfg_options=None), log=lambda *a: None)
    record = backbone_record(cfg.model)
    assert record['file'] == url and record['method'] == 'transmix' and record['arch'] == 'deit_small_patch16_224'
