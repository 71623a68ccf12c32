"""Reading and writing weight files: the one path every weight, checkpoint and pickle read of the project takes.

* :mod:`~mixcore.weights.read` — :func:`~mixcore.weights.read.read_file`, the entry point: a local path or an
  http(s) URL; ``.safetensors``, ``.npy`` (no pickles) or a ``torch.save`` file (``weights_only=True`` with the
  allow-list). :func:`~mixcore.weights.state_dict.read_weights` turns any supported file into a state dict.
* :mod:`~mixcore.weights.download` — the URL cache (one folder per URL, checked length/size/hash, credentials hidden).
* :mod:`~mixcore.weights.safe_globals` — the types mmengine checkpoints need beyond torch's allow-list.
* :mod:`~mixcore.weights.backbone_file` — the backbone file format (stage 1 -> stage 2): save, read, check its metadata.
* :mod:`~mixcore.weights.load` — strict loading into a model, position-embedding resize.
* :mod:`~mixcore.weights.mmengine_schemes` — mmengine's checkpoint loaders (``load_from``, ``--resume``,
  ``init_cfg``) replaced by ones that read through :func:`~mixcore.weights.read.read_file`.
* :mod:`~mixcore.weights.url_record` — which file each weight URL of a config is read from, stored with the run.
* :mod:`~mixcore.weights.errors` — :class:`~mixcore.weights.errors.CheckpointError`, what every reader raises.

Nothing outside :mod:`mixcore.weights.read` calls ``torch.load``, safetensors' readers, ``np.load`` or ``pickle``
(``tests/test_weight_reads.py`` checks it). Importing these modules changes nothing global.
"""
