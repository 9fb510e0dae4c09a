"""The training batches as the original makes them, for train.py and bench."""
import numpy as np

from .model import DIM_Y
from .util import OneHot

IMAGE_SHAPE = [28, 28, 1]
# float32(i / 255.) for every byte: the original divided float64 pixels by 255. and TensorFlow
# rounded them to float32 at the feed, so a lookup gives the same floats from uint8 data.
PIXEL_TO_FLOAT = (np.arange(256) / 255.).astype(np.float32)


def batches_per_epoch(n, batch_size):
    """The original's zip(range(0, n, B), range(B, n, B)): drops the partial last batch (and, when n is a
    multiple of B, the last full one too)."""
    return len(range(batch_size, n, batch_size))


def prepare_batch(trX, trY, rows, dim_z):
    """The original's per-batch inputs for training rows ``rows``: images scaled to [0, 1], one-hot labels,
    and a fresh uniform z (the loop's only random draw per batch)."""
    Xs = PIXEL_TO_FLOAT[trX[rows]].reshape([-1] + IMAGE_SHAPE)
    Ys = OneHot(trY[rows], DIM_Y)
    Zs = np.random.uniform(-1, 1, size=[len(rows), dim_z]).astype(np.float32)
    return Xs, Ys, Zs
