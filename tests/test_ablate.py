"""The ablation: chunked runs that equal single runs, scores per budget in JSON, markdown and TensorBoard, the
grid picture, the plan and its cost said first, and the Dask engine: the same scores with one worker or two or on
a scheduler's worker, a killed client continuing to the same result and a killed worker's task done again."""
import contextlib
import fcntl
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import psutil
import pytest
from conftest import DATA, ROOT, ablate_args, read_record, run_dir_metrics
from PIL import Image

from dcgan_mnist import run
from dcgan_mnist.ablation import report as ablate_report
from dcgan_mnist.model import tf
from dcgan_mnist.sampler import TrainedGenerator
from dcgan_mnist.tools import ablate
from dcgan_mnist.util import OneHot, tile_grid

RUNS = ("original/seed-0", "repaired/seed-0")
DASK = [sys.executable, "-m", "dask"]  # the `dask` command: `dask scheduler`, `dask worker`
PATIENCE = 120  # seconds a test waits for a process to reach the point it waits for


@pytest.fixture
def ablation(finished_ablation):
    """The session's finished tiny ablation: its folder, data and judge folder, ablation.json and what it said."""
    done = finished_ablation
    return done.folder, done.data_dir, done.judges, done.record, done.said


def generated(record):
    """{run: {budget: generated scores, with the average of G's weights and, when scored so, with its latest}}."""
    def latest(entry, budget):
        return entry.get("latest_weights_scores", {}).get(budget, {}).get("generated")
    return {name: {budget: (report["generated"], latest(entry, budget)) for budget, report in entry["scores"].items()}
            for name, entry in record["runs"].items()}


def assert_same_runs(out, reference, names=RUNS):
    """The runs ``names`` in ``out`` are the reference ablation's: every iteration's numbers and every score."""
    assert sorted(read_record(out)["runs"]) == sorted(names)
    assert generated(read_record(out)) == {name: generated(read_record(reference))[name] for name in names}
    for name in names:
        assert (run_dir_metrics(os.path.join(out, "runs", name))
                == run_dir_metrics(os.path.join(reference, "runs", name)))


def test_budgets_are_every_n_iterations_and_the_last():
    assert ablate.budgets(3000, 500) == [500, 1000, 1500, 2000, 2500, 3000]
    assert ablate.budgets(7, 3) == [3, 6, 7]
    assert ablate.budgets(2, 5) == [2]


def test_every_run_is_scored_at_every_budget(ablation):
    tmp, _, _, record, _ = ablation
    assert set(record["runs"]) == set(RUNS)
    for entry in record["runs"].values():
        assert sorted(entry["scores"]) == ["2", "4"]
        assert [entry["scores"][b]["iterations"] for b in ("2", "4")] == [2, 4]
        assert entry["scores"]["4"]["data"]["run_split"] is True and entry["stopped"] is None
        assert entry["step_seconds"] > 0
    assert record["variants"] == {"original": [], "repaired": ["--recipe", "repaired"]}


def test_the_plan_its_time_and_its_disk_are_said_before_the_work_and_the_eta_as_it_goes(ablation):
    said = ablation[4]
    plan = said.index("2 variants x 1 seed = 2 runs of 4 iterations, scored at 2, 4 with 20 samples")
    assert "left: 8 iterations in 4 chunks and 4 scores" in said
    timed = said.index("timed on 1 worker: ")
    assert said.index("1 local worker process, TensorFlow threads 1") < timed
    disk = said.index("disk: one checkpoint per run, 1 x ")
    first_score = said.index("original/seed-0 at 2: judge accuracy")
    assert plan < timed < disk < first_score
    assert "with the average of G's weights" in said[disk:first_score]
    assert said.count("ETA ") >= 8  # after every chunk and every score
    assert "left: 0 iterations to train, 0 to score, ETA 0m00s" in said


def test_the_disk_said_is_the_checkpoints_size(ablation):
    """The probe's checkpoint is the variables train.py saves: each run's checkpoint file holds them (and the data
    order, 8 bytes per training image)."""
    tmp, data_dir, _, _, _ = ablation
    spec = ablate.Ablation(ablate.parse_args(ablate_args(data_dir, tmp / "probed", "judges"))).runs[1]
    measured = ablate.probe(spec.settings)
    training_images = 300 - 50
    for name, averages in (("original/seed-0", 0), ("repaired/seed-0", measured["average_bytes"])):
        data_file = tmp / "out" / "runs" / name / "checkpoints" / "ckpt-4.data-00000-of-00001"
        assert data_file.stat().st_size == measured["checkpoint_bytes"] + averages + 8 * training_images


