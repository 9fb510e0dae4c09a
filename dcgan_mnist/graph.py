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
import sys

import numpy as np

from .model import DCGAN, tf

OPTIMIZER_BETA1 = 0.5
# The numbers the original prints every iteration, in its order; the keys of a step's result.
PRINTED = ("gen_loss", "discrim_loss", "p_real", "p_gen")
# The original's minimize() gates per op (GATE_OP): every op's input gradients are grouped, so without
# Grappler (see session_config) each is computed even when nothing uses it: the discriminator's weight
# gradients in a G step, the image gradients of its first conv. GATE_GRAPH computes only the gradients
# the update needs and still finishes all of them before any weight is written: the same numbers.
GATE = 2  # tf.train.Optimizer.GATE_GRAPH, as a number so that importing this module does not import TensorFlow


PRECISIONS = ("fp32", "bf16")


def on_gpu():
    return bool(tf.config.list_physical_devices("GPU"))


def scales_losses(precision):
    """Whether the updates scale their losses: ``bf16`` on a GPU runs in float16 (Grappler's CUDA rewrite), whose
    range is too narrow for small gradients, so they are computed from a dynamically scaled loss and an update
    whose gradients overflowed is skipped. bfloat16 has float32's range and needs none."""
    return precision == "bf16" and on_gpu()


def session_config(threads=0, precision="fp32"):
    """The session the original ran in (``fp32``). Its InteractiveSession sets place_pruned_graph, so each run's
    subgraph is placed on its own and TensorFlow's graph optimiser (Grappler) never rewrites it. The printed
    numbers depend on that: Grappler's arithmetic rewrites change their last digits.

    ``bf16`` lets Grappler rewrite the graph into mixed precision instead: bfloat16 matmuls and convolutions
    through oneDNN on a CPU, float16 on a GPU; the variables, the Adam moments, the losses and the printed numbers
    stay float32. Where the rewrite would do nothing (a CPU whose oneDNN has no bfloat16) it is the fp32 session:
    Grappler's other passes alone are no faster, and with two threads or more they do not repeat their numbers."""
    config = tf.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads)
    if computes_in(precision) == "fp32":
        config.graph_options.place_pruned_graph = True
    else:
        rewrite = config.graph_options.rewrite_options
        on = type(rewrite).ON
        if on_gpu():
            rewrite.auto_mixed_precision = on
        else:
            rewrite.auto_mixed_precision_onednn_bfloat16 = on
    return config


def cpu_bfloat16():
    """How this CPU runs Grappler's oneDNN bfloat16 rewrite: ``"native"`` (bfloat16 instructions: avx512_bf16,
    AMX or Arm's bf16), ``"emulated"`` (oneDNN converts with AVX-512 or AVX-NE-CONVERT and computes in float32)
    or ``"none"``: oneDNN has no bfloat16 on this CPU, by TensorFlow's own test, and the rewrite leaves the graph
    in float32."""
    from tensorflow.python.util import _pywrap_utils
    if not _pywrap_utils.IsDataTypeSupportedByOneDNNOnThisCPU(tf.bfloat16):
        return "none"
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:
        flags = set()
    return "native" if flags & {"avx512_bf16", "amx_bf16", "bf16"} else "emulated"


def computes_in(precision):
    """What a session of ``precision`` computes in on this machine: ``"bf16"`` only where the rewrite does
    something (a GPU, or a CPU whose oneDNN has bfloat16), ``"fp32"`` otherwise."""
    return "bf16" if precision == "bf16" and (on_gpu() or cpu_bfloat16() != "none") else "fp32"


BFLOAT16_WARNINGS = {
    "emulated": "--precision bf16 on a CPU without bfloat16 instructions (avx512_bf16 or AMX) is emulated and likely "
                "slower than fp32",
    "none": "--precision bf16 does nothing on this CPU: TensorFlow's oneDNN has no bfloat16 without AVX-512 (or "
            "AVX-NE-CONVERT), so the graph stays float32 and trains as --precision fp32 does, to the bit",
}


def warn_without_native_bfloat16(precision):
    """bf16 on a CPU without bfloat16 instructions is slow or, without AVX-512, not bfloat16 at all: say so, once."""
    if precision != "bf16" or on_gpu():
        return
    kind = cpu_bfloat16()
    if kind != "native":
        print(f"warning: {BFLOAT16_WARNINGS[kind]}", file=sys.stderr)


def read_after(train_op, weights):
    """Reads of ``weights`` that run only once ``train_op`` has written them."""
    with tf.control_dependencies([train_op]):
        return [tf.identity(w) for w in weights]


# The variable of the loss scale that MixedPrecisionLossScaleOptimizer adds to a graph (and so to its checkpoints).
LOSS_SCALE_VARIABLE = "current_loss_scale"


def optimizer(learning_rate, scaled):
    adam = tf.train.AdamOptimizer(learning_rate, beta1=OPTIMIZER_BETA1)
    return tf.mixed_precision.MixedPrecisionLossScaleOptimizer(adam, "dynamic") if scaled else adam


class TrainingGraph:
    def __init__(self, model: DCGAN, learning_rate, visualize_dim, precision):
        self.model = model
        (self.Z, self.Y, self.image_real,
         self.d_cost, self.g_cost, self.p_real, self.p_gen) = model.build_model()
        # Picked by name prefix, as the original does.
        self.discrim_vars = [v for v in tf.trainable_variables() if v.name.startswith('discrim')]
        self.gen_vars = [v for v in tf.trainable_variables() if v.name.startswith('gen')]
        self.scales_losses = scales_losses(precision)
        self.train_op_discrim = optimizer(learning_rate, self.scales_losses).minimize(
            self.d_cost, var_list=self.discrim_vars, gate_gradients=GATE)
        self.train_op_gen = optimizer(learning_rate, self.scales_losses).minimize(
            self.g_cost, var_list=self.gen_vars, gate_gradients=GATE)
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

    def fetches(self, updated, evaluate=True):
        """What one iteration runs: the update of net ``updated`` ('D' or 'G') and that net's cost as the
        update pass computes it, then, with ``evaluate``, the numbers after the update (and, in a D update under
        --augment adaptive, the mean sign of D's logits on the real images, last)."""
        if updated == "D":
            sign = [self.model.real_sign] if self.model.real_sign is not None else []
            return [self.train_op_discrim, self.d_cost] + (self.after_discrim_update if evaluate else []) + sign
        return [self.train_op_gen, self.g_cost] + (self.after_gen_update if evaluate else [])

    def iterate(self, sess, iteration, Xs, Ys, Zs, k=2, evaluate=True, augment_p=1.0):
        """One iteration. Returns a dict with ``updated`` ('D' or 'G') and the four PRINTED numbers;
        with ``evaluate=False`` the post-update numbers are not computed and only the updated net's own
        loss (computed by the update pass) is filled in. Under --augment adaptive, each image D sees is moved with
        probability ``augment_p``, and a D update also returns ``real_sign``."""
        updated = "G" if np.mod(iteration, k) != 0 else "D"
        feed = {self.Z: Zs, self.Y: Ys, self.image_real: Xs}
        shifts = self.model.draw_shifts(augment_p)
        if shifts is not None:
            feed[self.model.shifts] = shifts
        values = sess.run(self.fetches(updated, evaluate), feed_dict=feed)
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
