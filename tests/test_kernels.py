"""--kernels fused: TensorFlow's one-op batchnorm and leaky ReLU in place of the original's element-wise ones, with
the original's variables; recorded, rebuilt and refused like the other switches. And bench --profile, which shows
what it changes."""
import collections
import json
import os
import re

import numpy as np
import pytest
from conftest import SMALL_MODEL, TINY_WIDTHS, run_dir_metrics, tiny_args, write_mnist, write_stand_in

from dcgan_mnist import settings
from dcgan_mnist.ablation.plan import DEFAULT_VARIANTS, VARIANTS, variant_flags
from dcgan_mnist.cli import CommandError
from dcgan_mnist.graph import TrainingGraph
from dcgan_mnist.model import (
    DCGAN,
    KERNELS,
    batchnormalize,
    fused_batchnormalize,
    fused_lrelu,
    lrelu,
    tf,
)
from dcgan_mnist.tools import bench, compare, migrate, shapes
from dcgan_mnist.train import main as train_main

# The largest difference of a fused kernel from the original's, relative to the largest |value|, that passes: the
# measured ones on the inputs below are at most 2.3e-7 (about two float32 ulps), forward and backward.
KERNEL_RTOL = 1e-6


def training_graph(kernels):
    """A seeded tiny training graph (both optimizers and the sampler): its graph and model."""
    with tf.Graph().as_default() as graph:
        tf.set_random_seed(0)
        training = TrainingGraph(DCGAN(batch_size=6, **TINY_WIDTHS, kernels=kernels), 0.0002, 4, "fp32")
    return graph, training.model


def variables(graph):
    return [(v.op.name, v.shape.as_list()) for v in graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)]


def op_types(graph):
    return collections.Counter(op.type for op in graph.get_operations())


def test_the_fused_graph_keeps_every_variable_and_every_step_of_the_original():
    original_graph, original = training_graph("original")
    fused_graph, fused = training_graph("fused")
    # The eight weights and the optimizers' slots and powers, in the same order: a checkpoint's layout.
    assert variables(fused_graph) == variables(original_graph)
    assert ("gen_W2", [TINY_WIDTHS["dim_W1"] + 10, TINY_WIDTHS["dim_W2"] * 7 * 7]) in variables(fused_graph)
    steps = [(call, step, tensor.shape.as_list()) for call, step, tensor in fused.layers]
    assert steps == [(call, step, tensor.shape.as_list()) for call, step, tensor in original.layers]
    shapes_of = {(call, step): shape for call, step, shape in steps}
    assert shapes_of[("generate", "h1_bn")] == [6, 16]
    assert shapes_of[("generate", "h3_bn")] == [6, 14, 14, 4]
    assert shapes_of[("discriminate", "h2_bn")] == [6, 7, 7, 8]
    assert shapes_of[("discriminate", "h4_lrelu")] == [6, 1]
    assert shapes_of[("samples_generator", "h2_concat_y")] == [4, 7, 7, 18]


def model_graph(kernels):
    """build_model and the sampler alone, as the shapes tool builds them: every op is one of a recorded step's."""
    with tf.Graph().as_default() as graph:
        model = DCGAN(batch_size=6, **TINY_WIDTHS, kernels=kernels)
        model.build_model()
        model.samples_generator(4)
    return graph, model


def test_only_the_fused_graph_has_the_fused_ops():
    fused_ops = {"FusedBatchNormV3", "FusedBatchNormGradV3", "LeakyRelu", "LeakyReluGrad", "BroadcastTo"}
    assert not fused_ops & set(op_types(training_graph("original")[0]))
    assert op_types(training_graph("fused")[0]).keys() >= fused_ops
    graph, model = model_graph("fused")
    counts, steps = op_types(graph), collections.Counter(step.split("_", 1)[-1] for _, step, _ in model.layers)
    # One op for each batchnorm and leaky ReLU step, and one for the label maps of each step that tiles them over
    # feature maps (the concatenations of rank 4; those of vectors append Y as it is).
    assert (counts["FusedBatchNormV3"], counts["LeakyRelu"]) == (steps["bn"], steps["lrelu"]) == (12, 8)
    tiling = [step for _, step, tensor in model.layers if "concat" in step and tensor.shape.rank == 4]
    assert counts["BroadcastTo"] == len(tiling) == 8
    # What the original writes them out of is gone: Sqrt only ever came from batchnorm, Abs from lrelu and bce.
    original_counts = op_types(model_graph("original")[0])
    assert original_counts["Sqrt"] == 12 and counts["Sqrt"] == 0
    assert original_counts["Abs"] - counts["Abs"] == 8
    with tf.Graph().as_default(), pytest.raises(ValueError, match="kernels must be one of"):
        DCGAN(kernels="cudnn")


