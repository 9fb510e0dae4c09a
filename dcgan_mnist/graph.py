"""The training graph of the original train.py: the model, two Adam optimizers, the sampler.

``TrainingGraph.iterate`` is one iteration of the original loop (update D at even iterations, G at
odd ones, then evaluate the other numbers after the update). The training loop, the compare
tool and the benchmark all go through it, so there is one definition of an iteration.

The original makes two ``Session.run`` calls per iteration: the update, then a second pass for
the numbers it prints. Here both happen in one run. The post-update numbers read the weights
through ops that wait for the update (control dependencies), so they see exactly the weights the
second run would have seen, and what did not change is not computed twice: in a D step the
generator's images of the update pass are reused (G's weights did not move), in a G step the
discriminator's score of the real images is computed once. The same ops run on the same inputs, so
in the original's session (``session_config``) every printed number and weight is bit for bit the
original's; tests/test_bench.py checks this against a two-run loop built as the original builds it.
"""
import numpy as np

from .model import DCGAN, DIM_Y, tf
from .precision import scales_losses, session_config

OPTIMIZER_BETA1 = 0.5
# The numbers the original prints every iteration, in its order; the keys of a step's result.
PRINTED = ("gen_loss", "discrim_loss", "p_real", "p_gen")
# The original's minimize() gates per op (GATE_OP): every op's input gradients are grouped, so without
# Grappler (see session_config) each is computed even when nothing uses it: the discriminator's weight
# gradients in a G step, the image gradients of its first conv. GATE_GRAPH computes only the gradients
# the update needs and still finishes all of them before any weight is written: the same numbers.
GATE = 2  # tf.train.Optimizer.GATE_GRAPH, as a number so that importing this module does not import TensorFlow


def read_after(train_op, weights):
    """Reads of ``weights`` that run only once ``train_op`` has written them."""
    with tf.control_dependencies([train_op]):
        return [tf.identity(w) for w in weights]


# The variable of the loss scale that MixedPrecisionLossScaleOptimizer adds to a graph (and so to its checkpoints).
LOSS_SCALE_VARIABLE = "current_loss_scale"


def optimizer(learning_rate, scaled):
    adam = tf.train.AdamOptimizer(learning_rate, beta1=OPTIMIZER_BETA1)
    return tf.mixed_precision.MixedPrecisionLossScaleOptimizer(adam, "dynamic") if scaled else adam


def minimized(optimizer, cost, variables, gate):
    """``optimizer.minimize(cost, var_list=variables, gate_gradients=gate)`` in its two halves, the same ops: the
    update, and the (gradient, variable) pairs it applies, for the tools that compare gradients to read instead of
    building them a second time."""
    gradients = optimizer.compute_gradients(cost, var_list=variables, gate_gradients=gate)
    return optimizer.apply_gradients(gradients), gradients


def model_from_settings(settings, batch_size=None):
    """The DCGAN of ``settings`` (the original's variables, the run's widths and switches), at its batch size
    unless another is given."""
    return DCGAN(batch_size=batch_size or settings.batch_size, dim_y=DIM_Y, **settings.widths(),
                 **settings.switches())


def build_training(settings):
    """The training graph of a run of ``settings``, built into the default graph: the graph seed (when the settings
    have one), the model with the run's widths and switches, both optimizers and the sampler, and the session it
    runs in (``session_config``). Every command that trains, times or compares training builds it here."""
    if settings.seed is not None:
        tf.set_random_seed(settings.seed)
    return TrainingGraph(model_from_settings(settings), settings.learning_rate, settings.visualize_dim,
                         settings.precision, settings.threads)


