"""The shapes command: read from the built graph, right for any batch size and widths, docs kept current."""
import os
import subprocess
import sys

import numpy as np
import pytest

from dcgan_mnist import shapes
from dcgan_mnist.model import tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = {"dim_z": 7, "dim_y": 3, "dim_W1": 32, "dim_W2": 16, "dim_W3": 8, "dim_channel": 2}


def steps_by_call(steps):
    return {call: {s.name: s for s in call_steps} for call, call_steps in shapes.by_call(steps)}


def test_docs_shapes_md_is_up_to_date():
    with open(os.path.join(ROOT, "docs", "shapes.md")) as f:
        on_disk = f.read()
    assert on_disk == shapes.report(form="markdown"), (
        "docs/shapes.md is out of date: python -m dcgan_mnist shapes --format markdown > docs/shapes.md")


def test_walk_covers_every_recorded_layer_in_order():
    model, steps, _ = shapes.build(batch_size=4, sample_size=6, dims=SMALL)
    assert [(s.call, s.name, s.output) for s in steps] == [
        (call, step, tensor.shape.as_list()) for call, step, tensor in model.layers]
    assert [call for call, _ in shapes.by_call(steps)] == [
        "generate", "discriminate", "discriminate_1", "samples_generator"]
    assert all(s.does for s in steps), [s.name for s in steps if not s.does]


def test_default_shapes_and_arithmetic():
    _, steps, outputs = shapes.build()
    by = steps_by_call(steps)
    G, D, D_gen, S = by["generate"], by["discriminate"], by["discriminate_1"], by["samples_generator"]
    assert G["h1_matmul"].arithmetic == ["[128,110] x [110,1024] -> [128,1024]"]
    assert G["h1_matmul"].weights == [("gen_W1", [110, 1024])]
    assert G["h1_matmul"].inputs == [("concat_z_y", [128, 110])]
    assert G["h2_reshape"].arithmetic == ["reshape [128,6272] -> [128,7,7,128]: 6272 = 7*7*128 values per row"]
    assert G["h2_concat_y"].inputs == [("h2_reshape", [128, 7, 7, 128]), ("yb", [128, 1, 1, 10])]
    assert G["h2_concat_y"].arithmetic == [
        "[128,1,1,10] * ones[128,7,7,10] -> [128,7,7,10] (broadcast: copied along axes 1, 2)",
        "concat axis 3: [128,7,7,128] + [128,7,7,10] -> [128,7,7,138] (128+10 = 138)"]
    assert G["h3_deconv"].arithmetic == [
        "conv2d_transpose filter is [h, w, out, in] = [5,5,64,138]: channels 138 -> 64",
        "stride 2 SAME: 7 -> 14, taken from output_shape=[128,14,14,64]; allowed because conv 5x5 stride 2 "
        "SAME maps 14 back to 7"]
    assert D["h1_conv"].arithmetic == ["conv 5x5 stride 2 SAME: 28 -> 14 (ceil(28/2) = 14)",
                                       "conv2d filter is [h, w, in, out] = [5,5,11,64]: channels 11 -> 64"]
    assert D["h2_reshape"].arithmetic == [
        "reshape [128,7,7,128] -> [128,6272] (asked for [128,-1]; -1 is inferred): 7*7*128 = 6272 values per row"]
    assert D["h2_concat_y"].output == [128, 6282]
    assert D["h4_bn"].arithmetic[0] == "mean over axis 0: [128,1] -> [1]"
    assert D["h2_bn"].arithmetic[0] == "mean over axes 0, 1, 2: [128,7,7,128] -> [128]"
    assert D["concat_image_y"].inputs[0] == ("image_real", [128, 28, 28, 1])
    assert D_gen["concat_image_y"].inputs[0] == ("image_gen = sigmoid(G's h4)", [128, 28, 28, 1])
    assert S["sigmoid"].output == [196, 28, 28, 1]
    assert S["concat_z_y"].inputs == [("Z (sampler)", [196, 100]), ("Y (sampler)", [196, 10])]
    assert [(name, t.shape.as_list()) for name, t in outputs] == [
        ("Z", [128, 100]), ("Y", [128, 10]), ("image_real", [128, 28, 28, 1]),
        ("d_cost", []), ("g_cost", []), ("p_real", [128, 1]), ("p_gen", [128, 1])]


