"""A new user's first hour (issue 40): grids that belong to a run, one epoch numbering, errors that say what to do."""
import json
import os
import re
import runpy
import sys

import pytest
from conftest import ROOT, TINY

from dcgan_mnist import cli
from dcgan_mnist.__main__ import main as dcgan_mnist_main
from dcgan_mnist.ablation import tasks as ablation_tasks
from dcgan_mnist.tools import gif
from dcgan_mnist.train import main as train_main


def tiny_run(mnist_dir, tmp_path, name, vis, *extra):
    return train_main(TINY + ["--data-dir", mnist_dir, "--run-dir", str(tmp_path / name), "--vis-dir", str(vis),
                              "--seed", "1", *extra])


def test_two_runs_in_one_vis_folder_warn_and_gif_tells_them_apart(mnist_dir, tmp_path, capsys):
    vis = tmp_path / "vis"
    assert tiny_run(mnist_dir, tmp_path, "first", vis, "--max-iterations", "9") == 0  # grids 0-4
    assert "warning" not in capsys.readouterr().err
    assert gif.main(["--vis-dir", str(vis), "--out", str(tmp_path / "first.gif")]) == 0
    assert tiny_run(mnist_dir, tmp_path, "second", vis, "--max-iterations", "3") == 0  # grids 0-1
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    assert len(warnings) == 1 and str(tmp_path / "first") in warnings[0] and str(tmp_path / "second") in warnings[0]
    marker = json.loads((vis / ".run").read_text())["runs"]
    assert [(r["run_dir"], r["grids"]) for r in marker] == [
        (str(tmp_path / "first"), ["sample_0002.jpg", "sample_0003.jpg", "sample_0004.jpg"]),
        (str(tmp_path / "second"), ["sample_0000.jpg", "sample_0001.jpg"])]

    assert gif.main(["--vis-dir", str(vis), "--out", str(tmp_path / "mixed.gif")]) == 1
    err = capsys.readouterr().err
    assert "more than one run" in err and "--run" in err and not (tmp_path / "mixed.gif").exists()
    for name, frames in (("first", 3), ("second", 2)):
        assert gif.main(["--run", str(tmp_path / name), "--out", str(tmp_path / f"{name}.gif")]) == 0
        assert f"({frames})" in capsys.readouterr().out

    # Resuming keeps the grids where the run recorded them and continues its own entry, without a warning.
    assert train_main(["--resume", str(tmp_path / "second"), "--max-iterations", "5"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert json.loads((vis / ".run").read_text())["runs"][-1]["grids"] == [f"sample_000{n}.jpg" for n in range(3)]


def test_epochs_count_from_1_in_the_resume_message_and_the_scores(mnist_dir, tmp_path, capsys, quick_judges):
    # 15 batches an epoch: iteration 17 is batch 2 of epoch 2, and the run's last score is in epoch 2.
    assert tiny_run(mnist_dir, tmp_path, "run", tmp_path / "vis", "--max-iterations", "17", "--log", "compact",
                    "--eval-every-epoch", "--judge-dir", quick_judges) == 0
    out = capsys.readouterr().out
    assert "eval after epoch 1 (iteration 14)" in out and "eval after epoch 2 (iteration 16)" in out
    assert "epoch 2 iter 16" in out
    rows = [json.loads(line) for line in (tmp_path / "run" / "eval.jsonl").read_text().splitlines()]
    assert [(row["iteration"], row["epoch"]) for row in rows] == [(14, 1), (16, 2)]
    assert train_main(["--resume", str(tmp_path / "run"), "--max-iterations", "18"]) == 0
    assert "at iteration 17 (epoch 2, batch 2)" in capsys.readouterr().err


def test_a_data_dir_that_does_not_exist_is_named_not_downloaded_into(tmp_path, capsys, monkeypatch):
    from dcgan_mnist import load

    def no_download(*args, **kwargs):
        raise AssertionError("downloaded")
    monkeypatch.setattr(load, "download_mnist", no_download)
    missing = tmp_path / "no-such-folder"
    assert train_main(["--data-dir", str(missing), "--run-dir", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert f"the folder {missing} does not exist (--data-dir)" in err and not missing.exists()


def test_a_missing_checkpoint_lists_the_runs_checkpoints(mnist_dir, tmp_path, capsys):
    assert tiny_run(mnist_dir, tmp_path, "run", tmp_path / "vis", "--max-iterations", "4",
                    "--checkpoint-every", "2") == 0
    capsys.readouterr()
    assert train_main(["--resume", str(tmp_path / "run" / "checkpoints" / "ckpt-500")]) == 1
    err = capsys.readouterr().err
    assert "ckpt-500" in err and "is not there" in err and "ckpt-2, ckpt-4" in err


@pytest.mark.parametrize("argv, meant", [(["train", "--recipie", "repaired"], "--recipe"),
                                         (["gif", "--vis-dri", "vis", "--out", "a.gif"], "--vis-dir"),
                                         (["ablate", "--out", "x", "--jbos", "2"], "--jobs"),
                                         (["evalute"], "evaluate")])
def test_a_typo_gets_one_line_saying_what_was_meant(argv, meant, capsys):
    try:
        status = dcgan_mnist_main(argv)
    except SystemExit as e:
        status = e.code
    assert status == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"did you mean {meant}?" in err and len(err.splitlines()) == 1


def test_an_ablations_console_is_one_line_per_task_and_plot_draws_its_runs(finished_ablation, tmp_path):
    from dcgan_mnist.tools import plot

    lines = finished_ablation.said.splitlines()
    assert finished_ablation.printed == ""  # the runs' compact lines are in their tasks.log
    tasks = [line for line in lines if ": trained to " in line or " judge accuracy " in line]
    assert len(tasks) == 8  # 2 runs x (2 chunks + 2 scores)
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == len(set(warnings)) >= 1  # the data's test images are in its training file: said once
    assert not [line for line in lines if line.startswith(("done: ", "resuming ", "  draw digits"))]
    assert "took " in finished_ablation.said and "estimated " in finished_ablation.said
    tensorboard = next(line for line in lines if "TensorBoard:" in line).split()[1]
    assert os.path.isabs(tensorboard) and os.access(tensorboard, os.X_OK)
    runs = [str(finished_ablation.folder / "out" / "runs" / name / "seed-0") for name in ("original", "repaired")]
    for run_dir in runs:
        rows = [json.loads(line) for line in open(os.path.join(run_dir, "eval.jsonl"))]
        assert [(row["iteration"], row["epoch"]) for row in rows] == [(1, 1), (3, 1)]
        assert "iter 3" in open(os.path.join(run_dir, ablation_tasks.TASK_LOG)).read()
    assert plot.main([*runs, "--out", str(tmp_path / "curves.png")]) == 0
    assert (tmp_path / "curves.png").is_file()


def test_bench_times_the_data_a_run_would_use_and_says_which(mnist_dir, tmp_path, capsys, monkeypatch):
    from test_bench import SMALL_FLAGS

    from dcgan_mnist import load
    from dcgan_mnist.tools import bench

    quick = [*SMALL_FLAGS, "--iterations", "2", "--warmup", "1", "--valid-size", "100"]
    monkeypatch.setattr(load, "data_dir", mnist_dir)  # data/ holds MNIST
    assert bench.main(quick) == 0
    assert f"MNIST in {mnist_dir} (200 training images)" in capsys.readouterr().out
    assert bench.main([*quick, "--synthetic"]) == 0
    assert "synthetic data (50000 images; --synthetic)" in capsys.readouterr().out
    monkeypatch.setattr(load, "data_dir", str(tmp_path / "empty"))
    assert bench.main(quick) == 0
    assert "synthetic data (50000 images; " in capsys.readouterr().out


def test_every_picture_a_doc_shows_exists():
    from conftest import ROOT

    def pictures(doc):
        """The pictures ``doc`` shows, as paths."""
        with open(doc) as f:
            return {os.path.normpath(os.path.join(os.path.dirname(doc), link))
                    for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", f.read())}
    docs = {name: os.path.join(ROOT, "docs", name) for name in os.listdir(os.path.join(ROOT, "docs"))
            if name.endswith(".md")}
    shown = {name: pictures(path) for name, path in docs.items()}
    shown["README.md"] = pictures(os.path.join(ROOT, "README.md"))
    assert [(name, p) for name, found in shown.items() for p in found if not os.path.isfile(p)] == []
    lessons = {os.path.basename(p) for p in shown["lessons.md"]}
    assert lessons >= set(PICTURES[:3]) and {os.path.basename(p) for p in shown["shapes.md"]} >= set(PICTURES[3:])
    assert shown["lessons.ko.md"] == shown["lessons.md"]


PICTURES = ["lesson-7-clip.png", "lesson-9-shift.png", "lesson-11-sevens.png", "shapes-architecture.png"]


def test_the_script_that_draws_the_lessons_pictures_runs(mnist_dir, tmp_path, monkeypatch):
    script = os.path.join(ROOT, "scripts", "lesson_pictures.py")
    monkeypatch.setattr(sys, "argv", [script, mnist_dir, "--tiny", "--iterations", "2", "--out",
                                      str(tmp_path / "pictures")])
    runpy.run_path(script, run_name="__main__")  # in this process: what it draws is the point, not its exit
    assert sorted(os.listdir(tmp_path / "pictures")) == sorted(PICTURES)
