"""The ablation: chunked runs that equal single runs, scores per budget in JSON, markdown and TensorBoard, the
grid picture, and an interrupted ablation continuing to the same result."""
import json
import os

import numpy as np
import pytest
from conftest import TINY_MODEL, run_dir_metrics, write_mnist
from PIL import Image

from dcgan_mnist import judge as judge_module
from dcgan_mnist.model import tf
from dcgan_mnist.sampler import TrainedGenerator
from dcgan_mnist.tools import ablate
from dcgan_mnist.train import main as train_main
from dcgan_mnist.util import OneHot, tile_grid

JUDGE_STEPS = 60  # a judge that is quick to train; the scores only need to be the same judge's
DATA = ["--valid-size", "50", "--batch-size", "16", *TINY_MODEL]


def ablate_args(data_dir, out, judges, *extra):
    return ["--out", str(out), "--data-dir", data_dir, "--judge-dir", judges, "--variants", "original,repaired",
            "--seeds", "0", "--iterations", "4", "--eval-every", "2", "--samples", "20", *DATA, *extra]


@pytest.fixture(scope="module")
def ablation(tmp_path_factory):
    """A whole tiny ablation (two variants, one seed, scored at 2 and 4 iterations), its data and judge folder."""
    tmp = tmp_path_factory.mktemp("ablate")
    data_dir, judges = str(tmp / "data"), str(tmp / "judges")
    write_mnist(data_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(judge_module.RECIPE, "steps", JUDGE_STEPS)
        assert ablate.main(ablate_args(data_dir, tmp / "out", judges)) == 0
    with open(tmp / "out" / ablate.RECORD_FILE) as f:
        record = json.load(f)
    return tmp, data_dir, judges, record


def generated(record):
    """{run: {budget: generated scores}} of an ablation.json."""
    return {name: {budget: report["generated"] for budget, report in entry["scores"].items()}
            for name, entry in record["runs"].items()}


def test_budgets_are_every_n_iterations_and_the_last():
    assert ablate.budgets(3000, 500) == [500, 1000, 1500, 2000, 2500, 3000]
    assert ablate.budgets(7, 3) == [3, 6, 7]
    assert ablate.budgets(2, 5) == [2]


def test_every_run_is_scored_at_every_budget(ablation):
    tmp, _, _, record = ablation
    assert set(record["runs"]) == {"original/seed-0", "repaired/seed-0"}
    for entry in record["runs"].values():
        assert sorted(entry["scores"]) == ["2", "4"]
        assert [entry["scores"][b]["iterations"] for b in ("2", "4")] == [2, 4]
        assert entry["scores"]["4"]["data"]["run_split"] is True and entry["stopped"] is None
        assert entry["step_seconds"] > 0
    assert record["variants"] == {"original": [], "repaired": ["--recipe", "repaired"]}


def test_a_run_with_an_average_of_gs_weights_is_scored_with_its_latest_weights_too(ablation):
    tmp, _, _, record = ablation
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


def test_the_runs_are_ordinary_run_directories_equal_to_unchunked_runs(ablation):
    tmp, data_dir, _, _ = ablation
    for variant, switches in (("original", ("original", "clipped", "original")),
                              ("repaired", ("repaired", "stable", "linear"))):
        run_dir = tmp / "out" / "runs" / variant / "seed-0"
        saved = json.loads((run_dir / "settings.json").read_text())
        assert (saved["recipe"], saved["loss"], saved["d_output"]) == switches
        straight = tmp / f"straight-{variant}"
        assert train_main([*ablate.variant_flags(variant), "--seed", "0", "--data-dir", data_dir, *DATA,
                           "--log", "compact", "--max-iterations", "4", "--run-dir", str(straight),
                           "--vis-dir", str(tmp / "vis")]) == 0
        assert run_dir_metrics(run_dir) == run_dir_metrics(straight)
        assert len(run_dir_metrics(run_dir)) == 4


def test_the_table_has_every_variant_at_every_budget(ablation):
    tmp, _, _, record = ablation
    text = (tmp / "out" / ablate.TABLE_FILE).read_text()
    assert text == ablate.table(record)
    for budget in ("## 2 iterations", "## 4 iterations", "## Training speed"):
        assert budget in text
    accuracy = record["runs"]["repaired/seed-0"]["scores"]["4"]["generated"]["judge_accuracy"]
    assert f"| repaired | 1 | {accuracy:.3f} | {accuracy:.3f} (seed 0) |" in text


def test_tensorboard_holds_each_runs_scores_by_iteration(ablation):
    tmp, _, _, record = ablation
    folder = tmp / "out" / "tensorboard" / "repaired" / "seed-0"
    points = {}
    for name in os.listdir(folder):
        for event in tf.train.summary_iterator(str(folder / name)):
            for value in event.summary.value:
                points.setdefault(value.tag, []).append((event.step, value.simple_value))
    scores = record["runs"]["repaired/seed-0"]["scores"]
    assert points["eval/generated/judge_accuracy"] == [
        (int(b), pytest.approx(scores[b]["generated"]["judge_accuracy"])) for b in ("2", "4")]
    assert points["eval/generated/frechet"][-1] == (4, pytest.approx(scores["4"]["generated"]["frechet"]))


def test_the_picture_puts_each_variants_final_grid_under_its_name(ablation):
    tmp, _, _, _ = ablation
    picture = np.asarray(Image.open(tmp / "out" / ablate.GRIDS_FILE).convert("RGB"))
    side, gap, label = 28 * ablate.GRID_SAMPLES_PER_DIGIT, ablate.GAP, ablate.LABEL_HEIGHT
    assert picture.shape == (2 * label + label + side + gap, gap + 2 * (side + gap), 3)
    labels = np.repeat(np.arange(10), ablate.GRID_SAMPLES_PER_DIGIT)
    z = np.random.RandomState(ablate.GRID_SEED).uniform(-1, 1, size=(len(labels), 8))
    panels = []
    for column, variant in enumerate(("original", "repaired")):
        generator = TrainedGenerator(str(tmp / "out" / "runs" / variant / "seed-0"))
        images = generator.sample(z, OneHot(labels, 10))
        generator.close()
        expected = (tile_grid(images, (10, ablate.GRID_SAMPLES_PER_DIGIT)) * 255).round().astype(np.uint8)
        left, top = gap + column * (side + gap), 3 * label
        panels.append(picture[top:top + side, left:left + side])
        np.testing.assert_array_equal(panels[-1], expected)
    assert not np.array_equal(*panels)


def test_an_interrupted_ablation_continues_to_the_same_result(ablation, tmp_path, monkeypatch, capsys):
    _, data_dir, judges, record = ablation
    monkeypatch.setitem(judge_module.RECIPE, "steps", JUDGE_STEPS)
    scored, interrupt_at = [], [2]
    evaluate_run = ablate.evaluate_run

    def stopped_at_the_second_score(checkpoint, options, latest_choices):
        scored.append((os.path.basename(checkpoint), latest_choices))
        if len(scored) in interrupt_at:
            raise KeyboardInterrupt
        return evaluate_run(checkpoint, options, latest_choices)
    monkeypatch.setattr(ablate, "evaluate_run", stopped_at_the_second_score)
    out = tmp_path / "out"
    assert ablate.main(ablate_args(data_dir, out, judges)) == 130
    assert "run the same command again to continue" in capsys.readouterr().err
    partial = json.loads((out / ablate.RECORD_FILE).read_text())
    assert list(partial["runs"]["original/seed-0"]["scores"]) == ["2"]
    # A run killed before its first checkpoint leaves a folder with nothing to resume: it starts afresh.
    killed = out / "runs" / "repaired" / "seed-0"
    killed.mkdir(parents=True)
    (killed / "metrics.jsonl").write_text('{"iteration": 0}\n')

    scored.clear()
    interrupt_at.clear()
    assert ablate.main(ablate_args(data_dir, out, judges)) == 0
    # The original's score at 2 was kept; the recipe's checkpoints are scored with the average and the latest weights.
    assert scored == [("ckpt-4", [False]), ("ckpt-2", [False, True]), ("ckpt-4", [False, True])]
    resumed = json.loads((out / ablate.RECORD_FILE).read_text())
    assert generated(resumed) == generated(record)
    assert ({b: r["generated"] for b, r in resumed["runs"]["repaired/seed-0"]["latest_weights_scores"].items()}
            == {b: r["generated"] for b, r in record["runs"]["repaired/seed-0"]["latest_weights_scores"].items()})
    for variant in ("original", "repaired"):
        assert (run_dir_metrics(out / "runs" / variant / "seed-0")
                == run_dir_metrics(ablation[0] / "out" / "runs" / variant / "seed-0"))


def test_a_run_another_ablation_holds_is_left_to_it_and_both_keep_their_scores(ablation, tmp_path, monkeypatch,
                                                                                capsys):
    _, data_dir, judges, record = ablation
    monkeypatch.setitem(judge_module.RECIPE, "steps", JUDGE_STEPS)
    out = tmp_path / "out"
    (out / "runs" / "original").mkdir(parents=True)
    other = ablate.lock(str(out / "runs" / "original" / "seed-0") + ablate.LOCK_SUFFIX)  # as a second ablation would
    assert ablate.main(ablate_args(data_dir, out, judges)) == 0
    err = capsys.readouterr().err
    assert "left: 4 iterations and 2 scores" in err  # the other ablation's run is not counted
    assert "run 1/2: original/seed-0 is being trained by another ablation; skipped" in err
    assert "1 of the runs were another ablation's" in err
    assert not (out / "runs" / "original" / "seed-0").exists()
    first = json.loads((out / ablate.RECORD_FILE).read_text())
    assert generated(first)["repaired/seed-0"] == generated(record)["repaired/seed-0"]
    assert generated(first)["original/seed-0"] == {}

    other.close()
    assert ablate.main(ablate_args(data_dir, out, judges)) == 0
    assert generated(json.loads((out / ablate.RECORD_FILE).read_text())) == generated(record)


def test_two_ablations_saving_into_one_record_keep_each_others_runs(tmp_path):
    args = ablate.parse_args(ablate_args("data", tmp_path, "judges"))
    first, second = ablate.Record(str(tmp_path), args), ablate.Record(str(tmp_path), args)  # started together
    first.claim("original", 0)["scores"]["2"] = {"by": "first"}
    first.save()
    second.claim("repaired", 0)["scores"]["2"] = {"by": "second"}
    second.save()
    first.entry("original", 0)["scores"]["4"] = {"by": "first"}
    first.save()
    saved = json.loads((tmp_path / ablate.RECORD_FILE).read_text())
    assert {name: entry["scores"] for name, entry in saved["runs"].items()} == {
        "original/seed-0": {"2": {"by": "first"}, "4": {"by": "first"}}, "repaired/seed-0": {"2": {"by": "second"}}}
    # A run claimed later starts from what the file holds, not from what this ablation read when it started.
    assert second.claim("original", 0)["scores"] == {"2": {"by": "first"}, "4": {"by": "first"}}


def test_other_scoring_flags_into_the_same_out_are_refused(ablation, capsys):
    tmp, data_dir, judges, _ = ablation
    assert ablate.main(ablate_args(data_dir, tmp / "out", judges, "--samples", "30")) == 1
    assert "--samples 20 (now 30)" in capsys.readouterr().err


@pytest.mark.parametrize("flags, message", [
    (["--variants", "original,bogus"], "expected distinct names from original, stable-loss"),
    (["--seeds", "1,1"], "expected distinct seeds"),
    (["--samples", "1"], "argument --samples: expected 2 or more"),
])
def test_bad_flags_are_named(flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit):
        ablate.main(["--out", str(tmp_path), *flags])
    assert message in capsys.readouterr().err


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
    text = ablate.table({"settings": {"samples": 10}, "variants": {"v": ["--loss", "stable"]}, "runs": runs})
    assert "| v | 3, stopped: 3 | 0.900 | 0.500 (seed 1) | 20.000 | 90.000 (seed 1) | 2.000 | 9.000 (seed 1) |" in text
    # The runs scored with G's latest weights as well (--g-average) get a row of their own, under the variant's.
    assert ("| v, G's latest weights | 2, stopped: 3 | 0.825 | 0.800 (seed 0) | 35.000 | 40.000 (seed 2) | 3.500 | "
            "4.000 (seed 2) |") in text
    assert text.index("| v | 3,") < text.index("| v, G's latest weights |")
    assert "| v | 3 | 200.0 | 5.00 |" in text
    assert "- `v`: `python train.py --loss stable`" in text
