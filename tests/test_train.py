"""The training script end to end on tiny synthetic data: console lines, vis/ files, seeds, checkpoints,
exact resume, signals, failures and TensorBoard events."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from dcgan_mnist import checkpoint
from dcgan_mnist.model import tf
from dcgan_mnist.train import batches_per_epoch, main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--batch-size", "16", "--dim-z", "8", "--dim-W1", "16", "--dim-W2", "8", "--dim-W3", "4",
        "--visualize-dim", "4", "--valid-size", "50", "--step", "2", "--no-download"]
NUMBER = r"-?\d+(\.\d+)?(e[-+]\d+)?"


def tiny(mnist_dir, tmp_path, name="run", *extra):
    return TINY + ["--data-dir", mnist_dir, "--run-dir", str(tmp_path / name),
                   "--vis-dir", str(tmp_path / ("vis-" + name))] + list(extra)


def metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        lines = [json.loads(line) for line in f]
    for line in lines:
        line.pop("seconds", None)
    return lines


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
    assert sorted(os.listdir(tmp_path / "vis")) == ["sample_0000.jpg", "sample_0001.jpg", "sample_0002.jpg"]
    with Image.open(tmp_path / "vis" / "sample_0002.jpg") as im:
        assert im.format == "JPEG" and im.mode == "RGB" and im.size == (56, 56)  # 2x2 grid of 28x28
    run_dirs = os.listdir(tmp_path / "runs")
    assert len(run_dirs) == 1  # default run dir: runs/<timestamp>


def test_same_seed_prints_identical_losses(mnist_dir, tmp_path, capsys):
    outputs = []
    for name in ("a", "b"):
        main(tiny(mnist_dir, tmp_path, name, "--seed", "7", "--max-iterations", "6"))
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert outputs[0].count("iteration:") == 6
    main(tiny(mnist_dir, tmp_path, "c", "--seed", "8", "--max-iterations", "6"))
    assert capsys.readouterr().out != outputs[0]


def test_resume_continues_exactly(mnist_dir, tmp_path, capsys):
    # 20 iterations cross an epoch boundary (15 batches per epoch): the resumed run must reshuffle identically.
    main(tiny(mnist_dir, tmp_path, "whole", "--seed", "3", "--max-iterations", "20"))
    whole = capsys.readouterr().out
    main(tiny(mnist_dir, tmp_path, "split", "--seed", "3", "--max-iterations", "10"))
    first = capsys.readouterr().out
    main(["--resume", str(tmp_path / "split"), "--max-iterations", "20"])
    second = capsys.readouterr().out
    assert first + second == whole
    assert metrics(tmp_path / "split") == metrics(tmp_path / "whole")
    vis_whole, vis_split = tmp_path / "vis-whole", tmp_path / "vis-split"
    assert sorted(os.listdir(vis_whole)) == sorted(os.listdir(vis_split)) and len(os.listdir(vis_whole)) == 10
    for name in os.listdir(vis_whole):
        assert (vis_whole / name).read_bytes() == (vis_split / name).read_bytes(), name


def test_checkpoint_round_trip_holds_the_loop_state(mnist_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    main(tiny(mnist_dir, tmp_path, "run", "--seed", "5", "--max-iterations", "4"))
    np.random.seed(99)
    expected_rng = np.random.get_state()
    with tf.Graph().as_default():
        state = checkpoint.TrainState(250, 4, 8, 10)
        saver = tf.train.Saver(var_list=list(state.vars.values()))
        with tf.Session() as sess:
            saver.restore(sess, checkpoint.latest(str(run_dir)))
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
    assert os.path.basename(checkpoint.latest(str(run_dir))) == "ckpt-4"


def test_resume_refuses_contradicting_settings(mnist_dir, tmp_path, capsys):
    main(tiny(mnist_dir, tmp_path, "run", "--max-iterations", "2"))
    with pytest.raises(SystemExit, match="--batch-size 32 contradicts"):
        main(["--resume", str(tmp_path / "run"), "--batch-size", "32"])
    with pytest.raises(SystemExit, match="no settings.json"):
        main(["--resume", str(tmp_path / "nowhere")])


def test_sigint_checkpoints_and_the_run_resumes(mnist_dir, tmp_path):
    run_dir = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=ROOT)
    args = [sys.executable, os.path.join(ROOT, "train.py")] + tiny(mnist_dir, tmp_path, "run", "--seed", "1")
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("iteration: 3"):
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "python train.py --resume " + str(run_dir) in err
    stopped_at = int(os.path.basename(checkpoint.latest(str(run_dir))).split("-")[1])
    assert stopped_at >= 4
    assert len(metrics(run_dir)) == stopped_at
    result = run_script(["--resume", str(run_dir), "--max-iterations", str(stopped_at + 2)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == "iteration: %d" % stopped_at
    assert [m["iteration"] for m in metrics(run_dir)] == list(range(stopped_at + 2))


def test_failed_checkpoint_write_keeps_the_previous_one(mnist_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    main(tiny(mnist_dir, tmp_path, "run", "--seed", "2", "--max-iterations", "4", "--checkpoint-every", "4"))
    good = checkpoint.latest(str(run_dir))
    # Occupy the file the next checkpoint's data must be renamed to, so TensorFlow's real write fails.
    os.makedirs(os.path.join(checkpoint.checkpoint_dir(str(run_dir)), "ckpt-8.data-00000-of-00001"))
    with pytest.raises(SystemExit) as failed:
        main(["--resume", str(run_dir), "--max-iterations", "8", "--checkpoint-every", "4"])
    assert failed.value.code == 4
    assert "previous checkpoint" in capsys.readouterr().err
    assert checkpoint.latest(str(run_dir)) == good
    os.rmdir(os.path.join(checkpoint.checkpoint_dir(str(run_dir)), "ckpt-8.data-00000-of-00001"))
    main(["--resume", str(run_dir), "--max-iterations", "8"])
    main(tiny(mnist_dir, tmp_path, "reference", "--seed", "2", "--max-iterations", "8"))
    assert metrics(run_dir) == metrics(tmp_path / "reference")


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(mnist_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit) as stopped:
        main(tiny(mnist_dir, tmp_path, "run", "--seed", "0", "--learning-rate", "1e30", "--checkpoint-every", "1"))
    assert stopped.value.code == 3
    err = capsys.readouterr().err
    assert "not finite at iteration" in err
    bad = int(re.search(r"not finite at iteration (\d+)", err).group(1))
    assert os.path.basename(checkpoint.latest(str(run_dir))) == "ckpt-%d" % bad
    with tf.Graph().as_default():
        reader = tf.train.NewCheckpointReader(checkpoint.latest(str(run_dir)))
        assert all(np.all(np.isfinite(reader.get_tensor(name))) for name in ("gen_W1", "discrim_W4"))


@pytest.mark.parametrize("flag", ["--vis-dir", "--run-dir"])
def test_unwritable_output_fails_before_training(mnist_dir, tmp_path, flag):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    args = TINY + ["--data-dir", str(tmp_path / "no-data-here"), "--run-dir", str(tmp_path / "run"),
                   "--vis-dir", str(tmp_path / "vis"), flag, str(blocker / "sub")]
    with pytest.raises(SystemExit, match="is not writable") as failed:
        main(args)
    assert str(blocker / "sub") in str(failed.value)


def test_missing_data_is_reported_by_name(tmp_path):
    with pytest.raises(SystemExit, match="train-images-idx3-ubyte"):
        main(TINY + ["--data-dir", str(tmp_path / "empty"), "--run-dir", str(tmp_path / "run"),
                     "--vis-dir", str(tmp_path / "vis")])


def test_too_few_images_for_one_batch_is_explained(mnist_dir, tmp_path):
    with pytest.raises(SystemExit, match="no full batch of --batch-size 256"):
        main(tiny(mnist_dir, tmp_path, "run", "--batch-size", "256"))


def test_tensorboard_events_hold_scalars_image_and_graph(mnist_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    main(tiny(mnist_dir, tmp_path, "run", "--max-iterations", "3"))
    (events_file,) = [f for f in os.listdir(run_dir) if f.startswith("events.out.tfevents")]
    tags, images, graph = {}, [], False
    for event in tf.train.summary_iterator(str(run_dir / events_file)):
        graph = graph or bool(event.graph_def)
        for value in event.summary.value:
            tags.setdefault(value.tag, []).append(event.step)
            if value.HasField("image"):
                images.append((event.step, value.image.width, value.image.height))
    assert tags["loss/gen"] == [0, 1, 2] and tags["loss/discrim"] == [0, 1, 2]
    assert tags["p/real"] == [0, 1, 2] and tags["p/gen"] == [0, 1, 2]
    assert "iterations_per_second" in tags
    assert images == [(0, 56, 56), (2, 56, 56)]
    assert graph


def test_compact_log_prints_one_line_per_interval_and_skips_evaluation(mnist_dir, tmp_path, capsys):
    main(tiny(mnist_dir, tmp_path, "run", "--log", "compact", "--log-every", "3", "--max-iterations", "7"))
    lines = capsys.readouterr().out.splitlines()
    assert [int(re.search(r"iter (\d+)", line).group(1)) for line in lines] == [0, 3, 6]
    n = NUMBER
    pattern = (rf"epoch 0 iter \d+ \([DG]\) \| gen loss {n} \| discrim loss {n} \| P\(real\) {n} \| P\(gen\) {n} "
               rf"\| {n} it/s \| ETA (\d+h\d\dm\d\ds|\?)")
    assert all(re.fullmatch(pattern, line) for line in lines), lines
    rows = metrics(tmp_path / "run")
    assert rows[1]["updated"] == "G" and rows[1]["gen_loss"] is not None and rows[1]["p_real"] is None
    assert rows[3]["p_real"] is not None
