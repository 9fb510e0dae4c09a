"""python -m dcgan_mnist gif: one frame per vis/sample_N.jpg, in numeric order."""
import os
import re

import numpy as np
import pytest
from PIL import Image, ImageSequence

from dcgan_mnist.tools import gif
from dcgan_mnist.util import save_visualization


def write_samples(vis_dir, numbers):
    """sample_N.jpg grids (named as train.py names them), brighter as N grows; returns {N: grey pixels}."""
    vis_dir.mkdir(exist_ok=True)
    levels = {}
    for rank, number in enumerate(sorted(numbers)):
        grid = np.zeros((4, 28, 28, 1))
        grid[:, :14] = 0.1 + 0.2 * rank  # half dark, half this level, so min-max scaling keeps the difference
        grid[0, 0, 0] = 1.0
        path = vis_dir / f"sample_{number:04d}.jpg"
        save_visualization(grid, (2, 2), str(path))
        levels[number] = np.asarray(Image.open(path).convert("L"))
    return levels


def test_one_frame_per_sample_file_in_numeric_order(tmp_path):
    vis = tmp_path / "vis"
    levels = write_samples(vis, [0, 1, 9999, 10000])  # 10000 sorts before 9999 as text
    (vis / "sample.jpg").write_bytes(b"")  # not part of the series
    (vis / "notes.txt").write_text("x")
    out = tmp_path / "progress.gif"

    assert gif.main(["--vis-dir", str(vis), "--out", str(out), "--duration", "150"]) == 0

    animation = Image.open(out)
    assert animation.n_frames == 4
    assert animation.info["loop"] == 0
    frames = [np.asarray(frame.convert("L")) for frame in ImageSequence.Iterator(animation)]
    for frame, number in zip(frames, [0, 1, 9999, 10000]):
        np.testing.assert_array_equal(frame, levels[number])
    animation.seek(2)
    assert animation.info["duration"] == 150


def test_default_vis_dir(tmp_path, monkeypatch):
    write_samples(tmp_path / "vis", [0, 1])
    monkeypatch.chdir(tmp_path)
    assert gif.main(["--out", "progress.gif"]) == 0
    assert Image.open(tmp_path / "progress.gif").n_frames == 2


def test_empty_or_missing_folder_is_named(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert gif.main(["--vis-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "a.gif")]) == 1
    assert re.search("error: --vis-dir '.*empty' has no sample_N.jpg files", capsys.readouterr().err)
    assert gif.main(["--vis-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "a.gif")]) == 1
    assert re.search("error: --vis-dir '.*missing' is not a folder", capsys.readouterr().err)
    assert not (tmp_path / "a.gif").exists()


def test_frames_of_different_sizes_are_refused(tmp_path, capsys):
    vis = tmp_path / "vis"
    write_samples(vis, [0])
    save_visualization(np.random.RandomState(0).rand(9, 28, 28, 1), (3, 3), str(vis / "sample_0001.jpg"))
    assert gif.main(["--vis-dir", str(vis), "--out", str(tmp_path / "a.gif")]) == 1
    assert re.search("sample_0001.jpg is 84x84 but .*sample_0000.jpg is 56x56", capsys.readouterr().err)


@pytest.mark.parametrize("duration", ["0", "-3", "1.5"])
def test_duration_must_be_a_positive_whole_number(tmp_path, capsys, duration):
    with pytest.raises(SystemExit) as e:
        gif.main(["--vis-dir", str(tmp_path), "--out", str(tmp_path / "a.gif"), "--duration", duration])
    assert e.value.code == 2
    assert f"argument --duration: expected a positive integer, got '{duration}'" in capsys.readouterr().err


@pytest.mark.parametrize("out", ["progress.png", "progress", "progress.gif.jpg"])
def test_out_must_end_in_gif(tmp_path, capsys, out):
    write_samples(tmp_path / "vis", [0, 1])
    with pytest.raises(SystemExit) as e:
        gif.main(["--vis-dir", str(tmp_path / "vis"), "--out", str(tmp_path / out)])
    assert e.value.code == 2
    assert f"--out '{tmp_path / out}': the animation is written as a GIF, so the file name must end in .gif" in (
        capsys.readouterr().err)
    assert not (tmp_path / out).exists()


def test_upper_case_gif_extension_is_accepted(tmp_path):
    write_samples(tmp_path / "vis", [0, 1])
    assert gif.main(["--vis-dir", str(tmp_path / "vis"), "--out", str(tmp_path / "P.GIF")]) == 0
    assert Image.open(tmp_path / "P.GIF").format == "GIF"


def test_help_shows_each_default_once(capsys):
    with pytest.raises(SystemExit):
        gif.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps help to the terminal width
    assert text.count("(default: vis)") == 1 and text.count("(default: 200)") == 1
    assert "default" not in text.split("--out FILE.gif", 2)[2]  # --out is required: it has no default


@pytest.mark.parametrize("damage, reason", [
    (lambda data: b"", r"it is empty"),
    (lambda data: data[:len(data) // 2], r"it is truncated or not a JPEG: "),
], ids=["empty", "truncated"])
def test_a_damaged_sample_file_is_named_not_a_traceback(tmp_path, capsys, damage, reason):
    vis = tmp_path / "vis"
    write_samples(vis, [0, 1, 2])
    damaged = vis / "sample_0001.jpg"
    damaged.write_bytes(damage(damaged.read_bytes()))
    assert gif.main(["--vis-dir", str(vis), "--out", str(tmp_path / "a.gif")]) == 1
    err = capsys.readouterr().err
    assert re.search(rf"error: {re.escape(str(damaged))} is damaged \({reason}.*\); delete it to make the GIF "
                     r"without it \(resuming the run from a checkpoint before it writes it again\)", err), err
    assert "Traceback" not in err and not (tmp_path / "a.gif").exists()


def test_the_gif_is_written_whole_or_not_at_all(tmp_path, capsys, monkeypatch):
    write_samples(tmp_path / "vis", [0, 1, 2])
    out = tmp_path / "a.gif"
    out.write_bytes(b"the previous animation")
    real_save = Image.Image.save

    def short_save(self, fp, *args, **kwargs):  # the last frame cut short without an error, as on a full disk
        real_save(self, fp, *args, **kwargs)
        fp.truncate(fp.tell() - 40)
    monkeypatch.setattr(Image.Image, "save", short_save)
    assert gif.main(["--vis-dir", str(tmp_path / "vis"), "--out", str(out)]) == 1
    assert f"error: could not write --out '{out}': the file written does not read back whole" in (
        capsys.readouterr().err)
    assert out.read_bytes() == b"the previous animation"
    assert sorted(os.listdir(tmp_path)) == ["a.gif", "vis"]


def test_out_naming_a_folder_is_an_error(tmp_path, capsys):
    write_samples(tmp_path / "vis", [0, 1])
    (tmp_path / "a.gif").mkdir()
    assert gif.main(["--vis-dir", str(tmp_path / "vis"), "--out", str(tmp_path / "a.gif")]) == 1
    assert f"error: could not write --out '{tmp_path / 'a.gif'}': Is a directory" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["a.gif", "vis"]
