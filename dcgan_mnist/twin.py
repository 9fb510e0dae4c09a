"""The conditional DCGAN of model.py and the training of graph.py, in TensorFlow 2: eager by default, one
tf.function per training step, GradientTape for the gradients.

The networks are model.py's op for op, with its eight variables under their names and shapes, so a TF1 run's
checkpoint loads by name (``load_tf1_checkpoint``); the optimizer is TF1's AdamOptimizer written out
(``Adam``), because Keras's Adam is another update. ``python -m dcgan_mnist migrate-check`` proves the two
equal, rung by rung (docs/migration.md).

This module imports TensorFlow itself, and of the package only what never touches ``dcgan_mnist.model``'s ``tf``
(the first use of which switches the whole process to TF1 behaviour): the loop's numpy core (batches.py) and the
names of the switches. The TF1 model and this twin never share a process.
"""
import numpy as np
import tensorflow as tf

from .batches import RNG_STATE, Position, prepare_batch, set_rng_state
from .model import D_OUTPUTS, DIM_Y, LOSSES

# TF1's tf.train.AdamOptimizer's defaults, with train.py's beta1. Keras's Adam has epsilon 1e-7.
BETA1, BETA2, EPSILON = 0.5, 0.999, 1e-8


def without_grappler():
    """Run every tf.function as traced. TF1's InteractiveSession set place_pruned_graph, so Grappler never
    rewrote the original's graph; a tf.function's graph is rewritten unless this is called before it runs,
    and the rewrites change the last digits of its results (docs/migration.md)."""
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def batchnormalize(X, eps=1e-8):
    """Normalise with the statistics of this batch only (no running averages)."""
    axes = [0, 1, 2] if X.shape.rank == 4 else 0
    mean = tf.reduce_mean(X, axes)
    std = tf.reduce_mean(tf.square(X - mean), axes)
    return (X - mean) / tf.sqrt(std + eps)


def lrelu(X, leak=0.2):
    f1 = 0.5 * (1 + leak)
    f2 = 0.5 * (1 - leak)
    return f1 * X + f2 * tf.abs(X)


def bce(o, t, clip=True):
    """Mean sigmoid cross-entropy of logits ``o``; ``clip`` is the original's clip of the logits to
    [1e-7, 1-1e-7], which zeroes the gradient of every logit outside it."""
    if clip:
        o = tf.clip_by_value(o, 1e-7, 1. - 1e-7)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(logits=o, labels=t))


def with_labels(h, yb):
    """``h`` [B, H, W, C] with the labels ``yb`` [B, 1, 1, 10] appended as 10 constant channels."""
    batch, height, width = h.shape[:3]
    return tf.concat([h, yb * tf.ones([batch, height, width, DIM_Y])], axis=3)


