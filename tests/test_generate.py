"""python -m dcgan_mnist generate: grid layout, labels, seeds, rows independent of each other, interpolation,
mixed batches, --scale and its errors."""
import os
import re

import numpy as np
import pytest
from conftest import write_mnist
from PIL import Image

from dcgan_mnist import sampler
from dcgan_mnist.__main__ import main as dcgan_mnist_main
from dcgan_mnist.tools import generate
from dcgan_mnist.train import main as train_main
from dcgan_mnist.util import grid_image

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


def scaled(picture, n):
    """Each pixel of ``picture`` as an n x n block."""
    return np.repeat(np.repeat(np.asarray(picture), n, axis=0), n, axis=1)


def test_grid_rows_follow_digits_in_order(run_dir, tmp_path):
    png, raw = run_generate(run_dir, tmp_path, "grid", "--digits", "3,0,7", "--per-digit", "5", "--seed", "1")

    assert png.size == (3 * 28 * 5, 3 * 28 * 3)  # --scale 3 by default
    assert raw["images"].shape == (15, 28, 28) and raw["images"].dtype == np.float32
    assert raw["z"].shape == (15, DIM_Z)
    np.testing.assert_array_equal(raw["labels"], [3] * 5 + [0] * 5 + [7] * 5)
    assert raw["images"].min() >= 0 and raw["images"].max() <= 1
    # The picture is exactly these samples, row-major, through the one grid writer, each pixel a 3x3 block.
    np.testing.assert_array_equal(np.asarray(png), scaled(grid_image(raw["images"][..., None], (3, 5)), 3))


@pytest.mark.parametrize("scale", ["1", "2"])
def test_scale_enlarges_the_picture_by_whole_pixels_and_not_the_raw_samples(run_dir, tmp_path, scale):
    png, raw = run_generate(run_dir, tmp_path, "grid", "--digits", "4,1", "--per-digit", "3", "--seed", "1",
                            "--scale", scale)
    assert png.size == (int(scale) * 28 * 3, int(scale) * 28 * 2)
    assert raw["images"].shape == (6, 28, 28)
    np.testing.assert_array_equal(np.asarray(png), scaled(grid_image(raw["images"][..., None], (2, 3)), int(scale)))


def test_a_row_is_the_same_whatever_else_is_asked_for(run_dir, tmp_path):
    """Row 7 alone, row 7 of all ten rows and row 7 among others in another order: bit for bit the same
    samples, and a shorter row is the start of it. The picture's byte scaling follows the whole canvas, so
    the raw samples are compared."""
    _, grid = run_generate(run_dir, tmp_path, "grid", "--digits", "0-9", "--per-digit", "22", "--seed", "3")
    row_7 = slice(7 * 22, 8 * 22)
    np.testing.assert_array_equal(grid["labels"][row_7], [7] * 22)
    for name, digits, per_digit in [("alone", "7", 22), ("among", "9,7,1", 22), ("short", "7", 5)]:
        _, raw = run_generate(run_dir, tmp_path, name, "--digits", digits, "--per-digit", str(per_digit),
                              "--seed", "3")
        mine = raw["labels"] == 7
        np.testing.assert_array_equal(raw["z"][mine], grid["z"][row_7][:per_digit])
        np.testing.assert_array_equal(raw["images"][mine], grid["images"][row_7][:per_digit])


def painter(batches):
    """A stand-in for the generator: records each batch, and paints each image with its z's first value
    and its digit, so both can be read back."""
    def sample(z, y):
        batches.append((z.copy(), y.argmax(1)))
        return np.stack([np.full([28, 28, 1], z[i, 0] + 10 * y[i].argmax()) for i in range(len(z))])
    return sample


LABELS_AND_BATCH_SIZES = [([7] * 25, 196), (np.repeat([3, 0, 7], 70), 196), (np.repeat([9, 2], 5), 4)]


@pytest.mark.parametrize("labels, batch_size", LABELS_AND_BATCH_SIZES)
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


