"""The training graph (graph.py): one iteration is the original train.py's two-run schedule bit for bit, compact
mode trains the same weights, and each update moves only its own network."""
import contextlib

import numpy as np
from conftest import SMALL_WIDTHS, TINY_WIDTHS

from dcgan_mnist.batches import PIXEL_TO_FLOAT
from dcgan_mnist.graph import PRINTED, TrainingGraph
from dcgan_mnist.model import DCGAN, tf
from dcgan_mnist.precision import session_config
from dcgan_mnist.util import OneHot

B = 16


def training_graph(model, visualize_dim=196):
    return TrainingGraph(model, 0.0002, visualize_dim, "fp32")


class OriginalGraph:
    """The training graph as the original train.py builds it: build_model, variables picked by name
    prefix, two AdamOptimizer(...).minimize with the default gating, the 196-sample sampler."""

    def __init__(self, model):
        self.Z, self.Y, self.image_real, self.d_cost, self.g_cost, self.p_real, self.p_gen = model.build_model()
        discrim_vars = [v for v in tf.trainable_variables() if v.name.startswith("discrim")]
        gen_vars = [v for v in tf.trainable_variables() if v.name.startswith("gen")]
        self.train_op_discrim = tf.train.AdamOptimizer(0.0002, beta1=0.5).minimize(self.d_cost, var_list=discrim_vars)
        self.train_op_gen = tf.train.AdamOptimizer(0.0002, beta1=0.5).minimize(self.g_cost, var_list=gen_vars)
        model.samples_generator(196)


def original_step(g, sess, iteration, Xs, Ys, Zs, evaluate=True, k=2):
    """The original train.py's iteration, the spec: the update run, then a second run for the numbers
    it prints, computed with the updated weights (it always evaluates)."""
    feed = {g.Z: Zs, g.Y: Ys, g.image_real: Xs}
    if np.mod(iteration, k) != 0:
        _, gen_loss = sess.run([g.train_op_gen, g.g_cost], feed_dict={g.Z: Zs, g.Y: Ys})
        discrim_loss, p_real, p_gen = sess.run([g.d_cost, g.p_real, g.p_gen], feed_dict=feed)
        updated = "G"
    else:
        _, discrim_loss = sess.run([g.train_op_discrim, g.d_cost], feed_dict=feed)
        gen_loss, p_real, p_gen = sess.run([g.g_cost, g.p_real, g.p_gen], feed_dict=feed)
        updated = "D"
    return {"updated": updated, "gen_loss": gen_loss, "discrim_loss": discrim_loss,
            "p_real": p_real.mean(), "p_gen": p_gen.mean()}


def fused_step(g, sess, iteration, Xs, Ys, Zs, evaluate=True):
    return g.iterate(sess, iteration, Xs, Ys, Zs, after_update=evaluate)


def training_batches(n, seed=1):
    """Batches as train.py feeds them: uint8 pixels through PIXEL_TO_FLOAT, one-hot labels, float32 z."""
    rng = np.random.RandomState(seed)
    pixels = rng.randint(0, 256, size=(n, B, 784)).astype(np.uint8)
    return [(PIXEL_TO_FLOAT[p].reshape([-1, 28, 28, 1]), OneHot(rng.randint(10, size=B), 10),
             rng.uniform(-1, 1, size=[B, SMALL_WIDTHS["dim_z"]]).astype(np.float32)) for p in pixels]


def train(step, build=training_graph, n=8, evaluated=lambda i: True, seed=0):
    """Train a fresh seeded model for n iterations with ``step`` in the original's session;
    (the step outputs, every variable's value)."""
    with tf.Graph().as_default():
        tf.set_random_seed(seed)
        g = build(DCGAN(batch_size=B, **SMALL_WIDTHS))
        with tf.Session(config=session_config()) as sess:
            sess.run(tf.global_variables_initializer())
            outs = [step(g, sess, i, *batch, evaluate=evaluated(i)) for i, batch in enumerate(training_batches(n))]
            weights = sess.run({v.op.name: v for v in tf.global_variables()})
    return outs, weights


def assert_same_weights(a, b):
    assert sorted(a) == sorted(b)
    different = [name for name in a if not np.array_equal(a[name], b[name])]
    assert different == []


def test_training_step_is_bit_identical_to_the_original_two_run_loop():
    ours, our_weights = train(fused_step)
    original, original_weights = train(original_step, build=OriginalGraph)
    assert [o["updated"] for o in ours] == list("DGDGDGDG")
    for i, (a, b) in enumerate(zip(ours, original)):
        for q in PRINTED:
            assert a[q] == b[q], (i, q, a[q], b[q])
    # Every variable: the model's weights, Adam's moments and beta powers.
    assert_same_weights(our_weights, original_weights)