class TrainingGraph:
    def __init__(self, model: DCGAN, learning_rate, visualize_dim, precision, threads=0):
        self.model = model
        self.session_config = session_config(threads, precision)
        (self.Z, self.Y, self.image_real,
         self.d_cost, self.g_cost, self.p_real, self.p_gen) = model.build_model()
        # Picked by name prefix, as the original does.
        self.discrim_vars = [v for v in tf.trainable_variables() if v.name.startswith('discrim')]
        self.gen_vars = [v for v in tf.trainable_variables() if v.name.startswith('gen')]
        self.scales_losses = scales_losses(precision)
        self.train_op_discrim, self.discrim_gradients = minimized(
            optimizer(learning_rate, self.scales_losses), self.d_cost, self.discrim_vars, GATE)
        self.train_op_gen, self.gen_gradients = minimized(
            optimizer(learning_rate, self.scales_losses), self.g_cost, self.gen_vars, GATE)
        # --g-average: each G update is followed by the update of G's weight averages, which the sampler draws
        # with. Training reads only G's own weights, so it is the same with or without them.
        average = model.gen_average()
        sampler_weights = None
        if average:
            with tf.control_dependencies([self.train_op_gen]):
                self.train_op_gen = average.apply(self.gen_vars)
            sampler_weights = [average.average(w) for w in model.gen_weights]
        self.Z_sample, self.Y_sample, self.image_sample = model.samples_generator(visualize_dim, sampler_weights)
        # Built last, so the variables' seeded initial values do not depend on them, and not recorded:
        # model.layers holds the original's graph, which has no such re-evaluations.
        with model.not_recording():
            self.after_discrim_update = self._numbers_after_discrim_update()
            self.after_gen_update = self._numbers_after_gen_update()

    def _numbers_after_discrim_update(self):
        """[g_cost, p_real, p_gen] with D's updated weights, on the update pass's generated images."""
        model = self.model
        image_gen = model.image_gen
        discrim_after = read_after(self.train_op_discrim, model.discrim_weights)
        raw_real = model.discriminate(self.image_real, self.Y, weights=discrim_after, source="real")
        raw_gen = model.discriminate(image_gen, self.Y, weights=discrim_after, source="generated")
        _, g_cost = model.costs(raw_real, raw_gen)
        return [g_cost, tf.nn.sigmoid(raw_real), tf.nn.sigmoid(raw_gen)]

    def _numbers_after_gen_update(self):
        """[d_cost, p_real, p_gen] with G's updated weights; D did not change, so P(real) is the pass's own."""
        model = self.model
        raw_real = model.raw_real
        gen_after = read_after(self.train_op_gen, model.gen_weights)
        image_gen = tf.nn.sigmoid(model.generate(self.Z, self.Y, weights=gen_after))
        raw_gen = model.discriminate(image_gen, self.Y, source="generated")
        d_cost, _ = model.costs(raw_real, raw_gen)
        return [d_cost, self.p_real, tf.nn.sigmoid(raw_gen)]

    def fetches(self, updated, after_update=True):
        """What one iteration runs: the update of net ``updated`` ('D' or 'G') and that net's cost as the
        update pass computes it, then, with ``after_update``, the numbers after the update (and, in a D update under
        --augment adaptive, the mean sign of D's logits on the real images, last)."""
        if updated == "D":
            sign = [self.model.real_sign] if self.model.real_sign is not None else []
            return [self.train_op_discrim, self.d_cost] + (self.after_discrim_update if after_update else []) + sign
        return [self.train_op_gen, self.g_cost] + (self.after_gen_update if after_update else [])

    def iterate(self, sess, iteration, Xs, Ys, Zs, k=2, after_update=True, augment_p=1.0, run_metadata=None):
        """One iteration. Returns a dict with ``updated`` ('D' or 'G') and the four PRINTED numbers;
        with ``after_update=False`` the post-update numbers are not computed and only the updated net's own
        loss (computed by the update pass) is filled in. Under --augment adaptive, each image D sees is moved with
        probability ``augment_p``, and a D update also returns ``real_sign``. A ``run_metadata`` (tf.RunMetadata)
        is filled with TensorFlow's full trace of the run (bench --profile)."""
        updated = "G" if np.mod(iteration, k) != 0 else "D"
        feed = {self.Z: Zs, self.Y: Ys, self.image_real: Xs}
        shifts = self.model.draw_shifts(augment_p)
        if shifts is not None:
            feed[self.model.shifts] = shifts
        traced = {} if run_metadata is None else {
            "options": tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE), "run_metadata": run_metadata}
        values = sess.run(self.fetches(updated, after_update), feed_dict=feed, **traced)
        extra = {}
        if updated == "D" and self.model.real_sign is not None:
            extra["real_sign"] = values.pop()
        own = "gen_loss" if updated == "G" else "discrim_loss"
        # fetches() lists the update's own loss, then the other PRINTED numbers in order. P(real) and
        # P(gen) come per image and are averaged in numpy, as the original prints them.
        names = [own] + [name for name in PRINTED if name != own]
        return {"updated": updated, **{name: value if np.ndim(value) == 0 else value.mean()
                                       for name, value in zip(names, values[1:])}, **extra}

    def sample(self, sess, Z, Y):
        return sess.run(self.image_sample, feed_dict={self.Z_sample: Z, self.Y_sample: Y})