def difference(fused, original):
    return np.abs(fused - original).max() / np.abs(original).max()


@pytest.mark.parametrize("shape", [[6, 7, 7, 5], [6, 9], [6, 1]])
def test_the_fused_batchnorm_is_batchnormalize_to_float32_round_off(shape):
    rng = np.random.RandomState(0)
    x = (rng.randn(*shape) * 3 + 1).astype(np.float32)
    upstream = rng.randn(*shape).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as sess:
        inputs = tf.constant(x)
        outputs = [batchnormalize(inputs), fused_batchnormalize(inputs)]
        gradients = [tf.gradients(tf.reduce_sum(out * upstream), inputs)[0] for out in outputs]
        (original, fused), (original_gradient, fused_gradient) = sess.run([outputs, gradients])
    assert fused.shape == original.shape == tuple(shape)
    assert difference(fused, original) <= KERNEL_RTOL
    assert difference(fused_gradient, original_gradient) <= KERNEL_RTOL
    # This batch's own statistics: every channel comes out with mean 0 and variance 1.
    axes = tuple(range(len(shape) - 1))
    np.testing.assert_allclose(fused.mean(axis=axes), 0, atol=1e-6)
    np.testing.assert_allclose(fused.var(axis=axes), 1, atol=1e-5)
    with tf.Graph().as_default(), pytest.raises(NotImplementedError):
        fused_batchnormalize(tf.zeros([2, 3, 4]))


def test_the_fused_leaky_relu_is_lrelu_to_float32_round_off():
    x = (np.random.RandomState(1).randn(6, 14, 14, 4) * 3).astype(np.float32)
    with tf.Graph().as_default(), tf.Session() as sess:
        inputs = tf.constant(x)
        outputs = [lrelu(inputs), fused_lrelu(inputs)]
        gradients = [tf.gradients(tf.reduce_sum(out), inputs)[0] for out in outputs]
        (original, fused), (original_gradient, fused_gradient) = sess.run([outputs, gradients])
    assert difference(fused, original) <= KERNEL_RTOL
    # 1 and 0.2 in both, where the original's 0.2 is float32's 0.6 - 0.4.
    assert difference(fused_gradient, original_gradient) <= KERNEL_RTOL


def test_the_switch_is_offered_off_in_both_recipes_and_only_by_name_to_ablate():
    choices = {action.dest: action.choices for action in settings.build_parser()._actions}
    assert tuple(choices["kernels"]) == KERNELS == ("original", "fused")
    assert {recipe["kernels"] for recipe in settings.RECIPES.values()} == {"original"}
    assert settings.parse_train_flags([])[0].kernels == "original"
    assert settings.parse_train_flags(["--recipe", "repaired", "--kernels", "fused"])[0].switches() == {
        **settings.RECIPES["repaired"], "kernels": "fused"}
    assert variant_flags("repaired-fused") == ["--recipe", "repaired", "--kernels", "fused"]
    assert VARIANTS["repaired-bf16-fused"] == {"recipe": "repaired", "precision": "bf16", "kernels": "fused"}
    assert not {"repaired-fused", "repaired-bf16-fused"} & set(DEFAULT_VARIANTS)


@pytest.fixture(scope="module")
def fused_runs(tmp_path_factory):
    """A tiny fused recipe run of 4 iterations in one go, and in two chunks of 2 (the second a resume)."""
    tmp = tmp_path_factory.mktemp("kernels")
    data = str(tmp / "data")
    write_mnist(data)
    flags = ["--seed", "3", "--recipe", "repaired", "--kernels", "fused", "--log", "compact", "--log-every", "1"]
    assert train_main(tiny_args(data, str(tmp), "whole", *flags, "--max-iterations", "4")) == 0
    assert train_main(tiny_args(data, str(tmp), "chunks", *flags, "--max-iterations", "2")) == 0
    assert train_main(["--resume", str(tmp / "chunks"), "--max-iterations", "4"]) == 0
    return tmp


def test_a_fused_run_is_recorded_and_resumes_exactly_and_a_resume_keeps_it(fused_runs, capsys):
    assert json.loads((fused_runs / "chunks" / "settings.json").read_text())["kernels"] == "fused"
    whole = run_dir_metrics(fused_runs / "whole")
    assert run_dir_metrics(fused_runs / "chunks") == whole and len(whole) == 4
    capsys.readouterr()
    assert train_main(["--resume", str(fused_runs / "chunks"), "--kernels", "original"]) == 1
    assert "--kernels original contradicts the run's setting 'fused'" in capsys.readouterr().err


