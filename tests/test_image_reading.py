"""One image-reading rule for every reader (issue 20 item 12, issue 22 item 6): stage 1 (training, test, label
maps), stage 2 (CheckedLoadImageFromFile) and the figures apply EXIF orientation, and refuse decompression bombs
naming the file (Pillow's DecompressionBombError is no OSError and escaped every handler). All images generated."""
import numpy as np
import pytest
from PIL import Image

RED, BLUE = (255, 0, 0), (0, 0, 255)


def _exif_rotated_jpeg(path):
    """Stored 40 wide × 20 high, left half red, right half blue, with EXIF orientation 6 ('rotate 90° clockwise to
    display'): a viewer shows it 20 wide × 40 high, red on top (as a phone stores a portrait photo)."""
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20], a[:, 20:] = RED, BLUE
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(a).save(path, quality=95, exif=exif.tobytes())
    return path


def _is(rgb, colour):
    return np.abs(np.asarray(rgb, np.float32) - np.asarray(colour, np.float32)).max() < 40


def test_exif_orientation_is_applied_by_every_reader(tmp_path):
    path = _exif_rotated_jpeg(tmp_path / 'portrait.jpg')
    # stage 1: the training / test / label-map reader
    from pretrain.data import ImageNetFolder
    img = np.asarray(ImageNetFolder.load_image(str(path)))
    assert img.shape == (40, 20, 3) and _is(img[5, 10], RED) and _is(img[35, 10], BLUE)
    # the figures (resize + centre crop of the shown image: red top half, blue bottom half)
    from pretrain.viz.models import read_image
    x = read_image(path, 16, crop_pct=1.0).permute(1, 2, 0).numpy() * 255
    assert _is(x[2, 8], RED) and _is(x[13, 8], BLUE)
    # stage 2: mmcv's loader (OpenCV, and Pillow's backend) shows the same picture
    from mixseg.datasets.transforms import CheckedLoadImageFromFile
    for backend in ('cv2', 'pillow'):
        out = CheckedLoadImageFromFile(imdecode_backend=backend)(dict(img_path=str(path)))['img']  # BGR
        assert out.shape == (40, 20, 3) and _is(out[5, 10, ::-1], RED) and _is(out[35, 10, ::-1], BLUE)


@pytest.fixture
def bomb(tmp_path, monkeypatch):
    """A 64×64 PNG under a pixel limit of 1500: over Pillow's refusal threshold (2 × limit), as a
    decompression bomb is over the real one; 32×32 images stay under the limit."""
    path = tmp_path / 'bomb.png'
    Image.new('RGB', (64, 64)).save(path)
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1500)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)
    return path


def test_decompression_bomb_is_named_by_the_stage1_and_figure_readers(bomb, tmp_path):
    from pretrain.viz.models import read_image
    from pretrain.data import ImageNetFolder, UnreadableImageError
    with pytest.raises(UnreadableImageError, match=r'bomb\.png: refused as a possible decompression bomb'):
        ImageNetFolder.load_image(str(bomb))
    with pytest.raises(OSError, match=r'bomb\.png: refused as a possible decompression bomb'):
        read_image(bomb, 32)
    # the training dataset with on_error='skip' replaces it like any unreadable file
    for c in ('a', 'b'):
        (tmp_path / 'data/train' / c).mkdir(parents=True)
        Image.new('RGB', (32, 32), (9, 9, 9)).save(tmp_path / 'data/train' / c / '0.png')
    (tmp_path / 'data/train/a/1.png').write_bytes(bomb.read_bytes())
    ds = ImageNetFolder(str(tmp_path / 'data'), 'train', on_error='skip')
    with pytest.warns(UserWarning, match=r'1\.png: refused as a possible decompression bomb'):
        sample = ds[1]
    assert sample['data_samples'] == 1  # the next readable sample (b/0.png)


def test_decompression_bomb_is_named_by_the_stage2_loader(bomb):
    from mixseg.datasets.transforms import CheckedLoadImageFromFile
    for backend in ('cv2', 'pillow'):  # OpenCV's own limit is 2^30 pixels: it would decode what Pillow refuses
        with pytest.raises(ValueError, match=r'bomb\.png: refused as a possible decompression bomb'):
            CheckedLoadImageFromFile(imdecode_backend=backend)(dict(img_path=str(bomb)))
    assert CheckedLoadImageFromFile(on_error='skip')(dict(img_path=str(bomb))) is None
