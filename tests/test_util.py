"""The sample grid writer: tiling order and scipy.misc.imsave's min-max byte scaling."""
import numpy as np
from PIL import Image

from dcgan_mnist.util import save_visualization, tile_grid


def imsave_bytes(canvas):
    """scipy.misc.imsave's scaling, written out from its definition (bytescale with cmin/cmax of the data)."""
    cmin, cmax = canvas.min(), canvas.max()
    scale = 255.0 / ((cmax - cmin) or 1)
    return ((canvas - cmin) * scale).clip(0, 255).__add__(0.5).astype(np.uint8)


def test_grid_is_row_major_and_rgb():
    X = np.arange(6, dtype=np.float64).reshape(6, 1, 1, 1) * np.ones((6, 2, 3, 1))
    canvas = tile_grid(X, (2, 3))
    assert canvas.shape == (4, 9, 3) and canvas.dtype == np.float64
    assert canvas[0, 0, 0] == 0 and canvas[0, 3, 1] == 1 and canvas[0, 6, 2] == 2
    assert canvas[2, 0, 0] == 3 and canvas[3, 8, 0] == 5


def test_png_is_byte_exact_against_the_min_max_formula(tmp_path):
    rng = np.random.RandomState(0)
    X = (rng.rand(196, 28, 28, 1).astype(np.float32) + 1.) / 2.  # the training loop's (x+1)/2 range
    path = tmp_path / "grid.png"
    save_visualization(X, (14, 14), save_path=str(path))
    got = np.asarray(Image.open(path))
    assert got.shape == (392, 392, 3)
    np.testing.assert_array_equal(got, imsave_bytes(tile_grid(X, (14, 14))))
    assert got.min() == 0 and got.max() == 255  # the shift is undone on disk


def test_constant_grid_uses_scale_one(tmp_path):
    path = tmp_path / "flat.png"
    save_visualization(np.full((4, 2, 2, 1), 0.75), (2, 2), save_path=str(path))
    assert np.all(np.asarray(Image.open(path)) == 0)


def test_jpeg_size_and_mode(tmp_path):
    path = tmp_path / "sample_0000.jpg"
    save_visualization(np.random.RandomState(1).rand(196, 28, 28, 1), (14, 14), save_path=str(path))
    with Image.open(path) as im:
        assert im.format == "JPEG" and im.mode == "RGB" and im.size == (392, 392)
