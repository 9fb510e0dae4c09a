"""The original's `from model import *` / `from model import DCGAN` keep working."""
from dcgan_mnist.model import DCGAN, batchnormalize, bce, lrelu, tf  # noqa: F401