class DCGAN(tf.Module):
    """The generator and discriminator. Every variable is made here, once; calling the networks makes none."""

    def __init__(self, dim_z=100, dim_W1=1024, dim_W2=128, dim_W3=64, dim_channel=1, loss="clipped",
                 d_output="original"):
        super().__init__(name="dcgan")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if d_output not in D_OUTPUTS:
            raise ValueError(f"d_output must be one of {D_OUTPUTS}, got {d_output!r}")
        self.dim_z, self.dim_W2, self.dim_W3, self.dim_channel = dim_z, dim_W2, dim_W3, dim_channel
        self.loss, self.d_output = loss, d_output

        def weight(shape, name):
            return tf.Variable(tf.random.normal(shape, stddev=0.02), name=name)

        self.gen_weights = [
            weight([dim_z + DIM_Y, dim_W1], "gen_W1"),
            weight([dim_W1 + DIM_Y, dim_W2 * 7 * 7], "gen_W2"),
            weight([5, 5, dim_W3, dim_W2 + DIM_Y], "gen_W3"),
            weight([5, 5, dim_channel, dim_W3 + DIM_Y], "gen_W4"),
        ]
        self.discrim_weights = [
            weight([5, 5, dim_channel + DIM_Y, dim_W3], "discrim_W1"),
            weight([5, 5, dim_W3 + DIM_Y, dim_W2], "discrim_W2"),
            weight([dim_W2 * 7 * 7 + DIM_Y, dim_W1], "discrim_W3"),
            weight([dim_W1 + DIM_Y, 1], "discrim_W4"),
        ]

    def generate(self, Z, Y, weights=None):
        """Pre-sigmoid images [B, 28, 28, dim_channel]; ``weights`` replaces gen_W1..4 (their averages)."""
        W1, W2, W3, W4 = weights or self.gen_weights
        batch = Z.shape[0]
        yb = tf.reshape(Y, [batch, 1, 1, DIM_Y])
        h1 = tf.nn.relu(batchnormalize(tf.matmul(tf.concat([Z, Y], axis=1), W1)))
        h1 = tf.concat([h1, Y], axis=1)
        h2 = tf.nn.relu(batchnormalize(tf.matmul(h1, W2)))
        h2 = with_labels(tf.reshape(h2, [batch, 7, 7, self.dim_W2]), yb)
        h3 = tf.nn.conv2d_transpose(h2, W3, output_shape=[batch, 14, 14, self.dim_W3], strides=[1, 2, 2, 1])
        h3 = with_labels(tf.nn.relu(batchnormalize(h3)), yb)
        return tf.nn.conv2d_transpose(h3, W4, output_shape=[batch, 28, 28, self.dim_channel], strides=[1, 2, 2, 1])

    def discriminate(self, image, Y):
        """Raw (pre-sigmoid) scores [B, 1]."""
        W1, W2, W3, W4 = self.discrim_weights
        batch = image.shape[0]
        yb = tf.reshape(Y, [batch, 1, 1, DIM_Y])
        h1 = lrelu(tf.nn.conv2d(with_labels(image, yb), W1, strides=[1, 2, 2, 1], padding="SAME"))
        h2 = lrelu(batchnormalize(tf.nn.conv2d(with_labels(h1, yb), W2, strides=[1, 2, 2, 1], padding="SAME")))
        h2 = tf.concat([tf.reshape(h2, [batch, -1]), Y], axis=1)
        h3 = tf.concat([lrelu(batchnormalize(tf.matmul(h2, W3))), Y], axis=1)
        h4 = tf.matmul(h3, W4)
        # D's last layer is what --d-output switches (docs/lessons.md 8 says why the original's is a flaw).
        if self.d_output == "original":
            h4 = batchnormalize(h4)
        if self.d_output != "linear":
            h4 = lrelu(h4)
        return h4

    def costs(self, raw_real, raw_gen):
        """(discriminator cost, generator cost) from the two raw discriminator outputs."""
        clip = self.loss == "clipped"
        discrim_cost = bce(raw_real, tf.ones_like(raw_real), clip) + bce(raw_gen, tf.zeros_like(raw_gen), clip)
        return discrim_cost, bce(raw_gen, tf.ones_like(raw_gen), clip)