def test_a_run_with_an_average_of_gs_weights_is_scored_with_its_latest_weights_too(ablation):
    tmp, _, _, record, _ = ablation
    repaired, original = record["runs"]["repaired/seed-0"], record["runs"]["original/seed-0"]
    assert "latest_weights_scores" not in original
    assert sorted(repaired["latest_weights_scores"]) == ["2", "4"]
    for budget in ("2", "4"):
        averaged, latest = repaired["scores"][budget], repaired["latest_weights_scores"][budget]
        assert (averaged["weights"], latest["weights"]) == ("the average of G's weights (decay 0.99)",
                                                            "G's latest weights")
        assert averaged["iterations"] == latest["iterations"] == int(budget)
        assert averaged["generated"]["frechet"] != latest["generated"]["frechet"]
    accuracy = repaired["latest_weights_scores"]["4"]["generated"]["judge_accuracy"]
    assert f"| repaired, G's latest weights | 1 | {accuracy:.3f} | {accuracy:.3f} (seed 0) |" in \
        (tmp / "out" / ablate.TABLE_FILE).read_text()


# Trains each run of argv[1] (a JSON list of train.py argument lists) in this one fresh process.
TRAIN_RUNS = "import json, sys; from dcgan_mnist.train import main; sys.exit(max(map(main, json.loads(sys.argv[1]))))"


def test_the_runs_are_ordinary_run_directories_equal_to_unchunked_runs(ablation):
    """Equal to the last bit, as a run trained in a process of its own: TensorFlow sizes a process's pool of
    inter-op threads by its first session, which changes the numbers, so they are compared with runs trained in
    a process whose first session is a run's, as in a worker (whose first is the probe's, of the same threads)."""
    tmp, data_dir, _, _, _ = ablation
    straight = {variant: tmp / f"straight-{variant}" for variant in ("original", "repaired")}
    subprocess.run([sys.executable, "-c", TRAIN_RUNS, json.dumps([
        [*ablate.variant_flags(variant), "--seed", "0", "--data-dir", data_dir, *DATA, "--log", "compact",
         "--max-iterations", "4", "--run-dir", str(folder), "--vis-dir", str(tmp / "vis"), "--threads", "1"]
        for variant, folder in straight.items()])], cwd=ROOT, check=True, capture_output=True)
    for variant, switches in (("original", ("original", "clipped", "original")),
                              ("repaired", ("repaired", "stable", "linear"))):
        run_dir = tmp / "out" / "runs" / variant / "seed-0"
        saved = json.loads((run_dir / "settings.json").read_text())
        assert (saved["recipe"], saved["loss"], saved["d_output"], saved["threads"]) == (*switches, 1)
        chunked, whole = (tf.train.load_checkpoint(str(folder / "checkpoints" / "ckpt-4"))
                          for folder in (run_dir, straight[variant]))
        assert sorted(chunked.get_variable_to_shape_map()) == sorted(whole.get_variable_to_shape_map())
        for name in chunked.get_variable_to_shape_map():
            np.testing.assert_array_equal(chunked.get_tensor(name), whole.get_tensor(name), err_msg=name)
        # Every number the straight run logged is the chunked run's; a chunk's last iteration also computes the
        # numbers after its update, which the straight run computes only every --log-every iterations.
        lines = run_dir_metrics(run_dir)
        assert len(lines) == 4
        for line, straight_line in zip(lines, run_dir_metrics(straight[variant]), strict=True):
            assert {key: value for key, value in straight_line.items() if value is not None}.items() <= line.items()


def test_the_table_has_every_variant_at_every_budget(ablation):
    tmp, _, _, record, _ = ablation
    text = (tmp / "out" / ablate.TABLE_FILE).read_text()
    assert text == ablate_report.table(record)
    for budget in ("## 2 iterations", "## 4 iterations", "## Training speed"):
        assert budget in text
    accuracy = record["runs"]["repaired/seed-0"]["scores"]["4"]["generated"]["judge_accuracy"]
    assert f"| repaired | 1 | {accuracy:.3f} | {accuracy:.3f} (seed 0) |" in text


