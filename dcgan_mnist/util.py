"""One-hot labels and the sample grid writer of the original util.py (without OpenCV/SciPy)."""
import os

import numpy as np
from PIL import Image

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
    grid_image(X, nh_nw).save(save_path)


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