def test_other_batch_size_and_dims_follow_the_formulas():
    B, z, y, W1, W2, W3, c = 5, 7, 3, 32, 16, 8, 2
    model, steps, _ = shapes.build(batch_size=B, sample_size=6, dims=SMALL)
    by = steps_by_call(steps)
    G, D, S = by["generate"], by["discriminate"], by["samples_generator"]
    assert G["h1_matmul"].arithmetic == [f"[{B},{z + y}] x [{z + y},{W1}] -> [{B},{W1}]"]
    assert G["h2_matmul"].weights == [("gen_W2", [W1 + y, W2 * 49])]
    assert G["h3_deconv"].arithmetic[0] == (
        f"conv2d_transpose filter is [h, w, out, in] = [5,5,{W3},{W2 + y}]: channels {W2 + y} -> {W3}")
    assert G["h4_deconv"].output == [B, 28, 28, c]
    # A small label map is a Const, not a Fill; it must still be recognised as ones.
    assert G["h2_concat_y"].arithmetic[0] == (
        f"[{B},1,1,{y}] * ones[{B},7,7,{y}] -> [{B},7,7,{y}] (broadcast: copied along axes 1, 2)")
    assert D["concat_image_y"].output == [B, 28, 28, c + y]
    assert D["h1_conv"].arithmetic[1] == (
        f"conv2d filter is [h, w, in, out] = [5,5,{c + y},{W3}]: channels {c + y} -> {W3}")
    assert D["h2_reshape"].arithmetic == [
        f"reshape [{B},7,7,{W2}] -> [{B},{49 * W2}] (asked for [{B},-1]; -1 is inferred): "
        f"7*7*{W2} = {49 * W2} values per row"]
    assert D["h2_concat_y"].arithmetic == [
        f"concat axis 1: [{B},{49 * W2}] + [{B},{y}] -> [{B},{49 * W2 + y}] ({49 * W2}+{y} = {49 * W2 + y})"]
    assert D["h3_matmul"].weights == [("discrim_W3", [49 * W2 + y, W1])]
    assert S["h1_matmul"].arithmetic == [f"[6,{z + y}] x [{z + y},{W1}] -> [6,{W1}]"]
    # Parameter counts from the original's weight formulas, computed independently here.
    gen = [(z + y) * W1, (W1 + y) * W2 * 49, 25 * W3 * (W2 + y), 25 * c * (W3 + y)]
    discrim = [25 * (c + y) * W3, 25 * (W3 + y) * W2, (W2 * 49 + y) * W1, (W1 + y) * 1]
    rows = shapes.parameter_rows(model)
    assert [n for _, _, n in rows] == gen + discrim
    assert shapes.parameter_totals(rows) == [("G total", sum(gen)), ("D total", sum(discrim)),
                                             ("total", sum(gen) + sum(discrim))]


def test_default_parameter_table_is_the_originals():
    model, _, _ = shapes.build()
    rows = shapes.parameter_rows(model)
    assert [(name, shape) for name, shape, _ in rows] == [
        ("gen_W1", [110, 1024]), ("gen_W2", [1034, 6272]), ("gen_W3", [5, 5, 64, 138]), ("gen_W4", [5, 5, 1, 74]),
        ("discrim_W1", [5, 5, 11, 64]), ("discrim_W2", [5, 5, 74, 128]), ("discrim_W3", [6282, 1024]),
        ("discrim_W4", [1034, 1])]
    assert shapes.parameter_totals(rows)[-1] == ("total", sum(int(np.prod(s)) for _, s, _ in rows))


