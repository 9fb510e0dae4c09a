"""The original's `from load import mnist_with_valid_set` keeps working."""
from dcgan_mnist.load import data_dir, mnist, mnist_with_valid_set  # noqa: F401