def test_tensorboard_holds_each_runs_scores_by_iteration(ablation):
    tmp, _, _, record, _ = ablation
    folder = tmp / "out" / "tensorboard" / "repaired" / "seed-0"
    points = {}
    for name in os.listdir(folder):
        for event in tf.train.summary_iterator(str(folder / name)):
            for value in event.summary.value:
                points.setdefault(value.tag, []).append((event.step, value.simple_value))
    scores = record["runs"]["repaired/seed-0"]["scores"]
    assert sorted(points["eval/generated/judge_accuracy"]) == [
        (int(b), pytest.approx(scores[b]["generated"]["judge_accuracy"])) for b in ("2", "4")]
    assert max(points["eval/generated/frechet"]) == (4, pytest.approx(scores["4"]["generated"]["frechet"]))


def test_the_picture_puts_each_variants_final_grid_under_its_name(ablation):
    tmp = ablation[0]
    picture = np.asarray(Image.open(tmp / "out" / ablate.GRIDS_FILE).convert("RGB"))
    side, gap, label = 28 * ablate_report.GRID_SAMPLES_PER_DIGIT, ablate_report.GAP, ablate_report.LABEL_HEIGHT
    assert picture.shape == (2 * label + label + side + gap, gap + 2 * (side + gap), 3)
    labels = np.repeat(np.arange(10), ablate_report.GRID_SAMPLES_PER_DIGIT)
    z = np.random.RandomState(ablate_report.GRID_SEED).uniform(-1, 1, size=(len(labels), 8))
    panels = []
    for column, variant in enumerate(("original", "repaired")):
        generator = TrainedGenerator(str(tmp / "out" / "runs" / variant / "seed-0"))
        images = generator.sample(z, OneHot(labels, 10))
        generator.close()
        expected = (tile_grid(images, (10, ablate_report.GRID_SAMPLES_PER_DIGIT)) * 255).round().astype(np.uint8)
        left, top = gap + column * (side + gap), 3 * label
        panels.append(picture[top:top + side, left:left + side])
        np.testing.assert_array_equal(panels[-1], expected)
    assert not np.array_equal(*panels)


def scored(out, name, budget):
    try:
        return str(budget) in read_record(out)["runs"][name]["scores"]
    except (OSError, KeyError):
        return False


def kill_when_training(run_dir, ready, killed, stop):
    """kill -9 the worker process that trains ``run_dir`` as soon as ``ready()`` and it holds the run's lock."""
    ours = {child.pid for child in psutil.Process().children(recursive=True)}
    while not stop.is_set():
        pid = run.writer_pid(run_dir)
        if pid not in (None, "unknown") and ready():
            if int(pid) not in ours:  # a worker started after the list was made
                ours = {child.pid for child in psutil.Process().children(recursive=True)}
            if int(pid) in ours:
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
                return
        time.sleep(0.01)


def test_two_jobs_give_the_same_runs_and_scores_as_one_also_when_a_worker_dies_mid_task(ablation, tmp_path):
    """A worker is killed in a run's first chunk (no checkpoint yet: the task, given to a worker again, starts the
    run afresh over what the dead attempt left) and another in a run's second chunk (which resumes from the
    checkpoint of the first)."""
    tmp, data_dir, judges, _, _ = ablation
    out = tmp_path / "out"
    original, repaired = (str(out / "runs" / name) for name in RUNS)
    killed, stop = [], threading.Event()
    watchers = [threading.Thread(target=kill_when_training, args=(original, lambda: True, killed, stop)),
                threading.Thread(target=kill_when_training,
                                 args=(repaired, lambda: scored(out, RUNS[1], 2), killed, stop))]
    for watcher in watchers:
        watcher.start()
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            assert ablate.main(ablate_args(data_dir, out, judges, "--jobs", "2")) == 0
    finally:
        stop.set()
        for watcher in watchers:
            watcher.join()
    assert len(killed) == 2
    assert "2 local worker processes, TensorFlow threads 1" in said.getvalue()
    assert "timed on 2 workers" in said.getvalue()
    assert_same_runs(out, tmp / "out")


