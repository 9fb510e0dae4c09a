"""The conditional DCGAN of the original model.py, op for op.

Every layer, constant and variable is the original's; the only additions are that each
intermediate tensor is recorded in ``DCGAN.layers`` (for the shape and compare tools and tests), that the
network bodies take their weights and batch size as arguments (so the sampler and the training
loop reuse one definition), and the opt-in switches ``loss='stable'``, ``d_output``, ``g_average``, ``augment``
and ``kernels``.
"""
from .augment import AUGMENTS, TRANSLATE_PIXELS, draw_shifts
from .lazy_tf import Module

# The one place this package gets TensorFlow from; importing it is deferred to first use (see lazy_tf).
_tf = Module()
tf = Module("compat.v1")

LOSSES = ("clipped", "stable")
# D's last layer: the original's lrelu(batchnorm(matmul)), lrelu(matmul) or the matmul alone.
D_OUTPUTS = ("original", "lrelu", "linear")
# How batchnorm, leaky ReLU and the label maps are computed: original writes them out of element-wise ops as the
# original does; fused uses TensorFlow's one-op kernels for them (other round-off, the same variables).
KERNELS = ("original", "fused")
# Width of the one-hot labels: ten digits (or ten Fashion-MNIST classes).
DIM_Y = 10
# The original's batchnorm epsilon and leaky ReLU slope, which the fused kernels keep.
BATCHNORM_EPSILON = 1e-8
LEAK = 0.2


def batchnormalize(X, eps=BATCHNORM_EPSILON, g=None, b=None):
    """Normalise with the statistics of this batch only (no running averages)."""
    if X.get_shape().ndims == 4:
        axes, param_shape = [0, 1, 2], [1, 1, 1, -1]
    elif X.get_shape().ndims == 2:
        axes, param_shape = 0, [1, -1]
    else:
        raise NotImplementedError
    mean = tf.reduce_mean(X, axes)
    std = tf.reduce_mean(tf.square(X - mean), axes)
    X = (X - mean) / tf.sqrt(std + eps)
    if g is not None and b is not None:
        X = X * tf.reshape(g, param_shape) + tf.reshape(b, param_shape)
    return X


def lrelu(X, leak=LEAK):
    f1 = 0.5 * (1 + leak)
    f2 = 0.5 * (1 - leak)
    return f1 * X + f2 * tf.abs(X)


def fused_batchnormalize(X, eps=BATCHNORM_EPSILON):
    """``batchnormalize`` as one FusedBatchNormV3 op in training mode: this batch's mean and (biased) variance per
    channel, no running averages, no scale or shift (ones and zeros). A [B, N] tensor goes through it as [B, 1, 1, N]
    maps, whose per-channel statistics over the batch are the same: one op and its one gradient op where
    tf.nn.moments and tf.nn.batch_normalization take a dozen. TensorFlow 2.21's wrapper passes the original's 1e-8
    on (older ones raised every epsilon to 1.001e-5, cuDNN's minimum before cuDNN 7.5), and its CPU kernel uses it."""
    shape = X.get_shape().as_list()
    if len(shape) not in (2, 4):
        raise NotImplementedError
    channels = shape[-1]
    maps = X if len(shape) == 4 else tf.reshape(X, [shape[0], 1, 1, channels])
    normalised, _, _ = tf.nn.fused_batch_norm(maps, tf.ones([channels]), tf.zeros([channels]), epsilon=eps,
                                              is_training=True)
    return normalised if len(shape) == 4 else tf.reshape(normalised, shape)


def fused_lrelu(X, leak=LEAK):
    """``lrelu`` as one LeakyRelu op: max(X, leak * X), the same function with other round-off."""
    return tf.nn.leaky_relu(X, alpha=leak)


def multiplied_label_maps(yb, shape):
    """The labels ``yb`` [B, 1, 1, labels] over maps of ``shape`` [B, H, W, labels] as the original makes them: times
    a tensor of ones."""
    return yb * tf.ones(shape)


def broadcast_label_maps(yb, shape):
    """The same maps in one BroadcastTo op, exactly (nothing is multiplied)."""
    return tf.broadcast_to(yb, shape)


# What each --kernels builds batchnorm, leaky ReLU and the label maps with.
KERNEL_FUNCTIONS = {"original": (batchnormalize, lrelu, multiplied_label_maps),
                    "fused": (fused_batchnormalize, fused_lrelu, broadcast_label_maps)}


