"""Shared fixtures: small synthetic MNIST-format data sets written as real IDX files."""
import gzip
import json
import os
import struct
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# The model sizes of the tests, with the original's structure: TINY trains in milliseconds (on 250 training
# images); SMALL has widths that differ from each other and from the 10 labels, so a shape shows which it is.
TINY_WIDTHS = {"dim_z": 8, "dim_W1": 16, "dim_W2": 8, "dim_W3": 4}
SMALL_WIDTHS = {"dim_z": 7, "dim_W1": 32, "dim_W2": 16, "dim_W3": 8}


def model_flags(widths):
    return [flag for name, value in widths.items() for flag in (f"--{name.replace('_', '-')}", str(value))]


TINY_MODEL = model_flags(TINY_WIDTHS)
SMALL_MODEL = model_flags(SMALL_WIDTHS)
TINY = ["--batch-size", "16", *TINY_MODEL, "--visualize-dim", "4", "--valid-size", "50", "--step", "2",
        "--no-download"]

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def idx_bytes(array):
    """Serialise a uint8 array in the IDX format (magic 0x0000080N, big-endian dims)."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x800 + array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    return header + array.tobytes()


def synthetic_digits(n, seed=0):
    """Learnable stand-ins for digits: class c is a bright bar at a class-specific place, plus noise."""
    rng = np.random.RandomState(seed)
    labels = rng.randint(10, size=n).astype(np.uint8)
    images = (rng.rand(n, 28, 28) * 40).astype(np.uint8)
    for i, c in enumerate(labels):
        row = 2 + 2 * c
        images[i, row:row + 3, 4:24] = 255
        images[i, 4:24, row:row + 3] = 200
    return images, labels


def write_mnist(directory, n_train=300, n_test=100, gz=False, seed=0):
    """Write the four MNIST files (raw or .gz) into ``directory``; return the arrays."""
    os.makedirs(directory, exist_ok=True)
    tr_x, tr_y = synthetic_digits(n_train, seed)
    te_x, te_y = synthetic_digits(n_test, seed + 1)
    for name, array in zip(FILES, (tr_x, tr_y, te_x, te_y)):
        data = idx_bytes(array)
        path = os.path.join(directory, name + (".gz" if gz else ""))
        with (gzip.open(path, "wb") if gz else open(path, "wb")) as f:
            f.write(data)
    return tr_x, tr_y, te_x, te_y


@pytest.fixture
def mnist_dir(tmp_path):
    """A data directory with 300 training and 100 test images in the original's raw layout."""
    directory = tmp_path / "data"
    write_mnist(str(directory))
    return str(directory)


def tiny_args(data_dir, out_dir, name="run", *extra):
    """train.py flags of a tiny run named ``name`` in ``out_dir`` (its run directory and vis-NAME)."""
    return TINY + ["--data-dir", str(data_dir), "--run-dir", os.path.join(out_dir, name),
                   "--vis-dir", os.path.join(out_dir, "vis-" + name)] + list(extra)


def run_dir_metrics(run_dir):
    """metrics.jsonl of a run without the timings, which differ from run to run."""
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        lines = [json.loads(line) for line in f]
    for line in lines:
        line.pop("seconds", None)
    return lines


def write_stand_in(root, edits=()):
    """A fake checkout of the original at ``root`` whose mnist/model.py is tests/original_stand_in.py with each
    (old, new) edit applied once."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "original_stand_in.py")) as f:
        source = f.read()
    for old, new in edits:
        assert source.count(old) == 1, f"the stand-in must contain {old!r} exactly once"
        source = source.replace(old, new)
    os.makedirs(os.path.join(root, "mnist"))
    with open(os.path.join(root, "mnist", "model.py"), "w") as f:
        f.write(source)
    return str(root)