class Adam(tf.Module):
    """TF1's tf.train.AdamOptimizer, written out: its epsilon, its step size
    ``lr * sqrt(1 - beta2^t) / (1 - beta1^t)`` from running products beta1^t and beta2^t kept as variables, its
    moment updates ``m += (g - m) * (1 - beta1)`` in float32, and the products advanced after every variable
    is updated. Slots and products carry TF1's checkpoint names (``gen_W1/Adam`` is m, ``gen_W1/Adam_1`` v);
    ``power_suffix`` is ``_1`` for the second optimizer a TF1 graph builds."""

    def __init__(self, variables, learning_rate, beta1=BETA1, beta2=BETA2, epsilon=EPSILON, power_suffix=""):
        super().__init__(name="adam" + power_suffix)
        self.variables_updated = list(variables)
        # Every constant is made in float32 before any arithmetic, as the TF1 kernel receives them: Python's
        # 1 - 0.999 rounded to float32 is not float32(1) - float32(0.999).
        self.learning_rate, self.beta1, self.beta2, self.epsilon = (
            tf.constant(x, tf.float32) for x in (learning_rate, beta1, beta2, epsilon))

        def state(initial_value, name):
            return tf.Variable(initial_value, trainable=False, name=name)

        self.m = [state(tf.zeros_like(v), f"{slot_name(v)}/Adam") for v in self.variables_updated]
        self.v = [state(tf.zeros_like(v), f"{slot_name(v)}/Adam_1") for v in self.variables_updated]
        self.beta1_power = state(self.beta1, "beta1_power" + power_suffix)
        self.beta2_power = state(self.beta2, "beta2_power" + power_suffix)

    def apply(self, gradients):
        one = tf.constant(1.0)
        alpha = self.learning_rate * tf.sqrt(one - self.beta2_power) / (one - self.beta1_power)
        for var, m, v, g in zip(self.variables_updated, self.m, self.v, gradients):
            m.assign_add((g - m) * (one - self.beta1))
            v.assign_add((tf.square(g) - v) * (one - self.beta2))
            var.assign_sub((m * alpha) / (tf.sqrt(v) + self.epsilon))
        self.beta1_power.assign(self.beta1_power * self.beta1)
        self.beta2_power.assign(self.beta2_power * self.beta2)


def slot_name(variable):
    return variable.name.split(":")[0]