def bce(o, t, clip=True):
    """Mean sigmoid cross-entropy of logits ``o`` against targets ``t``.

    ``clip=True`` is the original: the *logits* are clipped to [1e-7, 1-1e-7], so every logit
    outside that range gets a zero gradient (upstream issue #4). ``clip=False`` is the fix.
    """
    if clip:
        o = tf.clip_by_value(o, 1e-7, 1. - 1e-7)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(logits=o, labels=t))


def translate(image, shift, most):
    """``image`` [B, H, W, C] with image b moved by shift[b] = [dx, dy] pixels (each in [-most, most]), the
    uncovered border filled with zeros (the background of MNIST). Differentiable in ``image``, so G learns through
    it (as in DiffAugment, Zhao et al. 2020)."""
    _, height, width, _ = image.get_shape().as_list()
    padded = tf.pad(image, [[0, 0], [most, most], [most, most], [0, 0]])
    # Output pixel (i, j) of image b reads padded pixel (i + most - dy, j + most - dx).
    rows = tf.range(height)[None, :] + most - shift[:, 1:2]
    columns = tf.range(width)[None, :] + most - shift[:, 0:1]
    moved = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(moved, columns, axis=2, batch_dims=1)


class _NotRecording:
    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.model._recording = False

    def __exit__(self, *exc_info):
        self.model._recording = True


