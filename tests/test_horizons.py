"""--augment adaptive (its strength p and the rule that moves it) and the best checkpoint a self-scoring run keeps."""
import json
import os

import numpy as np
import pytest
from conftest import QUICK_JUDGE_STEPS, run_dir_metrics, tiny_args

from dcgan_mnist import augment, checkpoints, judge, vis
from dcgan_mnist.augment import ADJUST_EVERY, AdaptiveStrength, draw_shifts
from dcgan_mnist.model import tf
from dcgan_mnist.settings import Settings
from dcgan_mnist.tools import generate
from dcgan_mnist.train import main as train_main

RECIPE = ["--recipe", "repaired", "--log", "compact", "--log-every", "5"]
# A target, speed and learning rate at which p moves within a tiny run: D's mean sign on the reals passes 0.05.
FAST = ["--augment", "adaptive", "--augment-target", "0.05", "--augment-speed", "400", "--learning-rate", "0.01"]


def observe(strength, signs):
    return [strength.observe(sign) for sign in signs]


def test_p_rises_while_d_is_sure_of_the_reals_falls_back_below_the_target_and_stays_in_0_1():
    strength = AdaptiveStrength(target=0.6, speed=1000, batch_size=50)
    step = ADJUST_EVERY * 50 / 1000
    # Only every ADJUST_EVERY-th update moves p, by the mean of the signs since the last move.
    assert observe(strength, [1.0] * (ADJUST_EVERY - 1)) == [None] * (ADJUST_EVERY - 1) and strength.p == 0
    assert strength.observe(-1.0) == pytest.approx((ADJUST_EVERY - 2) / ADJUST_EVERY)  # r, the mean sign: 0.5
    assert strength.p == 0  # r below the target lowers p, which never goes below 0
    for _ in range(3):
        observe(strength, [0.9] * ADJUST_EVERY)
    assert strength.p == pytest.approx(3 * step)
    assert strength.last_r == pytest.approx(0.9)
    observe(strength, [0.2] * ADJUST_EVERY)
    assert strength.p == pytest.approx(2 * step)
    for _ in range(100):
        observe(strength, [1.0] * ADJUST_EVERY)
    assert strength.p == 1.0
    observe(strength, [-1.0] * ADJUST_EVERY)
    assert strength.p == pytest.approx(1 - step)
    # The state a checkpoint keeps continues the same adjustments.
    observe(strength, [0.9, 0.1])
    again = AdaptiveStrength(0.6, 1000, 50, **strength.state())
    assert observe(again, [0.9, 0.9, 0.1]) == observe(strength, [0.9, 0.9, 0.1]) and again.p == strength.p


def test_shifts_move_each_image_with_probability_p_and_p_0_draws_nothing():
    np.random.seed(4)
    before = np.random.get_state()[1].copy()
    assert not draw_shifts("adaptive", [2, 500, 2], 0.0).any()
    assert (np.random.get_state()[1] == before).all()  # nothing drawn: a run at p = 0 draws what one without does
    moved = [np.abs(draw_shifts("adaptive", [2, 500, 2], p)).sum(axis=2) > 0 for p in (0.3, 1.0)]
    # A move of (0, 0) is drawn with probability 1/49, so a moved image stays put now and then.
    assert 0.2 < moved[0].mean() < 0.4 and moved[1].mean() > 0.95
    shifts = draw_shifts("adaptive", [2, 500, 2], 1.0)
    assert shifts.min() == -augment.TRANSLATE_PIXELS and shifts.max() == augment.TRANSLATE_PIXELS


def test_held_at_p_0_a_run_is_the_same_run_as_without_the_switch(mnist_dir, tmp_path, monkeypatch):
    assert train_main(tiny_args(mnist_dir, tmp_path, "plain", "--seed", "3", "--max-iterations", "12", *RECIPE)) == 0
    monkeypatch.setattr(AdaptiveStrength, "observe", lambda self, sign: None)
    assert train_main(tiny_args(mnist_dir, tmp_path, "held", "--seed", "3", "--max-iterations", "12", *RECIPE,
                                "--augment", "adaptive")) == 0
    held = run_dir_metrics(tmp_path / "held")
    assert {line.pop("augment_p") for line in held} == {0.0}
    assert held == run_dir_metrics(tmp_path / "plain")
    grids = vis.sample_names(tmp_path / "vis-plain")
    assert grids == vis.sample_names(tmp_path / "vis-held") and len(grids) == 6
    for name in grids:
        assert (tmp_path / "vis-plain" / name).read_bytes() == (tmp_path / "vis-held" / name).read_bytes()


