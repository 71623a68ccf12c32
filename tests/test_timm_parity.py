"""Parity with timm where the project re-implements or wraps it: the CutMix box (pretrain.mix.base.rand_boxes vs
timm.data.mixup.rand_bbox) on odd image sides, and MixsegViT built from a ``no_embed_class=True`` timm ViT at a
crop size other than the one it was built for."""
import numpy as np
import pytest
import torch

timm = pytest.importorskip('timm')


@pytest.mark.parametrize('hw', [(225, 223), (31, 17), (7, 9)])
def test_cutmix_box_matches_timm_rand_bbox_on_odd_sides(monkeypatch, hw):
    """Same λ and the same centre: the same box (edges before and after clipping), odd cut sides included.

    timm's λ is the share kept from the image (box side from sqrt(1 - λ)); rand_boxes takes the box's share,
    so it gets ``1 - λ`` computed as timm computes it."""
    from timm.data.mixup import rand_bbox

    from pretrain.mix.base import rand_boxes
    H, W = hw
    centres = [(H // 2, W // 2), (0, 0), (H - 1, W - 1), (1, W - 2), (H // 3, 2)]
    lams = [0.1, 0.3, 0.37, 0.5, 0.61, 0.77, 0.9, 0.97]
    odd_sides = 0
    for cy, cx in centres:
        calls = iter([cy, cx])
        monkeypatch.setattr(np.random, 'randint', lambda *a, **k: next(calls))
        theirs_by_lam = {}
        for lam in lams:
            calls = iter([cy, cx])
            theirs_by_lam[lam] = tuple(int(v) for v in rand_bbox((3, H, W), lam))
        fixed = iter([])

        def fake_randint(low, high, size, generator=None):
            return torch.full(size, next(fixed), dtype=torch.long)

        monkeypatch.setattr(torch, 'randint', fake_randint)
        for lam in lams:
            fixed = iter([cy, cx])
            ours = tuple(int(b[0]) for b in rand_boxes(torch.tensor([1 - lam], dtype=torch.float64), (H, W)))
            assert ours == theirs_by_lam[lam], (H, W, lam, (cy, cx))
            side = int(H * np.sqrt(1 - lam))
            odd_sides += side % 2
        monkeypatch.undo()
    assert odd_sides > 0  # the odd case is exercised


def _tiny_kwargs():
    return dict(no_embed_class=True, embed_dim=48, depth=2, num_heads=3)


@pytest.mark.parametrize('crop', [(96, 80), (32, 48), (100, 72)])
def test_mixseg_vit_no_embed_class_matches_timm_at_other_crop(crop):
    """A DeiT-III-style ViT (position embedding without a class-token slot) built for 64x64 and run at another
    size (larger, smaller, not whole patches): the patch tokens equal timm's own forward with dynamic_img_size.
    timm resamples the embedding with antialiased bicubic (PyTorch's antialiased kernel differs also when
    upsampling), so the backbone is built with ``antialias=True``; its default follows mmseg (no antialias)."""
    from mixseg.backbones.vit import MixsegViT
    torch.manual_seed(0)
    ours = MixsegViT(arch='vit_tiny_patch16_224', img_size=64, drop_path_rate=0.0, antialias=True,
                     model_kwargs=_tiny_kwargs()).eval()
    assert ours.no_embed_class and ours.pos_embed.shape[1] == 16  # 4x4 grid, no prefix slot
    ref = timm.create_model('vit_tiny_patch16_224', pretrained=False, num_classes=0, img_size=64,
                            dynamic_img_size=True, dynamic_img_pad=True, drop_path_rate=0.0, **_tiny_kwargs()).eval()
    missing, unexpected = ref.load_state_dict(ours.state_dict(), strict=False)
    assert not unexpected and all(k.startswith(('head', 'fc_norm')) for k in missing), (missing, unexpected)
    x = torch.randn(2, 3, *crop)
    with torch.no_grad():
        (feat,) = ours(x)
        want = ref.forward_features(x)[:, ref.num_prefix_tokens:]
    h, w = -(-crop[0] // 16), -(-crop[1] // 16)
    assert feat.shape == (2, 48, h, w)
    torch.testing.assert_close(feat.flatten(2).transpose(1, 2), want, rtol=1e-5, atol=1e-5)
