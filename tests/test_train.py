"""The training script end to end on tiny synthetic data: console lines, vis/ files, seeds, checkpoints,
exact resume (seeded or not, moved or copied), signals, failures, full disks and TensorBoard events."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, TINY, run_dir_metrics, tiny_args
from PIL import Image

from dcgan_mnist import checkpoints, settings
from dcgan_mnist.batches import batches_per_epoch
from dcgan_mnist.model import tf
from dcgan_mnist.sampler import TrainedGenerator
from dcgan_mnist.tools import plot
from dcgan_mnist.train import main
from dcgan_mnist.vis import sample_names

NUMBER = r"-?\d+(\.\d+)?(e[-+]\d+)?"


def latest(run_dir):
    return os.path.basename(checkpoints.complete_checkpoints(str(run_dir))[-1])


def checkpoint_names(run_dir):
    return [os.path.basename(p) for p in checkpoints.complete_checkpoints(str(run_dir))]


def vis_bytes(vis_dir):
    """The grids in ``vis_dir`` (not its marker of the runs that wrote them, which names each run's folder)."""
    return {name: (vis_dir / name).read_bytes() for name in sample_names(vis_dir)}


def run_script(args, cwd, **kwargs):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, os.path.join(ROOT, "train.py")] + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, **kwargs)


def test_partial_last_batch_is_dropped_like_the_original():
    assert batches_per_epoch(50000, 128) == 390
    assert batches_per_epoch(250, 16) == 15
    assert batches_per_epoch(256, 128) == 1  # zip(range(0,256,128), range(128,256,128)) has one pair
    assert batches_per_epoch(100, 128) == 0