class Trainer(tf.Module):
    """graph.TrainingGraph in TF2: two Adam(lr, beta1 0.5), one for D's four weights and one for G's, picked as
    lists rather than by name prefix; D updated at even iterations, G at odd ones (k=2); each step returns the
    numbers the original prints, computed with the updated weights. With ``g_average`` > 0 each G update is
    followed by the update of G's moving averages (gen_W1/ExponentialMovingAverage, ...), which ``sample`` uses."""

    def __init__(self, model, learning_rate=0.0002, k=2, g_average=0.0):
        super().__init__(name="trainer")
        self.model, self.k = model, k
        # TF1's graph builds D's optimizer first, so its products are beta1_power and G's beta1_power_1.
        self.d_optimizer = Adam(model.discrim_weights, learning_rate)
        self.g_optimizer = Adam(model.gen_weights, learning_rate, power_suffix="_1")
        self.decay = tf.constant(g_average, tf.float32) if g_average else None
        self.averages = [tf.Variable(w, trainable=False, name=f"{slot_name(w)}/ExponentialMovingAverage")
                         for w in model.gen_weights] if g_average else None
        # Their loops and ifs are over Python lists and settings, so AutoGraph has nothing to convert.
        self.d_step = tf.function(self._d_step, autograph=False)
        self.g_step = tf.function(self._g_step, autograph=False)
        self.sample = tf.function(self._sample, autograph=False)

    def _d_step(self, Xs, Ys, Zs):
        """Update D; (d_cost before the update, then g_cost, P(real), P(gen) after it)."""
        model = self.model
        image_gen = tf.nn.sigmoid(model.generate(Zs, Ys))
        with tf.GradientTape() as tape:
            d_cost, _ = model.costs(model.discriminate(Xs, Ys), model.discriminate(image_gen, Ys))
        self.d_optimizer.apply(tape.gradient(d_cost, model.discrim_weights))
        raw_real, raw_gen = model.discriminate(Xs, Ys), model.discriminate(image_gen, Ys)
        _, g_cost = model.costs(raw_real, raw_gen)
        return d_cost, g_cost, tf.nn.sigmoid(raw_real), tf.nn.sigmoid(raw_gen)

    def _g_step(self, Xs, Ys, Zs):
        """Update G; (g_cost before the update, then d_cost, P(real), P(gen) after it). D does not change, so
        its score of the real images is computed once."""
        model = self.model
        raw_real = model.discriminate(Xs, Ys)
        with tf.GradientTape() as tape:
            _, g_cost = model.costs(raw_real, model.discriminate(tf.nn.sigmoid(model.generate(Zs, Ys)), Ys))
        self.g_optimizer.apply(tape.gradient(g_cost, model.gen_weights))
        if self.averages:
            for average, w in zip(self.averages, model.gen_weights):
                average.assign_sub((average - w) * (tf.constant(1.0) - self.decay))
        raw_gen = model.discriminate(tf.nn.sigmoid(model.generate(Zs, Ys)), Ys)
        d_cost, _ = model.costs(raw_real, raw_gen)
        return g_cost, d_cost, tf.nn.sigmoid(raw_real), tf.nn.sigmoid(raw_gen)

    def _sample(self, Z, Y):
        return tf.nn.sigmoid(self.model.generate(Z, Y, self.averages))

    def iterate(self, iteration, Xs, Ys, Zs):
        """One iteration, as graph.TrainingGraph.iterate returns it: ``updated`` and the four printed numbers
        (P(real) and P(gen) averaged in numpy, as the original prints them)."""
        updated = "G" if np.mod(iteration, self.k) != 0 else "D"
        step = self.g_step if updated == "G" else self.d_step
        own, other, p_real, p_gen = step(*(tf.constant(x, tf.float32) for x in (Xs, Ys, Zs)))
        names = ("gen_loss", "discrim_loss") if updated == "G" else ("discrim_loss", "gen_loss")
        return {"updated": updated, names[0]: own.numpy(), names[1]: other.numpy(),
                "p_real": p_real.numpy().mean(), "p_gen": p_gen.numpy().mean()}

    def state(self):
        """Every variable a TF1 run checkpoints for the model, by its TF1 name."""
        found = self.model.gen_weights + self.model.discrim_weights + (self.averages or [])
        for optimizer in (self.d_optimizer, self.g_optimizer):
            found += optimizer.m + optimizer.v + [optimizer.beta1_power, optimizer.beta2_power]
        return {slot_name(v): v for v in found}

    def load_tf1_checkpoint(self, prefix):
        """Assign every variable of ``state`` from the name-based checkpoint ``prefix`` that train.py's Saver
        wrote; returns the checkpoint's reader, for the loop state under train_state/."""
        reader = tf.train.load_checkpoint(prefix)
        for name, variable in self.state().items():
            variable.assign(reader.get_tensor(name))
        return reader


def restore_loop_state(reader):
    """train.py's loop position from a checkpoint's train_state/ variables (``reader`` of it), numpy's global
    random state put back where the run left it; the position is what ``train`` takes to continue."""
    state = {name: reader.get_tensor(f"train_state/{name}") for name in (
        "iteration", "epoch", "batch_in_epoch", "order") + RNG_STATE}
    set_rng_state(state)
    return {"iteration": int(state["iteration"]), "epoch": int(state["epoch"]),
            "batch": int(state["batch_in_epoch"]), "order": state["order"]}


def train(trainer, trX, trY, batch_size, n_epochs, iteration=0, epoch=0, batch=0, order=None, last_iteration=None):
    """train.py's loop (batches.Position): a fresh order every epoch, composed with the last; the partial last batch
    dropped. Yields (iteration, inputs, the iteration's numbers). A resumed run passes its position and order."""
    position = Position(len(trY), batch_size, iteration, epoch, batch, order)
    last_iteration = n_epochs * position.n_batches if last_iteration is None else last_iteration
    for step in position.walk(n_epochs, last_iteration):
        if step == "batch":
            inputs = prepare_batch(trX, trY, position.rows(), trainer.model.dim_z)
            yield position.iteration, inputs, trainer.iterate(position.iteration, *inputs)
            position.advance()