def test_shapes_and_compare_rebuild_a_fused_run_and_name_where_it_departs(fused_runs, capsys):
    run_dir = str(fused_runs / "chunks")
    assert shapes.main(["--checkpoint", run_dir]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith("d_output linear, g_average 0.99, kernels fused")
    assert re.search(r"^13 +h3_bn +FusedBatchNormV3 +h3_deconv \[16,14,14,4\] +- +\[16,14,14,4\]$", out, re.M)
    assert "= fused batch norm of [16,14,14,4]: mean and variance over axes 0, 1, 2, one of each per channel (4)" in out
    assert "= broadcast_to [16,1,1,10] -> [16,28,28,10] (broadcast: copied along axes 1, 2)" in out

    original = write_stand_in(fused_runs / "original-checkout")
    assert compare.main(["--original", original, "--checkpoint", run_dir, "--iterations", "0", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["settings"]["kernels"] == "fused" and report["summary"]["variables"] == {"rows": 8, "differ": 0}
    # G's first batchnorm, a [B, N] one, is the first layer built of other ops.
    assert report["first_divergence"]["name"] == "generate/h1_bn"
    assert report["first_divergence"]["text"] == ("layer generate/h1_bn: RealDiv 16x16 in the original, Reshape 16x16 "
                                                  "here")
    assert compare.main(["--original", original, "--checkpoint", run_dir, "--iterations", "0"]) == 1
    assert "kernels='fused' departs from the original on purpose" in capsys.readouterr().out


def test_the_twin_refuses_the_fused_kernels_naming_the_flag(fused_runs):
    with pytest.raises(CommandError, match="^--kernels fused; the twin writes batchnorm and leaky ReLU out of "
                                           "element-wise ops, as the original does: --kernels original only$"):
        migrate.command(["--kernels", "fused"])
    checkpoint = str(fused_runs / "chunks")
    with pytest.raises(CommandError, match=f"^--checkpoint {re.escape(checkpoint)} was trained with --kernels fused"):
        migrate.command(["--checkpoint", checkpoint, "--reference", str(fused_runs / "reference")])
    assert not os.path.exists(fused_runs / "reference")


def test_bench_profile_breaks_each_sides_op_time_down_by_op_type(capfd):
    flags = ["--batch-size", "16", *SMALL_MODEL, "--iterations", "2", "--warmup", "1", "--synthetic", "--profile",
             "--recipe", "repaired", "--kernels", "fused", "--against", "repaired"]
    assert bench.main([*flags, "--json"]) == 0
    captured = capfd.readouterr()
    fused, original = json.loads(captured.out)["recipes"]
    # Each traced run's C++ warning that there was no GPU to trace is kept off stderr on a machine without one.
    assert "GPU trace was not collected" not in captured.err
    for side in (fused, original):
        profile = side["profile"]
        shares = list(profile["op_types"].values())
        assert shares == sorted(shares, reverse=True) and 0.999 <= sum(shares) <= 1.001
        assert profile["traced_runs"] == 2 * bench.PROFILE_RUNS  # a D and a G update, each with its evaluation
        assert profile["op_ms_per_iteration"] > 0 and profile["cast_share"] == 0  # no Cast in float32
        assert profile["element_wise_share"] == pytest.approx(
            sum(share for op, share in profile["op_types"].items() if op in bench.ELEMENT_WISE), abs=1e-3)
        assert not [op for op in profile["op_types"] if op.startswith("_Mkl")]  # counted as the op they replace
    assert "FusedBatchNormV3" in fused["profile"]["op_types"] and "RealDiv" in original["profile"]["op_types"]
    assert fused["profile"]["element_wise_share"] < original["profile"]["element_wise_share"]

    assert bench.main(flags) == 0
    out = capfd.readouterr().out
    for side in out.split("its steps only:")[1:]:
        rows = re.findall(r"^    (\S+) +([\d.]+)%$", side, re.M)
        assert len(rows) == bench.PROFILE_TOP and 0 < sum(float(share) for _, share in rows) <= 100
        assert re.search(r"^  Cast ops +0\.0% of the op time$", side, re.M)
        assert re.search(r"^  element-wise ops +[\d.]+% of the op time  \(bench\.ELEMENT_WISE\)$", side, re.M)
