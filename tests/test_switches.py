"""The switches that fix the original's training flaws and the --recipe preset: each changes only what it names,
is recorded in settings.json, and a run made with them is rebuilt by every tool that reads a run directory."""
import collections
import inspect
import json
import os

import numpy as np
import pytest
from conftest import TINY_MODEL, TINY_WIDTHS, run_dir_metrics, tiny_args, write_mnist, write_stand_in

from dcgan_mnist import cli, evaluation, settings
from dcgan_mnist.graph import TrainingGraph
from dcgan_mnist.model import AUGMENTS, D_OUTPUTS, DCGAN, LOSSES, TRANSLATE_PIXELS, tf, translate
from dcgan_mnist.tools import compare, evaluate, generate, shapes
from dcgan_mnist.train import main as train_main
from dcgan_mnist.util import OneHot
from dcgan_mnist.vis import sample_names


def source(tensor):
    """The name of the placeholder or variable ``tensor`` is (or reads), else None."""
    op = tensor.op
    if op.type == "Identity" and op.inputs[0].op.type == "VariableV2":
        op = op.inputs[0].op
    return op.name if op.type in ("Placeholder", "VariableV2") else None


def recorded_steps(model):
    """(call, step, op types, what it reads, shape) of every entry of ``model.layers``, as the shapes tool reads
    them: the ops from the step's tensor back to earlier steps, placeholders and variables."""
    owner = {}
    steps = []
    for call, step, tensor in model.layers:
        ops, reads, stack = set(), set(), [tensor.op]
        while stack:
            op = stack.pop()
            if op in ops:
                continue
            ops.add(op)
            for t in op.inputs:
                if t in owner or source(t):
                    reads.add(owner.get(t) or source(t))
                elif t.op.type != "Const":
                    stack.append(t.op)
        owner[tensor] = step
        steps.append((call, step, sorted(op.type for op in ops), sorted(reads), tensor.shape.as_list()))
    return steps


def build(**switches):
    with tf.Graph().as_default() as graph:
        tf.set_random_seed(0)
        model = DCGAN(batch_size=6, **TINY_WIDTHS, **switches)
        outputs = model.build_model()
        model.samples_generator(4)
    return graph, model, outputs


def variables(graph):
    return [(v.op.name, v.shape.as_list()) for v in graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)]


def test_the_defaults_are_the_original():
    defaults = inspect.signature(DCGAN).parameters
    assert (defaults["loss"].default, defaults["d_output"].default, defaults["g_average"].default,
            defaults["augment"].default) == ("clipped", "original", 0.0, "none")
    s = settings.parse_train_flags([])[0]
    assert (s.recipe, s.loss, s.d_output, s.g_average, s.augment) == ("original", "clipped", "original", 0.0, "none")
    assert settings.RECIPES["original"] == {"loss": "clipped", "d_output": "original", "g_average": 0.0,
                                            "augment": "none", "kernels": "original"}


@pytest.mark.parametrize("d_output, removed", [("original", []), ("lrelu", ["h4_bn"]),
                                               ("linear", ["h4_bn", "h4_lrelu"])])
def test_d_output_removes_only_the_steps_it_names(d_output, removed):
    original_graph, original, _ = build()
    graph, model, (Z, Y, image_real, d_cost, g_cost, p_real, p_gen) = build(d_output=d_output)
    expected = [s for s in recorded_steps(original) if not (s[0].startswith("discriminate") and s[1] in removed)]
    last = {"original": "h4_lrelu", "lrelu": "h4_lrelu", "linear": "h4_matmul"}[d_output]
    steps = recorded_steps(model)
    if d_output == "lrelu":  # lrelu now reads the matmul instead of the batchnorm
        expected = [(c, s, ops, ["h4_matmul"] if s == "h4_lrelu" else reads, shape)
                    for c, s, ops, reads, shape in expected]
    assert steps == expected
    assert variables(graph) == variables(original_graph)
    for call in ("discriminate", "discriminate_1"):
        assert [s for c, s, *_ in steps if c == call][-1] == last
    # The logit that the sigmoid and the costs read is D's last recorded step.
    raw_real = [t for c, s, t in model.layers if (c, s) == ("discriminate", last)][0]
    assert p_real.op.inputs[0] is raw_real