def test_p_is_recorded_and_a_resumed_run_continues_it_exactly(mnist_dir, tmp_path, capsys):
    flags = ["--seed", "6", *RECIPE, *FAST]
    assert train_main(tiny_args(mnist_dir, tmp_path, "whole", *flags, "--max-iterations", "40")) == 0
    out = capsys.readouterr().out
    assert "| augment p 0." in out
    # Stopped between two adjustments (9 D updates), then resumed.
    assert train_main(tiny_args(mnist_dir, tmp_path, "parts", *flags, "--max-iterations", "17")) == 0
    assert train_main(["--resume", str(tmp_path / "parts"), "--max-iterations", "40"]) == 0
    whole, parts = run_dir_metrics(tmp_path / "whole"), run_dir_metrics(tmp_path / "parts")
    ps = [line["augment_p"] for line in whole]
    assert max(ps) > 0 and sum("augment_r" in line for line in whole) == 20 // ADJUST_EVERY
    assert [line["augment_p"] for line in parts] == ps
    assert [line.get("augment_r") for line in parts] == [line.get("augment_r") for line in whole]
    assert [line["gen_loss"] for line in parts if line["updated"] == "G"] == \
        [line["gen_loss"] for line in whole if line["updated"] == "G"]
    readers = [tf.train.load_checkpoint(checkpoints.complete_checkpoints(str(tmp_path / name))[-1])
               for name in ("whole", "parts")]
    for name in ("train_state/augment_p", "train_state/augment_signs", "train_state/augment_seen", "gen_W1"):
        np.testing.assert_array_equal(readers[0].get_tensor(name), readers[1].get_tensor(name))


