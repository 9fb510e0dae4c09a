"""The sample grid writer: tiling order, scipy.misc.imsave's min-max byte scaling, and whole-or-nothing writes."""
import errno
import os
import re

import numpy as np
import pytest
from PIL import Image

from dcgan_mnist.util import grid_image, picture_format, save_arrays, save_visualization, tile_grid


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


@pytest.mark.parametrize("name", ["sample_0000.jpg", "grid.png"])
def test_save_visualization_writes_the_bytes_pillow_writes_by_name(tmp_path, name):
    X = np.random.RandomState(2).rand(196, 28, 28, 1)
    save_visualization(X, (14, 14), save_path=str(tmp_path / name))
    grid_image(X, (14, 14)).save(tmp_path / ("plain-" + name))  # how the grids were written before
    assert (tmp_path / name).read_bytes() == (tmp_path / ("plain-" + name)).read_bytes()
    assert sorted(os.listdir(tmp_path)) == sorted([name, "plain-" + name])


@pytest.fixture
def short_writes(monkeypatch):
    """Pillow and numpy write only the first half of every file, without an error, as on a full disk."""
    def halved(save):
        def short_save(*args, **kwargs):
            save(*args, **kwargs)
            f = next(a for a in args if hasattr(a, "truncate"))
            f.truncate(f.tell() // 2)
        return short_save
    monkeypatch.setattr(Image.Image, "save", halved(Image.Image.save))
    monkeypatch.setattr(np, "savez", halved(np.savez))


@pytest.mark.parametrize("previous", [None, b"the previous picture"])
def test_a_short_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path, short_writes, previous):
    path = tmp_path / "sample_0003.jpg"
    if previous is not None:
        path.write_bytes(previous)
    with pytest.raises(OSError) as e:
        save_visualization(np.random.RandomState(3).rand(4, 28, 28, 1), (2, 2), save_path=str(path))
    assert e.value.filename == str(path)
    assert e.value.strerror.startswith("the file written does not read back whole (image file is truncated")
    assert e.value.strerror.endswith("; is the disk full?")
    assert os.listdir(tmp_path) == ([path.name] if previous else [])
    if previous:
        assert path.read_bytes() == previous


def test_a_short_write_of_arrays_is_caught_too(tmp_path, short_writes):
    with pytest.raises(OSError, match="does not read back whole"):
        save_arrays(str(tmp_path / "raw.npz"), images=np.zeros((50, 28, 28)))
    assert os.listdir(tmp_path) == []


def test_a_write_error_names_the_final_file(tmp_path, monkeypatch):
    def no_space(self, fp, *args, **kwargs):
        fp.write(b"\xff\xd8")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(Image.Image, "save", no_space)
    path = str(tmp_path / "sample_0000.jpg")
    with pytest.raises(OSError) as e:
        save_visualization(np.zeros((4, 28, 28, 1)), (2, 2), save_path=path)
    assert (e.value.errno, e.value.strerror, e.value.filename) == (errno.ENOSPC, "No space left on device", path)
    assert os.listdir(tmp_path) == []


def test_arrays_keep_the_exact_name_and_their_values(tmp_path):
    path = tmp_path / "raw.data"
    save_arrays(str(path), z=np.arange(6.).reshape(2, 3), labels=np.array([4, 2]))
    assert os.listdir(tmp_path) == ["raw.data"]
    with np.load(path) as raw:
        np.testing.assert_array_equal(raw["z"], np.arange(6.).reshape(2, 3))
        np.testing.assert_array_equal(raw["labels"], [4, 2])


@pytest.mark.parametrize("name, reason", [
    ("grid.xyz", "unknown picture format '.xyz'; use e.g. .png"),
    ("grid", "unknown picture format '(no extension)'"),
    ("grid.psd", "Pillow reads .psd pictures but cannot write them"),
])
def test_picture_formats_pillow_cannot_write_are_refused_before_writing(tmp_path, name, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        save_visualization(np.zeros((4, 28, 28, 1)), (2, 2), save_path=str(tmp_path / name))
    assert os.listdir(tmp_path) == []


def test_picture_format_follows_the_final_name_upper_case_too():
    assert picture_format("a/b.JPG") == "JPEG" and picture_format("x.png") == "PNG" and picture_format("y.gif") == "GIF"