class DCGAN():
    def __init__(
            self,
            batch_size=100,
            image_shape=[28, 28, 1],
            dim_z=100,
            dim_y=10,
            dim_W1=1024,
            dim_W2=128,
            dim_W3=64,
            dim_channel=1,
            loss="clipped",
            d_output="original",
            g_average=0.0,
            augment="none",
            kernels="original",
            ):
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if d_output not in D_OUTPUTS:
            raise ValueError(f"d_output must be one of {D_OUTPUTS}, got {d_output!r}")
        if not 0 <= g_average < 1:
            raise ValueError(f"g_average must be in [0, 1), got {g_average!r}")
        if augment not in AUGMENTS:
            raise ValueError(f"augment must be one of {AUGMENTS}, got {augment!r}")
        if kernels not in KERNELS:
            raise ValueError(f"kernels must be one of {KERNELS}, got {kernels!r}")
        self.batch_size = batch_size
        self.image_shape = image_shape
        self.dim_z = dim_z
        self.dim_y = dim_y

        self.dim_W1 = dim_W1
        self.dim_W2 = dim_W2
        self.dim_W3 = dim_W3
        self.dim_channel = dim_channel
        self.loss = loss
        self.d_output = d_output
        self.g_average = g_average
        self.augment = augment
        self.kernels = kernels
        self._batchnorm, self._lrelu, self._label_maps = KERNEL_FUNCTIONS[kernels]
        self.shifts = None  # made by build_model
        # (network call, step name, tensor) for every intermediate the original's calls build, in order.
        self.layers = []
        self._recording = True
        self._calls = {}

        # Created in the original's order, so a graph seed gives the original's initial weights.
        def weight(shape, name):
            return tf.Variable(tf.random_normal(shape, stddev=0.02), name=name)

        self.gen_W1 = weight([dim_z+dim_y, dim_W1], 'gen_W1')
        self.gen_W2 = weight([dim_W1+dim_y, dim_W2*7*7], 'gen_W2')
        self.gen_W3 = weight([5, 5, dim_W3, dim_W2+dim_y], 'gen_W3')
        self.gen_W4 = weight([5, 5, dim_channel, dim_W3+dim_y], 'gen_W4')

        self.discrim_W1 = weight([5, 5, dim_channel+dim_y, dim_W3], 'discrim_W1')
        self.discrim_W2 = weight([5, 5, dim_W3+dim_y, dim_W2], 'discrim_W2')
        self.discrim_W3 = weight([dim_W2*7*7+dim_y, dim_W1], 'discrim_W3')
        self.discrim_W4 = weight([dim_W1+dim_y, 1], 'discrim_W4')

    def not_recording(self):
        """``with model.not_recording():`` builds networks without adding them to ``layers``: for
        re-evaluations that are not part of the original's graph (TrainingGraph's post-update numbers)."""
        return _NotRecording(self)

    @property
    def gen_weights(self):
        return [self.gen_W1, self.gen_W2, self.gen_W3, self.gen_W4]

    def gen_average(self):
        """The exponential moving average of G's weights that training keeps when ``g_average`` > 0, else None.
        It names its variables gen_W1/ExponentialMovingAverage, ...; a trained run samples from them."""
        return tf.train.ExponentialMovingAverage(self.g_average) if self.g_average else None

    @property
    def discrim_weights(self):
        return [self.discrim_W1, self.discrim_W2, self.discrim_W3, self.discrim_W4]

    def build_model(self):
        Z = tf.placeholder(tf.float32, [self.batch_size, self.dim_z])
        Y = tf.placeholder(tf.float32, [self.batch_size, self.dim_y])

        image_real = tf.placeholder(tf.float32, [self.batch_size]+self.image_shape)
        # --augment translate or adaptive: each step's shifts (in pixels, [x, y] per image; row 0 for the real
        # images, 1 for the generated ones) are fed, drawn from numpy's RNG with the rest of the loop's draws, so a
        # resumed run draws the same ones.
        if self.augment != "none":
            self.shifts = tf.placeholder(tf.int32, [2, self.batch_size, 2], name="augment_shifts")
        h4 = self.generate(Z, Y)
        image_gen = tf.nn.sigmoid(h4)
        raw_real = self.discriminate(image_real, Y, source="real")
        # --augment adaptive's measure of D learning its training images by heart (augment.AdaptiveStrength).
        self.real_sign = tf.reduce_mean(tf.sign(raw_real)) if self.augment == "adaptive" else None
        p_real = tf.nn.sigmoid(raw_real)
        raw_gen = self.discriminate(image_gen, Y, source="generated")
        p_gen = tf.nn.sigmoid(raw_gen)
        d_cost, g_cost = self.costs(raw_real, raw_gen)
        # Kept for the training graph, which evaluates after an update without rebuilding these.
        self.image_gen, self.raw_real = image_gen, raw_real
        return Z, Y, image_real, d_cost, g_cost, p_real, p_gen

    def costs(self, raw_real, raw_gen):
        """(discriminator cost, generator cost) from the two raw discriminator outputs."""
        clip = self.loss == "clipped"
        discrim_cost_real = bce(raw_real, tf.ones_like(raw_real), clip)
        discrim_cost_gen = bce(raw_gen, tf.zeros_like(raw_gen), clip)
        discrim_cost = discrim_cost_real + discrim_cost_gen
        gen_cost = bce(raw_gen, tf.ones_like(raw_gen), clip)
        return discrim_cost, gen_cost

    def discriminate(self, image, Y, weights=None, source=None):
        """Raw (pre-sigmoid) score. ``weights`` replaces discrim_W1..4, e.g. by post-update reads. ``source``
        ('real' or 'generated') says which of the training step's fed shifts move the images under --augment
        translate; without it, or without the switch, D sees them as they are."""
        shift = None
        if self.shifts is not None and source is not None:
            shift = self.shifts[("real", "generated").index(source)]
        return self._discriminate(image, Y, weights or self.discrim_weights, self.batch_size, shift)

    def draw_shifts(self, p=1.0):
        """The shifts of one training step under --augment (a feed for ``shifts``; ``p``: adaptive's strength),
        else None."""
        if self.shifts is None:
            return None
        return draw_shifts(self.augment, self.shifts.shape.as_list(), p)

    def generate(self, Z, Y, weights=None):
        """Pre-sigmoid image. ``weights`` replaces gen_W1..4."""
        return self._generate(Z, Y, weights or self.gen_weights, self.batch_size, "generate")

    def samples_generator(self, batch_size, weights=None):
        """``weights`` replaces gen_W1..4, e.g. by their averages."""
        Z = tf.placeholder(tf.float32, [batch_size, self.dim_z])
        Y = tf.placeholder(tf.float32, [batch_size, self.dim_y])
        h4 = self._generate(Z, Y, weights or self.gen_weights, batch_size, "samples_generator")
        x = self._tap("samples_generator", "sigmoid", tf.nn.sigmoid(h4))
        return Z, Y, x

    def _tap(self, call, step, tensor):
        if self._recording:
            self.layers.append((call, step, tensor))
        return tensor

    def _call_name(self, base):
        """'discriminate', then 'discriminate_1', ...: each call's layers and name scope stay apart,
        counting the calls made while not recording too."""
        n = self._calls.get(base, 0)
        self._calls[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def _discriminate(self, image, Y, weights, batch_size, shift=None):
        W1, W2, W3, W4 = weights
        call = self._call_name("discriminate")
        t = lambda step, tensor: self._tap(call, step, tensor)  # noqa: E731
        with tf.name_scope(call):
            if shift is not None:
                image = t("translate", translate(image, shift, TRANSLATE_PIXELS))
            yb = t("yb", tf.reshape(Y, tf.stack([batch_size, 1, 1, self.dim_y])))
            X = t("concat_image_y", tf.concat(axis=3, values=[
                image, self._label_maps(yb, [batch_size, 28, 28, self.dim_y])]))

            h1 = t("h1_conv", tf.nn.conv2d(X, W1, strides=[1, 2, 2, 1], padding='SAME'))
            h1 = t("h1_lrelu", self._lrelu(h1))
            h1 = t("h1_concat_y", tf.concat(axis=3, values=[
                h1, self._label_maps(yb, [batch_size, 14, 14, self.dim_y])]))

            h2 = t("h2_conv", tf.nn.conv2d(h1, W2, strides=[1, 2, 2, 1], padding='SAME'))
            h2 = t("h2_bn", self._batchnorm(h2))
            h2 = t("h2_lrelu", self._lrelu(h2))
            h2 = t("h2_reshape", tf.reshape(h2, [batch_size, -1]))
            h2 = t("h2_concat_y", tf.concat(axis=1, values=[h2, Y]))

            h3 = t("h3_matmul", tf.matmul(h2, W3))
            h3 = t("h3_bn", self._batchnorm(h3))
            h3 = t("h3_lrelu", self._lrelu(h3))
            h3 = t("h3_concat_y", tf.concat(axis=1, values=[h3, Y]))

            h4 = t("h4_matmul", tf.matmul(h3, W4))
            # Batchnorm over the [B, 1] scores makes them batch-relative (docs/lessons.md 8).
            if self.d_output == "original":
                h4 = t("h4_bn", self._batchnorm(h4))
            if self.d_output != "linear":
                h4 = t("h4_lrelu", self._lrelu(h4))
            return h4

    def _generate(self, Z, Y, weights, batch_size, base):
        W1, W2, W3, W4 = weights
        call = self._call_name(base)
        t = lambda step, tensor: self._tap(call, step, tensor)  # noqa: E731
        with tf.name_scope(call):
            yb = t("yb", tf.reshape(Y, [batch_size, 1, 1, self.dim_y]))
            Z = t("concat_z_y", tf.concat(axis=1, values=[Z, Y]))
            h1 = t("h1_matmul", tf.matmul(Z, W1))
            h1 = t("h1_bn", self._batchnorm(h1))
            h1 = t("h1_relu", tf.nn.relu(h1))
            h1 = t("h1_concat_y", tf.concat(axis=1, values=[h1, Y]))

            h2 = t("h2_matmul", tf.matmul(h1, W2))
            h2 = t("h2_bn", self._batchnorm(h2))
            h2 = t("h2_relu", tf.nn.relu(h2))
            h2 = t("h2_reshape", tf.reshape(h2, [batch_size, 7, 7, self.dim_W2]))
            h2 = t("h2_concat_y", tf.concat(axis=3, values=[h2, self._label_maps(yb, [batch_size, 7, 7, self.dim_y])]))

            output_shape_l3 = [batch_size, 14, 14, self.dim_W3]
            h3 = t("h3_deconv", tf.nn.conv2d_transpose(h2, W3, output_shape=output_shape_l3, strides=[1, 2, 2, 1]))
            h3 = t("h3_bn", self._batchnorm(h3))
            h3 = t("h3_relu", tf.nn.relu(h3))
            h3 = t("h3_concat_y", tf.concat(axis=3, values=[
                h3, self._label_maps(yb, [batch_size, 14, 14, self.dim_y])]))

            output_shape_l4 = [batch_size, 28, 28, self.dim_channel]
            return t("h4_deconv", tf.nn.conv2d_transpose(h3, W4, output_shape=output_shape_l4, strides=[1, 2, 2, 1]))
