"""Rebuild a trained generator from a run directory or one of its checkpoints."""
from . import run
from .graph import session_config
from .model import tf


class TrainedGenerator:
    """The generator of a run, restored in its own graph and session. ``path`` is a run directory (its
    latest checkpoint) or one of its checkpoints; ``settings`` is the run's settings.json. A run trained with
    --g-average draws with the average of G's weights, as its vis/ grids do, unless ``latest``.

    The generator normalises with the statistics of the batch it is given (as the original's sampler
    does), so what a z draws depends a little on the rest of its batch.
    """

    def __init__(self, path, threads=0, flag="--checkpoint", latest=False):
        self.run = run.Run(path, flag)
        self.settings = self.run.settings
        self.checkpoint = self.run.checkpoint
        self.dim_z = self.settings["dim_z"]
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.model = run.model_from_settings(self.settings)
            average = None if latest else self.model.gen_average()
            self.weights = f"the average of G's weights (decay {self.model.g_average})" if average else \
                "G's latest weights"
            # A run trained with --g-average samples from the averages: they are restored into G's weights.
            saver = tf.train.Saver(var_list={average.average_name(w): w for w in self.model.gen_weights} if average
                                   else self.model.gen_weights)
            self.session = tf.Session(config=session_config(threads))
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


def add_latest_weights_flag(parser):
    parser.add_argument("--latest-weights", action="store_true",
                        help="for a run trained with --g-average: use G's latest weights instead of their average, "
                             "to see what the average changes")
