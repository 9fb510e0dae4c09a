"""The model's graph: every variable, every layer's exact shape, and the ops against NumPy formulas."""
import numpy as np
import pytest

import dcgan_mnist  # noqa: F401  (graph mode)
from dcgan_mnist.model import DCGAN, batchnormalize, bce, lrelu, tf
from dcgan_mnist.util import OneHot


def generator_shapes(B, z=100, W1=1024, W2=128, W3=64, y=10):
    return [
        ("yb", [B, 1, 1, y]),
        ("concat_z_y", [B, z + y]),
        ("h1_matmul", [B, W1]), ("h1_bn", [B, W1]), ("h1_relu", [B, W1]), ("h1_concat_y", [B, W1 + y]),
        ("h2_matmul", [B, W2 * 49]), ("h2_bn", [B, W2 * 49]), ("h2_relu", [B, W2 * 49]),
        ("h2_reshape", [B, 7, 7, W2]), ("h2_concat_y", [B, 7, 7, W2 + y]),
        ("h3_deconv", [B, 14, 14, W3]), ("h3_bn", [B, 14, 14, W3]), ("h3_relu", [B, 14, 14, W3]),
        ("h3_concat_y", [B, 14, 14, W3 + y]),
        ("h4_deconv", [B, 28, 28, 1]),
    ]


def discriminator_shapes(B, W1=1024, W2=128, W3=64, y=10):
    return [
        ("yb", [B, 1, 1, y]),
        ("concat_image_y", [B, 28, 28, 1 + y]),
        ("h1_conv", [B, 14, 14, W3]), ("h1_lrelu", [B, 14, 14, W3]), ("h1_concat_y", [B, 14, 14, W3 + y]),
        ("h2_conv", [B, 7, 7, W2]), ("h2_bn", [B, 7, 7, W2]), ("h2_lrelu", [B, 7, 7, W2]),
        ("h2_reshape", [B, 49 * W2]), ("h2_concat_y", [B, 49 * W2 + y]),
        ("h3_matmul", [B, W1]), ("h3_bn", [B, W1]), ("h3_lrelu", [B, W1]), ("h3_concat_y", [B, W1 + y]),
        ("h4_matmul", [B, 1]), ("h4_bn", [B, 1]), ("h4_lrelu", [B, 1]),
    ]


def layer_shapes(model, call):
    return [(step, t.shape.as_list()) for c, step, t in model.layers if c == call]


@pytest.mark.parametrize("batch_size", [128, 7])
def test_every_layer_shape_at_default_dims(batch_size):
    with tf.Graph().as_default():
        model = DCGAN(batch_size=batch_size)
        Z, Y, image_real, d_cost, g_cost, p_real, p_gen = model.build_model()
        model.samples_generator(196)
        assert Z.shape.as_list() == [batch_size, 100]
        assert Y.shape.as_list() == [batch_size, 10]
        assert image_real.shape.as_list() == [batch_size, 28, 28, 1]
        assert d_cost.shape.as_list() == [] and g_cost.shape.as_list() == []
        assert p_real.shape.as_list() == [batch_size, 1] and p_gen.shape.as_list() == [batch_size, 1]
        assert layer_shapes(model, "generate") == generator_shapes(batch_size)
        assert layer_shapes(model, "discriminate") == discriminator_shapes(batch_size)
        assert layer_shapes(model, "discriminate_1") == discriminator_shapes(batch_size)
        assert layer_shapes(model, "samples_generator") == generator_shapes(196) + [("sigmoid", [196, 28, 28, 1])]


def test_every_layer_shape_at_other_dims():
    dims = dict(z=20, W1=48, W2=12, W3=6)
    with tf.Graph().as_default():
        model = DCGAN(batch_size=5, dim_z=dims["z"], dim_W1=dims["W1"], dim_W2=dims["W2"], dim_W3=dims["W3"])
        model.build_model()
        model.samples_generator(9)
        assert layer_shapes(model, "generate") == generator_shapes(5, **dims)
        assert layer_shapes(model, "discriminate_1") == discriminator_shapes(5, W1=48, W2=12, W3=6)
        assert layer_shapes(model, "samples_generator")[-1] == ("sigmoid", [9, 28, 28, 1])


def test_calls_built_while_not_recording_leave_no_layers():
    with tf.Graph().as_default() as graph:
        model = DCGAN(batch_size=4, dim_W1=16, dim_W2=8, dim_W3=4)
        Z, Y, image_real, *_ = model.build_model()
        with model.not_recording():
            model.discriminate(image_real, Y)
        model.samples_generator(6)
        # The unrecorded call still takes the next name scope.
        assert graph.get_operation_by_name("discriminate_2/concat").type == "ConcatV2"
    assert list(dict.fromkeys(c for c, _, _ in model.layers)) == [
        "generate", "discriminate", "discriminate_1", "samples_generator"]
    assert len(model.layers) == 16 + 17 + 17 + 17


