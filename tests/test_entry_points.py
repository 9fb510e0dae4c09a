"""The original's imports and commands work from the repository root."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(*args):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_original_imports_work_from_the_root():
    code = ("from model import *\nfrom util import *\nfrom load import mnist_with_valid_set, mnist\n"
            "import dcgan_mnist.model as m, dcgan_mnist.util as u, dcgan_mnist.load as l\n"
            "assert DCGAN is m.DCGAN and batchnormalize is m.batchnormalize and lrelu is m.lrelu and bce is m.bce\n"
            "assert OneHot is u.OneHot and save_visualization is u.save_visualization\n"
            "assert mnist_with_valid_set is l.mnist_with_valid_set and mnist is l.mnist\n"
            "Z, Y, X, d, g, pr, pg = DCGAN(batch_size=3).build_model()\n"
            "print(Z.shape, X.shape)\n")
    result = run_python("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(3, 100) (3, 28, 28, 1)"


def test_module_lists_its_commands_and_rejects_unknown_ones():
    result = run_python("-m", "dcgan_mnist", "--help")
    assert result.returncode == 0
    for command in ("train", "compare", "shapes", "generate", "gif", "evaluate", "bench", "ablate"):
        assert f"  {command} " in result.stdout
    result = run_python("-m", "dcgan_mnist", "fly")
    assert result.returncode == 2 and "unknown command 'fly'" in result.stderr


def test_train_help_lists_every_setting():
    result = run_python("train.py", "--help")
    assert result.returncode == 0
    for flag in ("--n-epochs", "--learning-rate", "--batch-size", "--dim-z", "--dim-W1", "--dim-W2", "--dim-W3",
                 "--visualize-dim", "--k", "--step", "--loss", "--seed", "--max-iterations", "--dataset",
                 "--data-dir", "--valid-size", "--vis-dir", "--log", "--run-dir", "--resume"):
        assert flag in result.stdout, flag


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
