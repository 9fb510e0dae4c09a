"""bench: its FLOP counts and its reports."""
import json
import re

import pytest
from conftest import SMALL_MODEL, SMALL_WIDTHS

from dcgan_mnist.graph import TrainingGraph
from dcgan_mnist.model import DCGAN, tf
from dcgan_mnist.precision import cpu_bfloat16
from dcgan_mnist.tools import bench

B = 16
SMALL_FLAGS = ["--batch-size", str(B), *SMALL_MODEL]


def test_count_flops_counts_only_the_ops_a_run_executes():
    with tf.Graph().as_default():
        a = tf.placeholder(tf.float32, [3, 5])
        w = tf.ones([5, 7])
        product = tf.matmul(a, w)
        tf.matmul(product, tf.ones([7, 11]))  # not fetched below, so not counted
        assert bench.count_flops([product]) == 2 * 3 * 5 * 7

        image = tf.placeholder(tf.float32, [2, 8, 8, 3])
        conv = tf.nn.conv2d(image, tf.ones([5, 5, 3, 4]), strides=[1, 2, 2, 1], padding="SAME")
        assert bench.count_flops([conv]) == 2 * (2 * 4 * 4 * 4) * (5 * 5 * 3)


def test_fused_discriminator_step_runs_the_generator_once():
    with tf.Graph().as_default():
        model = DCGAN(batch_size=B, **SMALL_WIDTHS)
        g = TrainingGraph(model, 0.0002, 196, "fp32")
        generator = [t for c, s, t in model.layers if c == "generate" and s == "h4_deconv"]
        update = bench.count_flops([g.train_op_discrim, g.d_cost])
        evaluation = bench.count_flops([g.g_cost, g.p_real, g.p_gen])  # the original's second run
        fused = bench.count_flops(g.fetches("D", after_update=True))
        assert fused == update + evaluation - bench.count_flops(generator)


def run_bench(capsys, *flags):
    assert bench.main([*SMALL_FLAGS, "--json", *flags]) == 0
    return json.loads(capsys.readouterr().out)


def significant_digits(number):
    """How many significant digits a printed number has (trailing zeros of a fraction not counted)."""
    digits = number.replace(".", "").lstrip("0")
    return len(digits.rstrip("0")) if "." in number else len(digits)


def test_bench_json_faithful(capsys):
    r = run_bench(capsys, "--iterations", "4", "--warmup", "1")
    for key in ("it_per_s", "ms_d_step", "ms_g_step", "gflop_per_it", "gflops", "peak_rss_mb"):
        assert r[key] > 0, key
        assert significant_digits(repr(r[key])) <= 4, (key, r[key])
    assert (r["d_steps"], r["g_steps"]) == (2, 2)
    runs = r["gflop_per_run"]
    assert sorted(runs) == ["D update+evaluation", "G update+evaluation"]
    # Each number is rounded to 4 significant digits, so sums and products agree to about 1e-4.
    assert r["gflop_per_it"] == pytest.approx((runs["D update+evaluation"] + runs["G update+evaluation"]) / 2,
                                              rel=1e-3)
    assert r["gflops"] == pytest.approx(r["gflop_per_it"] * r["it_per_s"], rel=1e-3)


def test_bench_json_compact_counts_the_runs_it_makes(capsys):
    r = run_bench(capsys, "--iterations", "6", "--warmup", "1", "--mode", "compact", "--log-every", "3")
    runs = r["gflop_per_run"]
    # Iterations 0..5 evaluated at 0 (a D step) and 3 (a G step).
    assert sorted(runs) == ["D update", "D update+evaluation", "G update", "G update+evaluation"]
    expected = (runs["D update+evaluation"] + runs["G update"] + runs["D update"]
                + runs["G update+evaluation"] + runs["D update"] + runs["G update"]) / 6
    assert r["gflop_per_it"] == pytest.approx(expected, rel=1e-3)
    assert runs["D update"] < runs["D update+evaluation"]


def test_bench_on_real_files_prints_the_table(capsys, mnist_dir):
    assert bench.main([*SMALL_FLAGS, "--iterations", "2", "--warmup", "1", "--data-dir", mnist_dir,
                       "--valid-size", "100"]) == 0
    out = capsys.readouterr().out
    assert f"{mnist_dir} (200 training images)" in out
    assert re.search(r"peak resident memory +\d+ MB", out)
    for label in ("iterations/second", "ms per D step", "ms per G step", "GFLOP per iteration", "achieved GFLOP/s"):
        number = re.search(re.escape(label) + r" +([\d.]+)", out).group(1)
        assert significant_digits(number) <= 3, (label, number)  # what repeated runs agree on, no more


def test_bench_names_a_missing_data_dir(capsys, tmp_path):
    missing = str(tmp_path / "nowhere")
    assert bench.main([*SMALL_FLAGS, "--iterations", "2", "--data-dir", missing]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --data-dir: ") and missing in err


def test_bench_rejects_a_batch_larger_than_the_data(capsys, mnist_dir):
    assert bench.main([*SMALL_FLAGS[2:], "--batch-size", "256", "--data-dir", mnist_dir, "--valid-size", "100"]) == 1
    assert "--batch-size 256" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value, message", [("--threads", "-1", "expected an integer of 0 or more"),
                                                  ("--dim-W2", "0", "expected a positive integer")])