def z_of_place(digits, ks):
    """A stand-in for generate's z: its first value tells the digit and k it was drawn for."""
    return np.stack([100 * digits + ks, np.zeros(len(ks)), np.zeros(len(ks))], axis=1)


@pytest.mark.parametrize("labels, batch_size", LABELS_AND_BATCH_SIZES)
def test_with_a_fill_every_place_of_every_batch_gets_the_z_of_its_digit_and_rank(labels, batch_size):
    labels = np.asarray(labels)
    ks = np.concatenate([np.arange(np.count_nonzero(labels == d)) for d in dict.fromkeys(labels)])
    batches = []
    images = sampler.draw_in_mixed_batches(painter(batches), z_of_place(labels, ks), labels, batch_size,
                                           fill=z_of_place)
    np.testing.assert_array_equal(images[:, 0, 0, 0], 100 * labels + ks + 10 * labels)
    # Place p holds digit p % 10 and the z of its (p // 10)-th sample, whatever was asked for.
    places = np.arange(sum(len(z) for z, _ in batches))
    np.testing.assert_array_equal(np.concatenate([z for z, _ in batches]), z_of_place(places % 10, places // 10))


def test_z_is_uniform_from_the_seed_one_stream_per_digit(run_dir, tmp_path):
    _, raw = run_generate(run_dir, tmp_path, "grid", "--digits", "2-4", "--per-digit", "4", "--seed", "5")
    for row, digit in enumerate([2, 3, 4]):
        stream = np.random.default_rng(np.random.SeedSequence(5, spawn_key=(digit,)))
        np.testing.assert_array_equal(raw["z"][4 * row:4 * row + 4], stream.uniform(-1, 1, size=(4, DIM_Z)))


def test_same_seed_same_samples_other_seed_other_samples(run_dir, tmp_path):
    _, first = run_generate(run_dir, tmp_path, "a", "--digits", "1,4", "--per-digit", "3", "--seed", "9")
    _, again = run_generate(run_dir, tmp_path, "b", "--digits", "1,4", "--per-digit", "3", "--seed", "9")
    _, other = run_generate(run_dir, tmp_path, "c", "--digits", "1,4", "--per-digit", "3", "--seed", "10")
    for key in ("images", "labels", "z"):
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["z"], other["z"])
    assert not np.allclose(first["images"], other["images"])


def test_interpolation_walks_between_the_seeds_first_two_draws(run_dir, tmp_path):
    png, walk = run_generate(run_dir, tmp_path, "walk", "--digits", "5,6", "--per-digit", "6", "--seed", "3",
                             "--interpolate")
    start, end = np.random.default_rng(3).uniform(-1, 1, size=(2, DIM_Z))
    expected_row = np.stack([start + k / 5 * (end - start) for k in range(6)])
    z = walk["z"].reshape(2, 6, DIM_Z)
    np.testing.assert_allclose(z[0], expected_row, atol=1e-12)
    np.testing.assert_array_equal(z[0], z[1])  # every digit walks the same path
    np.testing.assert_array_equal(z[:, 0], [start, start])
    np.testing.assert_array_equal(z[:, -1], [end, end])
    np.testing.assert_array_equal(walk["labels"], [5] * 6 + [6] * 6)
    assert png.size == (3 * 28 * 6, 3 * 28 * 2)
    assert walk["images"].min() >= 0 and walk["images"].max() <= 1
    # A row of the walk, too, is the same whatever other rows are asked for.
    _, alone = run_generate(run_dir, tmp_path, "alone", "--digits", "6", "--per-digit", "6", "--seed", "3",
                            "--interpolate")
    np.testing.assert_array_equal(alone["images"], walk["images"][6:])


@pytest.mark.parametrize("text, digits", [
    ("0-9", list(range(10))), ("3", [3]), ("1,4,7", [1, 4, 7]), ("2-5,8", [2, 3, 4, 5, 8]), ("9,0", [9, 0]),
    (" 7 , 1-2 ", [7, 1, 2]),
])
def test_parse_digits(text, digits):
    assert generate.parse_digits(text) == digits


def test_default_is_every_digit_twenty_each_three_times_enlarged():
    args = generate.build_parser().parse_args(["--checkpoint", "r", "--out", "x.png"])
    assert args.digits == list(range(10)) and args.per_digit == 20 and args.scale == 3


@pytest.mark.parametrize("flags, message", [
    (["--digits", "1-12"], "--digits: digits run from 0 to 9, got '1-12'"),
    (["--digits", "10"], "--digits: digits run from 0 to 9"),
    (["--digits", "a"], "--digits: 'a' is not a digit or a range"),
    (["--digits", "5-3"], "--digits: range '5-3' runs backwards"),
    (["--digits", "3,3"], "--digits: digit 3 is listed twice"),
    (["--digits", "2-5,4"], "--digits: digit 4 is listed twice"),
    (["--digits", "1,,2"], "--digits: '' is not a digit"),
    (["--per-digit", "0"], "--per-digit: expected a positive integer, got '0'"),
    (["--scale", "0"], "--scale: expected a positive integer, got '0'"),
    (["--interpolate", "--per-digit", "1"], "--interpolate needs --per-digit of 2 or more"),
    (["--out", "grid.xyz"], "--out 'grid.xyz': unknown picture format '.xyz'"),
    (["--out", "grid"], "--out 'grid': unknown picture format '(no extension)'"),
    (["--out", "grid.psd"], "--out 'grid.psd': Pillow reads .psd pictures but cannot write them; use e.g. .png"),
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
    assert Image.open(out).size == (3 * 28 * 4, 3 * 28 * 2)
    with np.load(npz) as raw:
        np.testing.assert_array_equal(raw["labels"], [8, 8, 8, 8, 1, 1, 1, 1])


@pytest.mark.parametrize("flag", ["--out", "--npz"])
def test_an_output_naming_a_folder_is_a_usage_error(tmp_path, capsys, flag):
    (tmp_path / "pictures").mkdir()
    argv = ["--checkpoint", str(tmp_path), "--out", str(tmp_path / "g.png"), flag, str(tmp_path / "pictures")]
    with pytest.raises(SystemExit) as exit_info:
        generate.main(argv)
    assert exit_info.value.code == 2
    assert f"{flag} '{tmp_path / 'pictures'}' is a folder; name a file to write" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--out", "--npz"])
def test_an_output_folder_that_cannot_be_made_is_named_before_drawing(tmp_path, capsys, flag):
    (tmp_path / "a-file").write_text("")
    folder = tmp_path / "a-file" / "sub"
    argv = ["--checkpoint", str(tmp_path), "--out", str(tmp_path / "g.png"), flag, str(folder / "g.png")]
    assert generate.main(argv) == 1
    err = capsys.readouterr().err
    assert f"error: {flag} folder '{folder}' is not writable: Not a directory" in err and "Traceback" not in err


@pytest.mark.parametrize("flag, broken", [("--out", (Image.Image, "save")), ("--npz", (np, "savez"))])
def test_an_output_cut_short_is_an_error_and_not_left_behind(run_dir, tmp_path, capsys, monkeypatch, flag, broken):
    owner, name = broken
    save = getattr(owner, name)

    def short_save(*args, **kwargs):  # writes half the file without an error, as on a full disk
        save(*args, **kwargs)
        f = next(a for a in args if hasattr(a, "truncate"))
        f.truncate(f.tell() // 2)
    monkeypatch.setattr(owner, name, short_save)
    paths = {"--out": str(tmp_path / "g.png"), "--npz": str(tmp_path / "g.npz")}
    assert generate.main(["--checkpoint", run_dir, "--per-digit", "2", "--seed", "1", "--out", paths["--out"],
                          "--npz", paths["--npz"]]) == 1
    err = capsys.readouterr().err
    assert f"error: could not write {flag} '{paths[flag]}': the file written does not read back whole" in err
    assert "Traceback" not in err
    assert not os.path.exists(paths[flag]) and not os.path.exists(paths[flag] + ".tmp")
