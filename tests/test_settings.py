"""settings.py: one definition of every setting; settings.json is checked field by field when a run is read."""
import dataclasses
import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, copied_run

from dcgan_mnist import settings
from dcgan_mnist.settings import Evaluation, Settings
from dcgan_mnist.tools import evaluate, generate, shapes
from dcgan_mnist.train import main as train_main

# (field, a value of the wrong type or out of range, what the message says it must be)
CORRUPTIONS = [
    ("batch_size", "x", "an integer of 2 or more"),
    ("batch_size", 1, "an integer of 2 or more"),
    ("batch_size", 16.0, "an integer of 2 or more"),
    ("batch_size", True, "an integer of 2 or more"),
    ("n_epochs", -3, "a positive integer"),
    ("learning_rate", "fast", "a positive number"),
    ("learning_rate", 0, "a positive number"),
    ("loss", "bogus", "one of clipped, stable"),
    ("d_output", None, "one of original, lrelu, linear"),
    ("recipe", "better", "one of original, repaired"),
    ("step", 0, "a positive integer"),
    ("k", 0, "a positive integer"),
    ("g_average", 1.5, "a number from 0 up to (not including) 1"),
    ("g_average", "0.9", "a number from 0 up to (not including) 1"),
    ("threads", -1, "an integer of 0 or more"),
    ("seed", -1, "an integer from 0 to 4294967295"),
    ("seed", 2**32, "an integer from 0 to 4294967295"),
    ("visualize_dim", 5, "a square number"),
    ("visualize_dim", 1, "a square number of 4 or more"),
    ("valid_size", [50], "an integer of 0 or more"),
    ("data_dir", 3, "a text or null"),
    ("vis_dir", None, "a text"),
    ("download", "yes", "true or false"),
    ("max_iterations", 2.5, "an integer of 0 or more or null"),
    ("log", "verbose", "one of original, compact"),
]


@pytest.fixture
def trained(trained_tiny_run):
    """The session's finished tiny run (its settings.json as written), to corrupt copies of."""
    return trained_tiny_run[0]


def corrupted_copy(trained, tmp_path, change):
    """A copy of the trained run whose settings.json has ``change(values)`` applied."""
    run_dir = copied_run(trained, tmp_path)
    path = run_dir / "settings.json"
    values = json.loads(path.read_text())
    change(values)
    path.write_text(json.dumps(values))
    return run_dir, path


