"""The training graph of the original train.py: the model, two Adam optimizers, the sampler.

``TrainingGraph.step`` is one iteration of the original loop (update D at even iterations, G at
odd ones, then evaluate the other numbers after the update). The training loop, the compare
tool and the benchmark all go through it, so there is one definition of an iteration.
"""
import numpy as np

from .model import DCGAN, tf

OPTIMIZER_BETA1 = 0.5


class TrainingGraph:
    def __init__(self, model: DCGAN, learning_rate=0.0002, visualize_dim=196):
        self.model = model
        (self.Z, self.Y, self.image_real,
         self.d_cost, self.g_cost, self.p_real, self.p_gen) = model.build_model()
        # Picked by name prefix, as the original does.
        self.discrim_vars = [v for v in tf.trainable_variables() if v.name.startswith('discrim')]
        self.gen_vars = [v for v in tf.trainable_variables() if v.name.startswith('gen')]
        self.train_op_discrim = tf.train.AdamOptimizer(learning_rate, beta1=OPTIMIZER_BETA1).minimize(
            self.d_cost, var_list=self.discrim_vars)
        self.train_op_gen = tf.train.AdamOptimizer(learning_rate, beta1=OPTIMIZER_BETA1).minimize(
            self.g_cost, var_list=self.gen_vars)
        self.Z_sample, self.Y_sample, self.image_sample = model.samples_generator(batch_size=visualize_dim)

    def step(self, sess, iteration, Xs, Ys, Zs, k=2, evaluate=True):
        """One iteration. Returns a dict with ``updated`` ('D' or 'G') and the four numbers the
        original prints; with ``evaluate=False`` the post-update run is skipped and only the
        updated net's own loss (computed by the update run) is filled in."""
        feed = {self.Z: Zs, self.Y: Ys, self.image_real: Xs}
        if np.mod(iteration, k) != 0:
            _, gen_loss = sess.run([self.train_op_gen, self.g_cost], feed_dict={self.Z: Zs, self.Y: Ys})
            out = {"updated": "G", "gen_loss": gen_loss}
            if evaluate:
                out["discrim_loss"], p_real, p_gen = sess.run([self.d_cost, self.p_real, self.p_gen], feed_dict=feed)
        else:
            _, discrim_loss = sess.run([self.train_op_discrim, self.d_cost], feed_dict=feed)
            out = {"updated": "D", "discrim_loss": discrim_loss}
            if evaluate:
                out["gen_loss"], p_real, p_gen = sess.run([self.g_cost, self.p_real, self.p_gen], feed_dict=feed)
        if evaluate:
            out["p_real"] = p_real.mean()
            out["p_gen"] = p_gen.mean()
        return out

    def sample(self, sess, Z, Y):
        return sess.run(self.image_sample, feed_dict={self.Z_sample: Z, self.Y_sample: Y})