@pytest.fixture
def scheduler(tmp_path):
    """`dask scheduler` and one `dask worker` (one thread), on the loopback interface; stopped afterwards."""
    started = []
    address_file = tmp_path / "scheduler.json"
    try:
        started.append(subprocess.Popen([*DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                         "--scheduler-file", str(address_file)], cwd=tmp_path,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + PATIENCE
        while not address_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(address_file.read_text())["address"]
        # In another folder than the client's: it finds everything by the absolute paths it is given.
        started.append(subprocess.Popen([*DASK, "worker", address, "--nthreads", "1", "--host", "127.0.0.1",
                                         "--no-dashboard"], cwd=tmp_path, env={**os.environ, "PYTHONPATH": ROOT},
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        yield address
    finally:
        for process in reversed(started):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_an_ablation_on_a_schedulers_worker_plans_first_and_gives_the_same_scores(ablation, scheduler, tmp_path,
                                                                                  monkeypatch):
    tmp, data_dir, judges, _, _ = ablation
    monkeypatch.chdir(tmp_path)
    args = ablate_args(data_dir, "out", judges, "--scheduler", scheduler, "--variants", "repaired")
    said = io.StringIO()
    with contextlib.redirect_stderr(said):
        assert ablate.main([*args, "--dry-run"]) == 0
    assert f"1 worker of {scheduler}, 1 thread in all, TensorFlow threads 1" in said.getvalue()
    assert "estimated " in said.getvalue() and "disk: one checkpoint per run" in said.getvalue()
    assert "dry run: nothing trained" in said.getvalue()
    assert not (tmp_path / "out" / "runs").exists() and not (tmp_path / "out" / ablate.RECORD_FILE).exists()
    assert ablate.main(args) == 0
    assert_same_runs(tmp_path / "out", tmp / "out", [RUNS[1]])


def test_a_client_killed_mid_ablation_continues_to_the_same_result(ablation, tmp_path):
    tmp, data_dir, judges, _, _ = ablation
    out = tmp_path / "out"
    args = ablate_args(data_dir, out, judges, "--jobs", "1")
    with open(tmp_path / "killed.log", "w") as log:
        client = subprocess.Popen([sys.executable, "-m", "dcgan_mnist", "ablate", *args], cwd=tmp_path,
                                  env={**os.environ, "PYTHONPATH": ROOT}, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + PATIENCE
        while not (out / ablate.RECORD_FILE).exists():
            assert time.monotonic() < deadline, f"the ablation wrote no {ablate.RECORD_FILE} in {PATIENCE} s"
            time.sleep(0.02)
        workers = psutil.Process(client.pid).children(recursive=True)
    finally:
        client.kill()
        client.wait()
    # Its workers go with it: nothing trains on behind the ablation that continues.
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive
    partial = read_record(out)
    assert 1 <= sum(len(entry["scores"]) for entry in partial["runs"].values()) < 4
    assert ablate.main(ablate_args(data_dir, out, judges, "--jobs", "1")) == 0
    assert_same_runs(out, tmp / "out")


def test_a_finished_ablation_run_again_does_nothing_more(ablation, tmp_path, capsys):
    tmp, data_dir, judges, record, _ = ablation
    shutil.copytree(tmp / "out", tmp_path / "out")
    assert ablate.main(ablate_args(data_dir, tmp_path / "out", judges)) == 0
    assert "nothing left to train or score" in capsys.readouterr().err
    assert read_record(tmp_path / "out") == record
    assert (tmp_path / "out" / ablate.TABLE_FILE).read_text() == (tmp / "out" / ablate.TABLE_FILE).read_text()


def test_a_second_ablation_into_the_same_out_is_refused(tmp_path, capsys):
    folder = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)  # as the ablation writing there holds it
        assert ablate.main(ablate_args("data", tmp_path, "judges")) == 1
    finally:
        os.close(folder)
    assert f"another ablate is writing into {tmp_path}" in capsys.readouterr().err


def test_other_scoring_flags_into_the_same_out_are_refused(ablation, capsys):
    tmp, data_dir, judges, _, _ = ablation
    assert ablate.main(ablate_args(data_dir, tmp / "out", judges, "--samples", "30")) == 1
    assert "--samples 20 (now 30)" in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--variants", "original,bogus"], "expected distinct names from original, stable-loss"),
    (["--seeds", "1,1"], "expected distinct seeds"),
    (["--samples", "1"], "argument --samples: expected 2 or more"),
    (["--jobs", "0"], "argument --jobs: expected a positive integer"),
    (["--jobs", "2", "--scheduler", "tcp://127.0.0.1:8786"], "not allowed with argument --jobs"),
])
def test_bad_flags_are_named(flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit):
        ablate.main(["--out", str(tmp_path), *flags])
    assert message in capsys.readouterr().err


def test_the_bf16_and_translate_variants_run_only_when_named():
    assert ablate.parse_args(["--out", "x"]).variants == ["original", "stable-loss", "lrelu-logit", "linear-logit",
                                                          "stable-lrelu-logit", "repaired"]
    assert ablate.parse_args(["--out", "x", "--variants", "repaired,repaired-bf16"]).variants == ["repaired",
                                                                                                   "repaired-bf16"]
    assert ablate.variant_flags("repaired-bf16") == ["--recipe", "repaired", "--precision", "bf16"]
    assert ablate.variant_flags("repaired-bf16-translate") == ["--recipe", "repaired", "--precision", "bf16",
                                                               "--augment", "translate"]


def test_each_job_gets_its_share_of_the_cores(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)

    def threads(*flags):
        return ablate.task_threads(ablate.parse_args(["--out", "out", *flags]))
    assert (threads(), threads("--jobs", "3"), threads("--jobs", "16")) == (8, 2, 1)
    assert threads("--jobs", "3", "--threads", "4") == 4
    assert threads("--scheduler", "tcp://127.0.0.1:8786") == 0  # the workers' machines are not this one


def test_the_eta_divides_the_work_left_among_the_workers_that_have_a_run():
    probe = {"iteration_seconds": 0.5, "build_seconds": 2.0, "image_seconds": 0.001, "pair_seconds": 1e-9}
    pace = ablate.Pace([probe], samples=1000, valid_size=1000, workers=2)
    work = [ablate.Work(iterations=100, chunks=2, scores=2, weights=1), ablate.Work(0, 0, 0, 1)]
    per_score = 1000 * 1000 * 1e-9 + (2.0 + 1000 * 0.001 + 1000 * 1000 * 1e-9)
    assert pace.wall(work) == pytest.approx(100 * 0.5 + 2 * 2.0 + 2 * per_score)  # one busy run: one worker
    pace.trained_chunk({"trained": 50, "seconds": 50.0})
    pace.scored({"weights_scored": 2, "seconds": 6.0})
    assert pace.wall(work * 2) == pytest.approx(2 * (100 * 1.0 + 2 * 3.0) / 2)


def test_the_table_gives_the_median_and_the_worst_seed():
    def report(accuracy, frechet):
        return {"generated": {"judge_accuracy": accuracy, "frechet": frechet,
                              "nearest_neighbour": [{"n": 10, "nnc": accuracy, "nnd": frechet / 10}]},
                "real_train": {"frechet": 0.1, "nearest_neighbour": [{"n": 10, "nnc": 0.9, "nnd": 4.0}]},
                "real_test": {"judge_accuracy": 1.0}}
    runs = {f"v/seed-{seed}": {"variant": "v", "seed": seed, "scores": {"10": report(acc, fd)}, "step_seconds": step,
                               "stopped": None}
            for seed, acc, fd, step in ((0, 0.9, 20.0, 0.1), (1, 0.5, 90.0, 0.3), (2, 0.95, 10.0, 0.2))}
    runs["v/seed-3"] = {"variant": "v", "seed": 3, "scores": {}, "step_seconds": None,
                        "stopped": {"status": 3, "iteration": 7}}
    runs["v/seed-0"]["latest_weights_scores"] = {"10": report(0.8, 30.0)}
    runs["v/seed-2"]["latest_weights_scores"] = {"10": report(0.85, 40.0)}
    text = ablate_report.table({"settings": {"samples": 10}, "variants": {"v": ["--loss", "stable"]}, "runs": runs})
    assert "| v | 3, stopped: 3 | 0.900 | 0.500 (seed 1) | 20.000 | 90.000 (seed 1) | 2.000 | 9.000 (seed 1) |" in text
    # The runs scored with G's latest weights as well (--g-average) get a row of their own, under the variant's.
    assert ("| v, G's latest weights | 2, stopped: 3 | 0.825 | 0.800 (seed 0) | 35.000 | 40.000 (seed 2) | 3.500 | "
            "4.000 (seed 2) |") in text
    assert text.index("| v | 3,") < text.index("| v, G's latest weights |")
    assert "| v | 3 | 200.0 | 5.00 |" in text
    assert "- `v`: `python train.py --loss stable`" in text
