"""A faithful TensorFlow 2 (tf.compat.v1 graph mode) port of yihui-he/GAN-MNIST's conditional DCGAN.

The model is written with placeholders and Session.run, so the package switches TensorFlow to
v1 graph behaviour on import, exactly as the original program ran under TensorFlow 1.x.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as _tf  # noqa: E402

_tf.compat.v1.disable_v2_behavior()

__version__ = "1.0.0"
