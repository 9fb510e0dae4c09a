"""plot: the curves of eval.jsonl and the late-degradation verdict."""
import json

import pytest
from PIL import Image

from dcgan_mnist.tools import plot


def write_scores(run_dir, scores):
    """An eval.jsonl as train.py --eval-every-epoch writes it, one line per (iteration, judge accuracy, Frechet)."""
    run_dir.mkdir()
    lines = [json.dumps({"iteration": i, "epoch": e, "generated": {"n": 1000, "judge_accuracy": a, "frechet": f},
                         "real_train": {"frechet": 1.5}, "real_test": {"judge_accuracy": 0.99}})
             for e, (i, a, f) in enumerate(scores, 1)]
    (run_dir / "eval.jsonl").write_text("".join(line + "\n" for line in lines))
    return str(run_dir)


def run_plot(capsys, *argv):
    capsys.readouterr()
    assert plot.main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)["runs"]


def test_plot_finds_the_largest_fall_below_the_best_before_it(tmp_path, capsys):
    # The fall counts from the best score before it: 0.97 -> 0.955 is 0.015 although the last score is 0.965.
    held = write_scores(tmp_path / "held", [(389, 0.5, 90.0), (779, 0.97, 5.0), (1169, 0.962, 4.0), (1559, 0.968, 4.5)])
    fell = write_scores(tmp_path / "fell", [(389, 0.5, 90.0), (779, 0.97, 5.0), (1169, 0.955, 6.0), (1559, 0.965, 7.0)])
    out = tmp_path / "curves.png"
    first, second = run_plot(capsys, held, fell, "--label", "fp32", "--label", "bf16", "--out", str(out))
    assert (first["label"], first["run"], second["label"]) == ("fp32", held, "bf16")
    assert first["largest_fall"] == pytest.approx(0.008) and first["largest_fall_iteration"] == 1169
    assert not first["degraded"]
    assert second["largest_fall"] == pytest.approx(0.015) and second["largest_fall_iteration"] == 1169
    assert second["degraded"]
    assert (first["best_judge_accuracy"], first["best_judge_iteration"], first["last_judge_accuracy"]) == (0.97, 779,
                                                                                                           0.968)
    assert (first["best_frechet"], first["best_frechet_iteration"], first["last_frechet"]) == (4.0, 1169, 4.5)
    assert (second["scores"], second["last_iteration"]) == (4, 1559)
    assert Image.open(out).format == "PNG"


def test_plot_prints_one_line_a_run_and_its_verdict(tmp_path, capsys):
    run_dir = write_scores(tmp_path / "run", [(389, 0.9, 20.0), (779, 0.95, 8.0)])
    assert plot.main([run_dir, "--out", str(tmp_path / "sub" / "curves.jpg")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"{run_dir}: 2 scores to iteration 779; judge accuracy best 0.9500 at iteration 779, last "
                        f"0.9500, it never fell: held; Frechet distance best 8.00 at iteration 779, last 8.00")
    assert lines[1] == f"wrote {tmp_path / 'sub' / 'curves.jpg'}"
    assert Image.open(tmp_path / "sub" / "curves.jpg").format == "JPEG"


def test_plot_keeps_a_null_score_out_of_best_and_fall(tmp_path, capsys):
    run_dir = write_scores(tmp_path / "run", [(389, 0.9, None), (779, None, 8.0), (1169, 0.95, 7.0)])
    s, = run_plot(capsys, run_dir, "--out", str(tmp_path / "c.png"))
    assert (s["best_judge_accuracy"], s["best_frechet"], s["largest_fall"]) == (0.95, 7.0, 0.0)


@pytest.mark.parametrize("content, message", [
    (None, "has no eval.jsonl: plot needs a run trained with --eval-every-epoch"),
    ("", "holds no scores yet"),
    ('{"iteration": 3}\n', "eval.jsonl, line 1, is not a score line"),
    ('{"iteration": 3, "epoch": 1, "generated": {"judge_accuracy": 0.5, "frechet": 9}}\n{"iter', "line 2, is not"),
])
def test_plot_names_the_run_and_what_is_wrong(tmp_path, capsys, content, message):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    if content is not None:
        (run_dir / "eval.jsonl").write_text(content)
    assert plot.main([str(run_dir), "--out", str(tmp_path / "c.png")]) == 1
    err = capsys.readouterr().err
    assert str(run_dir) in err and message in err
    assert not (tmp_path / "c.png").exists()


def test_plot_refuses_a_wrong_label_count_and_an_unknown_format(tmp_path, capsys):
    run_dir = write_scores(tmp_path / "run", [(389, 0.9, 20.0)])
    with pytest.raises(SystemExit):
        plot.main([run_dir, "--label", "a", "--label", "b", "--out", str(tmp_path / "c.png")])
    assert "--label given 2 times for 1 run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        plot.main([run_dir, "--out", str(tmp_path / "c.xyz")])
    assert "--out" in capsys.readouterr().err
    assert not (tmp_path / "c.png").exists()
