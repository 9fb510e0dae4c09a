"""python -m dcgan_mnist generate: grid layout, labels, seeds, interpolation, mixed batches and its errors."""
import os
import re

import numpy as np
import pytest
from conftest import write_mnist
from PIL import Image

from dcgan_mnist import sampler
from dcgan_mnist.__main__ import main as dcgan_mnist_main
from dcgan_mnist.sampler import TrainedGenerator
from dcgan_mnist.tools import generate
from dcgan_mnist.train import main as train_main
from dcgan_mnist.util import OneHot, grid_image

DIM_Z = 8


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory written by train.py: a small model trained for a few iterations on synthetic digits,
    sampled (as by default) in batches of 196."""
    tmp = tmp_path_factory.mktemp("generate-run")
    write_mnist(str(tmp / "data"))
    run = str(tmp / "run")
    train_main(["--data-dir", str(tmp / "data"), "--valid-size", "80", "--batch-size", "16", "--dim-z", str(DIM_Z),
                "--dim-W1", "16", "--dim-W2", "8", "--dim-W3", "4", "--max-iterations", "4", "--seed", "3",
                "--log", "compact", "--no-download", "--run-dir", run, "--vis-dir", str(tmp / "vis")])
    return run


def run_generate(run_dir, out_dir, name, *flags):
    png, npz = os.path.join(out_dir, name + ".png"), os.path.join(out_dir, name + ".npz")
    assert generate.main(["--checkpoint", run_dir, "--out", png, "--npz", npz, *flags]) == 0
    with np.load(npz) as f:
        return Image.open(png), dict(f)


def test_grid_rows_follow_digits_in_order(run_dir, tmp_path):
    png, raw = run_generate(run_dir, tmp_path, "grid", "--digits", "3,0,7", "--per-digit", "5", "--seed", "1")

    assert png.size == (28 * 5, 28 * 3)
    assert raw["images"].shape == (15, 28, 28) and raw["images"].dtype == np.float32
    assert raw["z"].shape == (15, DIM_Z)
    np.testing.assert_array_equal(raw["labels"], [3] * 5 + [0] * 5 + [7] * 5)
    assert raw["images"].min() >= 0 and raw["images"].max() <= 1
    # The picture is exactly these samples, row-major, through the one grid writer.
    np.testing.assert_array_equal(np.asarray(png), np.asarray(grid_image(raw["images"][..., None], (3, 5))))


def test_a_row_barely_changes_when_other_rows_are_asked_for(run_dir, tmp_path):
    """Row 7 alone and row 7 of all ten rows: the same z (the seed's first draws), drawn in mixed batches, so
    nearly the same images. Drawn the old way, each grid as one batch, the rows differ several times more."""
    _, alone = run_generate(run_dir, tmp_path, "alone", "--digits", "7", "--per-digit", "6", "--seed", "4")
    _, among = run_generate(run_dir, tmp_path, "among", "--digits", "7,0-6,8,9", "--per-digit", "6", "--seed", "4")
    np.testing.assert_array_equal(alone["z"], among["z"][:6])
    change = np.abs(alone["images"] - among["images"][:6]).max()

    generator = TrainedGenerator(run_dir)
    one_batch_alone = generator.sample(alone["z"], OneHot(alone["labels"], 10))
    one_batch_among = generator.sample(among["z"], OneHot(among["labels"], 10))[:6]
    generator.close()
    one_batch_change = np.abs(one_batch_alone - one_batch_among).max()
    assert change < one_batch_change / 3, (change, one_batch_change)


def painter(batches):
    """A stand-in for the generator: records each batch, and paints each image with its z's first value
    and its digit, so both can be read back."""
    def sample(z, y):
        batches.append((z.copy(), y.argmax(1)))
        return np.stack([np.full([28, 28, 1], z[i, 0] + 10 * y[i].argmax()) for i in range(len(z))])
    return sample


@pytest.mark.parametrize("labels, batch_size", [([7] * 25, 196), (np.repeat([3, 0, 7], 70), 196),
                                                (np.repeat([9, 2], 5), 4)])
def test_mixed_batches_hold_every_digit_alike_and_return_the_samples_asked_for(labels, batch_size):
    rng = np.random.RandomState(0)
    Z = rng.uniform(-1, 1, size=(len(labels), 3))
    batches = []
    images = sampler.draw_in_mixed_batches(painter(batches), Z, labels, batch_size, rng)
    # Each returned image was drawn for its own z and digit, in the order asked.
    np.testing.assert_array_equal(images[:, 0, 0, 0], Z[:, 0] + 10 * np.asarray(labels))
    assert all(len(z) == batch_size for z, _ in batches)
    drawn_labels = np.concatenate([y for _, y in batches])
    if batch_size >= 10:
        for _, y in batches:  # every batch has each digit 0-9 equally often, up to one
            counts = np.bincount(y, minlength=10)
            assert counts.max() - counts.min() <= 1, counts
    # Every z asked for is drawn once; the rest of the batches is fresh uniform noise.
    drawn_z = np.concatenate([z for z, _ in batches])
    asked = np.isin(drawn_z[:, 0], Z[:, 0])
    assert asked.sum() == len(labels)
    padding = drawn_z[~asked]
    assert np.all(np.abs(padding) <= 1) and len(np.unique(padding[:, 0])) == len(padding)
    # No more batches than the most asked-for digit needs: it takes every tenth place.
    assert len(drawn_labels) < 10 * np.bincount(labels).max() + batch_size


def test_z_is_uniform_from_the_seed(run_dir, tmp_path):
    _, raw = run_generate(run_dir, tmp_path, "grid", "--digits", "2-4", "--per-digit", "4", "--seed", "5")
    np.testing.assert_array_equal(raw["z"], np.random.RandomState(5).uniform(-1, 1, size=(12, DIM_Z)))


def test_same_seed_same_samples_other_seed_other_samples(run_dir, tmp_path):
    _, first = run_generate(run_dir, tmp_path, "a", "--digits", "1,4", "--per-digit", "3", "--seed", "9")
    _, again = run_generate(run_dir, tmp_path, "b", "--digits", "1,4", "--per-digit", "3", "--seed", "9")
    _, other = run_generate(run_dir, tmp_path, "c", "--digits", "1,4", "--per-digit", "3", "--seed", "10")
    for key in ("images", "labels", "z"):
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["z"], other["z"])
    assert not np.allclose(first["images"], other["images"])


def test_interpolation_walks_between_the_plain_grids_first_two_z(run_dir, tmp_path):
    _, plain = run_generate(run_dir, tmp_path, "plain", "--digits", "5,6", "--per-digit", "6", "--seed", "3")
    png, walk = run_generate(run_dir, tmp_path, "walk", "--digits", "5,6", "--per-digit", "6", "--seed", "3",
                             "--interpolate")
    start, end = plain["z"][0], plain["z"][1]
    expected_row = np.stack([start + k / 5 * (end - start) for k in range(6)])
    z = walk["z"].reshape(2, 6, DIM_Z)
    np.testing.assert_allclose(z[0], expected_row, atol=1e-12)
    np.testing.assert_array_equal(z[0], z[1])  # every digit walks the same path
    np.testing.assert_array_equal(z[:, 0], [start, start])
    np.testing.assert_array_equal(z[:, -1], [end, end])
    np.testing.assert_array_equal(walk["labels"], [5] * 6 + [6] * 6)
    assert png.size == (28 * 6, 28 * 2)
    assert walk["images"].min() >= 0 and walk["images"].max() <= 1


@pytest.mark.parametrize("text, digits", [
    ("0-9", list(range(10))), ("3", [3]), ("1,4,7", [1, 4, 7]), ("2-5,8", [2, 3, 4, 5, 8]), ("9,0", [9, 0]),
    (" 7 , 1-2 ", [7, 1, 2]),
])
def test_parse_digits(text, digits):
    assert generate.parse_digits(text) == digits


def test_default_is_every_digit_twenty_each():
    args = generate.build_parser().parse_args(["--checkpoint", "r", "--out", "x.png"])
    assert args.digits == list(range(10)) and args.per_digit == 20


@pytest.mark.parametrize("flags, message", [
    (["--digits", "1-12"], "--digits: digits run from 0 to 9, got '1-12'"),
    (["--digits", "10"], "--digits: digits run from 0 to 9"),
    (["--digits", "a"], "--digits: 'a' is not a digit or a range"),
    (["--digits", "5-3"], "--digits: range '5-3' runs backwards"),
    (["--digits", "3,3"], "--digits: digit 3 is listed twice"),
    (["--digits", "2-5,4"], "--digits: digit 4 is listed twice"),
    (["--digits", "1,,2"], "--digits: '' is not a digit"),
    (["--per-digit", "0"], "--per-digit: expected a positive integer, got '0'"),
    (["--interpolate", "--per-digit", "1"], "--interpolate needs --per-digit of 2 or more"),
    (["--out", "grid.xyz"], "--out 'grid.xyz': unknown picture format '.xyz'"),
])
def test_bad_flags_are_named(flags, message, tmp_path, capsys):
    argv = ["--checkpoint", str(tmp_path), "--out", str(tmp_path / "g.png"), *flags]
    with pytest.raises(SystemExit) as exit_info:
        generate.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_not_a_run_dir_is_named(tmp_path, capsys):
    assert generate.main(["--checkpoint", str(tmp_path), "--out", str(tmp_path / "g.png")]) == 1
    assert re.search("--checkpoint .*no settings.json", capsys.readouterr().err)
    assert not (tmp_path / "g.png").exists()


def test_command_line_end_to_end(run_dir, tmp_path, capsys):
    out, npz = tmp_path / "pictures" / "digits.png", tmp_path / "digits.npz"
    assert dcgan_mnist_main(["generate", "--checkpoint", run_dir, "--digits", "8,1", "--per-digit", "4",
                             "--seed", "2", "--out", str(out), "--npz", str(npz)]) == 0
    assert f"wrote {out}: digits 8,1, 4 samples each, seed 2" in capsys.readouterr().out
    assert Image.open(out).size == (28 * 4, 28 * 2)
    with np.load(npz) as raw:
        np.testing.assert_array_equal(raw["labels"], [8, 8, 8, 8, 1, 1, 1, 1])
