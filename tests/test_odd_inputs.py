"""Odd inputs to the commands that read a trained run: a missing or damaged record is refused with the way on (and
taken with --accept-damaged-records), a size past its limit is refused with what it would need, and errors name
the run's own files. Each a non-zero exit and one line, no traceback."""
import json
import os

import pytest
from conftest import copied_run, tiny_args

from dcgan_mnist import checkpoints, migration_tf1
from dcgan_mnist.cli import CommandError
from dcgan_mnist.tools import evaluate, generate, migrate
from dcgan_mnist.train import main as train_main


@pytest.fixture
def trained(trained_tiny_run):
    """The session's tiny run (12 iterations, checkpoints 4, 8, 12) and its data; copy it to damage it."""
    run_dir, data_dir = trained_tiny_run
    return str(run_dir), data_dir


@pytest.fixture
def run_copy(trained_tiny_run, tmp_path):
    run_dir, data_dir = trained_tiny_run
    return copied_run(run_dir, tmp_path), data_dir


def one_error(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


def resume(run_dir, *flags):
    return train_main(["--resume", str(run_dir), "--max-iterations", "14", *flags])


def metrics_lines(run_dir):
    return (run_dir / "metrics.jsonl").read_text().splitlines()


# ---- data.json ----

def damage_sha256(run_dir):
    record = json.loads((run_dir / "data.json").read_text())
    (run_dir / "data.json").write_text(json.dumps(dict(record, sha256=["x"])))


def test_resume_refuses_a_damaged_data_record_and_takes_it_anew_when_told(run_copy, capsys):
    run_dir, _ = run_copy
    good = json.loads((run_dir / "data.json").read_text())
    damage_sha256(run_dir)
    capsys.readouterr()
    assert resume(run_dir) == 1
    error = one_error(capsys)
    assert error.startswith(f"error: {run_dir / 'data.json'} is damaged (field 'sha256' must be a JSON object, got "
                            f"[\"x\"]): it records which data the run was trained on")
    assert "--accept-damaged-records" in error
    assert len(metrics_lines(run_dir)) == 12  # refused before anything changed
    assert resume(run_dir, "--accept-damaged-records") == 0
    assert "takes the data in" in capsys.readouterr().err
    assert json.loads((run_dir / "data.json").read_text()) == good  # the same data: the same fingerprint again


def test_resume_refuses_a_run_without_data_record(run_copy, capsys):
    run_dir, _ = run_copy
    (run_dir / "data.json").unlink()
    capsys.readouterr()
    assert resume(run_dir) == 1
    assert f"{run_dir / 'data.json'} is missing" in one_error(capsys)
    assert not (run_dir / "data.json").exists()
    assert resume(run_dir, "--accept-damaged-records") == 0
    assert f"warning: {run_dir / 'data.json'} is missing; --resume takes the data" in capsys.readouterr().err
    assert (run_dir / "data.json").exists()


@pytest.mark.parametrize("damage", ["damaged", "missing"])
def test_evaluate_and_generate_refuse_a_missing_or_damaged_data_record(run_copy, tmp_path, capsys, quick_judges,
                                                                      damage):
    run_dir, _ = run_copy
    damage_sha256(run_dir) if damage == "damaged" else (run_dir / "data.json").unlink()
    capsys.readouterr()
    assert evaluate.main(["--checkpoint", str(run_dir), "--samples", "20"]) == 1
    error = one_error(capsys)
    assert f"{run_dir / 'data.json'} is {damage}" in error and "evaluate then goes on without checking" in error
    out = tmp_path / "digits.png"
    assert generate.main(["--checkpoint", str(run_dir), "--out", str(out)]) == 1
    error = one_error(capsys)
    assert f"{run_dir / 'data.json'} is {damage}" in error and "generate then draws from the run anyway" in error
    assert generate.main(["--checkpoint", str(run_dir), "--out", str(out), "--accept-damaged-records"]) == 0
    assert out.exists() and "warning: " in capsys.readouterr().err
    assert evaluate.main(["--checkpoint", str(run_dir), "--samples", "20", "--accept-damaged-records",
                          "--judge-dir", quick_judges]) == 0


def test_accept_damaged_records_goes_with_resume(trained, tmp_path, capsys):
    _, data_dir = trained
    assert train_main(tiny_args(data_dir, str(tmp_path), "new", "--accept-damaged-records")) == 1
    assert "--accept-damaged-records goes with --resume" in one_error(capsys)


# ---- metrics.jsonl ----

def test_resume_refuses_a_damaged_metrics_line_in_the_middle(run_copy, capsys):
    run_dir, _ = run_copy
    lines = metrics_lines(run_dir)
    lines[5] = lines[5][:20]
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    before = (run_dir / "settings.json").read_bytes()
    capsys.readouterr()
    assert resume(run_dir) == 1
    error = one_error(capsys)
    assert error.startswith(f"error: {run_dir / 'metrics.jsonl'}, line 6, is not a metrics line of train.py: not JSON")
    assert "or add --accept-damaged-records to drop it" in error
    assert len(metrics_lines(run_dir)) == 12 and (run_dir / "settings.json").read_bytes() == before
    assert resume(run_dir, "--accept-damaged-records") == 0
    assert f"warning: {run_dir / 'metrics.jsonl'}, line 6" in capsys.readouterr().err
    assert [json.loads(line)["iteration"] for line in metrics_lines(run_dir)] == [*range(5), *range(6, 14)]


def test_resume_drops_the_line_a_crash_cut_short_without_a_word(run_copy, capsys):
    run_dir, _ = run_copy
    text = (run_dir / "metrics.jsonl").read_text()
    (run_dir / "metrics.jsonl").write_text(text + '{"iteration": 12, "epoch": 1, "upd')
    capsys.readouterr()
    assert resume(run_dir) == 0
    assert "warning" not in capsys.readouterr().err
    assert [json.loads(line)["iteration"] for line in metrics_lines(run_dir)] == list(range(14))


def test_resume_refuses_a_run_whose_metrics_are_gone(run_copy, capsys):
    run_dir, _ = run_copy
    (run_dir / "metrics.jsonl").unlink()
    capsys.readouterr()
    assert resume(run_dir) == 1
    assert "metrics.jsonl is missing, with the records of the run's first 12 iterations" in one_error(capsys)
    assert not (run_dir / "metrics.jsonl").exists()
    assert resume(run_dir, "--accept-damaged-records") == 0
    assert [json.loads(line)["iteration"] for line in metrics_lines(run_dir)] == [12, 13]


# ---- sizes and weights ----

@pytest.mark.parametrize("flags, message", [
    (["--scale", "100000"], "error: --scale 100,000 would make a 56,000,000 x 28,000,000 picture (4,704,000.0 GB as "
                            "RGB) of 10 x 20 digits; the limit is 100,000,000 pixels: lower --scale or --per-digit"),
    (["--per-digit", "1000", "--scale", "4"], "error: --scale 4 would make a 112,000 x 1,120 picture"),
    (["--per-digit", "100000"], "error: --per-digit 100,000 would draw 1,000,000 samples (3.1 GB of images); the "
                                "limit is 1,000 per digit"),
])
def test_generate_refuses_a_grid_too_big_for_memory(run_copy, tmp_path, capsys, flags, message):
    run_dir, _ = run_copy
    assert generate.main(["--checkpoint", str(run_dir), "--out", str(tmp_path / "d.png"), *flags]) == 1
    assert one_error(capsys).startswith(message)


def test_evaluate_refuses_more_samples_than_its_limit(run_copy, capsys):
    assert evaluate.main(["--checkpoint", str(run_copy[0]), "--samples", "100001"]) == 1
    assert one_error(capsys) == ("error: --samples 100,001 would hold 0.9 GB of images while they are scored; the "
                                 "limit is 100,000")


def test_latest_weights_of_a_run_without_an_average_is_an_error(run_copy, tmp_path, capsys):
    run_dir, _ = run_copy
    assert generate.main(["--checkpoint", str(run_dir), "--out", str(tmp_path / "d.png"), "--latest-weights"]) == 1
    assert one_error(capsys) == (f"error: --latest-weights: {run_dir} was trained without --g-average, so it has only "
                                 f"G's latest weights, which it draws with anyway; leave --latest-weights out")
    assert evaluate.main(["--checkpoint", str(run_dir), "--samples", "20", "--latest-weights"]) == 1
    assert "was trained without --g-average" in one_error(capsys)


# ---- migrate-check on a damaged checkpoint ----

def test_migrate_check_names_the_runs_checkpoint_and_offers_an_older_one(run_copy, tmp_path):
    run_dir, _ = run_copy
    data = run_dir / "checkpoints" / "ckpt-12.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:1000])
    trained_run = checkpoints.Run(str(run_dir))
    with pytest.raises(CommandError) as refused:
        migration_tf1.continue_tf1_run(trained_run, 2, str(tmp_path / "side"))
    folder = run_dir / "checkpoints"
    assert str(refused.value).startswith(f"checkpoint {folder / 'ckpt-12'} cannot be read (")
    assert str(refused.value).endswith(f"; an older complete checkpoint is {folder / 'ckpt-8'}: pass it as "
                                       f"--checkpoint {folder / 'ckpt-8'}")
    assert not (tmp_path / "side" / "run").exists()


def test_migrate_check_says_the_tf1_sides_own_error_alone(tmp_path):
    class Failed:
        returncode = 1

        def wait(self):
            return 1
    (tmp_path / "tf1-side.log").write_text("some lines\nerror: checkpoint RUN/checkpoints/ckpt-12 cannot be read\n")
    side = migrate.TF1Side.__new__(migrate.TF1Side)
    side.directory, side.process, side.log = str(tmp_path), Failed(), str(tmp_path / "tf1-side.log")
    with pytest.raises(CommandError, match=r"^checkpoint RUN/checkpoints/ckpt-12 cannot be read$"):
        side.reference()
    assert os.path.exists(side.log)