def test_post_update_numbers_see_the_updated_weights():
    """The fused evaluation must not read the weights before the update writes them."""
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        g = training_graph(DCGAN(batch_size=B, **SMALL_WIDTHS))
        with tf.Session(config=session_config()) as sess:
            sess.run(tf.global_variables_initializer())
            (Xs, Ys, Zs), (Xs1, Ys1, Zs1) = training_batches(2)
            feed = {g.Z: Zs, g.Y: Ys, g.image_real: Xs}
            g_cost_before = sess.run(g.g_cost, feed_dict=feed)
            out = g.iterate(sess, 0, Xs, Ys, Zs)
            assert out["gen_loss"] != g_cost_before
            assert out["gen_loss"] == sess.run(g.g_cost, feed_dict=feed)

            feed = {g.Z: Zs1, g.Y: Ys1, g.image_real: Xs1}
            d_cost_before = sess.run(g.d_cost, feed_dict=feed)
            out = g.iterate(sess, 1, Xs1, Ys1, Zs1)
            assert out["discrim_loss"] != d_cost_before
            assert out["discrim_loss"] == sess.run(g.d_cost, feed_dict=feed)


def test_compact_mode_trains_the_same_weights_as_faithful():
    def every_third(i):
        return i % 3 == 0

    compact, compact_weights = train(fused_step, evaluated=every_third)
    faithful, faithful_weights = train(fused_step)
    assert_same_weights(compact_weights, faithful_weights)
    for i, (a, b) in enumerate(zip(compact, faithful)):
        if every_third(i):
            assert [a[q] for q in PRINTED] == [b[q] for q in PRINTED]
        else:
            own = "gen_loss" if a["updated"] == "G" else "discrim_loss"
            assert sorted(a) == sorted(["updated", own])
            assert a[own] == b[own]


def test_model_layers_keep_only_the_original_network_calls():
    with tf.Graph().as_default():
        model = DCGAN(batch_size=B, **SMALL_WIDTHS)
        training_graph(model)
        calls = list(dict.fromkeys(c for c, _, _ in model.layers))
    assert calls == ["generate", "discriminate", "discriminate_1", "samples_generator"]


def small_training_graph(loss="clipped"):
    return training_graph(DCGAN(batch_size=6, **TINY_WIDTHS, loss=loss), visualize_dim=4)


def batch(rng, B=6, z=8):
    return (rng.rand(B, 28, 28, 1).astype(np.float32), OneHot(rng.randint(10, size=B), 10),
            rng.uniform(-1, 1, (B, z)).astype(np.float32))


@contextlib.contextmanager
def initialised_graph(seed, loss="clipped"):
    """A small TrainingGraph with freshly initialised variables, and its session."""
    with tf.Graph().as_default(), tf.Session() as sess:
        tf.set_random_seed(seed)
        g = small_training_graph(loss)
        sess.run(tf.global_variables_initializer())
        yield g, sess


def test_d_step_changes_only_discriminator_and_g_step_only_generator():
    rng = np.random.RandomState(0)
    with initialised_graph(1) as (g, sess):
        names = [v.name for v in g.gen_vars + g.discrim_vars]
        before = sess.run(g.gen_vars + g.discrim_vars)
        out = g.iterate(sess, 0, *batch(rng))
        after_d = sess.run(g.gen_vars + g.discrim_vars)
        out_g = g.iterate(sess, 1, *batch(rng))
        after_g = sess.run(g.gen_vars + g.discrim_vars)
    assert out["updated"] == "D" and out_g["updated"] == "G"
    for name, b, a, a2 in zip(names, before, after_d, after_g):
        if name.startswith("gen"):
            assert np.array_equal(b, a), name
            assert not np.array_equal(a, a2), name
        else:
            assert not np.array_equal(b, a), name
            assert np.array_equal(a, a2), name


def test_step_reports_values_after_the_update():
    """The printed numbers are the post-update ones, as in the original's second Session.run."""
    rng = np.random.RandomState(0)
    with initialised_graph(2) as (g, sess):
        Xs, Ys, Zs = batch(rng)
        out = g.iterate(sess, 0, Xs, Ys, Zs)
        feed = {g.Z: Zs, g.Y: Ys, g.image_real: Xs}
        g_cost, p_real, p_gen = sess.run([g.g_cost, g.p_real, g.p_gen], feed)
    assert out["gen_loss"] == g_cost
    assert out["p_real"] == p_real.mean() and out["p_gen"] == p_gen.mean()
    assert set(out) == {"updated", "gen_loss", "discrim_loss", "p_real", "p_gen"}


