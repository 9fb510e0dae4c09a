"""A trained generator rebuilt from a run directory, and the one way samples are drawn from it."""
import numpy as np

from . import checkpoints
from .cli import CommandError
from .graph import model_from_settings
from .model import DIM_Y, tf
from .precision import session_config
from .util import OneHot


class TrainedGenerator:
    """The generator of a run, restored in its own graph and session. ``path`` is a run directory (its
    latest checkpoint) or one of its checkpoints; ``settings`` is the run's Settings. A run trained with
    --g-average draws with the average of G's weights, as its vis/ grids do, unless ``latest``.

    The generator normalises with the statistics of the batch it is given (as the original's sampler
    does), so what a z draws depends a little on the rest of its batch.
    """

    def __init__(self, path, threads=0, flag="--checkpoint", latest=False):
        self.run = checkpoints.Run(path, flag)
        self.settings = self.run.settings
        if latest and not self.settings.g_average:
            raise CommandError(f"--latest-weights: {self.run.run_dir} was trained without --g-average, so it has only "
                               f"G's latest weights, which it draws with anyway; leave --latest-weights out")
        self.checkpoint = self.run.checkpoint
        self.dim_z = self.settings.dim_z
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.model = model_from_settings(self.settings)
            average = None if latest else self.model.gen_average()
            self.weights = f"the average of G's weights (decay {self.model.g_average})" if average else \
                "G's latest weights"
            # A run trained with --g-average samples from the averages: they are restored into G's weights.
            saver = tf.train.Saver(var_list={average.average_name(w): w for w in self.model.gen_weights} if average
                                   else self.model.gen_weights)
            self.session = tf.Session(config=session_config(threads, self.settings.precision))
            self.run.restore(saver, self.session)
        self._samplers = {}

    def sample(self, Z, Y):
        """Images in [0, 1], shape [N, 28, 28, 1], for noise Z [N, dim_z] and one-hot labels Y [N, 10]."""
        n = len(Z)
        if n not in self._samplers:
            with self.graph.as_default():
                self._samplers[n] = self.model.samples_generator(n)
        z_in, y_in, images = self._samplers[n]
        return self.session.run(images, feed_dict={z_in: Z, y_in: Y})

    def close(self):
        self.session.close()


def draw_in_mixed_batches(sample, Z, labels, batch_size, rng=None, fill=None):
    """The images [N, 28, 28, 1] that ``sample(z, y)`` draws for noise Z [N, dim_z] and digits ``labels`` [N].

    The generator normalises with the statistics of the batch it draws, and it was trained on batches of
    mixed digits. A batch of one digit is far from those (its label inputs are the same in every row, so
    batchnorm mostly subtracts them away) and draws poor digits. So the samples are laid out in batches of
    ``batch_size`` whose digits cycle 0, 1, ..., 9, 0, 1, ...: the k-th sample asked for of digit d takes
    place d + 10k. Places no sample was asked for get ``fill(digits, ks)``, the z of the k-th sample of each
    digit (arrays of both), or without ``fill`` fresh z from ``rng``; their images are dropped. A sample's
    batch-mates then have the same digits whatever else was asked for. Their z, drawn from ``rng``, differ,
    which changes the sample a little; a ``fill`` giving every place the z that asking for it would use
    makes every batch, and so every sample, the same whatever else was asked for.
    """
    labels = np.asarray(labels)
    rank = np.empty(len(labels), dtype=np.int64)
    for digit in range(DIM_Y):
        mine = labels == digit
        rank[mine] = np.arange(np.count_nonzero(mine))
    place = labels + DIM_Y * rank
    n_batches = -(-(place.max() + 1) // batch_size)
    batch_z = np.empty((n_batches * batch_size, np.shape(Z)[1]))
    batch_z[place] = Z
    free = np.ones(len(batch_z), dtype=bool)
    free[place] = False
    if fill is None:
        batch_z[free] = rng.uniform(-1, 1, size=(np.count_nonzero(free), batch_z.shape[1]))
    else:
        free_place = np.flatnonzero(free)
        batch_z[free] = fill(free_place % DIM_Y, free_place // DIM_Y)
    batch_y = OneHot(np.arange(len(batch_z)) % DIM_Y, DIM_Y)
    images = np.concatenate([sample(batch_z[i:i + batch_size], batch_y[i:i + batch_size])
                             for i in range(0, len(batch_z), batch_size)])
    return images[place]


def draw_samples(sample, n, chunk, dim_z, rng):
    """``n`` images [n, 28, 28, 1] and their labels: every digit n/10 times (as near as n allows) in random
    order, z ~ uniform(-1, 1), drawn in batches of ``chunk`` (the run's visualize_dim, 196, the batch the
    original samples in) whose digits are mixed as in training, as generate draws them."""
    labels = rng.permutation(np.arange(n) % DIM_Y)
    z = rng.uniform(-1, 1, size=(n, dim_z))
    return draw_in_mixed_batches(sample, z, labels, chunk, rng), labels
