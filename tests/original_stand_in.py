"""A stand-in for the original GAN-MNIST ``mnist/model.py``, for the compare tool's offline tests.

Written for this repository in the TensorFlow 1.x API (``tf.placeholder``, ``tf.random_normal``,
``tf.concat(axis=...)``) with the original's interface: ``DCGAN(batch_size, image_shape, dim_z,
dim_y, dim_W1, dim_W2, dim_W3, dim_channel)`` with build_model / generate / discriminate /
samples_generator and the module helpers lrelu / batchnormalize / bce. It computes exactly what
``dcgan_mnist.model`` computes. tests/test_compare.py makes its one-change variants by editing
this file's text, so every line a test edits is unique in the file.
"""
import tensorflow as tf


def batchnormalize(X, eps=1e-8):
    rank = X.get_shape().ndims
    if rank not in (2, 4):
        raise NotImplementedError
    axes = [0, 1, 2] if rank == 4 else 0
    mean = tf.reduce_mean(X, axes)
    variance = tf.reduce_mean(tf.square(X - mean), axes)
    return (X - mean) / tf.sqrt(variance + eps)


def lrelu(X, leak=0.2):
    return 0.5 * (1 + leak) * X + 0.5 * (1 - leak) * tf.abs(X)


def bce(logits, targets):
    logits = tf.clip_by_value(logits, 1e-7, 1. - 1e-7)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(logits=logits, labels=targets))


def weight(name, shape):
    return tf.Variable(tf.random_normal(shape, stddev=0.02), name=name)


class DCGAN:
    def __init__(self, batch_size=100, image_shape=(28, 28, 1), dim_z=100, dim_y=10,
                 dim_W1=1024, dim_W2=128, dim_W3=64, dim_channel=1):
        self.batch_size = batch_size
        self.image_shape = list(image_shape)
        self.dim_z = dim_z
        self.dim_y = dim_y
        self.dim_W2 = dim_W2
        self.dim_W3 = dim_W3
        self.dim_channel = dim_channel

        self.gen_W1 = weight('gen_W1', [dim_z + dim_y, dim_W1])
        self.gen_W2 = weight('gen_W2', [dim_W1 + dim_y, dim_W2 * 7 * 7])
        self.gen_W3 = weight('gen_W3', [5, 5, dim_W3, dim_W2 + dim_y])
        self.gen_W4 = weight('gen_W4', [5, 5, dim_channel, dim_W3 + dim_y])
        self.discrim_W1 = weight('discrim_W1', [5, 5, dim_channel + dim_y, dim_W3])
        self.discrim_W2 = weight('discrim_W2', [5, 5, dim_W3 + dim_y, dim_W2])
        self.discrim_W3 = weight('discrim_W3', [dim_W2 * 7 * 7 + dim_y, dim_W1])
        self.discrim_W4 = weight('discrim_W4', [dim_W1 + dim_y, 1])

    def build_model(self):
        Z = tf.placeholder(tf.float32, [self.batch_size, self.dim_z])
        Y = tf.placeholder(tf.float32, [self.batch_size, self.dim_y])
        image_real = tf.placeholder(tf.float32, [self.batch_size] + self.image_shape)

        image_gen = tf.nn.sigmoid(self.generate(Z, Y))
        raw_real = self.discriminate(image_real, Y)
        raw_gen = self.discriminate(image_gen, Y)
        d_cost = bce(raw_real, tf.ones_like(raw_real)) + bce(raw_gen, tf.zeros_like(raw_gen))
        g_cost = bce(raw_gen, tf.ones_like(raw_gen))
        return Z, Y, image_real, d_cost, g_cost, tf.nn.sigmoid(raw_real), tf.nn.sigmoid(raw_gen)

    def label_maps(self, yb, batch_size, size):
        return yb * tf.ones([batch_size, size, size, self.dim_y])

    def discriminate(self, image, Y):
        B = self.batch_size
        yb = tf.reshape(Y, [B, 1, 1, self.dim_y])
        x = tf.concat(axis=3, values=[image, self.label_maps(yb, B, 28)])
        x = lrelu(tf.nn.conv2d(x, self.discrim_W1, strides=[1, 2, 2, 1], padding='SAME'))
        x = tf.concat(axis=3, values=[x, self.label_maps(yb, B, 14)])
        x = lrelu(batchnormalize(tf.nn.conv2d(x, self.discrim_W2, strides=[1, 2, 2, 1], padding='SAME')))
        x = tf.concat(axis=1, values=[tf.reshape(x, [B, -1]), Y])
        x = lrelu(batchnormalize(tf.matmul(x, self.discrim_W3)))
        x = tf.concat(axis=1, values=[x, Y])
        return lrelu(batchnormalize(tf.matmul(x, self.discrim_W4)))

    def generate(self, Z, Y):
        return self.pre_sigmoid_image(Z, Y, self.batch_size)

    def samples_generator(self, batch_size):
        Z = tf.placeholder(tf.float32, [batch_size, self.dim_z])
        Y = tf.placeholder(tf.float32, [batch_size, self.dim_y])
        return Z, Y, tf.nn.sigmoid(self.pre_sigmoid_image(Z, Y, batch_size))

    def pre_sigmoid_image(self, Z, Y, B):
        yb = tf.reshape(Y, [B, 1, 1, self.dim_y])
        h = tf.concat(axis=1, values=[Z, Y])
        h1 = tf.nn.relu(batchnormalize(tf.matmul(h, self.gen_W1)))
        h = tf.concat(axis=1, values=[h1, Y])
        h = tf.nn.relu(batchnormalize(tf.matmul(h, self.gen_W2)))
        h = tf.concat(axis=3, values=[tf.reshape(h, [B, 7, 7, self.dim_W2]), self.label_maps(yb, B, 7)])
        h = tf.nn.conv2d_transpose(h, self.gen_W3, output_shape=[B, 14, 14, self.dim_W3], strides=[1, 2, 2, 1])
        h = tf.concat(axis=3, values=[tf.nn.relu(batchnormalize(h)), self.label_maps(yb, B, 14)])
        return tf.nn.conv2d_transpose(h, self.gen_W4, output_shape=[B, 28, 28, self.dim_channel],
                                      strides=[1, 2, 2, 1])
