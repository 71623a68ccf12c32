"""Which file each weight URL of a config is read from, recorded with the run (``cfg[URL_RECORD]``), and the
URL passwords taken out of the config before it is stored (:func:`mixcore.weights.download.hide_credentials`)."""
from __future__ import annotations

import os.path as osp
from urllib.parse import urlsplit

from .download import cache_entry, cached_source, download, hide_credentials, is_url, redact
from .errors import CheckpointError

#: the record of the weight URLs a run reads (stored with its config, see :func:`record_weight_urls`)
URL_RECORD = 'weights_from_urls'


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