def test_variables_names_shapes_and_order():
    with tf.Graph().as_default():
        DCGAN(batch_size=128).build_model()
        got = [(v.name, v.shape.as_list()) for v in tf.trainable_variables()]
    assert got == [
        ("gen_W1:0", [110, 1024]), ("gen_W2:0", [1034, 6272]), ("gen_W3:0", [5, 5, 64, 138]),
        ("gen_W4:0", [5, 5, 1, 74]),
        ("discrim_W1:0", [5, 5, 11, 64]), ("discrim_W2:0", [5, 5, 74, 128]), ("discrim_W3:0", [6282, 1024]),
        ("discrim_W4:0", [1034, 1]),
    ]


def test_variables_at_other_dims():
    with tf.Graph().as_default():
        DCGAN(batch_size=4, dim_z=20, dim_W1=48, dim_W2=12, dim_W3=6)
        got = [v.shape.as_list() for v in tf.trainable_variables()]
    assert got == [[30, 48], [58, 12 * 49], [5, 5, 6, 22], [5, 5, 1, 16],
                   [5, 5, 11, 6], [5, 5, 16, 12], [12 * 49 + 10, 48], [58, 1]]


def test_initial_weights_are_normal_with_stddev_002():
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        model = DCGAN(batch_size=4)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            w = sess.run(model.gen_W2)
    assert abs(w.mean()) < 1e-3
    assert abs(w.std() - 0.02) < 1e-3


def run(tensor_fn, *arrays):
    """Evaluate tensor_fn(*constants) in a fresh graph."""
    with tf.Graph().as_default(), tf.Session() as sess:
        return sess.run(tensor_fn(*[tf.constant(a) for a in arrays]))


def test_lrelu_matches_numpy():
    x = np.linspace(-3, 3, 61).astype(np.float32)
    np.testing.assert_allclose(run(lrelu, x), np.where(x > 0, x, 0.2 * x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(run(lambda t: lrelu(t, 0.5), x), np.where(x > 0, x, 0.5 * x), rtol=1e-6, atol=1e-7)


def test_batchnormalize_matches_numpy():
    rng = np.random.RandomState(0)
    x4 = rng.randn(6, 5, 5, 3).astype(np.float32) * 3 + 2
    mean, var = x4.mean(axis=(0, 1, 2)), x4.var(axis=(0, 1, 2))
    np.testing.assert_allclose(run(batchnormalize, x4), (x4 - mean) / np.sqrt(var + 1e-8), rtol=1e-4, atol=1e-5)
    x2 = rng.randn(8, 4).astype(np.float32)
    g, b = np.float32([1, 2, 3, 4]), np.float32([0, 1, 0, -1])
    want = (x2 - x2.mean(0)) / np.sqrt(x2.var(0) + 1e-8) * g + b
    np.testing.assert_allclose(run(lambda t, gg, bb: batchnormalize(t, g=gg, b=bb), x2, g, b), want,
                               rtol=1e-4, atol=1e-5)
    with pytest.raises(NotImplementedError):
        run(batchnormalize, np.zeros((2, 3, 4), np.float32))


def numpy_bce(o, t, clip):
    if clip:
        o = np.clip(o, 1e-7, 1 - 1e-7)
    return np.mean(np.maximum(o, 0) - o * t + np.log1p(np.exp(-np.abs(o))))


@pytest.mark.parametrize("clip", [True, False])
def test_bce_matches_numpy(clip):
    o = np.float32([-4, -0.5, 0, 0.3, 0.9, 2.5]).reshape(6, 1)
    for target in (np.ones_like(o), np.zeros_like(o)):
        got = run(lambda a, b: bce(a, b, clip), o, target)
        assert got == pytest.approx(numpy_bce(o.astype(np.float64), target, clip), rel=1e-6)


def test_clipped_bce_has_zero_gradient_outside_the_clip():
    o = np.float32([-2, 0.5, 3])
    with tf.Graph().as_default(), tf.Session() as sess:
        logits = tf.constant(o)
        grads = {clip: sess.run(tf.gradients(bce(logits, tf.ones_like(logits), clip), logits)[0])
                 for clip in (True, False)}
    assert grads[True][0] == 0 and grads[True][2] == 0 and grads[True][1] != 0
    assert np.all(grads[False] != 0)


def test_onehot():
    np.testing.assert_array_equal(OneHot([2, 0, 1]), np.eye(3)[[2, 0, 1]])
    assert OneHot([0, 3, 8]).shape == (3, 9)  # the original's width: max label + 1
    assert OneHot([0, 3, 8], 10).shape == (3, 10)
    np.testing.assert_array_equal(OneHot([1], 3, negative_class=-1.), [[-1., 1., -1.]])
    assert OneHot(np.array([[1], [2]]), 4).shape == (2, 4)


def test_loss_switch_is_validated():
    with tf.Graph().as_default(), pytest.raises(ValueError, match="loss must be one of"):
        DCGAN(loss="hinge")
