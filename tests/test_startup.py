"""Start-up: --help without TensorFlow, and TensorFlow's start-up chatter kept off stderr unless asked for."""
import json
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT, TINY

from dcgan_mnist import graph, lazy_tf
from dcgan_mnist.model import tf

STAND_IN = os.path.join(ROOT, "tests", "original_stand_in.py")
TINY_RUN = [*TINY, "--max-iterations", "1"]
# Lines TensorFlow 2.21 writes on a CPU-only machine while it loads and while a session first runs.
NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
CUDA_PROBE = ("I0000 00:00:1795925974.621914    4233 cudart_stub.cc:31] Could not find cuda drivers on your "
              "machine, GPU will not be used.\n")
CPU_NOTE = ("I0000 00:00:1795925974.709567    4233 cpu_feature_guard.cc:227] This TensorFlow binary is optimized "
            "to use available CPU instructions in performance-critical operations.\n")
CUINIT = ("E0000 00:00:1795926133.178041    5398 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
          "Failed call to cuInit: UNKNOWN ERROR (303)\n")
NO_TRACE = "W0000 00:00:1796613361.709162   29670 xplane_to_step_stats.cc:84] GPU trace was not collected.\n"
WARNING_LINE = "W1123 14:15:00.123456    5398 cpu_allocator_impl.cc:83] Allocation of 411041792 exceeds 10%\n"
INFO_LINE = re.compile(r"^I\d{4} ", re.M)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in (lazy_tf.LEVEL_VARIABLE, lazy_tf.VERBOSE_VARIABLE)}
    return dict(env, PYTHONPATH=ROOT, **extra)


def train_run(cwd, data_dir, **env):
    return subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *TINY_RUN, "--data-dir", data_dir],
                          cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=300)


HELP_SCRIPT = """
import contextlib, io, json, runpy, sys
from dcgan_mnist.__main__ import COMMANDS, main
loaded = {}
def ask_for_help(call):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        try:
            call()
        except SystemExit:
            pass
    return out.getvalue()
for command in COMMANDS:
    text = ask_for_help(lambda: main([command, "--help"]))
    loaded[command] = ("tensorflow" in sys.modules, text.startswith("usage:"))
sys.argv = ["train.py", "--help"]
text = ask_for_help(lambda: runpy.run_path("train.py", run_name="__main__"))
loaded["train.py"] = ("tensorflow" in sys.modules, text.startswith("usage:"))
print(json.dumps(loaded))
"""


