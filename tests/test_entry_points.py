"""The original's imports and commands work from the repository root; `dcgan-mnist` is `python -m dcgan_mnist`
(the one test here that starts processes)."""
import os
import runpy
import subprocess
import sys

import pytest
from conftest import ROOT

from dcgan_mnist import load as dcgan_load
from dcgan_mnist import model as dcgan_model
from dcgan_mnist import util as dcgan_util
from dcgan_mnist.__main__ import main as dcgan_mnist_main


def test_original_imports_work_from_the_root():
    """The original's `from model import *`, `from util import *` and `from load import ...` (the repository root
    is on sys.path, as it is for `python train.py`)."""
    names = {}
    for module in ("model", "util", "load"):
        exec(f"from {module} import *", names)
    assert names["DCGAN"] is dcgan_model.DCGAN and names["batchnormalize"] is dcgan_model.batchnormalize
    assert names["lrelu"] is dcgan_model.lrelu and names["bce"] is dcgan_model.bce
    assert names["OneHot"] is dcgan_util.OneHot and names["save_visualization"] is dcgan_util.save_visualization
    assert names["mnist_with_valid_set"] is dcgan_load.mnist_with_valid_set and names["mnist"] is dcgan_load.mnist
    with dcgan_model.tf.Graph().as_default():
        Z, Y, X, d, g, pr, pg = names["DCGAN"](batch_size=3).build_model()
    assert (Z.shape.as_list(), X.shape.as_list()) == ([3, 100], [3, 28, 28, 1])


def test_module_lists_its_commands_and_rejects_unknown_ones(capsys):
    assert dcgan_mnist_main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("train", "compare", "shapes", "generate", "gif", "evaluate", "bench", "ablate"):
        assert f"  {command} " in out
    assert dcgan_mnist_main(["fly"]) == 2
    assert "unknown command 'fly'" in capsys.readouterr().err


def test_train_help_lists_every_setting(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["train.py", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(os.path.join(ROOT, "train.py"), run_name="__main__")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--n-epochs", "--learning-rate", "--batch-size", "--dim-z", "--dim-W1", "--dim-W2", "--dim-W3",
                 "--visualize-dim", "--k", "--step", "--loss", "--d-output", "--recipe", "--seed", "--max-iterations",
                 "--dataset", "--data-dir", "--valid-size", "--vis-dir", "--log", "--run-dir", "--resume"):
        assert flag in out, flag


def test_console_command_is_python_m_dcgan_mnist():
    command = os.path.join(os.path.dirname(sys.executable), "dcgan-mnist")
    if not os.path.exists(command):
        pytest.skip(f"{command} is not installed: `pip install -e .` (scripts/setup.sh) puts it next to python")
    env = dict(os.environ, PYTHONPATH=ROOT)  # run this checkout's code even if the install points elsewhere
    console = subprocess.run([command, "--help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    module = subprocess.run([sys.executable, "-m", "dcgan_mnist", "--help"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert console.returncode == module.returncode == 0
    assert console.stdout == module.stdout
    result = subprocess.run([command, "gif", "--out", "x.png"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2 and "must end in .gif" in result.stderr
