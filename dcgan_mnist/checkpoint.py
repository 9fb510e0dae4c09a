"""Checkpoints that hold everything a run needs to continue exactly.

Besides the weights and both Adam optimizers' slots and step counters (ordinary graph
variables), the loop's own state lives in non-trainable variables under ``train_state/``:
the iteration counter, the epoch and the position inside it, the epoch's cumulative data order,
numpy's global RNG state and the fixed sample inputs. One ``tf.compat.v1.train.Saver`` writes them
all in one checkpoint; the Saver writes its files under temporary names and updates the
``checkpoint`` index last, so a crash mid-write leaves the previous checkpoint the latest one.
"""
import os

import numpy as np

from .model import tf

CHECKPOINT_SUBDIR = "checkpoints"
PREFIX = "ckpt"


class TrainState:
    """Graph variables mirroring the loop state. Build after the model, before the Saver."""

    def __init__(self, n_train, visualize_dim, dim_z, dim_y):
        with tf.variable_scope("train_state"):
            def var(name, shape, dtype):
                return tf.get_variable(name, shape, dtype, initializer=tf.zeros_initializer(), trainable=False)
            self.vars = {
                "iteration": var("iteration", [], tf.int64),
                "epoch": var("epoch", [], tf.int64),
                "batch_in_epoch": var("batch_in_epoch", [], tf.int64),
                "order": var("order", [n_train], tf.int64),
                "rng_key": var("rng_key", [624], tf.int64),
                "rng_pos": var("rng_pos", [], tf.int64),
                "rng_has_gauss": var("rng_has_gauss", [], tf.int64),
                "rng_cached_gaussian": var("rng_cached_gaussian", [], tf.float64),
                "sample_z": var("sample_z", [visualize_dim, dim_z], tf.float64),
                "sample_y": var("sample_y", [visualize_dim, dim_y], tf.float64),
            }
            self.inputs = {name: tf.placeholder(v.dtype.base_dtype, v.shape) for name, v in self.vars.items()}
            self.assign = tf.group(*[v.assign(self.inputs[name]) for name, v in self.vars.items()])

    def store(self, sess, iteration, epoch, batch_in_epoch, order, sample_z, sample_y):
        """Copy the loop state and numpy's global RNG state into the variables."""
        _, key, pos, has_gauss, cached = np.random.get_state()
        values = dict(iteration=iteration, epoch=epoch, batch_in_epoch=batch_in_epoch, order=order,
                      rng_key=key.astype(np.int64), rng_pos=pos, rng_has_gauss=has_gauss,
                      rng_cached_gaussian=cached, sample_z=sample_z, sample_y=sample_y)
        sess.run(self.assign, feed_dict={self.inputs[name]: value for name, value in values.items()})

    def fetch(self, sess):
        """Read the state back and put numpy's global RNG where it was."""
        s = sess.run(self.vars)
        np.random.set_state(("MT19937", s["rng_key"].astype(np.uint32), int(s["rng_pos"]),
                             int(s["rng_has_gauss"]), float(s["rng_cached_gaussian"])))
        return s


def checkpoint_dir(run_dir):
    return os.path.join(run_dir, CHECKPOINT_SUBDIR)


def latest(run_dir):
    """Prefix of the newest complete checkpoint of a run, or None."""
    return tf.train.latest_checkpoint(checkpoint_dir(run_dir))


def save(saver, sess, run_dir, iteration):
    return saver.save(sess, os.path.join(checkpoint_dir(run_dir), PREFIX), global_step=iteration,
                      write_meta_graph=False)
