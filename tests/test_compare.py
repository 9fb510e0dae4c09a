"""The compare tool against tests/original_stand_in.py, a TF 1.x-style stand-in for the original model.py.

The exact stand-in must match; each one-change variant must fail and name the quantity that changed.
"""
import json

import pytest
from conftest import SMALL_MODEL, write_stand_in

from dcgan_mnist.cli import CommandError
from dcgan_mnist.graph import TrainingGraph
from dcgan_mnist.tools import compare

SMALL = ["--batch-size", "8", *SMALL_MODEL, "--iterations", "4"]


def run_json(capsys, path, *extra):
    code = compare.main(["--original", path, *SMALL, "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


def test_no_lockstep_iterations_is_reported_as_not_run(tmp_path, capsys):
    path = write_stand_in(tmp_path)
    assert compare.main(["--original", path, *SMALL, "--iterations", "0"]) == 0
    out = capsys.readouterr().out
    assert "lockstep not run" in out and "lockstep 0/" not in out and "lockstep 13/13" not in out


def test_exact_stand_in_matches_everywhere(tmp_path, capsys):
    code, report = run_json(capsys, write_stand_in(tmp_path))
    assert code == 0
    assert report["match"] is True and report["first_divergence"] is None
    # 16 layers of generate, 17 of each discriminate call, 16 + the sigmoid of samples_generator
    assert report["summary"] == {"variables": {"rows": 8, "differ": 0}, "layers": {"rows": 67, "differ": 0},
                                 "forward outputs": {"rows": 3, "differ": 0}, "costs": {"rows": 2, "differ": 0},
                                 "gradients": {"rows": 8, "differ": 0}, "lockstep": {"rows": 13, "differ": 0}}
    rows = {(r["section"], r["name"]): r for r in report["rows"]}
    assert rows[("variables", "gen_W2")]["original"] == "42x784"  # [W1 32 + 10 labels, W2 16 * 7 * 7]
    assert rows[("layers", "discriminate_1/h2_concat_y")]["original"] == "ConcatV2 8x794"
    assert rows[("layers", "samples_generator/sigmoid")]["ours"] == "Sigmoid 196x28x28x1"
    assert rows[("forward outputs", "sampler output")]["ours"] == "196x28x28x1"
    assert rows[("lockstep", "updated net")]["ours"] == "DGDG"
    # Values: every layer, 3 forward outputs, 2 costs, 8 gradients, 4 printed traces, 8 final weights.
    measured = [r["max_abs"] for r in report["rows"] if r["max_abs"] is not None]
    assert measured == [0] * (67 + 3 + 2 + 8 + 4 + 8)
    assert [t["updated"] for t in report["traces"]["original"]] == ["D", "G", "D", "G"]


def test_mnist_folder_path_and_text_report(tmp_path, capsys):
    write_stand_in(tmp_path)
    code = compare.main(["--original", str(tmp_path / "mnist"), *SMALL])
    out = capsys.readouterr().out
    assert code == 0
    assert str(tmp_path / "mnist" / "model.py") in out
    assert [line.split() for line in out.splitlines() if line.strip().startswith(("gen_W2", "p_gen"))] == [
        ["gen_W2", "42x784", "42x784", "-", "-", "-", "ok"], ["p_gen", "4", "4", "0", "0", "-", "ok"]]
    assert "summary: variables 8/8 match; layers 67/67 match; forward outputs 3/3 match; costs 2/2 match; " \
           "gradients 8/8 match; lockstep 13/13 match\nresult: MATCH\n" in out


@pytest.mark.parametrize("edits, section, name", [
    ([("def lrelu(X, leak=0.2)", "def lrelu(X, leak=0.3)")], "layers", "discriminate/h1_lrelu"),
    ([("logits = tf.clip_by_value(logits, 1e-7, 1. - 1e-7)", "pass")], "costs", "d_cost"),
    ([("values=[h1, Y]", "values=[Y, h1]")], "layers", "generate/h1_concat_y"),
    ([("[dim_W1 + dim_y, 1]", "[dim_W1 + dim_y, 2]")], "variables", "discrim_W4"),
], ids=["leak", "missing-clip", "swapped-concat", "wrong-shape"])
def test_one_change_stand_ins_fail_naming_the_quantity(tmp_path, capsys, edits, section, name):
    code, report = run_json(capsys, write_stand_in(tmp_path, edits))
    assert code == 1
    assert report["match"] is False
    assert (report["first_divergence"]["section"], report["first_divergence"]["name"]) == (section, name)


def test_wrong_shape_is_marked_in_the_tables_and_stops_the_numbers(tmp_path, capsys):
    write_stand_in(tmp_path, [("[dim_W1 + dim_y, 1]", "[dim_W1 + dim_y, 2]")])
    code = compare.main(["--original", str(tmp_path), *SMALL])
    out = capsys.readouterr().out
    assert code == 1
    assert [line.split() for line in out.splitlines() if line.strip().startswith("discrim_W4")] == [
        ["discrim_W4", "42x2", "42x1", "-", "-", "-", "DIFF"]]
    assert [line.split() for line in out.splitlines() if "/h4_matmul" in line] == [
        [f"{call}/h4_matmul", "MatMul", "8x2", "MatMul", "8x1", "-", "-", "-", "DIFF"]
        for call in ("discriminate", "discriminate_1")]
    assert "values and lockstep training not run" in out
    # h4_matmul, h4_bn and h4_lrelu of both discriminate calls are [8,2]
    assert "summary: variables 7/8 match; layers 61/67 match; forward outputs not run; costs not run; " \
           "gradients not run; lockstep not run" in out
    assert "first divergence: variable discrim_W4: 42x2 in the original, 42x1 here" in out


def test_stable_loss_differs_in_costs_and_gradients_only(tmp_path, capsys):
    code, report = run_json(capsys, write_stand_in(tmp_path), "--loss", "stable")
    assert code == 1
    assert report["first_divergence"]["name"] == "d_cost"
    rows = {(r["section"], r["name"]): r for r in report["rows"]}
    assert all(r["ok"] for r in report["rows"] if r["section"] in ("variables", "layers"))
    for same in ("P(real)", "P(gen)", "sampler output"):
        assert rows[("forward outputs", same)]["max_abs"] == 0
    assert report["summary"]["costs"] == {"rows": 2, "differ": 2}
    assert report["summary"]["gradients"] == {"rows": 8, "differ": 8}
    assert not rows[("lockstep", "final discrim_W1")]["ok"]


def test_stable_loss_equals_the_original_without_its_clip(tmp_path, capsys):
    unclipped = [("logits = tf.clip_by_value(logits, 1e-7, 1. - 1e-7)", "pass")]
    code, report = run_json(capsys, write_stand_in(tmp_path, unclipped), "--loss", "stable")
    assert code == 0, report["first_divergence"]


def test_lockstep_catches_a_step_that_reports_pre_update_numbers(tmp_path, capsys, monkeypatch):
    real_step = TrainingGraph.iterate

    def fetch_all_in_the_update_run(self, sess, iteration, Xs, Ys, Zs, k=2, after_update=True):
        before = sess.run([self.g_cost, self.d_cost, self.p_real, self.p_gen],
                          feed_dict={self.Z: Zs, self.Y: Ys, self.image_real: Xs})
        out = real_step(self, sess, iteration, Xs, Ys, Zs, k, after_update=False)
        return {**out, "gen_loss": before[0], "discrim_loss": before[1],
                "p_real": before[2].mean(), "p_gen": before[3].mean()}

    monkeypatch.setattr(TrainingGraph, "iterate", fetch_all_in_the_update_run)
    code, report = run_json(capsys, write_stand_in(tmp_path))
    assert code == 1
    assert report["first_divergence"]["section"] == "lockstep"
    assert report["first_divergence"]["iteration"] == 0
    assert report["first_divergence"]["name"] == "gen_loss"
    assert all(r["ok"] for r in report["rows"] if r["section"] != "lockstep")


def test_lockstep_catches_a_step_that_updates_g_first(tmp_path, capsys, monkeypatch):
    real_step = TrainingGraph.iterate
    monkeypatch.setattr(TrainingGraph, "iterate", lambda self, sess, iteration, *args, **kwargs:
                        real_step(self, sess, iteration + 1, *args, **kwargs))
    code = compare.main(["--original", write_stand_in(tmp_path), *SMALL])
    assert code == 1
    assert "first divergence: lockstep updated net (from iteration 0): DGDG in the original, GDGD here" in \
        capsys.readouterr().out


@pytest.mark.parametrize("name, message", [
    ("nowhere", " does not exist; expected a checkout of yihui-he/GAN-MNIST or its mnist/ folder"),
    ("model.py", " is a file, not a directory"),
    ("empty", ": found neither model.py nor mnist/model.py"),
])
def test_bad_original_path_says_what_was_expected(tmp_path, capsys, name, message):
    (tmp_path / "model.py").write_text("")
    (tmp_path / "empty").mkdir()
    path = str(tmp_path / name)
    assert compare.main(["--original", path]) == 2
    assert f"error: --original {path!r}{message}" in capsys.readouterr().err


def test_model_py_without_dcgan_class(tmp_path, capsys):
    (tmp_path / "model.py").write_text("import tensorflow as tf\n\ndef lrelu(X, leak=0.2):\n    return X\n")
    assert compare.main(["--original", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'model.py'} has no class DCGAN" in err


def test_different_signature_names_the_missing_arguments(tmp_path, capsys):
    # Shaped like the original's face/model.py: no labels, so no dim_y and one-argument networks.
    (tmp_path / "model.py").write_text(
        "import tensorflow as tf\n\n"
        "class DCGAN():\n"
        "    def __init__(self, batch_size=100, image_shape=[64, 64, 3], dim_z=100, dim_W1=1024, dim_W2=512,\n"
        "                 dim_W3=256, dim_W4=128, dim_W5=3):\n"
        "        pass\n")
    assert compare.main(["--original", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "DCGAN.__init__ has no argument dim_y, dim_channel" in err
    assert "DCGAN(batch_size, image_shape, dim_z, dim_y, dim_W1, dim_W2, dim_W3, dim_channel)" in err


def test_one_argument_generate_is_refused(tmp_path):
    write_stand_in(tmp_path, [("def generate(self, Z, Y):", "def generate(self, Z):")])
    with pytest.raises(CommandError, match=r"DCGAN.generate takes \(Z\), the original's takes \(Z, Y\)"):
        compare.load_original(str(tmp_path))


def test_model_py_not_using_tensorflow_as_tf_is_refused(tmp_path):
    write_stand_in(tmp_path, [("import tensorflow as tf\n", "import tensorflow as tf\nimport numpy as tf\n")])
    with pytest.raises(CommandError, match="does not `import tensorflow as tf` as the original does"):
        compare.load_original(str(tmp_path))


def test_import_error_is_reported_with_the_file(tmp_path, capsys):
    (tmp_path / "model.py").write_text("import cv2_missing_module\n")
    assert compare.main(["--original", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "model.py") in err and "ModuleNotFoundError" in err


def test_tensorflow_module_is_restored_after_loading(tmp_path):
    import sys

    import tensorflow
    write_stand_in(tmp_path)
    _, module = compare.load_original(str(tmp_path))
    assert sys.modules["tensorflow"] is tensorflow
    assert module.tf is compare.tf  # the original's `tf` is tf.compat.v1
    assert module.tf is not tensorflow


def test_bad_batch_size_is_an_argument_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        compare.main(["--original", ".", "--batch-size", "0"])
    assert exit_info.value.code == 2
    assert "--batch-size: expected an integer of 2 or more (batchnorm normalises over the batch), got '0'" in \
        capsys.readouterr().err