def test_bench_rejects_bad_numbers_naming_the_flag(capsys, flag, value, message):
    with pytest.raises(SystemExit) as exit_info:
        bench.main([flag, value])
    assert exit_info.value.code == 2
    assert f"{flag}: {message}, got '{value}'" in capsys.readouterr().err


def test_bench_help_shows_the_original_defaults(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for default in ("(default: 128)", "(default: 1024)", "(default: 100)", "(default: 64)"):
        assert default in help_text


def test_bench_against_times_two_recipes_side_by_side(capsys):
    # The recipe's two training fixes; its average of G's weights is timed below.
    r = run_bench(capsys, "--iterations", "4", "--warmup", "1", "--recipe", "repaired", "--g-average", "0",
                  "--against", "original")
    repaired, original = r["recipes"]
    assert (repaired["recipe"], repaired["loss"], repaired["d_output"]) == ("repaired", "stable", "linear")
    assert (original["recipe"], original["loss"], original["d_output"]) == ("original", "clipped", "original")
    for side in (repaired, original):
        assert (side["d_steps"], side["g_steps"]) == (2, 2)
    for key in ("it_per_s", "ms_d_step", "ms_g_step"):
        assert r["ratios"][key] == pytest.approx(repaired[key] / original[key], rel=1e-3)
    # The linear logit drops D's batchnorm over [batch, 1] and its lrelu: a few FLOPs per image, not one in 10,000.
    assert repaired["gflop_per_it"] == pytest.approx(original["gflop_per_it"], rel=1e-4)
    assert "recipes" not in run_bench(capsys, "--iterations", "2", "--warmup", "1")
    # --g-average adds the averages' update to the G update, and nothing to the D update.
    averaged, original = run_bench(capsys, "--iterations", "2", "--warmup", "1", "--g-average", "0.9",
                                   "--against", "original")["recipes"]
    assert (averaged["g_average"], original["g_average"]) == (0.9, 0.0)
    assert averaged["gflop_per_run"]["D update+evaluation"] == original["gflop_per_run"]["D update+evaluation"]
    assert averaged["gflop_per_run"]["G update+evaluation"] > original["gflop_per_run"]["G update+evaluation"]


def test_bench_against_prints_both_tables_and_the_ratios(capsys):
    assert bench.main([*SMALL_FLAGS, "--iterations", "2", "--warmup", "1", "--against", "repaired"]) == 0
    out = capsys.readouterr().out
    assert ("recipe original (--loss clipped --d-output original --g-average 0 --augment none --kernels original) "
            "against recipe repaired") in out
    assert out.count("iterations/second") == 3
    assert re.search(r"^original / repaired: iterations/second [\d.]+, ms per D step [\d.]+, ms per G step [\d.]+$",
                     out, re.M)


def test_bench_names_two_sides_of_one_recipe_by_the_switch_that_differs(capsys):
    assert bench.main([*SMALL_FLAGS, "--iterations", "2", "--warmup", "1", "--recipe", "repaired",
                       "--augment", "translate", "--against", "repaired"]) == 0
    out = capsys.readouterr().out
    assert "recipe repaired --augment translate, its steps only:" in out
    assert "recipe repaired --augment none, its steps only:" in out
    assert re.search(r"^repaired --augment translate / repaired --augment none: iterations/second [\d.]+", out, re.M)


def test_bench_times_bf16_against_the_original_loop_and_measures_the_peak(capsys, monkeypatch):
    monkeypatch.setattr(bench, "PEAK_SIDE", 256)  # the probe's result is checked, not this machine's peak
    r = run_bench(capsys, "--iterations", "4", "--warmup", "1", "--recipe", "repaired", "--precision", "bf16",
                  "--mode", "compact", "--log-every", "2", "--against", "original", "--against-mode", "faithful",
                  "--peak")
    fast, original = r["recipes"]
    assert (fast["precision"], fast["mode"], original["precision"], original["mode"]) == (
        "bf16", "compact", "fp32", "faithful")
    # The original's loop evaluates every iteration; the compact one only every --log-every.
    assert original["gflop_per_it"] > fast["gflop_per_it"]
    assert r["machine"]["fp32_gflops"] > 0 and r["machine"]["bf16_gflops"] > 0
    # A bf16 loop is held against the bf16 matmul only where the rewrite makes it bfloat16.
    assert fast["computed_in"] == ("fp32" if cpu_bfloat16() == "none" else "bf16") and original["computed_in"] == "fp32"
    for side in (fast, original):
        assert side["of_peak"] == pytest.approx(side["gflops"] / r["machine"][f"{side['computed_in']}_gflops"],
                                                rel=1e-3)


@pytest.mark.parametrize("value, text", [(2.004, "2.00"), (2.0, "2.00"), (0.5138, "0.514"), (30.71, "30.7"),
                                         (170.4, "170"), (1438.0, "1440"), (0.0, "0.00")])
def test_bench_shows_three_significant_digits_with_their_trailing_zeros(value, text):
    assert bench.shown(value) == text