@pytest.mark.parametrize("flags, message", [
    (["--augment-target", "0"], "argument --augment-target: expected a number between 0 and 1"),
    (["--augment-target", "1"], "argument --augment-target: expected a number between 0 and 1"),
    (["--augment-target", "nan"], "argument --augment-target: expected a number between 0 and 1"),
    (["--augment-speed", "0"], "argument --augment-speed: expected a positive integer"),
    (["--augment-speed", "-5"], "argument --augment-speed: expected a positive integer"),
    (["--augment", "rotate"], "argument --augment: expected one of none, translate, adaptive, got 'rotate'"),
    (["--keep-best", "loss"], "argument --keep-best: expected one of frechet, judge_accuracy, none, got 'loss'"),
])
def test_bad_augmentation_flags_are_usage_errors_naming_the_flag(mnist_dir, tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as stopped:
        train_main(tiny_args(mnist_dir, tmp_path, "run", "--augment", "adaptive", *flags))
    assert stopped.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_adaptive_settings_without_the_switch_and_other_settings_on_resume_are_refused(mnist_dir, tmp_path, capsys):
    assert train_main(tiny_args(mnist_dir, tmp_path, "none", "--augment-target", "0.7")) == 1
    assert "error: --augment-target 0.7 goes with --augment adaptive, not --augment none" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
    assert train_main(tiny_args(mnist_dir, tmp_path, "run", "--seed", "1", "--max-iterations", "4", *FAST)) == 0
    capsys.readouterr()
    for flags in (["--augment-speed", "500"], ["--augment", "translate"], ["--augment-target", "0.5"]):
        assert train_main(["--resume", str(tmp_path / "run"), *flags]) == 1
        assert f"{flags[0]} {flags[1]} contradicts the run's setting" in capsys.readouterr().err
    settings_file = tmp_path / "run" / "settings.json"
    values = json.loads(settings_file.read_text())
    settings_file.write_text(json.dumps({**values, "augment_target": 1.5}))
    assert train_main(["--resume", str(tmp_path / "run")]) == 1
    assert "field 'augment_target' must be a number between 0 and 1 (both excluded), got 1.5" in \
        capsys.readouterr().err
    settings_file.write_text(json.dumps({**values, "augment": "none"}))
    assert train_main(["--resume", str(tmp_path / "run")]) == 1
    assert "--augment-target 0.05 goes with --augment adaptive" in capsys.readouterr().err


def eval_rows(run_dir):
    return [json.loads(line) for line in (run_dir / "eval.jsonl").read_text().splitlines()]


def test_the_best_scored_checkpoint_outlives_the_rotation_and_is_read_by_its_name(mnist_dir, tmp_path, capsys,
                                                                                   quick_judges):
    run_dir = tmp_path / "run"
    # 15 iterations an epoch, scored after each; one rotating checkpoint kept.
    assert train_main(tiny_args(mnist_dir, tmp_path, "run", "--seed", "2", "--max-iterations", "60", "--n-epochs", "4",
                                "--eval-every-epoch", "--judge-dir", quick_judges, "--checkpoint-every",
                                "5", "--keep-checkpoints", "1", "--log", "compact")) == 0
    rows = eval_rows(run_dir)
    best_row = min(rows, key=lambda row: row["generated"]["frechet"])
    record = json.loads((run_dir / "best.json").read_text())
    assert record == {"checkpoint": f"best-{best_row['iteration'] + 1}", "iteration": best_row["iteration"] + 1,
                      "epoch": best_row["epoch"], "score": "frechet", "value": best_row["generated"]["frechet"]}
    names = sorted(os.listdir(run_dir / "checkpoints"))
    assert [n for n in names if n.startswith("best-")] == [f"{record['checkpoint']}.data-00000-of-00001",
                                                          f"{record['checkpoint']}.index"]
    assert [checkpoints.iteration_of(p) for p in checkpoints.complete_checkpoints(str(run_dir))] == [60]
    assert f"kept as the best checkpoint (frechet {record['value']:.4g}): {run_dir / 'best'}" in capsys.readouterr().out
    # generate and the other readers take RUN_DIR/best and RUN_DIR/checkpoints/best-N.
    trained = checkpoints.Run(str(run_dir / "best"))
    assert (trained.checkpoint, trained.iteration) == (str(run_dir / "checkpoints" / record["checkpoint"]),
                                                       record["iteration"])
    assert checkpoints.Run(str(run_dir / "checkpoints" / record["checkpoint"])).iteration == record["iteration"]
    assert generate.main(["--checkpoint", str(run_dir / "best"), "--out", str(tmp_path / "best.png")]) == 0
    # Resume continues from the newest; the best is not a place to resume from.
    assert train_main(["--resume", str(run_dir / "best")]) == 1
    assert "the best checkpoint is for drawing and scoring" in capsys.readouterr().err


def test_a_run_without_a_best_says_how_to_get_one_and_judge_accuracy_picks_the_highest(mnist_dir, tmp_path, capsys,
                                                                                       quick_judges):
    assert train_main(tiny_args(mnist_dir, tmp_path, "plain", "--seed", "2", "--max-iterations", "3")) == 0
    assert generate.main(["--checkpoint", str(tmp_path / "plain" / "best"), "--out", str(tmp_path / "x.png")]) == 1
    assert "the run has no best checkpoint (one is kept when it is trained with --eval-every-epoch" in \
        capsys.readouterr().err
    assert train_main(tiny_args(mnist_dir, tmp_path, "run", "--seed", "2", "--max-iterations", "45",
                                "--eval-every-epoch", "--judge-dir", quick_judges,
                                "--keep-best", "judge_accuracy")) == 0
    rows = eval_rows(tmp_path / "run")
    best = max(rows, key=lambda row: row["generated"]["judge_accuracy"])  # the first of equals: only better replaces
    record = json.loads((tmp_path / "run" / "best.json").read_text())
    assert (record["score"], record["iteration"]) == ("judge_accuracy", best["iteration"] + 1)
    # A resume that picks by another score is refused rather than mixing two kinds of best.
    assert train_main(["--resume", str(tmp_path / "run"), "--max-iterations", "60", "--keep-best", "frechet"]) == 1
    assert "--keep-best frechet: the run's best checkpoint" in capsys.readouterr().err


def test_a_kill_while_the_best_is_written_leaves_the_previous_best_whole(mnist_dir, tmp_path, quick_judges,
                                                                         monkeypatch):
    run_dir = tmp_path / "run"
    flags = tiny_args(mnist_dir, tmp_path, "run", "--seed", "2", "--eval-every-epoch", "--judge-dir",
                      quick_judges, "--keep-best", "judge_accuracy")
    assert train_main(flags + ["--max-iterations", "15"]) == 0
    first = json.loads((run_dir / "best.json").read_text())
    # Every score beats the last, and the process dies after the new best's files, before best.json names them.
    monkeypatch.setattr(checkpoints.BestCheckpoint, "better", lambda self, value, than: True)

    def killed(path, text):
        raise SystemExit(137)
    monkeypatch.setattr(checkpoints, "write_atomically", killed)
    with pytest.raises(SystemExit):
        train_main(["--resume", str(run_dir), "--max-iterations", "30"])
    assert (run_dir / "checkpoints" / "best-30.index").exists()  # the half-made best
    assert json.loads((run_dir / "best.json").read_text()) == first
    assert checkpoints.Run(str(run_dir / "best")).iteration == first["iteration"]
    monkeypatch.undo()
    monkeypatch.setitem(judge.TRAINING, "steps", QUICK_JUDGE_STEPS)
    # The next start of the run removes what the killed write left.
    assert train_main(["--resume", str(run_dir), "--max-iterations", "16"]) == 0
    assert not [n for n in os.listdir(run_dir / "checkpoints") if n.startswith("best-30")]
    assert checkpoints.Run(str(run_dir / "best")).iteration == first["iteration"]


def test_a_damaged_best_record_is_named(mnist_dir, tmp_path, capsys, quick_judges):
    run_dir = tmp_path / "run"
    assert train_main(tiny_args(mnist_dir, tmp_path, "run", "--seed", "2", "--max-iterations", "15",
                                "--eval-every-epoch", "--judge-dir", quick_judges)) == 0
    record = json.loads((run_dir / "best.json").read_text())
    for damage in ("{", json.dumps({**record, "iteration": 3}), json.dumps({**record, "score": "loss"})):
        (run_dir / "best.json").write_text(damage)
        with pytest.raises(Exception) as raised:
            checkpoints.Run(str(run_dir / "best"))
        assert str(run_dir / "best.json") in str(raised.value)
    (run_dir / "best.json").write_text(json.dumps(record))
    for path in (run_dir / "checkpoints").glob("best-*.index"):
        path.unlink()
    assert generate.main(["--checkpoint", str(run_dir / "best"), "--out", str(tmp_path / "x.png")]) == 1
    assert f"names {record['checkpoint']}, whose .index or .data file is missing" in capsys.readouterr().err


def test_a_run_from_an_older_version_keeps_no_best_until_asked():
    assert Settings.__dataclass_fields__["keep_best"].metadata["before_it_existed"] == "none"


def test_plot_draws_p_beside_the_scores_of_an_adaptive_run(mnist_dir, tmp_path, capsys, quick_judges):
    from PIL import Image

    from dcgan_mnist.tools import plot
    assert train_main(tiny_args(mnist_dir, tmp_path, "run", "--seed", "6", "--max-iterations", "30", *RECIPE, *FAST,
                                "--eval-every-epoch", "--judge-dir", quick_judges)) == 0
    assert plot.main([str(tmp_path / "run"), "--out", str(tmp_path / "curves.png")]) == 0
    assert Image.open(tmp_path / "curves.png").size == (1650, 420)
    strength = plot.read_strength(str(tmp_path / "run"))
    assert [i for i, _ in strength] == list(range(30)) and max(p for _, p in strength) > 0