def test_help_of_every_command_does_not_import_tensorflow():
    result = subprocess.run([sys.executable, "-c", HELP_SCRIPT], cwd=ROOT, env=clean_env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert set(loaded) == {"train", "compare", "shapes", "generate", "gif", "plot", "evaluate", "bench", "ablate",
                           "migrate-check", "train.py"}
    assert {name: helped for name, (_, helped) in loaded.items()} == dict.fromkeys(loaded, True)
    assert [name for name, (tensorflow, _) in loaded.items() if tensorflow] == []


def test_a_run_prints_none_of_tensorflows_start_up_chatter(mnist_dir, tmp_path):
    result = train_run(tmp_path, mnist_dir)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 6  # the original's lines of one iteration, untouched
    for chatter in ("absl::InitializeLog", "cudart_stub", "cpu_feature_guard", "oneDNN", "failed call to cuInit",
                    "is deprecated and will be removed", "Instructions for updating"):
        assert chatter not in result.stderr
    assert not INFO_LINE.search(result.stderr), result.stderr


def test_the_verbose_variable_brings_the_chatter_back(mnist_dir, tmp_path):
    result = train_run(tmp_path, mnist_dir, **{lazy_tf.VERBOSE_VARIABLE: "1"})
    assert result.returncode == 0, result.stderr
    assert "disable_resource_variables" in result.stderr and "is deprecated and will be removed" in result.stderr
    assert INFO_LINE.search(result.stderr), result.stderr


def test_compare_can_be_the_first_to_use_tensorflow_which_loads_no_keras(tmp_path):
    """compare swaps sys.modules['tensorflow'] while it imports the original; TensorFlow must be imported first.
    Neither Keras nor matplotlib is loaded with it, and Keras can still be imported."""
    os.makedirs(tmp_path / "mnist")
    with open(STAND_IN) as source, open(tmp_path / "mnist" / "model.py", "w") as target:
        target.write(source.read())
    code = ("import sys\nfrom dcgan_mnist.tools import compare\nassert 'tensorflow' not in sys.modules\n"
            f"_, module = compare.load_original({str(tmp_path)!r})\n"
            "assert module.tf is compare.tf and sys.modules['tensorflow'].__name__ == 'tensorflow'\n"
            "assert [name for name in sys.modules if name.split('.')[0] in ('keras', 'matplotlib')] == []\n"
            "import keras\nassert keras.optimizers.Adam\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean_env(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_the_eager_keras_import_fails_only_while_tensorflow_loads(monkeypatch):
    monkeypatch.setattr(lazy_tf, "EAGER_KERAS", "json.never_loaded")
    with lazy_tf.keras_left_unloaded():
        with pytest.raises(ImportError, match="json.never_loaded"):
            __import__("json.never_loaded")
    assert "json.never_loaded" not in sys.modules
    monkeypatch.setattr(lazy_tf, "EAGER_KERAS", "json.decoder")
    loaded = sys.modules["json.decoder"]
    with lazy_tf.keras_left_unloaded():
        assert sys.modules["json.decoder"] is loaded
    assert sys.modules["json.decoder"] is loaded


def test_tf_is_v1_graph_mode_on_first_use():
    assert not tf.executing_eagerly()
    with tf.Graph().as_default():
        assert tf.placeholder(tf.float32, [2, 3]).shape.as_list() == [2, 3]


def test_graph_gate_is_tensorflows_gate_graph():
    assert graph.GATE == tf.train.Optimizer.GATE_GRAPH


@pytest.mark.parametrize("level, kept", [
    (0, [NOTICE, CUDA_PROBE, CPU_NOTE, WARNING_LINE, CUINIT]),
    (1, [WARNING_LINE, CUINIT]),
    (2, [CUINIT]),
    (3, []),
])
def test_captured_lines_below_the_level_are_dropped(level, kept):
    python_warning = "/x/numpy/__init__.py:1: UserWarning: not an absl line, so always shown\n"
    text = NOTICE + CUDA_PROBE + CPU_NOTE + WARNING_LINE + CUINIT + python_warning
    assert list(lazy_tf.kept_lines(text, level)) == kept + [python_warning]


def test_the_no_gpu_lines_are_dropped_only_when_no_gpu_was_found(capfd):
    for gpus, shown in ((0, WARNING_LINE), (1, WARNING_LINE + CUINIT + NO_TRACE)):
        with lazy_tf.filtered_stderr(1, found := {}):
            os.write(2, (WARNING_LINE + CUINIT + NO_TRACE).encode())
            found["gpus"] = gpus
        assert capfd.readouterr().err == shown


def test_stderr_written_during_the_import_is_filtered_at_the_file_descriptor(capfd):
    with lazy_tf.filtered_stderr(1):
        os.write(2, (NOTICE + CUDA_PROBE + WARNING_LINE).encode())
    assert capfd.readouterr().err == WARNING_LINE


def test_everything_is_written_back_when_the_import_fails(capfd):
    with pytest.raises(ImportError, match="no libcuda"):
        with lazy_tf.filtered_stderr(1):
            os.write(2, (NOTICE + CUDA_PROBE).encode())
            raise ImportError("no libcuda")
    assert capfd.readouterr().err == NOTICE + CUDA_PROBE


@pytest.mark.parametrize("users_value, level", [(None, 1), ("0", 0), ("3", 3), ("garbage", 0)])
def test_a_level_the_user_set_wins(monkeypatch, users_value, level):
    if users_value is None:
        monkeypatch.delenv(lazy_tf.LEVEL_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(lazy_tf.LEVEL_VARIABLE, users_value)
    assert lazy_tf.min_log_level() == level
    assert os.environ[lazy_tf.LEVEL_VARIABLE] == (users_value or "1")