def test_stable_loss_differs_from_clipped_only_in_the_cost():
    rng = np.random.RandomState(0)
    Xs, Ys, Zs = batch(rng)
    costs = {}
    for loss in ("clipped", "stable"):
        with initialised_graph(3, loss) as (g, sess):
            costs[loss] = sess.run([g.d_cost, g.p_real], {g.Z: Zs, g.Y: Ys, g.image_real: Xs})
    assert costs["clipped"][0] != costs["stable"][0]
    np.testing.assert_array_equal(costs["clipped"][1], costs["stable"][1])


def test_float16_on_a_gpu_scales_the_losses_without_changing_the_updates(monkeypatch):
    """bf16 on a GPU is float16, so both updates scale their losses (dynamically); on this CPU, in float32, the
    scale is a power of two and the updates are the unscaled ones. fp32, and bf16 on a CPU, scale nothing."""
    from dcgan_mnist import precision as graph

    def trained(precision, gpu):
        monkeypatch.setattr(graph, "on_gpu", lambda: gpu)
        rng = np.random.RandomState(0)
        with tf.Graph().as_default(), tf.Session() as sess:
            tf.set_random_seed(1)
            g = TrainingGraph(DCGAN(batch_size=6, **TINY_WIDTHS), 0.0002, 4, precision)
            sess.run(tf.global_variables_initializer())
            for i in range(4):
                g.iterate(sess, i, *batch(rng))
            scale_vars = [v for v in tf.global_variables() if v.name.startswith(("current_loss_scale", "good_steps"))]
            return sess.run(g.gen_vars + g.discrim_vars), sess.run(scale_vars)

    plain, none = trained("fp32", gpu=True)
    assert none == [] and trained("bf16", gpu=False)[1] == []
    scaled, scale_state = trained("bf16", gpu=True)
    # Each optimizer's scale (2**15 to start) and its count of good steps (2 updates each).
    assert sorted(float(v) for v in scale_state) == [2.0, 2.0, 2.0 ** 15, 2.0 ** 15]
    for a, b in zip(plain, scaled):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_the_cpu_s_bfloat16_kind_says_whether_the_rewrite_runs():
    """cpu_bfloat16() is "none" exactly where Grappler's oneDNN rewrite leaves a bf16 session's graph in float32."""
    from dcgan_mnist.precision import cpu_bfloat16

    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [64, 128])
        y = tf.reduce_sum(tf.matmul(x, tf.constant(np.ones([128, 128], np.float32))))
        with tf.Session(config=session_config(precision="bf16")) as sess:
            ran = tf.RunMetadata()
            sess.run(y, {x: np.ones([64, 128], np.float32)}, run_metadata=ran,
                     options=tf.RunOptions(output_partition_graphs=True))
    bfloat16_nodes = [n.name for g in ran.partition_graphs for n in g.node if "DT_BFLOAT16" in str(n.attr)]
    assert cpu_bfloat16() in ("native", "emulated", "none")
    assert (cpu_bfloat16() != "none") == bool(bfloat16_nodes)


def test_bf16_warns_once_by_what_the_cpu_does_with_it(monkeypatch, capsys):
    from dcgan_mnist import precision as graph

    monkeypatch.setattr(graph, "on_gpu", lambda: False)
    said = {}
    for kind in ("native", "emulated", "none"):
        monkeypatch.setattr(graph, "cpu_bfloat16", lambda kind=kind: kind)
        graph.warn_without_native_bfloat16("fp32")
        graph.warn_without_native_bfloat16("bf16")
        said[kind] = capsys.readouterr().err
    assert said["native"] == ""
    assert said["emulated"] == ("warning: --precision bf16 on a CPU without bfloat16 instructions (avx512_bf16 or "
                                "AMX) is emulated and likely slower than fp32\n")
    assert said["none"].startswith("warning: --precision bf16 does nothing on this CPU: ")
    assert said["none"].count("\n") == 1 and "stays float32" in said["none"]
    monkeypatch.setattr(graph, "on_gpu", lambda: True)
    graph.warn_without_native_bfloat16("bf16")
    assert capsys.readouterr().err == ""


def test_bf16_where_the_rewrite_does_nothing_is_the_fp32_session(monkeypatch):
    """Grappler's passes without the bfloat16 rewrite gain nothing and, with two threads, do not repeat their
    numbers: on such a CPU a bf16 run gets the original's session."""
    from dcgan_mnist import precision as graph

    monkeypatch.setattr(graph, "on_gpu", lambda: False)
    monkeypatch.setattr(graph, "cpu_bfloat16", lambda: "none")
    assert graph.session_config(2, "bf16") == graph.session_config(2, "fp32")
    monkeypatch.setattr(graph, "cpu_bfloat16", lambda: "emulated")
    rewritten = graph.session_config(2, "bf16")
    assert not rewritten.graph_options.place_pruned_graph
    assert rewritten.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 == \
        type(rewritten.graph_options.rewrite_options).ON
