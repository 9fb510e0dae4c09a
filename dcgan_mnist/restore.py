"""Rebuild a trained generator from a run directory (settings.json + latest checkpoint)."""
import os

from . import checkpoint
from . import settings as settings_module
from .graph import session_config
from .model import DCGAN, DIM_Y, tf


class TrainedGenerator:
    """The generator of a run, restored in its own graph and session.

    The generator normalises with the statistics of the batch it is given (as the original's sampler
    does), so what a z draws depends a little on the rest of its batch.
    """

    def __init__(self, run_dir, threads=0):
        settings_path = os.path.join(run_dir, "settings.json")
        if not os.path.exists(settings_path):
            raise SystemExit(f"error: --checkpoint {run_dir!r}: no settings.json there; expected a run directory "
                             f"written by train.py")
        prefix = checkpoint.latest(run_dir)
        if prefix is None:
            raise SystemExit(f"error: --checkpoint {run_dir!r}: no checkpoint in {checkpoint.checkpoint_dir(run_dir)}")
        self.settings = settings_module.load(settings_path)
        self.checkpoint = prefix
        self.dim_z = self.settings["dim_z"]
        self.graph = tf.Graph()
        with self.graph.as_default():
            s = self.settings
            self.model = DCGAN(batch_size=s["batch_size"], dim_z=s["dim_z"], dim_y=DIM_Y, dim_W1=s["dim_W1"],
                               dim_W2=s["dim_W2"], dim_W3=s["dim_W3"], loss=s["loss"])
            saver = tf.train.Saver(var_list=self.model.gen_weights)
            self.session = tf.Session(config=session_config(threads))
            saver.restore(self.session, prefix)
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
