"""The original's `from util import *` keeps working."""
from dcgan_mnist.util import OneHot, save_visualization  # noqa: F401