def one_error_line(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_settings_json_is_the_settings_type_written_whole(trained):
    values = json.loads((trained / "settings.json").read_text())
    assert sorted(values) == sorted(f.name for f in dataclasses.fields(Settings))
    assert Settings.from_file(str(trained / "settings.json")) == Settings(**values)
    assert values["seed"] == 1 and values["batch_size"] == 16


@pytest.mark.parametrize("name, value, wanted", CORRUPTIONS)
def test_every_wrong_field_is_named_with_the_file(trained, tmp_path, capsys, name, value, wanted):
    run_dir, path = corrupted_copy(trained, tmp_path, lambda values: values.update({name: value}))
    assert train_main(["--resume", str(run_dir), "--max-iterations", "4"]) == 1
    line = one_error_line(capsys)
    assert str(path) in line and f"field {name!r} must be {wanted}" in line, line


ADDED_LATER = [f.name for f in dataclasses.fields(Settings)
               if f.metadata["before_it_existed"] is not settings.NOT_ADDED_LATER]


@pytest.mark.parametrize("name", [f.name for f in dataclasses.fields(Settings) if f.name not in ADDED_LATER])
def test_a_missing_field_is_refused_not_filled_with_todays_default(trained, tmp_path, capsys, name):
    run_dir, path = corrupted_copy(trained, tmp_path, lambda values: values.pop(name))
    assert train_main(["--resume", str(run_dir)]) == 1
    line = one_error_line(capsys)
    assert f"{path}: field {name!r} is missing" in line and "older version" in line


def test_a_field_added_later_takes_the_one_value_older_runs_had(trained, tmp_path):
    assert ADDED_LATER == ["keep_best", "augment", "augment_target", "augment_speed", "precision", "kernels"]
    run_dir, path = corrupted_copy(trained, tmp_path, lambda values: [values.pop(name) for name in ADDED_LATER])
    loaded = Settings.from_file(str(path))
    # The only arithmetic before --precision and --kernels existed, and the only images D saw before --augment.
    assert (loaded.precision, loaded.kernels, loaded.augment) == ("fp32", "original", "none")
    # --augment adaptive's own settings came with it; a run before them had none of its own.
    assert (loaded.augment_target, loaded.augment_speed) == (Settings().augment_target, Settings().augment_speed)
    # Runs before --keep-best kept no best checkpoint.
    assert loaded.keep_best == "none"
    assert train_main(["--resume", str(run_dir), "--max-iterations", "13"]) == 0  # one step past the 12 it had


def test_an_unknown_field_and_a_non_object_are_refused(trained, tmp_path, capsys):
    run_dir, path = corrupted_copy(trained, tmp_path, lambda values: values.update(colour="blue"))
    assert train_main(["--resume", str(run_dir)]) == 1
    assert f"{path}: field 'colour' is not a setting" in one_error_line(capsys)
    path.write_text("[1, 2]")
    assert train_main(["--resume", str(run_dir)]) == 1
    assert f"{path} holds no training settings" in one_error_line(capsys)


@pytest.mark.parametrize("command, extra", [
    (generate.main, ["--out", "never.png"]),
    (evaluate.main, ["--samples", "20"]),
    (shapes.main, []),
])
def test_every_reader_of_a_run_checks_its_settings(trained, tmp_path, capsys, command, extra):
    run_dir, path = corrupted_copy(trained, tmp_path, lambda values: values.update(k=0))
    assert command(["--checkpoint", str(run_dir), *extra]) == 1
    assert f"{path}: field 'k' must be a positive integer, got 0" in one_error_line(capsys)


def test_a_damaged_settings_json_from_the_command_line_exits_1_without_a_traceback(trained, tmp_path):
    run_dir, path = corrupted_copy(trained, tmp_path, lambda values: values.update(batch_size="x"))
    result = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--resume", str(run_dir)],
                            capture_output=True, text=True, cwd=str(tmp_path))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {path}: field 'batch_size' must be an integer of 2 or more (batchnorm normalises over the batch), "
        f"got 'x'")
    assert "Traceback" not in result.stderr


def test_settings_check_themselves_wherever_they_are_built():
    with pytest.raises(ValueError, match="field 'k' must be a positive integer, got 0"):
        Settings(k=0)
    with pytest.raises(ValueError, match="field 'samples' must be 2 or more"):
        Evaluation(samples=1)
    assert Settings().replace(recipe="repaired").switches() == settings.RECIPES["original"]
    assert settings.describe_switches({"recipe": "repaired", **settings.RECIPES["repaired"]}) == (
        "recipe repaired (--loss stable --d-output linear --g-average 0.99 --augment none --kernels original)")


def test_each_flag_is_declared_once_in_the_package():
    """Every add_argument of the package, counted in its source: a flag shared by several commands is declared in
    settings.add_flags, from the field that defines it."""
    import re

    package = os.path.join(ROOT, "dcgan_mnist")
    declared = []
    for folder, _, files in os.walk(package):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name)) as f:
                    declared += re.findall(r"add_argument\(\s*\"(--[a-z0-9-]+)\"", f.read(), re.I)
    # --iterations (a run's length, timed iterations, lockstep iterations) and --out (a folder, a picture, a GIF)
    # mean another thing in each command that has them.
    repeated = sorted({flag for flag in declared if declared.count(flag) > 1} - {"--iterations", "--out"})
    assert repeated == [] and declared.count("--checkpoint") == declared.count("--json") == 1, repeated
    made_from_fields = {"--threads", "--seed", "--data-dir", "--valid-size", "--judge-dir", "--samples", "--loss"}
    assert not made_from_fields & set(declared)


def test_a_flag_and_its_field_agree_on_what_is_valid(capsys):
    for argv, message in ((["--seed", "-1"], "--seed: expected an integer from 0 to 4294967295"),
                          (["--visualize-dim", "5"], "--visualize-dim: expected a square number"),
                          (["--k", "0"], "--k: expected a positive integer")):
        with pytest.raises(SystemExit) as stopped:
            settings.parse_train_flags(argv)
        assert stopped.value.code == 2 and message in capsys.readouterr().err
