"""The teacher that makes label maps: a classifier's dense class scores (:class:`DenseTeacher`), built and loaded
from a timm name or a stage-1 config (:func:`build_teacher`), and the fingerprint that records which teacher made a
folder of maps."""
from __future__ import annotations

from typing import Optional

import torch


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
    :func:`mixcore.weights.state_dict.read_weights` reads. ``model``: a timm model name (+ ``model_kwargs``), built with
    ``pretrained=False`` and loaded strictly from the local ``checkpoint`` (nothing is downloaded).
    ``random_init`` allows no checkpoint (tests and smoke runs only).
    """
    import timm

    import pretrain.models  # noqa: F401  (registers PVT v1 with timm)
    from mixcore.weights.load import load_strict
    from mixcore.weights.state_dict import read_weights
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


def teacher_fingerprint(module: torch.nn.Module) -> str:
    """sha256 of a module's state dict (names, dtypes, shapes, bytes): which teacher made a set of maps."""
    import hashlib
    h = hashlib.sha256()
    for name, v in module.state_dict().items():
        t = v.detach().cpu().contiguous().reshape(-1)
        h.update(f'{name}|{t.dtype}|{tuple(v.shape)}|'.encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