def test_d_output_is_validated():
    with tf.Graph().as_default(), pytest.raises(ValueError, match="d_output must be one of"):
        DCGAN(d_output="sigmoid")


def test_loss_changes_only_the_costs():
    original_graph, original, _ = build()
    stable_graph, stable, _ = build(loss="stable")
    assert recorded_steps(stable) == recorded_steps(original)
    assert variables(stable_graph) == variables(original_graph)

    def op_types(graph):
        return collections.Counter(op.type for op in graph.get_operations())
    # clip_by_value is a Minimum and a Maximum (and their bounds), once in each of the three bce calls.
    assert op_types(original_graph) - op_types(stable_graph) == {"Minimum": 3, "Maximum": 3, "Const": 6}
    assert not op_types(stable_graph) - op_types(original_graph)


def train_small(g_average, iterations=6):
    """A seeded small TrainingGraph trained ``iterations`` steps on fixed random batches: each step's printed numbers,
    G's weights after each step, the final values of every variable, the sampler's images, the variables' names."""
    rng = np.random.RandomState(0)
    feeds = [(rng.rand(6, 28, 28, 1), OneHot(rng.randint(10, size=6), 10), rng.uniform(-1, 1, (6, 8)))
             for _ in range(iterations)]
    z_sample, y_sample = rng.uniform(-1, 1, (4, 8)), OneHot(np.arange(4), 10)
    with tf.Graph().as_default() as graph, tf.Session() as sess:
        tf.set_random_seed(0)
        training = TrainingGraph(DCGAN(batch_size=6, **TINY_WIDTHS, g_average=g_average), 0.0002, 4, "fp32")
        sess.run(tf.global_variables_initializer())
        gen_weights = [sess.run(training.gen_vars)]
        printed = []
        for i, (X, Y, Z) in enumerate(feeds):
            printed.append(training.iterate(sess, i, X, Y, Z))
            gen_weights.append(sess.run(training.gen_vars))
        values = {v.op.name: sess.run(v) for v in graph.get_collection(tf.GraphKeys.GLOBAL_VARIABLES)}
        return printed, gen_weights, values, training.sample(sess, z_sample, y_sample), variables(graph)


def test_g_average_adds_the_averages_and_leaves_training_unchanged():
    printed, gen_weights, values, images, names = train_small(0.0)
    printed_avg, gen_weights_avg, values_avg, images_avg, names_avg = train_small(0.9)
    # Training is the same: every printed number and every weight of the original's graph.
    assert printed_avg == printed
    for name, value in values.items():
        np.testing.assert_array_equal(values_avg[name], value, err_msg=name)
    # The only new variables are one average per G weight, of its shape.
    gen = [(n, shape) for n, shape in names if n in {f"gen_W{i}" for i in range(1, 5)}]
    added = [(n, shape) for n, shape in names_avg if (n, shape) not in names]
    assert added == [(f"{n}/ExponentialMovingAverage", shape) for n, shape in gen]
    # Each average starts at the initial weight and follows average = 0.9 * average + 0.1 * weight after every
    # G update (odd iterations); D updates leave it.
    for k, (name, _) in enumerate(gen):
        average = gen_weights[0][k]
        for i in range(1, len(gen_weights)):
            if i % 2 == 0:  # iteration i - 1 was a G update
                average = 0.9 * average + 0.1 * gen_weights[i][k]
        np.testing.assert_allclose(values_avg[f"{name}/ExponentialMovingAverage"], average, rtol=1e-5, atol=1e-7)
        assert not np.allclose(average, gen_weights[-1][k])
    # The sampler draws with the averages, so its images differ.
    assert not np.allclose(images_avg, images)


