"""Entry point with the original's name: `python train.py [flags]` (see `python train.py --help`)."""
import sys

from dcgan_mnist.train import main

if __name__ == "__main__":
    sys.exit(main())
