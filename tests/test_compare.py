"""The compare tool against tests/original_twin.py, a TF 1.x-style stand-in for the original model.py.

The exact twin must match; each one-change variant must fail and name the quantity that changed.
"""
import json
import os

import pytest

from dcgan_mnist import compare
from dcgan_mnist.graph import TrainingGraph

TWIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "original_twin.py")
SMALL = ["--batch-size", "8", "--dim-W1", "32", "--dim-W2", "16", "--dim-W3", "8", "--iterations", "4"]


def write_twin(root, edits=()):
    """A fake checkout at ``root`` whose mnist/model.py is the twin with each (old, new) edit applied once."""
    with open(TWIN) as f:
        source = f.read()
    for old, new in edits:
        assert source.count(old) == 1, f"the twin must contain {old!r} exactly once"
        source = source.replace(old, new)
    os.makedirs(os.path.join(root, "mnist"))
    with open(os.path.join(root, "mnist", "model.py"), "w") as f:
        f.write(source)
    return str(root)


def run_json(capsys, path, *extra):
    code = compare.main(["--original", path, *SMALL, "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


def test_exact_twin_matches_everywhere(tmp_path, capsys):
    code, report = run_json(capsys, write_twin(tmp_path))
    assert code == 0
    assert report["match"] is True and report["first_divergence"] is None
    sections = [r["section"] for r in report["rows"]]
    assert sections.count("variables") == 8
    assert sections.count("layers") == 16 + 17 + 17 + 17  # generate, discriminate twice, samples_generator
    assert sections.count("gradients") == 8
    assert sections.count("lockstep") == 1 + 4 + 8  # schedule, four printed numbers, final weights
    rows = {(r["section"], r["name"]): r for r in report["rows"]}
    assert rows[("variables", "gen_W2")]["original_shape"] == [32 + 10, 16 * 7 * 7]
    assert rows[("layers", "discriminate_1/h2_concat_y")]["original_shape"] == [8, 16 * 7 * 7 + 10]
    assert rows[("layers", "samples_generator/sigmoid")]["our_shape"] == [196, 28, 28, 1]
    assert rows[("outputs", "sampler output")]["shape"] == [196, 28, 28, 1]
    assert rows[("lockstep", "updated net")]["ours"] == "DGDG"
    assert len(rows[("lockstep", "gen_loss")]["original"]) == 4


def test_mnist_folder_path_and_text_report(tmp_path, capsys):
    write_twin(tmp_path)
    code = compare.main(["--original", str(tmp_path / "mnist"), *SMALL])
    out = capsys.readouterr().out
    assert code == 0
    assert str(tmp_path / "mnist" / "model.py") in out
    assert "summary: variables 8/8 match; layers 67/67 match" in out
    assert out.rstrip().endswith("result: MATCH")


@pytest.mark.parametrize("edits, section, name", [
    ([("def lrelu(X, leak=0.2)", "def lrelu(X, leak=0.3)")], "layers", "discriminate/h1_lrelu"),
    ([("logits = tf.clip_by_value(logits, 1e-7, 1. - 1e-7)", "pass")], "outputs", "d_cost"),
    ([("values=[h1, Y]", "values=[Y, h1]")], "layers", "generate/h1_concat_y"),
    ([("[dim_W1 + dim_y, 1]", "[dim_W1 + dim_y, 2]")], "variables", "discrim_W4"),
], ids=["leak", "missing-clip", "swapped-concat", "wrong-shape"])
def test_one_change_twins_fail_naming_the_quantity(tmp_path, capsys, edits, section, name):
    code, report = run_json(capsys, write_twin(tmp_path, edits))
    assert code == 1
    assert report["match"] is False
    assert (report["first_divergence"]["section"], report["first_divergence"]["name"]) == (section, name)


def test_wrong_shape_is_marked_in_the_tables_and_stops_the_numbers(tmp_path, capsys):
    write_twin(tmp_path, [("[dim_W1 + dim_y, 1]", "[dim_W1 + dim_y, 2]")])
    code = compare.main(["--original", str(tmp_path), *SMALL])
    out = capsys.readouterr().out
    assert code == 1
    assert [line.split() for line in out.splitlines() if line.strip().startswith("discrim_W4")] == [
        ["discrim_W4", "42x2", "84", "42x1", "42", "DIFF"]]
    assert [line.split()[-1] for line in out.splitlines() if "/h4_matmul" in line] == ["DIFF", "DIFF"]
    assert "values and lockstep training not run" in out
    assert "first divergence: variable discrim_W4: shape 42x2 in the original, 42x1 here" in out


def test_stable_loss_differs_in_costs_and_gradients_only(tmp_path, capsys):
    code, report = run_json(capsys, write_twin(tmp_path), "--loss", "stable")
    assert code == 1
    assert report["first_divergence"]["name"] == "d_cost"
    rows = {(r["section"], r["name"]): r for r in report["rows"]}
    assert all(r["ok"] for r in report["rows"] if r["section"] in ("variables", "layers"))
    for same in ("P(real)", "P(gen)", "sampler output"):
        assert rows[("outputs", same)]["max_abs"] == 0
    for cost in ("d_cost", "g_cost"):
        assert not rows[("outputs", cost)]["ok"]
    assert not all(r["ok"] for r in report["rows"] if r["section"] == "gradients")
    assert not rows[("lockstep", "final discrim_W1")]["ok"]


def test_stable_loss_equals_the_original_without_its_clip(tmp_path, capsys):
    unclipped = [("logits = tf.clip_by_value(logits, 1e-7, 1. - 1e-7)", "pass")]
    code, report = run_json(capsys, write_twin(tmp_path, unclipped), "--loss", "stable")
    assert code == 0, report["first_divergence"]


def test_lockstep_catches_a_step_that_reports_pre_update_numbers(tmp_path, capsys, monkeypatch):
    real_step = TrainingGraph.step

    def fetch_all_in_the_update_run(self, sess, iteration, Xs, Ys, Zs, k=2, evaluate=True):
        before = sess.run([self.g_cost, self.d_cost, self.p_real, self.p_gen],
                          feed_dict={self.Z: Zs, self.Y: Ys, self.image_real: Xs})
        out = real_step(self, sess, iteration, Xs, Ys, Zs, k, evaluate=False)
        return {**out, "gen_loss": before[0], "discrim_loss": before[1],
                "p_real": before[2].mean(), "p_gen": before[3].mean()}

    monkeypatch.setattr(TrainingGraph, "step", fetch_all_in_the_update_run)
    code, report = run_json(capsys, write_twin(tmp_path))
    assert code == 1
    assert report["first_divergence"]["section"] == "lockstep"
    assert report["first_divergence"]["iteration"] == 0
    assert report["first_divergence"]["name"] == "gen_loss"
    assert all(r["ok"] for r in report["rows"] if r["section"] != "lockstep")


def test_lockstep_catches_a_step_that_updates_g_first(tmp_path, capsys, monkeypatch):
    real_step = TrainingGraph.step
    monkeypatch.setattr(TrainingGraph, "step", lambda self, sess, iteration, *args, **kwargs:
                        real_step(self, sess, iteration + 1, *args, **kwargs))
    code = compare.main(["--original", write_twin(tmp_path), *SMALL])
    assert code == 1
    assert "first divergence: lockstep updated net (from iteration 0): DGDG in the original, GDGD here" in \
        capsys.readouterr().out


def test_missing_path_names_what_was_expected(tmp_path, capsys):
    assert compare.main(["--original", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "does not exist" in err and "yihui-he/GAN-MNIST" in err


def test_file_instead_of_folder(tmp_path, capsys):
    (tmp_path / "model.py").write_text("")
    assert compare.main(["--original", str(tmp_path / "model.py")]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


def test_folder_without_model_py(tmp_path, capsys):
    assert compare.main(["--original", str(tmp_path)]) == 2
    assert "found neither model.py nor mnist/model.py" in capsys.readouterr().err


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
    write_twin(tmp_path, [("def generate(self, Z, Y):", "def generate(self, Z):")])
    with pytest.raises(compare.CompareError, match=r"DCGAN.generate takes \(Z\), the original's takes \(Z, Y\)"):
        compare.load_original(str(tmp_path))


def test_model_py_not_using_tensorflow_as_tf_is_refused(tmp_path):
    write_twin(tmp_path, [("import tensorflow as tf\n", "import tensorflow as tf\nimport numpy as tf\n")])
    with pytest.raises(compare.CompareError, match="does not `import tensorflow as tf` as the original does"):
        compare.load_original(str(tmp_path))


def test_import_error_is_reported_with_the_file(tmp_path, capsys):
    (tmp_path / "model.py").write_text("import cv2_missing_module\n")
    assert compare.main(["--original", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "model.py") in err and "ModuleNotFoundError" in err


def test_tensorflow_module_is_restored_after_loading(tmp_path):
    import sys

    import tensorflow
    write_twin(tmp_path)
    _, module = compare.load_original(str(tmp_path))
    assert sys.modules["tensorflow"] is tensorflow
    assert module.tf is compare.tf  # the original's `tf` is tf.compat.v1
    assert module.tf is not tensorflow


def test_bad_batch_size_is_an_argument_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        compare.main(["--original", ".", "--batch-size", "0"])
    assert exit_info.value.code == 2
    assert "--batch-size: expected a positive integer, got '0'" in capsys.readouterr().err
