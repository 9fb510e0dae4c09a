"""The training loop's numpy core, as the original's train.py walks its data: where a run is (``Position``), the
epoch's order, each batch's inputs, and numpy's global random state as a checkpoint keeps it. train.py, the
TensorFlow 2 twin and bench all go through it, so all three see the same batches in the same order.

Nothing here imports TensorFlow (model.py's ``tf`` is only imported on first use), so the twin can use it.
"""
import math

import numpy as np

from .model import DIM_Y
from .util import OneHot

IMAGE_SHAPE = [28, 28, 1]
# float32(i / 255.) for every byte: the original divided float64 pixels by 255. and TensorFlow
# rounded them to float32 at the feed, so a lookup gives the same floats from uint8 data.
PIXEL_TO_FLOAT = (np.arange(256) / 255.).astype(np.float32)
# numpy's legacy global generator (MT19937) as a checkpoint stores it, under train_state/.
RNG_STATE = ("rng_key", "rng_pos", "rng_has_gauss", "rng_cached_gaussian")


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


class Position:
    """Where a run is in its data: the iteration, the epoch (counting from 0), the batch inside it and the epoch's
    order of the training images. The original reorders its arrays every epoch, so each epoch's order composes with
    the last one's; a resumed run passes the position its checkpoint recorded."""

    def __init__(self, n_train, batch_size, iteration=0, epoch=0, batch=0, order=None):
        self.n_batches, self.batch_size = batches_per_epoch(n_train, batch_size), batch_size
        self.iteration, self.epoch, self.batch = iteration, epoch, batch
        self.order = np.arange(n_train) if order is None else order

    def walk(self, n_epochs, last_iteration):
        """Yield "batch" before each iteration (an epoch's order is drawn at its first batch) and "epoch" after the
        last batch of an epoch; whoever walks calls ``advance`` once the iteration is done."""
        while self.epoch < n_epochs and self.iteration < last_iteration:
            if self.batch == 0:
                index = np.arange(len(self.order))
                np.random.shuffle(index)
                self.order = self.order[index]
            while self.batch < self.n_batches and self.iteration < last_iteration:
                yield "batch"
            if self.batch == self.n_batches:
                self.epoch += 1
                self.batch = 0
                yield "epoch"

    def rows(self):
        """The training rows of the batch at this position."""
        return self.order[self.batch * self.batch_size:(self.batch + 1) * self.batch_size]

    def advance(self):
        self.iteration += 1
        self.batch += 1


def rng_state():
    """numpy's global random state, as the arrays a checkpoint keeps (RNG_STATE)."""
    _, key, pos, has_gauss, cached = np.random.get_state()
    return dict(zip(RNG_STATE, (key.astype(np.int64), pos, has_gauss, cached)))


def set_rng_state(values):
    """Put numpy's global random state back from a checkpoint's arrays (RNG_STATE)."""
    key, pos, has_gauss, cached = (values[name] for name in RNG_STATE)
    np.random.set_state(("MT19937", key.astype(np.uint32), int(pos), int(has_gauss), float(cached)))


def endless_batches(trX, trY, batch_size, dim_z):
    """(Xs, Ys, Zs) in train.py's order, epoch after epoch without end: what bench and ablate's probe time."""
    position = Position(len(trY), batch_size)
    for step in position.walk(math.inf, math.inf):
        if step == "batch":
            yield prepare_batch(trX, trY, position.rows(), dim_z)
            position.advance()


def synthetic_data(n, rng):
    """uint8 images [n, 784] and digit labels [n], stored as train.py stores real data: for timing without data."""
    return rng.randint(0, 256, size=(n, 784), dtype=np.uint8), rng.randint(10, size=n).astype(np.uint8)