def test_python_train_py_prints_the_original_lines_and_writes_vis(mnist_dir, tmp_path):
    result = run_script(TINY + ["--data-dir", mnist_dir, "--max-iterations", "5"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 5 * 6
    for i in range(5):
        block = lines[6 * i:6 * i + 6]
        assert block[0] == "=========== updating %s ==========" % ("D" if i % 2 == 0 else "G")
        assert block[1] == "iteration: %d" % i
        assert re.fullmatch("gen loss: " + NUMBER, block[2])
        assert re.fullmatch("discrim loss: " + NUMBER, block[3])
        assert re.fullmatch("Average P\\(real\\)= " + NUMBER, block[4])
        assert re.fullmatch("Average P\\(gen\\)= " + NUMBER, block[5])
    # step 2: samples at iterations 0, 2, 4 -> numbers 0, 1, 2, in ./vis as the original
    assert sample_names(tmp_path / "vis") == ["sample_0000.jpg", "sample_0001.jpg", "sample_0002.jpg"]
    with Image.open(tmp_path / "vis" / "sample_0002.jpg") as im:
        assert im.format == "JPEG" and im.mode == "RGB" and im.size == (56, 56)  # 2x2 grid of 28x28
    (run_dir,) = os.listdir(tmp_path / "runs")  # default run dir: runs/<timestamp>
    # The end says where the run went and how to use it.
    assert f"done: 5 iterations in runs/{run_dir} (checkpoint runs/{run_dir}/checkpoints/ckpt-5)" in result.stderr
    assert f"{sys.executable} -m dcgan_mnist generate --checkpoint {tmp_path / 'runs' / run_dir} --out digits.png" \
        in result.stderr


def test_same_seed_prints_identical_losses(mnist_dir, tmp_path, capsys):
    outputs = []
    for name in ("a", "b"):
        assert main(tiny_args(mnist_dir, tmp_path, name, "--seed", "7", "--max-iterations", "6")) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert outputs[0].count("iteration:") == 6
    main(tiny_args(mnist_dir, tmp_path, "c", "--seed", "8", "--max-iterations", "6"))
    assert capsys.readouterr().out != outputs[0]


def test_resume_continues_exactly(mnist_dir, tmp_path, capsys):
    # 20 iterations cross an epoch boundary (15 batches per epoch): the resumed run must reshuffle identically.
    main(tiny_args(mnist_dir, tmp_path, "whole", "--seed", "3", "--max-iterations", "20"))
    whole = capsys.readouterr().out
    main(tiny_args(mnist_dir, tmp_path, "split", "--seed", "3", "--max-iterations", "10"))
    first = capsys.readouterr().out
    assert main(["--resume", str(tmp_path / "split"), "--max-iterations", "20"]) == 0
    second = capsys.readouterr().out
    assert first + second == whole
    assert run_dir_metrics(tmp_path / "split") == run_dir_metrics(tmp_path / "whole")
    assert len(sample_names(tmp_path / "vis-whole")) == 10
    assert vis_bytes(tmp_path / "vis-split") == vis_bytes(tmp_path / "vis-whole")


def test_unseeded_run_resumes_exactly_and_records_its_seed(mnist_dir, tmp_path, capsys):
    # The default run has no --seed: it draws one, prints it and keeps it, so a resume gets the same split.
    main(tiny_args(mnist_dir, tmp_path, "split", "--max-iterations", "10"))
    first = capsys.readouterr()
    seed = settings_json(tmp_path / "split")["seed"]
    assert isinstance(seed, int) and f"seed {seed} (drawn for this run; --seed {seed} repeats it)" in first.err
    shutil.copytree(tmp_path / "split", tmp_path / "copy")
    main(["--resume", str(tmp_path / "split"), "--max-iterations", "20"])
    second = capsys.readouterr().out
    main(["--resume", str(tmp_path / "copy"), "--max-iterations", "20"])
    assert capsys.readouterr().out == second  # two resumes of one checkpoint are one run
    main(tiny_args(mnist_dir, tmp_path, "whole", "--seed", str(seed), "--max-iterations", "20"))
    assert first.out + second == capsys.readouterr().out
    assert run_dir_metrics(tmp_path / "split") == run_dir_metrics(tmp_path / "whole")
    assert vis_bytes(tmp_path / "vis-split") == vis_bytes(tmp_path / "vis-whole")


def test_a_run_of_an_older_version_without_a_seed_is_not_resumed_wrongly(mnist_dir, tmp_path, capsys):
    main(tiny_args(mnist_dir, tmp_path, "run", "--max-iterations", "2"))
    saved = settings_json(tmp_path / "run")
    (tmp_path / "run" / "settings.json").write_text(json.dumps(dict(saved, seed=None)))
    assert main(["--resume", str(tmp_path / "run")]) == 1
    assert "started without a seed" in capsys.readouterr().err


def settings_json(run_dir):
    return json.loads((run_dir / "settings.json").read_text())


def test_moved_and_copied_runs_use_only_their_own_checkpoints(mnist_dir, tmp_path, capsys, quick_judges):
    from dcgan_mnist.tools import evaluate

    main(tiny_args(mnist_dir, tmp_path, "reference", "--seed", "4", "--max-iterations", "16"))
    main(tiny_args(mnist_dir, tmp_path, "a", "--seed", "4", "--max-iterations", "8"))
    capsys.readouterr()
    assert (tmp_path / "a" / "checkpoints" / "checkpoint").read_text().count(str(tmp_path)) == 0  # relative names
    shutil.copytree(tmp_path / "a", tmp_path / "copy")
    os.rename(tmp_path / "a", tmp_path / "moved")
    assert main(["--resume", str(tmp_path / "moved"), "--max-iterations", "16"]) == 0
    generator = TrainedGenerator(str(tmp_path / "moved"))
    assert os.path.basename(generator.checkpoint) == "ckpt-16" and generator.checkpoint.startswith(
        str(tmp_path / "moved"))
    generator.close()
    capsys.readouterr()
    assert evaluate.main(["--checkpoint", str(tmp_path / "moved"), "--samples", "20", "--json",
                          "--judge-dir", quick_judges]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["run_dir"], report["checkpoint"], report["iterations"]) == (str(tmp_path / "moved"), "ckpt-16", 16)
    # The copy's source is gone; an index written with absolute paths (older versions) still finds its own files.
    shutil.rmtree(tmp_path / "moved")
    index = tmp_path / "copy" / "checkpoints" / "checkpoint"
    index.write_text(f'model_checkpoint_path: "{tmp_path}/a/checkpoints/ckpt-8"\n'
                     f'all_model_checkpoint_paths: "{tmp_path}/a/checkpoints/ckpt-8"\n')
    os.makedirs(tmp_path / "vis-copy")
    assert main(["--resume", str(tmp_path / "copy"), "--max-iterations", "16"]) == 0
    assert run_dir_metrics(tmp_path / "copy") == run_dir_metrics(tmp_path / "reference")
    assert checkpoint_names(tmp_path / "copy") == ["ckpt-8", "ckpt-16"]


def test_checkpoint_round_trip_holds_the_loop_state(mnist_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    main(tiny_args(mnist_dir, tmp_path, "run", "--seed", "5", "--max-iterations", "4"))
    np.random.seed(99)
    expected_rng = np.random.get_state()
    with tf.Graph().as_default():
        state = checkpoints.TrainState(250, 4, 8, 10)
        saver = tf.train.Saver(var_list=list(state.vars.values()))
        with tf.Session() as sess:
            saver.restore(sess, checkpoints.complete_checkpoints(str(run_dir))[-1])
            s = state.fetch(sess)
            assert int(s["iteration"]) == 4 and int(s["epoch"]) == 0 and int(s["batch_in_epoch"]) == 4
            assert sorted(s["order"]) == list(range(250)) and list(s["order"]) != list(range(250))
            assert s["sample_z"].shape == (4, 8) and s["sample_y"].sum() == 4
            restored_rng = np.random.get_state()
            # store -> fetch is the identity on numpy's RNG state
            np.random.set_state(expected_rng)
            state.store(sess, 1, 2, 3, np.arange(250), s["sample_z"], s["sample_y"])
            np.random.seed(0)
            state.fetch(sess)
            assert np.random.get_state()[1].tolist() == expected_rng[1].tolist()
    assert restored_rng[1].tolist() != expected_rng[1].tolist()
    assert latest(run_dir) == "ckpt-4"


def test_resume_refuses_contradicting_settings(mnist_dir, tmp_path, capsys):
    main(tiny_args(mnist_dir, tmp_path, "run", "--max-iterations", "2"))
    capsys.readouterr()
    assert main(["--resume", str(tmp_path / "run"), "--batch-size", "32"]) == 1
    assert "--batch-size 32 contradicts the run's setting 16" in capsys.readouterr().err
    assert main(["--resume", str(tmp_path / "nowhere")]) == 1
    assert "no such run directory" in capsys.readouterr().err


def test_resume_continues_with_the_settings_the_run_was_started_with(mnist_dir, tmp_path, capsys):
    main(tiny_args(mnist_dir, tmp_path, "run", "--log", "compact", "--log-every", "3", "--max-iterations", "4",
                   "--checkpoint-every", "2", "--keep-checkpoints", "2"))
    capsys.readouterr()
    assert checkpoint_names(tmp_path / "run") == ["ckpt-2", "ckpt-4"]
    assert main(["--resume", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "is finished: it has done its 4 iterations (--max-iterations 4)" in err
    assert "--resume " + str(tmp_path / "run") + " --max-iterations N" in err
    assert main(["--resume", str(tmp_path / "run"), "--max-iterations", "8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [int(re.search(r"iter (\d+)", line).group(1)) for line in lines] == [6, 7]  # compact: every 3rd, the last
    # Pruning counts the checkpoints already there: two kept, not two more.
    assert checkpoint_names(tmp_path / "run") == ["ckpt-6", "ckpt-8"]
    assert settings_json(tmp_path / "run")["max_iterations"] == 8  # a later plain --resume goes on to 8


def test_checkpoints_follow_checkpoint_every_not_epoch_ends(mnist_dir, tmp_path, capsys):
    # 15 batches an epoch: no checkpoint at 15, one every 8 and one at the end.
    main(tiny_args(mnist_dir, tmp_path, "run", "--max-iterations", "20", "--checkpoint-every", "8",
                   "--keep-checkpoints", "5"))
    assert checkpoint_names(tmp_path / "run") == ["ckpt-8", "ckpt-16", "ckpt-20"]


def test_sigint_checkpoints_and_the_printed_command_continues_the_run(mnist_dir, tmp_path):
    run_dir = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=ROOT)
    args = [sys.executable, os.path.join(ROOT, "train.py")] + tiny_args(
        mnist_dir, tmp_path, "run", "--seed", "1", "--log", "compact", "--log-every", "1", "--max-iterations", "40")
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        line = proc.stdout.readline()
        if "iter 3 " in line:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGINT, err
    command = re.search(r"Continue with: (.*)", err).group(1)
    assert command == f"{sys.executable} {os.path.join(ROOT, 'train.py')} --resume {run_dir}"
    stopped_at = checkpoints.iteration_of(latest(run_dir))
    assert stopped_at >= 4 and len(run_dir_metrics(run_dir)) == stopped_at
    result = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("epoch 1 iter %d (" % stopped_at)  # still compact
    assert [m["iteration"] for m in run_dir_metrics(run_dir)] == list(range(40))  # still stops at 40


def test_failed_checkpoint_write_keeps_the_previous_one(mnist_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    main(tiny_args(mnist_dir, tmp_path, "run", "--seed", "2", "--max-iterations", "4", "--checkpoint-every", "4"))
    capsys.readouterr()
    # Occupy the file the next checkpoint's data must be renamed to, so TensorFlow's real write fails.
    blocker = os.path.join(checkpoints.checkpoint_dir(str(run_dir)), "ckpt-8.data-00000-of-00001")
    os.makedirs(blocker)
    assert main(["--resume", str(run_dir), "--max-iterations", "8"]) == 4
    err = capsys.readouterr().err
    assert "error: could not write the checkpoint of iteration 8: " in err and "Traceback" not in err
    assert f"the newest good checkpoint is {run_dir}/checkpoints/ckpt-4" in err
    assert f"continue with: {sys.executable} -m dcgan_mnist train --resume {run_dir}" in err
    assert latest(run_dir) == "ckpt-4"
    assert not [f for f in os.listdir(checkpoints.checkpoint_dir(str(run_dir))) if "temp" in f]
    os.rmdir(blocker)
    main(["--resume", str(run_dir), "--max-iterations", "8"])
    main(tiny_args(mnist_dir, tmp_path, "reference", "--seed", "2", "--max-iterations", "8"))
    assert run_dir_metrics(run_dir) == run_dir_metrics(tmp_path / "reference")


@pytest.fixture
def small_disk(tmp_path):
    """A real 4 MB filesystem (tmpfs; needs root), and a way to fill what is left of it."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root; test_full_vis_disk_simulated covers the logic")

    def fill():
        with open(mount_point / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass

    yield mount_point, fill
    subprocess.run(["umount", "-l", str(mount_point)], check=True)


def test_full_run_disk_stops_with_one_clear_error_and_loses_nothing(mnist_dir, tmp_path, capsys, small_disk):
    disk, fill = small_disk
    run_dir = disk / "run"
    args = tiny_args(mnist_dir, tmp_path, "x", "--seed", "6", "--max-iterations", "4", "--checkpoint-every", "4")
    args[args.index("--run-dir") + 1] = str(run_dir)
    assert main(args) == 0
    fill()
    capsys.readouterr()
    assert main(["--resume", str(run_dir), "--max-iterations", "8"]) == 4
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err and len(err.splitlines()) <= 5
    assert f"the newest good checkpoint is {run_dir}/checkpoints/ckpt-4" in err
    assert not [f for f in os.listdir(checkpoints.checkpoint_dir(str(run_dir))) if "temp" in f]
    os.remove(disk / "filler")
    assert main(["--resume", str(run_dir), "--max-iterations", "8"]) == 0
    main(tiny_args(mnist_dir, tmp_path, "reference", "--seed", "6", "--max-iterations", "8"))
    assert run_dir_metrics(run_dir) == run_dir_metrics(tmp_path / "reference")


def test_full_vis_disk_checkpoints_first_then_stops(mnist_dir, tmp_path, capsys, small_disk):
    disk, fill = small_disk
    args = tiny_args(mnist_dir, tmp_path, "run", "--seed", "6", "--max-iterations", "4", "--checkpoint-every", "100")
    args[args.index("--vis-dir") + 1] = str(disk / "vis")
    main(args)
    fill()
    capsys.readouterr()
    assert main(["--resume", str(tmp_path / "run"), "--max-iterations", "8"]) == 4
    err = capsys.readouterr().err
    assert f"error: could not write {disk}/vis/sample_0002.jpg: No space left on device" in err
    assert "Traceback" not in err
    # Iteration 4 was done before its grid failed: the checkpoint keeps it.
    assert latest(tmp_path / "run") == "ckpt-5"
    assert f"the newest good checkpoint is {tmp_path}/run/checkpoints/ckpt-5" in err


def test_full_vis_disk_simulated(mnist_dir, tmp_path, capsys, monkeypatch):
    import errno

    from dcgan_mnist import train

    def no_space(images, nh_nw, save_path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), save_path)

    monkeypatch.setattr(train, "save_visualization", no_space)
    assert main(tiny_args(mnist_dir, tmp_path, "run", "--seed", "6", "--max-iterations", "8")) == 4
    err = capsys.readouterr().err
    assert f"error: could not write {tmp_path}/vis-run/sample_0000.jpg: No space left on device" in err
    assert latest(tmp_path / "run") == "ckpt-1"


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(mnist_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(tiny_args(mnist_dir, tmp_path, "run", "--seed", "0", "--learning-rate", "1e30",
                          "--checkpoint-every", "1")) == 3
    err = capsys.readouterr().err
    bad = int(re.search(r"not finite at iteration (\d+)", err).group(1))
    assert latest(run_dir) == "ckpt-%d" % bad
    with tf.Graph().as_default():
        reader = tf.train.NewCheckpointReader(checkpoints.complete_checkpoints(str(run_dir))[-1])
        assert all(np.all(np.isfinite(reader.get_tensor(name))) for name in ("gen_W1", "discrim_W4"))
    # metrics.jsonl stays strict JSON: the bad numbers are null and the line says so.
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["iteration"] == bad and last["finite"] is False
    assert None in (last["gen_loss"], last["discrim_loss"], last["p_real"], last["p_gen"])


def test_corrupt_run_directories_give_clear_errors(mnist_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    main(tiny_args(mnist_dir, tmp_path, "run", "--seed", "1", "--max-iterations", "4", "--checkpoint-every", "2"))
    capsys.readouterr()
    checkpoints = run_dir / "checkpoints"
    # The index names a checkpoint whose data file is gone: the older one is offered.
    os.remove(checkpoints / "ckpt-4.data-00000-of-00001")
    assert main(["--resume", str(run_dir)]) == 1
    err = capsys.readouterr().err
    assert "names ckpt-4, whose files are missing" in err and f"--resume {checkpoints}/ckpt-2" in err
    # ... and continuing from it works, from the checkpoint's own path.
    assert main(["--resume", str(checkpoints / "ckpt-2"), "--max-iterations", "3"]) == 0
    capsys.readouterr()
    # A truncated data file is reported with the older checkpoint to use.
    data = checkpoints / "ckpt-3.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:100])
    assert main(["--resume", str(run_dir), "--max-iterations", "4"]) == 1
    err = capsys.readouterr().err
    assert f"checkpoint {checkpoints}/ckpt-3 cannot be read" in err and f"{checkpoints}/ckpt-2" in err
    # A truncated or missing settings.json.
    settings_file = run_dir / "settings.json"
    settings_file.write_text(settings_file.read_text()[:40])
    assert main(["--resume", str(run_dir)]) == 1
    assert f"{settings_file} cannot be read" in capsys.readouterr().err
    settings_file.unlink()
    assert main(["--resume", str(run_dir)]) == 1
    assert "no settings.json there" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--vis-dir", "--run-dir"])
def test_unwritable_output_fails_before_training(mnist_dir, tmp_path, capsys, flag):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    args = TINY + ["--data-dir", str(tmp_path / "no-data-here"), "--run-dir", str(tmp_path / "run"),
                   "--vis-dir", str(tmp_path / "vis"), flag, str(blocker / "sub")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert str(blocker / "sub") in err and "is not writable" in err


def test_a_failed_start_names_the_missing_data_and_leaves_no_folders(tmp_path, capsys):
    args = TINY + ["--data-dir", str(tmp_path / "empty"), "--run-dir", str(tmp_path / "run"),
                   "--vis-dir", str(tmp_path / "vis")]
    assert main(args) == 1
    assert "train-images-idx3-ubyte" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "run") and not os.path.exists(tmp_path / "vis")


def test_a_failed_default_start_leaves_no_empty_data_or_runs_folder(tmp_path, monkeypatch, capsys):
    """The path a user takes with no flags, offline: the download fails, and neither data/ nor runs/ stays."""
    from dcgan_mnist import load

    monkeypatch.chdir(tmp_path)
    # Nothing listens on port 9: every mirror is refused at once.
    monkeypatch.setattr(load.download_mnist, "__defaults__", (("http://127.0.0.1:9/",), load.MNIST_SHA256))
    assert main(["--max-iterations", "1"]) == 1
    assert "could not download MNIST" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_too_few_images_for_one_batch_is_explained(mnist_dir, tmp_path, capsys):
    assert main(tiny_args(mnist_dir, tmp_path, "run", "--batch-size", "256")) == 1
    assert "no full batch of --batch-size 256" in capsys.readouterr().err


def test_tensorboard_reads_the_scalars_images_and_graph(mnist_dir, tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    main(tiny_args(mnist_dir, tmp_path, "run", "--max-iterations", "3"))
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    tags = events.Tags()
    for tag in ("loss/gen", "loss/discrim", "p/real", "p/gen"):
        assert [e.step for e in events.Scalars(tag)] == [0, 1, 2]
    assert "iterations_per_second" in tags["scalars"]
    assert [(e.step, e.width, e.height) for e in events.Images("samples")] == [(0, 56, 56), (2, 56, 56)]
    assert tags["graph"] and any(node.name.startswith("discrim") for node in events.Graph().node)


def test_compact_log_prints_one_line_per_interval_and_skips_evaluation(mnist_dir, tmp_path, capsys):
    main(tiny_args(mnist_dir, tmp_path, "run", "--log", "compact", "--log-every", "3", "--max-iterations", "8"))
    lines = capsys.readouterr().out.splitlines()
    # Every third iteration and the last one; the first line already has a rate and an ETA.
    assert [int(re.search(r"iter (\d+)", line).group(1)) for line in lines] == [0, 3, 6, 7]
    assert " 0.00 it/s" not in lines[0] and "ETA ?" not in lines[0]
    n = NUMBER
    pattern = (rf"epoch 1 iter \d+ \([DG]\) \| gen loss {n} \| discrim loss {n} \| P\(real\) {n} \| P\(gen\) {n} "
               rf"\| {n} it/s \| ETA (\d+h\d\dm\d\ds|\?)")
    assert all(re.fullmatch(pattern, line) for line in lines), lines
    rows = run_dir_metrics(tmp_path / "run")
    assert rows[1]["updated"] == "G" and rows[1]["gen_loss"] is not None and rows[1]["p_real"] is None
    assert rows[3]["p_real"] is not None


def test_help_shows_each_default_once():
    parser = settings.build_parser()
    formatter = parser.formatter_class(parser.prog)
    helps = {action.dest: formatter._get_help_string(action) % vars(action) for action in parser._actions}
    assert helps["learning_rate"].endswith("(default: 0.0002)") and helps["batch_size"].endswith("(default: 128)")
    assert helps["data_dir"].endswith("(default: data/)") and helps["download"].count("default") == 0
    assert all(text.count("(default") <= 1 for text in helps.values()), helps
    assert "None" not in "".join(helps.values())


def test_eval_every_epoch_also_scores_a_run_that_ends_mid_epoch(mnist_dir, tmp_path, capsys, quick_judges):
    # 15 batches an epoch: scored after epoch 1 (iteration 14) and at the end, mid-epoch 2 (iteration 19).
    assert main(tiny_args(mnist_dir, tmp_path, "run", "--seed", "2", "--max-iterations", "20", "--eval-every-epoch",
                          "--judge-dir", quick_judges)) == 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "eval.jsonl").read_text().splitlines()]
    assert [(row["iteration"], row["epoch"]) for row in rows] == [(14, 1), (19, 2)]
    assert all(0 <= row["generated"]["judge_accuracy"] <= 1 for row in rows)
    # plot reads what the run wrote.
    capsys.readouterr()
    assert plot.main([str(tmp_path / "run"), "--out", str(tmp_path / "curves.png"), "--json"]) == 0
    summary, = json.loads(capsys.readouterr().out)["runs"]
    assert (summary["scores"], summary["last_iteration"]) == (2, 19)
    assert summary["last_judge_accuracy"] == rows[-1]["generated"]["judge_accuracy"]
    assert Image.open(tmp_path / "curves.png").size == (1100, 420)
    assert all(set(row) >= {"iteration", "epoch", "gen_loss"} for row in run_dir_metrics(tmp_path / "run"))