@pytest.mark.parametrize("size,kernel,stride,padding", [
    (28, 5, 2, "SAME"), (14, 5, 2, "SAME"), (13, 5, 2, "SAME"), (7, 3, 1, "SAME"),
    (28, 5, 2, "VALID"), (28, 5, 1, "VALID"), (13, 3, 3, "VALID")])
def test_conv_output_size_agrees_with_tensorflow(size, kernel, stride, padding):
    with tf.Graph().as_default():
        out = tf.nn.conv2d(tf.zeros([1, size, size, 1]), tf.zeros([kernel, kernel, 1, 1]),
                           strides=[1, stride, stride, 1], padding=padding)
        assert shapes.conv_output_size(size, kernel, stride, padding) == out.shape[1]


def test_arithmetic_is_read_from_op_attributes():
    """Ops the model does not use (VALID padding, non-square maps, transposed matmul) are explained too."""
    with tf.Graph().as_default():
        conv = tf.nn.conv2d(tf.zeros([2, 28, 20, 3]), tf.zeros([5, 5, 3, 4]), strides=[1, 1, 1, 1], padding="VALID")
        assert shapes.explain_op(conv.op) == [
            "conv 5x5 stride 1 VALID: 28x20 -> 24x16 (ceil((28-5+1)/1) x ceil((20-5+1)/1) = 24x16)",
            "conv2d filter is [h, w, in, out] = [5,5,3,4]: channels 3 -> 4"]
        mm = tf.matmul(tf.zeros([3, 4]), tf.zeros([5, 4]), transpose_b=True)
        assert shapes.explain_op(mm.op) == ["[3,4] x [4,5] -> [3,5]"]
        up = tf.nn.conv2d_transpose(tf.zeros([2, 7, 7, 6]), tf.zeros([5, 5, 4, 6]), output_shape=[2, 13, 13, 4],
                                    strides=[1, 2, 2, 1])
        assert shapes.explain_op(up.op)[1] == (
            "stride 2 SAME: 7 -> 13, taken from output_shape=[2,13,13,4]; allowed because conv 5x5 stride 2 "
            "SAME maps 13 back to 7")
        total = tf.reduce_sum(tf.zeros([2, 3, 4]), [0, 2])
        assert shapes.explain_op(total.op) == ["sum over axes 0, 2: [2,3,4] -> [3]"]
        assert shapes.explain_op(tf.nn.relu(tf.zeros([2, 3])).op) == []


def test_main_table_format(capsys):
    assert shapes.main(["--batch-size", "3", "--sample-size", "4", "--dims", "z=5,W1=16,W2=8,W3=4"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("batch size 3, sampler batch 4, z=5, y=10, W1=16, W2=8, W3=4, channel=1\n")
    assert "      = [3,15] x [15,16] -> [3,16]\n" in out
    assert "(batch 4) ==\n" in out and out.count("(batch 3) ==\n") == 3
    z, y, W1, W2, W3 = 5, 10, 16, 8, 4
    total = ((z + y) * W1 + (W1 + y) * W2 * 49 + 25 * W3 * (W2 + y) + 25 * (W3 + y)
             + 25 * (1 + y) * W3 + 25 * (W3 + y) * W2 + (W2 * 49 + y) * W1 + (W1 + y))
    assert out.rstrip().splitlines()[-1].split() == ["total", f"{total:,}"]


@pytest.mark.parametrize("argv,message", [
    (["--dims", "q=3"], "argument --dims: 'q=3' is not KEY=N with KEY one of z, y, W1, W2, W3, channel"),
    (["--dims", "z=x"], "argument --dims: z='x': the value must be a whole number"),
    (["--dims", "W1=0"], "argument --dims: W1=0: the value must be positive"),
    (["--batch-size", "0"], "argument --batch-size: expected a positive integer, got '0'"),
    (["--format", "html"], "argument --format: invalid choice"),
])
def test_bad_arguments_are_named(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        shapes.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_command_line_entry_point():
    result = subprocess.run([sys.executable, "-m", "dcgan_mnist", "shapes", "--format", "markdown"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    with open(os.path.join(ROOT, "docs", "shapes.md")) as f:
        assert result.stdout == f.read()
