"""A faithful TensorFlow 2 (tf.compat.v1 graph mode) port of yihui-he/GAN-MNIST's conditional DCGAN.

The model is written with placeholders and Session.run. Importing the package does not import TensorFlow:
``dcgan_mnist.model.tf`` (tf.compat.v1) imports it on first use and switches it to v1 graph behaviour then,
before anything can build a graph, exactly as the original program ran under TensorFlow 1.x (see lazy_tf).
"""

__version__ = "1.0.0"
