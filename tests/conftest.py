"""Shared fixtures: small synthetic MNIST-format data sets written as real IDX files, the judge's cache kept inside
the tests' temporary folders, and a tiny trained run made once per test process for the tests that only read it."""
import contextlib
import gzip
import io
import json
import os
import shutil
import struct
import sys
import types

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


@pytest.fixture(scope="session", autouse=True)
def judge_cache_in_the_temporary_folders(tmp_path_factory):
    """$XDG_CACHE_HOME (the judge's default cache) in this test process's temporary folders, also for the processes
    it starts: no test writes to the user's ~/.cache, and parallel test processes do not share one cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


QUICK_JUDGE_STEPS = 30  # a judge that trains in a second: the tests need one judge's scores, not good ones


@pytest.fixture(scope="session")
def quick_judges_folder(tmp_path_factory):
    return str(tmp_path_factory.mktemp("judges"))


@pytest.fixture
def quick_judges(quick_judges_folder, monkeypatch):
    """The --judge-dir of quick judges (QUICK_JUDGE_STEPS steps), shared by the tests of this test process: the
    judge of a data set is trained by the first test that scores with it, and the others load it."""
    from dcgan_mnist import judge

    monkeypatch.setitem(judge.TRAINING, "steps", QUICK_JUDGE_STEPS)
    return quick_judges_folder


@pytest.fixture(scope="session")
def trained_tiny_run(tmp_path_factory):
    """A finished tiny run (seed 1, 12 iterations, checkpoints at 4, 8 and 12, the compact log) and its data
    directory, trained once per test process. Tests that change it work on a copy (copied_run)."""
    from dcgan_mnist.train import main as train_main

    tmp = tmp_path_factory.mktemp("tiny-run")
    data_dir = str(tmp / "data")
    write_mnist(data_dir)
    assert train_main(tiny_args(data_dir, str(tmp), "run", "--seed", "1", "--max-iterations", "12",
                                "--checkpoint-every", "4", "--log", "compact")) == 0
    return tmp / "run", data_dir


def copied_run(source, tmp_path):
    """A copy of the run directory ``source`` in ``tmp_path`` (as run/), for one test to change."""
    copy = tmp_path / "run"
    shutil.copytree(source, copy)
    return copy


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


# ---- a tiny ablation, made once per test process ----

DATA = ["--valid-size", "50", "--batch-size", "16", *TINY_MODEL]


def ablate_args(data_dir, out, judges, *extra):
    # One TensorFlow thread in every run, whatever --jobs: the runs, not just their scores, are then the same.
    return ["--out", str(out), "--data-dir", data_dir, "--judge-dir", judges, "--variants", "original,repaired",
            "--seeds", "0", "--iterations", "4", "--eval-every", "2", "--samples", "20", "--threads", "1", *DATA,
            *extra]


def quick_judge(data_dir, judges):
    """Train a judge of QUICK_JUDGE_STEPS steps into the folder where the judge of the default training is looked for:
    the ablation's workers are other processes, which a judge_module.TRAINING patched here would not reach."""
    from dcgan_mnist import judge as judge_module
    from dcgan_mnist.load import mnist

    trX, teX, trY, teY = mnist(data_dir)
    folder = os.path.join(judges, f"mnist-{judge_module.data_hash(judge_module.TRAINING, trX, trY, teX, teY)}")
    judge_module.train_judge(folder, trX, trY, teX, teY, {**judge_module.TRAINING, "steps": QUICK_JUDGE_STEPS}).close()


def read_record(out):
    from dcgan_mnist.tools import ablate

    with open(os.path.join(out, ablate.RECORD_FILE)) as f:
        return json.load(f)


@pytest.fixture(scope="session")
def finished_ablation(tmp_path_factory):
    """A whole tiny ablation with --jobs 1 (two variants, one seed, scored at 2 and 4 iterations) in folder/out: its
    data and judge folders, its ablation.json, and what it wrote to stderr (said) and stdout (printed)."""
    from dcgan_mnist.tools import ablate

    folder = tmp_path_factory.mktemp("ablate")
    data_dir, judges = str(folder / "data"), str(folder / "judges")
    write_mnist(data_dir)
    quick_judge(data_dir, judges)
    said, printed = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(said), contextlib.redirect_stdout(printed):
        assert ablate.main(ablate_args(data_dir, folder / "out", judges, "--jobs", "1")) == 0
    return types.SimpleNamespace(folder=folder, data_dir=data_dir, judges=judges, record=read_record(folder / "out"),
                                 said=said.getvalue(), printed=printed.getvalue())


# Fixtures that cost seconds to make (a whole ablation, the migration processes, the switches' runs): with parallel
# test processes (pytest-xdist, --dist loadgroup) the tests that read one go to one process, which makes it once;
# the other tests are shared out one by one.
COSTLY_FIXTURES = ("finished_ablation", "results", "repaired_runs")


def pytest_itemcollected(item):
    # As each test is collected, before pytest-xdist reads the groups (in pytest_collection_modifyitems).
    for name in COSTLY_FIXTURES:
        if name in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group(name))
