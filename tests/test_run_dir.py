"""A run directory has one writer and one history: no run is mixed with another, no line doubled or lost."""
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import FILES, ROOT, TINY, run_dir_metrics, tiny_args, write_mnist

from dcgan_mnist import checkpoints, run
from dcgan_mnist.sampler import TrainedGenerator
from dcgan_mnist.train import main
from dcgan_mnist.vis import sample_names

TRAIN_PY = os.path.join(ROOT, "train.py")
FOREVER = ["--max-iterations", "100000", "--n-epochs", "100000"]  # a run that trains until it is stopped


def iterations(run_dir):
    return [line["iteration"] for line in run_dir_metrics(run_dir)]


def start_training(*flags, cwd=None):
    """train.py in a process of its own (its stderr in a pipe)."""
    return subprocess.Popen([sys.executable, TRAIN_PY, *flags], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def wait_for(condition, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def metrics_lines(run_dir):
    path = os.path.join(run_dir, "metrics.jsonl")
    return open(path).read().count("\n") if os.path.exists(path) else 0


def test_a_fresh_run_into_a_used_directory_is_refused_and_changes_nothing(mnist_dir, tmp_path, capsys):
    assert main(tiny_args(mnist_dir, tmp_path, "run", "--seed", "1", "--max-iterations", "3")) == 0
    before = {name: (tmp_path / "run" / name).read_bytes() for name in ("settings.json", "metrics.jsonl")}
    capsys.readouterr()
    assert main(tiny_args(mnist_dir, tmp_path, "run", "--seed", "2", "--max-iterations", "6")) == 1
    err = capsys.readouterr().err
    assert "already holds a run (checkpoint at iteration 3)" in err and "--resume" in err
    assert {name: (tmp_path / "run" / name).read_bytes() for name in before} == before
    assert [os.path.basename(p) for p in checkpoints.complete_checkpoints(str(tmp_path / "run"))] == ["ckpt-3"]


def test_two_runs_started_in_the_same_second_get_their_own_directories(mnist_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run.time, "strftime", lambda pattern: "20260101-000000")
    flags = [*TINY, "--data-dir", mnist_dir, "--vis-dir", str(tmp_path / "vis"), "--max-iterations", "2"]
    assert main([*flags, "--seed", "1"]) == 0
    assert main([*flags, "--seed", "2"]) == 0
    first, second = tmp_path / "runs" / "20260101-000000", tmp_path / "runs" / "20260101-000000-2"
    assert iterations(first) == iterations(second) == [0, 1]
    assert json.loads((first / "settings.json").read_text())["seed"] == 1
    assert json.loads((second / "settings.json").read_text())["seed"] == 2
    assert "runs/20260101-000000-2" in capsys.readouterr().err


def test_a_second_writer_is_refused_with_the_holders_pid(mnist_dir, tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    first = start_training(*tiny_args(mnist_dir, tmp_path, "run", "--seed", "1", *FOREVER,
                                      "--log", "compact", "--checkpoint-every", "20"))
    try:
        wait_for(lambda: checkpoints.complete_checkpoints(run_dir))
        # The second writer is this test's process: the lock is held by another one, the first.
        for flags in (["--resume", run_dir], tiny_args(mnist_dir, tmp_path, "run", "--seed", "1")):
            assert main(flags) == 1
            assert f"being written by another training process (PID {first.pid})" in capsys.readouterr().err
        assert first.poll() is None  # the first one trains on, untouched
        first.send_signal(signal.SIGTERM)
        assert first.wait(60) == 143, first.stderr.read()
    finally:
        first.kill()
    # The first run's history is whole: every iteration once, and it resumes where it stopped.
    done = iterations(run_dir)
    assert done == list(range(len(done)))
    assert main(["--resume", run_dir, "--max-iterations", str(len(done) + 2)]) == 0
    assert iterations(run_dir) == list(range(len(done) + 2))


def test_a_run_killed_before_its_first_checkpoint_starts_again_cleanly(mnist_dir, tmp_path, capsys):
    flags = tiny_args(mnist_dir, tmp_path, "run", "--seed", "3", *FOREVER, "--log", "compact")
    killed = start_training(*flags)
    try:
        wait_for(lambda: metrics_lines(tmp_path / "run") >= 5)
    finally:
        killed.kill()
        killed.wait()
    assert main(["--resume", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "stopped before its first checkpoint, so there is nothing to resume" in err
    assert "start it again with the command that started it" in err
    assert main(tiny_args(mnist_dir, tmp_path, "run", "--seed", "3", "--max-iterations", "4")) == 0
    assert "starting" in capsys.readouterr().err
    assert iterations(tmp_path / "run") == [0, 1, 2, 3]
    assert not os.path.exists(tmp_path / "run" / "eval.jsonl")


def test_a_moved_run_resumed_from_another_folder_trains_on_its_own_data(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    write_mnist(str(a / "data"))
    write_mnist(str(b / "data"), seed=5)  # other images where a relative path would now point
    reference = tmp_path / "reference"
    assert main([*TINY, "--data-dir", str(a / "data"), "--run-dir", str(reference), "--vis-dir",
                 str(tmp_path / "vis-reference"), "--seed", "4", "--max-iterations", "8"]) == 0
    cwd = os.getcwd()
    try:
        os.chdir(a)
        assert main([*TINY, "--data-dir", "data/", "--run-dir", "run", "--seed", "4", "--max-iterations", "4"]) == 0
        os.chdir(tmp_path)
        shutil.move(str(a / "run"), str(b / "run"))
        os.chdir(b)
        assert main(["--resume", "run", "--max-iterations", "8"]) == 0
    finally:
        os.chdir(cwd)
    assert run_dir_metrics(b / "run") == run_dir_metrics(reference)
    saved = json.loads((b / "run" / "settings.json").read_text())
    assert saved["data_dir"] == str(a / "data") and saved["vis_dir"] == str(a / "vis")
    assert len(sample_names(a / "vis")) == 4 and not os.path.exists(b / "vis")


def test_other_data_under_a_run_is_refused_and_a_new_place_of_the_same_data_is_taken(mnist_dir, tmp_path, capsys):
    assert main(tiny_args(mnist_dir, tmp_path, "run", "--seed", "4", "--max-iterations", "4")) == 0
    moved = tmp_path / "moved-data"
    shutil.copytree(mnist_dir, moved)
    labels = os.path.join(mnist_dir, FILES[1])
    with open(labels, "rb") as f:
        header, values = f.read(8), np.frombuffer(f.read()[0:], np.uint8)
    with open(labels, "wb") as f:  # the same images with shuffled labels
        f.write(header + np.random.RandomState(0).permutation(values).tobytes())
    capsys.readouterr()
    assert main(["--resume", str(tmp_path / "run"), "--max-iterations", "6"]) == 1
    err = capsys.readouterr().err
    assert "is not the data" in err and "train-labels-idx1-ubyte differs" in err
    assert main(["--resume", str(tmp_path / "run"), "--max-iterations", "6", "--data-dir", str(moved) + "/"]) == 0
    assert iterations(tmp_path / "run") == list(range(6))
    assert json.loads((tmp_path / "run" / "settings.json").read_text())["data_dir"] == str(moved)


def test_resuming_an_older_checkpoint_needs_fork_and_then_keeps_one_history(mnist_dir, tmp_path, capsys):
    flags = tiny_args(mnist_dir, tmp_path, "run", "--seed", "6", "--max-iterations", "8", "--checkpoint-every", "2",
                      "--keep-checkpoints", "5")
    assert main(flags) == 0
    straight = run_dir_metrics(tmp_path / "run")
    older = str(tmp_path / "run" / "checkpoints" / "ckpt-4")
    capsys.readouterr()
    assert main(["--resume", older]) == 1
    assert "is older than the run's newest checkpoint" in capsys.readouterr().err and os.path.exists(older + ".index")
    assert main(["--resume", older, "--fork", "--max-iterations", "6"]) == 0
    names = sorted(os.path.basename(p) for p in checkpoints.complete_checkpoints(str(tmp_path / "run")))
    assert names == ["ckpt-2", "ckpt-4", "ckpt-6"]
    assert sorted(os.listdir(tmp_path / "run" / "abandoned"))[0].startswith("ckpt-6")  # the old branch's 6 and 8
    assert run_dir_metrics(tmp_path / "run") == straight[:6]
    assert TrainedGenerator(str(tmp_path / "run")).run.iteration == 6


def test_keep_checkpoints_holds_after_an_interruption_and_partial_writes_are_removed(mnist_dir, tmp_path):
    assert main(tiny_args(mnist_dir, tmp_path, "run", "--seed", "7", "--max-iterations", "8", "--checkpoint-every",
                          "2", "--keep-checkpoints", "5")) == 0
    folder = tmp_path / "run" / "checkpoints"
    (folder / "ckpt-9.data-00000-of-00001.tempstate123").write_bytes(b"x" * 100)
    (folder / "ckpt-9.index.tempstate456").mkdir()
    assert main(["--resume", str(tmp_path / "run"), "--max-iterations", "10", "--keep-checkpoints", "2"]) == 0
    assert sorted(os.path.basename(p) for p in checkpoints.complete_checkpoints(str(tmp_path / "run"))) == ["ckpt-10",
                                                                                                   "ckpt-8"]
    assert not [name for name in os.listdir(folder) if "tempstate" in name]


def test_eval_jsonl_keeps_one_line_per_epoch_when_resumed_at_an_epoch_end(mnist_dir, tmp_path, quick_judges):
    # 15 batches an epoch; checkpoints at each epoch's end, then that epoch is scored.
    flags = tiny_args(mnist_dir, tmp_path, "run", "--seed", "2", "--max-iterations", "30", "--checkpoint-every", "15",
                      "--eval-every-epoch", "--judge-dir", quick_judges)
    assert main(flags) == 0

    def scored():
        return [json.loads(line)["iteration"] for line in (tmp_path / "run" / "eval.jsonl").read_text().splitlines()]
    assert scored() == [14, 29]
    assert main(["--resume", str(tmp_path / "run" / "checkpoints" / "ckpt-15"), "--fork"]) == 0
    assert scored() == [14, 29]


def test_a_failed_scoring_keeps_the_training(mnist_dir, tmp_path, monkeypatch, capsys):
    from dcgan_mnist import evaluation
    from dcgan_mnist.cli import CommandError

    def damaged(*args, **kwargs):
        raise CommandError("judge cache X is damaged")
    monkeypatch.setattr(evaluation, "judge_for", damaged)
    flags = tiny_args(mnist_dir, tmp_path, "run", "--seed", "2", "--max-iterations", "30", "--eval-every-epoch")
    assert main(flags) == 1
    err = capsys.readouterr().err
    assert "scoring after epoch 1 failed: judge cache X is damaged" in err and "continue with" in err
    assert checkpoints.iteration_of(checkpoints.complete_checkpoints(str(tmp_path / "run"))[-1]) == 15


def test_readers_of_a_training_run_read_a_whole_checkpoint(mnist_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    trainer = start_training(*tiny_args(mnist_dir, tmp_path, "run", "--seed", "1", *FOREVER,
                                        "--log", "compact", "--checkpoint-every", "3", "--keep-checkpoints", "1"))
    try:
        wait_for(lambda: checkpoints.complete_checkpoints(run_dir))
        seen = set()
        for _ in range(8):
            generator = TrainedGenerator(run_dir)
            images = generator.sample(np.zeros((4, 8)), np.eye(10)[:4])
            generator.close()
            assert images.shape == (4, 28, 28, 1)
            seen.add(generator.run.iteration)
        assert trainer.poll() is None and len(seen) > 1  # it read while checkpoints came and went
    finally:
        trainer.send_signal(signal.SIGTERM)
        trainer.wait(60)


def test_printed_commands_run_as_printed_from_another_folder_with_a_space(mnist_dir, tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "my runs" / "it's $HOME"
    flags = [*TINY, "--data-dir", mnist_dir, "--run-dir", str(run_dir), "--vis-dir", str(tmp_path / "vis"),
             "--seed", "1", "--max-iterations", "2"]
    monkeypatch.setattr(sys, "argv", [TRAIN_PY, *flags])  # in this process, as `python train.py` would start
    assert main(flags) == 0
    capsys.readouterr()
    assert main(flags) == 1  # the directory is used: the refusal prints the command that continues it
    command = re.search(r"continue it with: (.*); or start", capsys.readouterr().err).group(1)
    assert command.startswith(shlex.join([sys.executable, TRAIN_PY, "--resume"]) + " ")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env["PATH"] = "/usr/bin:/bin"  # outside the virtualenv: the command names its own interpreter
    resumed = subprocess.run(f"{command} --max-iterations 4", shell=True, cwd=elsewhere, env=env,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert iterations(run_dir) == [0, 1, 2, 3]
    done = re.search(r"draw digits: (.*)", resumed.stderr).group(1)
    drawn = subprocess.run(done, shell=True, cwd=elsewhere, env=env, capture_output=True, text=True)
    assert drawn.returncode == 0, drawn.stderr
    assert (elsewhere / "digits.png").exists()


@pytest.mark.parametrize("flag, value", [("--seed", "-1"), ("--seed", "99999999999")])
def test_a_seed_out_of_range_is_a_usage_error(mnist_dir, tmp_path, capsys, flag, value):
    with pytest.raises(SystemExit) as stopped:
        main(tiny_args(mnist_dir, tmp_path, "run", flag, value))
    assert stopped.value.code == 2 and "expected an integer from 0 to 4294967295" in capsys.readouterr().err


def test_an_empty_checkpoint_index_is_named(mnist_dir, tmp_path, capsys):
    assert main(tiny_args(mnist_dir, tmp_path, "run", "--seed", "1", "--max-iterations", "2")) == 0
    index = tmp_path / "run" / "checkpoints" / "checkpoint"
    index.write_text("")
    capsys.readouterr()
    assert main(["--resume", str(tmp_path / "run"), "--max-iterations", "4"]) == 1
    err = capsys.readouterr().err
    assert f"{index} cannot be read" in err and "remove it" in err and "Traceback" not in err
    index.unlink()  # as the message says: then the newest complete checkpoint is used
    assert main(["--resume", str(tmp_path / "run"), "--max-iterations", "4"]) == 0
    assert iterations(tmp_path / "run") == [0, 1, 2, 3]


def test_sigterm_during_start_up_stops_at_once_and_leaves_nothing_half_made(tmp_path):
    slow = tmp_path / "slow-data"
    write_mnist(str(slow), n_train=20000, n_test=100)
    process = start_training(*TINY, "--data-dir", str(slow), "--run-dir", str(tmp_path / "run"), "--vis-dir",
                             str(tmp_path / "vis"), "--seed", "1", "--valid-size", "50")
    wait_for(lambda: os.path.exists(tmp_path / "run" / run.LOCK_FILE), seconds=60)
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 143
    err = process.stderr.read()
    assert "Traceback" not in err
    if "while starting" in err:  # stopped before training: nothing of the run is left
        assert not os.path.exists(tmp_path / "run") and not os.path.exists(tmp_path / "vis")
    else:  # the signal came once the records were open: one iteration, checkpointed, to continue from
        assert "after iteration 0; checkpoint written" in err
        assert iterations(tmp_path / "run") == [0] and checkpoints.complete_checkpoints(str(tmp_path / "run"))
