"""One-hot labels and the sample grid writer of the original util.py (without OpenCV/SciPy), and the one way
pictures and arrays are written: whole or not at all."""
import contextlib
import errno
import os

import numpy as np
from PIL import Image, ImageSequence

from .cli import CommandError


def OneHot(X, n=None, negative_class=0.):
    """Rows of one-hot labels. ``n=None`` keeps the original's width of ``max(X)+1``;
    the training loop always passes ``n=10`` so a batch without a 9 still fits."""
    X = np.asarray(X).flatten()
    if n is None:
        n = np.max(X) + 1
    Xoh = np.ones((len(X), n)) * negative_class
    Xoh[np.arange(len(X)), X] = 1.
    return Xoh


def tile_grid(X, nh_nw):
    """Tile images [N, h, w, c] row-major into one float64 (h*nh, w*nw, 3) canvas."""
    h, w = X.shape[1], X.shape[2]
    img = np.zeros((h * nh_nw[0], w * nh_nw[1], 3))
    for n, x in enumerate(X):
        j = n // nh_nw[1]
        i = n % nh_nw[1]
        img[j*h:j*h+h, i*w:i*w+w, :] = x
    return img


def to_bytes(img):
    """The byte scaling ``scipy.misc.imsave`` applied: the canvas's own min..max onto 0..255."""
    low, high = img.min(), img.max()
    span = high - low
    if span == 0:
        span = 1
    scale = 255.0 / span
    return (((img - low) * scale).clip(0, 255) + 0.5).astype(np.uint8)


def grid_image(X, nh_nw):
    """Images X [N, h, w, 1] as one RGB picture, an nh x nw grid scaled as the original saved it."""
    return Image.fromarray(to_bytes(tile_grid(X, nh_nw)), "RGB")


def save_visualization(X, nh_nw, save_path='./vis/sample.jpg'):
    """Write the grid; the format follows the file's extension (the original's is JPEG)."""
    save_picture(grid_image(X, nh_nw), save_path)


def picture_format(path):
    """The Pillow format that ``path``'s extension names; ValueError, saying why, if Pillow cannot write it."""
    extension = os.path.splitext(path)[1].lower()
    file_format = Image.registered_extensions().get(extension)
    if file_format is None:
        raise ValueError(f"unknown picture format {extension or '(no extension)'!r}; use e.g. .png")
    if file_format not in Image.SAVE:
        raise ValueError(f"Pillow reads {extension} pictures but cannot write them; use e.g. .png")
    return file_format


def save_picture(image, path, **options):
    """``image.save`` into ``path`` whole or not at all (``write_whole``), in the format of the extension of
    ``path`` itself (the temporary name's differs); ``options`` go to Pillow as given (e.g. a GIF's frames).
    A format Pillow writes but cannot read itself (PDF, EPS) is not read back."""
    file_format = picture_format(path)
    # Pillow reads EPS only through Ghostscript, which need not be installed.
    readable = file_format in Image.OPEN and file_format != "EPS"
    write_whole(path, lambda f: image.save(f, format=file_format, **options), read_picture if readable else None)


def read_picture(path):
    # load() decodes a frame in full: a truncated one raises here instead of being filled in grey.
    with Image.open(path) as picture:
        for frame in ImageSequence.Iterator(picture):
            frame.load()


def save_arrays(path, **arrays):
    """``np.savez`` into exactly the name ``path`` (no .npz appended), whole or not at all (``write_whole``)."""
    write_whole(path, lambda f: np.savez(f, **arrays), read_arrays)


def read_arrays(path):
    with np.load(path) as archive:
        for name in archive.files:
            archive[name]  # reading a member checks its CRC


def write_whole(path, write, read_back):
    """Write ``path`` with ``write(file)`` so that it ends up holding the whole new content or what it held.

    The content goes to ``path + '.tmp'`` in the same folder, which is closed, read back with
    ``read_back(temporary_path)`` (unless None) and only then renamed over ``path``. Pillow does not notice
    a short write on a full disk, so reading the file back is what catches a truncated picture. On any
    failure the temporary file is removed, and an error of writing, reading back or renaming is raised as
    an OSError naming ``path`` with the reason as its strerror.
    """
    temporary = path + ".tmp"
    try:
        with open(temporary, "wb") as f:
            write(f)
        if read_back is not None:
            try:
                read_back(temporary)
            except Exception as e:
                raise OSError(errno.EIO, f"the file written does not read back whole ({e}); is the disk full?")
        os.replace(temporary, path)
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), path) from e
    finally:
        with contextlib.suppress(OSError):  # already gone once renamed
            os.remove(temporary)


def ensure_dir(path, what):
    """Create ``path`` and prove it is writable now, naming it (``what``) if it is not.
    Returns whether the folder was created by this call."""
    created = not os.path.isdir(path)
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write-test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        raise CommandError(f"{what} {path!r} is not writable: {e.strerror or e}") from None
    return created