def test_with_g_average_the_original_still_matches_in_lockstep(tmp_path, capsys):
    original = write_stand_in(tmp_path / "original-checkout")
    flags = ["--original", original, "--iterations", "3", "--batch-size", "6", *TINY_MODEL, "--json"]
    assert compare.main([*flags, "--g-average", "0.9"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["match"] and report["summary"]["lockstep"] == {"rows": 13, "differ": 0}


def test_g_average_leaves_the_layer_list_and_is_validated():
    graph, model, _ = build()
    assert recorded_steps(build(g_average=0.99)[1]) == recorded_steps(model)
    small = dict(batch_size=6, sample_size=4, **TINY_WIDTHS)
    averaged = shapes.report(**small, g_average=0.99).splitlines()
    assert averaged[1:] == shapes.report(**small).splitlines()[1:] and averaged[0].endswith(", g_average 0.99")
    with tf.Graph().as_default(), pytest.raises(ValueError, match="g_average must be in"):
        DCGAN(g_average=1.0)
    with pytest.raises(SystemExit):
        settings.parse_train_flags(["--g-average", "1"])[0]


def scores_before_and_after_a_bias(d_output):
    """P(real) of a random batch, then again after adding 5 to the rows of discrim_W4 that read the one-hot label:
    a bias of 5 on every image's score."""
    rng = np.random.RandomState(0)
    images, labels = rng.rand(6, 28, 28, 1), OneHot(rng.randint(10, size=6), 10)
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        model = DCGAN(batch_size=6, **TINY_WIDTHS, d_output=d_output)
        Z, Y, image_real, d_cost, g_cost, p_real, p_gen = model.build_model()
        raise_bias = model.discrim_W4[-10:].assign(model.discrim_W4[-10:] + 5.)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            before = sess.run(p_real, {image_real: images, Y: labels}).ravel()
            sess.run(raise_bias)
            return before, sess.run(p_real, {image_real: images, Y: labels}).ravel()


def test_without_the_output_batchnorm_d_can_score_a_whole_batch_as_real():
    """docs/lessons.md 8: batchnorm over the [B, 1] scores removes anything that moves all of them alike."""
    before, after = scores_before_and_after_a_bias("original")
    np.testing.assert_allclose(after, before, atol=1e-4)
    assert (after < 0.5).any()
    for d_output in ("lrelu", "linear"):
        before, after = scores_before_and_after_a_bias(d_output)
        assert (after > before).all() and (after > 0.5).all(), d_output


def test_recipe_sets_the_switches_and_a_switch_given_overrides_it():
    s = settings.parse_train_flags(["--recipe", "repaired"])[0]
    assert (s.recipe, s.loss, s.d_output, s.g_average) == ("repaired", "stable", "linear", 0.99)
    s = settings.parse_train_flags(["--recipe", "repaired", "--d-output", "lrelu", "--g-average", "0"])[0]
    assert (s.loss, s.d_output, s.g_average) == ("stable", "lrelu", 0.0)
    s = settings.parse_train_flags(["--loss", "stable"])[0]
    assert (s.recipe, s.loss, s.d_output, s.g_average) == ("original", "stable", "original", 0.0)


def test_the_flags_offer_exactly_the_models_choices():
    choices = {action.dest: action.choices for action in settings.build_parser()._actions}
    assert tuple(choices["loss"]) == LOSSES and tuple(choices["d_output"]) == D_OUTPUTS
    assert tuple(choices["augment"]) == AUGMENTS
    for recipe in settings.RECIPES.values():
        assert recipe["loss"] in LOSSES and recipe["d_output"] in D_OUTPUTS and recipe["augment"] == "none"


# ---- a repaired run through every tool that reads a run directory ----

@pytest.fixture(scope="module")
def repaired_runs(tmp_path_factory):
    """The same seed trained 8 iterations as the original, as the repaired recipe in one go, as the repaired
    recipe in two resumed chunks of 4, as the recipe's two fixes without an average of G's weights (--g-average 0),
    and with --g-average 0.9 in one go and in chunks."""
    tmp = tmp_path_factory.mktemp("switches")
    data = str(tmp / "data")
    write_mnist(data)
    out = str(tmp)
    seed = ["--seed", "4", "--log", "compact", "--log-every", "1"]
    assert train_main(tiny_args(data, out, "original", *seed, "--max-iterations", "8")) == 0
    assert train_main(tiny_args(data, out, "repaired", *seed, "--recipe", "repaired", "--max-iterations", "8")) == 0
    assert train_main(tiny_args(data, out, "chunks", *seed, "--recipe", "repaired", "--max-iterations", "4")) == 0
    assert train_main(["--resume", os.path.join(out, "chunks"), "--max-iterations", "8"]) == 0
    assert train_main(tiny_args(data, out, "two-fixes", *seed, "--recipe", "repaired", "--g-average", "0",
                                "--max-iterations", "8")) == 0
    averaged = ["--recipe", "repaired", "--g-average", "0.9"]
    assert train_main(tiny_args(data, out, "averaged", *seed, *averaged, "--max-iterations", "8")) == 0
    assert train_main(tiny_args(data, out, "averaged-chunks", *seed, *averaged, "--max-iterations", "4")) == 0
    assert train_main(["--resume", os.path.join(out, "averaged-chunks"), "--max-iterations", "8"]) == 0
    return tmp


def test_the_recipe_and_its_switches_are_recorded_and_resume_exactly(repaired_runs):
    saved = json.loads((repaired_runs / "chunks" / "settings.json").read_text())
    assert (saved["recipe"], saved["loss"], saved["d_output"], saved["g_average"]) == ("repaired", "stable", "linear",
                                                                                     0.99)
    chunks, whole = run_dir_metrics(repaired_runs / "chunks"), run_dir_metrics(repaired_runs / "repaired")
    assert chunks == whole and len(whole) == 8
    # The recipe changed the computation: the same seed gives other numbers than the original.
    original = run_dir_metrics(repaired_runs / "original")
    assert [r["p_real"] for r in original] != [r["p_real"] for r in whole]


def test_resume_refuses_a_switch_that_contradicts_the_run(repaired_runs, capsys):
    status = train_main(["--resume", str(repaired_runs / "chunks"), "--d-output", "original"])
    assert status == 1
    assert "--d-output original contradicts the run's setting 'linear'" in capsys.readouterr().err


def test_shapes_and_compare_rebuild_the_runs_switches_from_its_directory(repaired_runs, capsys):
    run_dir = str(repaired_runs / "chunks")
    assert shapes.main(["--checkpoint", run_dir]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == ("batch size 16, sampler batch 4, dim_z 8, dim_W1 16, dim_W2 8, dim_W3 4, "
                                   "loss stable, d_output linear, g_average 0.99")
    # D on real images: h4_matmul [16,1] is the last step, and the call returns it.
    d_table = out.split("== D on real images")[1].split("==")[1]
    assert "h4_bn" not in d_table and "h4_lrelu" not in d_table
    assert "fully connected layer (no bias); the call returns this" in d_table

    original = write_stand_in(repaired_runs / "original-checkout")
    assert compare.main(["--original", original, "--checkpoint", run_dir, "--iterations", "2", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert {name: report["settings"][name] for name in ("batch_size", "dim_z", "loss", "d_output")} == {
        "batch_size": 16, "dim_z": 8, "loss": "stable", "d_output": "linear"}
    # The variables are the original's; the first difference is D's output layer, which the original has and
    # the run's linear logit does not: h4_bn after h4_matmul (step 16 of 17).
    assert report["summary"]["variables"] == {"rows": 8, "differ": 0}
    assert report["first_divergence"]["name"] == "discriminate/#16"
    assert compare.main(["--original", original, "--checkpoint", run_dir, "--iterations", "2"]) == 1
    assert "(expected: loss='stable', d_output='linear', g_average=0.99 departs from the original on purpose" in \
        capsys.readouterr().out


def test_generate_and_evaluate_read_a_repaired_run(repaired_runs, capsys, quick_judges):
    run_dir = str(repaired_runs / "chunks")
    png = str(repaired_runs / "digits.png")
    assert generate.main(["--checkpoint", run_dir, "--out", png, "--per-digit", "3", "--seed", "1"]) == 0
    assert "digits 0,1,2,3,4,5,6,7,8,9, 3 samples each" in capsys.readouterr().out
    assert evaluate.main(["--checkpoint", run_dir, "--samples", "20", "--json", "--judge-dir", quick_judges]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["iterations"] == 8 and report["data"]["run_split"] is True


def checkpoint_tensors(run_dir):
    reader = tf.train.load_checkpoint(os.path.join(run_dir, "checkpoints", "ckpt-8"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def test_a_g_average_run_trains_as_without_resumes_exactly_and_draws_its_grids_with_the_averages(repaired_runs):
    saved = json.loads((repaired_runs / "averaged-chunks" / "settings.json").read_text())
    assert (saved["recipe"], saved["loss"], saved["d_output"], saved["g_average"]) == ("repaired", "stable", "linear",
                                                                                     0.9)
    assert run_dir_metrics(repaired_runs / "averaged") == run_dir_metrics(repaired_runs / "two-fixes")
    whole = checkpoint_tensors(repaired_runs / "averaged")
    chunks = checkpoint_tensors(repaired_runs / "averaged-chunks")
    without = checkpoint_tensors(repaired_runs / "two-fixes")
    assert sorted(whole) == sorted(chunks) == sorted([*without, *(f"gen_W{i}/ExponentialMovingAverage"
                                                                   for i in range(1, 5))])
    for name, value in whole.items():
        np.testing.assert_array_equal(chunks[name], value, err_msg=name)
        if name in without:
            np.testing.assert_array_equal(without[name], value, err_msg=name)
    # Grid 0 comes after a D update, when the averages still equal G's weights; the later ones differ.
    vis = {name: sample_names(repaired_runs / f"vis-{name}") for name in ("averaged", "two-fixes")}
    assert vis["averaged"] == vis["two-fixes"] == [f"sample_000{i}.jpg" for i in range(4)]
    same = [(repaired_runs / "vis-averaged" / f).read_bytes() == (repaired_runs / "vis-two-fixes" / f).read_bytes()
            for f in vis["averaged"]]
    assert same == [True, False, False, False]


def test_generate_and_evaluate_use_the_averages_unless_told_otherwise(repaired_runs, capsys, quick_judges):
    def drawn(name, *extra):
        npz = str(repaired_runs / f"{name}{len(extra)}.npz")
        assert generate.main(["--checkpoint", str(repaired_runs / name), "--out", npz[:-4] + ".png",
                              "--per-digit", "2", "--seed", "1", "--npz", npz, *extra]) == 0
        return np.load(npz)["images"], capsys.readouterr().out
    averaged, message = drawn("averaged")
    assert "with the average of G's weights (decay 0.9)" in message
    latest, message = drawn("averaged", "--latest-weights")
    assert "with G's latest weights" in message
    without, message = drawn("two-fixes")
    assert "weights" not in message
    np.testing.assert_array_equal(latest, without)
    assert np.abs(averaged - latest).max() > 1e-3

    reports = {}
    for extra in ([], ["--latest-weights"]):
        assert evaluate.main(["--checkpoint", str(repaired_runs / "averaged"), "--samples", "20", "--json",
                              "--judge-dir", quick_judges, *extra]) == 0
        reports[bool(extra)] = json.loads(capsys.readouterr().out)
    assert reports[False]["g_average"] == reports[True]["g_average"] == 0.9
    assert reports[False]["weights"] == "the average of G's weights (decay 0.9)"
    assert reports[True]["weights"] == "G's latest weights"
    assert reports[False]["generated"]["frechet"] != reports[True]["generated"]["frechet"]
    # Both choices scored on one load of the data and the judge (as ablate does) give the same two reports.
    options = settings.Evaluation(samples=20, judge_dir=quick_judges)
    both = json.loads(cli.dumps(evaluation.evaluate_run(str(repaired_runs / "averaged"), options, [False, True])))
    assert both == [reports[False], reports[True]]
    assert shapes.main(["--checkpoint", str(repaired_runs / "averaged")]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("loss stable, d_output linear, g_average 0.9")


def test_bf16_is_recorded_reproducible_and_rebuilt(mnist_dir, tmp_path, capsys):
    """--precision bf16: the same seed prints the same numbers on one machine; resume and generate rebuild it."""
    outputs = []
    for name in ("a", "b"):
        assert train_main(tiny_args(mnist_dir, tmp_path, name, "--seed", "5", "--max-iterations", "4",
                                    "--recipe", "repaired", "--precision", "bf16")) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0].count("iteration:") == 4
    saved = json.loads((tmp_path / "a" / "settings.json").read_text())
    assert saved["precision"] == "bf16"
    assert train_main(["--resume", str(tmp_path / "a"), "--max-iterations", "6"]) == 0
    assert train_main(["--resume", str(tmp_path / "a"), "--precision", "fp32"]) == 1
    assert "--precision fp32 contradicts the run's setting 'bf16'" in capsys.readouterr().err
    assert generate.main(["--checkpoint", str(tmp_path / "a"), "--out", str(tmp_path / "a.png"), "--seed", "1"]) == 0


def test_a_bf16_run_resumes_only_on_the_kind_of_device_it_was_trained_on(mnist_dir, tmp_path, capsys, monkeypatch):
    """bf16 on a GPU scales its losses and a checkpoint of it holds the scales, so it is not the CPU's run."""
    from dcgan_mnist import precision as graph

    assert train_main(tiny_args(mnist_dir, tmp_path, "cpu", "--seed", "5", "--max-iterations", "2",
                                "--precision", "bf16")) == 0
    monkeypatch.setattr(graph, "on_gpu", lambda: True)
    assert train_main(["--resume", str(tmp_path / "cpu"), "--max-iterations", "4"]) == 1
    assert ("was trained with --precision bf16 on a CPU, whose updates differ from those on a GPU (float16 on a GPU "
            "scales its losses): resume it on a CPU") in capsys.readouterr().err
    assert train_main(tiny_args(mnist_dir, tmp_path, "gpu", "--seed", "5", "--max-iterations", "2",
                                "--precision", "bf16")) == 0
    assert train_main(["--resume", str(tmp_path / "gpu"), "--max-iterations", "4"]) == 0
    monkeypatch.setattr(graph, "on_gpu", lambda: False)
    capsys.readouterr()
    assert train_main(["--resume", str(tmp_path / "gpu"), "--max-iterations", "6"]) == 1
    assert "on a GPU, whose updates differ from those on a CPU" in capsys.readouterr().err
    assert generate.main(["--checkpoint", str(tmp_path / "gpu"), "--out", str(tmp_path / "g.png"), "--seed", "1"]) == 0


# ---- --augment translate ----

def test_translate_moves_each_image_by_its_shift_and_fills_the_border_with_zeros():
    rng = np.random.RandomState(0)
    images = rng.rand(6, 28, 28, 1).astype(np.float32) + 1  # no zero pixel: a zero in the result is the border
    shifts = np.array([[0, 0], [3, 0], [0, -3], [-2, 1], [3, 3], [-1, -2]], dtype=np.int32)
    with tf.Graph().as_default(), tf.Session() as sess:
        x = tf.constant(images)
        moved = translate(x, tf.constant(shifts), TRANSLATE_PIXELS)
        gradient = tf.gradients(tf.reduce_sum(moved), x)[0]
        moved, gradient = sess.run([moved, gradient])
    assert moved.shape == (6, 28, 28, 1)
    for image, (dx, dy), out, grad in zip(images, shifts, moved, gradient):
        # Pixel (i, j) of the moved image is pixel (i - dy, j - dx) of the image, where that exists.
        expected = np.zeros_like(image)
        expected[max(dy, 0):28 + min(dy, 0), max(dx, 0):28 + min(dx, 0)] = \
            image[max(-dy, 0):28 + min(-dy, 0), max(-dx, 0):28 + min(-dx, 0)]
        np.testing.assert_array_equal(out, expected)
        assert (out == 0).sum() == (28 * 28) - (28 - abs(dx)) * (28 - abs(dy))
        # The gradient reaches every pixel that stays in view, and only those: G learns through the move.
        kept = np.zeros_like(image)
        kept[max(-dy, 0):28 + min(-dy, 0), max(-dx, 0):28 + min(-dx, 0)] = 1
        np.testing.assert_array_equal(grad, kept)


def test_augment_adds_one_translate_step_before_each_d_of_the_training_pass_and_no_variable():
    plain_graph, plain, _ = build(loss="stable", d_output="linear")
    graph, model, _ = build(loss="stable", d_output="linear", augment="translate")
    assert variables(graph) == variables(plain_graph)
    expected = []
    for call, step, *_ in recorded_steps(plain):
        if call.startswith("discriminate") and step == "yb":
            expected.append((call, "translate", [6, 28, 28, 1]))
        expected.append((call, step))
    steps = [(call, step, shape) if step == "translate" else (call, step)
             for call, step, _, _, shape in recorded_steps(model)]
    assert steps == expected
    assert [entry[0] for entry in expected if entry[1] == "translate"] == ["discriminate", "discriminate_1"]
    assert model.shifts.shape.as_list() == [2, 6, 2] and model.shifts.dtype == tf.int32
    # Without the switch there is nothing to feed and nothing is drawn.
    assert plain.shifts is None and plain.draw_shifts() is None
    assert not [op for op in plain_graph.get_operations() if op.type == "GatherV2"]
    np.random.seed(3)
    draws = np.stack([model.draw_shifts() for _ in range(40)])
    assert draws.shape == (40, 2, 6, 2)
    assert sorted(np.unique(draws)) == list(range(-TRANSLATE_PIXELS, TRANSLATE_PIXELS + 1))
    with pytest.raises(ValueError, match="augment must be one of"):
        DCGAN(batch_size=6, **TINY_WIDTHS, augment="rotate")


def test_a_translate_run_is_recorded_resumes_exactly_and_changes_what_d_sees(mnist_dir, tmp_path, capsys):
    flags = ["--seed", "6", "--recipe", "repaired", "--log", "compact", "--log-every", "1"]
    moved = flags + ["--augment", "translate"]
    # 20 iterations cross an epoch boundary (15 batches per epoch); the split resumes in the middle of the first.
    assert train_main(tiny_args(mnist_dir, tmp_path, "whole", *moved, "--max-iterations", "20")) == 0
    assert train_main(tiny_args(mnist_dir, tmp_path, "split", *moved, "--max-iterations", "9")) == 0
    assert train_main(["--resume", str(tmp_path / "split"), "--max-iterations", "20"]) == 0
    assert json.loads((tmp_path / "split" / "settings.json").read_text())["augment"] == "translate"
    whole = run_dir_metrics(tmp_path / "whole")
    assert run_dir_metrics(tmp_path / "split") == whole and len(whole) == 20
    assert sample_names(tmp_path / "vis-split") == sample_names(tmp_path / "vis-whole")
    for name in sample_names(tmp_path / "vis-whole"):
        assert (tmp_path / "vis-split" / name).read_bytes() == (tmp_path / "vis-whole" / name).read_bytes()
    # The same seed without the switch: the same first D step sees other images, so P(real) differs from there.
    assert train_main(tiny_args(mnist_dir, tmp_path, "unmoved", *flags, "--max-iterations", "20")) == 0
    unmoved = run_dir_metrics(tmp_path / "unmoved")
    assert unmoved[0]["p_real"] != whole[0]["p_real"]
    capsys.readouterr()
    assert train_main(["--resume", str(tmp_path / "split"), "--augment", "none"]) == 1
    assert "--augment none contradicts the run's setting 'translate'" in capsys.readouterr().err
    assert shapes.main(["--checkpoint", str(tmp_path / "split")]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("augment translate")
    assert generate.main(["--checkpoint", str(tmp_path / "split"), "--out", str(tmp_path / "d.png"),
                          "--seed", "1"]) == 0


def test_compare_builds_a_translate_run_and_names_where_it_departs(mnist_dir, tmp_path, capsys):
    assert train_main(tiny_args(mnist_dir, tmp_path, "moved", "--seed", "2", "--recipe", "repaired",
                                "--augment", "translate", "--max-iterations", "2")) == 0
    original = write_stand_in(tmp_path / "original-checkout")
    capsys.readouterr()
    assert compare.main(["--original", original, "--checkpoint", str(tmp_path / "moved"), "--iterations", "2",
                         "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["settings"]["augment"] == "translate"
    assert report["summary"]["variables"] == {"rows": 8, "differ": 0}
    # D's first step on the real images is the translate the original does not have.
    assert report["first_divergence"]["name"] == "discriminate/translate"
    assert compare.main(["--original", original, "--checkpoint", str(tmp_path / "moved"), "--iterations", "2"]) == 1
    assert "augment='translate' departs from the original on purpose" in capsys.readouterr().out
