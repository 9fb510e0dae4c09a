"""The shapes command: read from the built graph, right for any batch size and widths, docs kept current."""
import os

import pytest
from conftest import ROOT, SMALL_WIDTHS

from dcgan_mnist.__main__ import main as dcgan_mnist_main
from dcgan_mnist.model import tf
from dcgan_mnist.tools import shapes


def steps_by_call(steps):
    by = {}
    for s in steps:
        by.setdefault(s.call, {})[s.name] = s
    return by


def test_docs_shapes_md_is_up_to_date():
    with open(os.path.join(ROOT, "docs", "shapes.md")) as f:
        on_disk = f.read()
    assert on_disk == shapes.report(form="markdown"), (
        "docs/shapes.md is out of date: python -m dcgan_mnist shapes --format markdown > docs/shapes.md")


def test_one_step_per_recorded_layer_described_from_its_name():
    model, steps, _ = shapes.build(batch_size=4, sample_size=6, **SMALL_WIDTHS)
    assert [(s.call, s.name, s.output) for s in steps] == [
        (call, step, tensor.shape.as_list()) for call, step, tensor in model.layers]
    by = steps_by_call(steps)
    assert list(by) == ["generate", "discriminate", "discriminate_1", "samples_generator"]
    G, D, S = by["generate"], by["discriminate"], by["samples_generator"]
    assert G["h1_bn"].does == "batchnorm with this batch's own mean and variance"
    assert G["h3_bn"].does == "batchnorm per channel with this batch's statistics"
    assert D["h4_bn"].does == "batchnorm of one score per image: each becomes relative to the batch"
    assert G["h2_reshape"].does == "cut each vector into feature maps"
    assert D["h2_reshape"].does == "flatten the feature maps into one vector per image"
    assert G["h1_concat_y"].does == "append the label"
    assert G["h3_concat_y"].does == "tile the label over the maps and concat"
    assert G["h4_deconv"].does == "transposed convolution; the call returns this"
    assert S["h4_deconv"].does == "transposed convolution"
    assert S["sigmoid"].does == "sigmoid: values in (0, 1); the call returns this"
    assert D["h4_lrelu"].does == "leaky ReLU; the call returns this"


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
    assert D["h4_bn"].arithmetic[0] == "mean over axis 0: [128,1] -> [1]"
    assert D["h2_bn"].arithmetic[0] == "mean over axes 0, 1, 2: [128,7,7,128] -> [128]"
    assert D["concat_image_y"].inputs[0] == ("image_real", [128, 28, 28, 1])
    assert D_gen["concat_image_y"].inputs[0] == ("image_gen = sigmoid(G's h4)", [128, 28, 28, 1])
    assert S["concat_z_y"].inputs == [("Z (sampler)", [196, 100]), ("Y (sampler)", [196, 10])]
    assert [(name, t.shape.as_list()) for name, t in outputs] == [
        ("Z", [128, 100]), ("Y", [128, 10]), ("image_real", [128, 28, 28, 1]),
        ("d_cost", []), ("g_cost", []), ("p_real", [128, 1]), ("p_gen", [128, 1])]


def test_small_widths():
    """Batch 5, z 7, W1 32, W2 16, W3 8 (labels 10): 7+10 = 17, 32+10 = 42, 16*49 = 784, 784+10 = 794."""
    _, steps, _ = shapes.build(batch_size=5, sample_size=6, **SMALL_WIDTHS)
    by = steps_by_call(steps)
    G, D, S = by["generate"], by["discriminate"], by["samples_generator"]
    assert G["h1_matmul"].arithmetic == ["[5,17] x [17,32] -> [5,32]"]
    assert G["h2_matmul"].weights == [("gen_W2", [42, 784])]
    assert G["h3_deconv"].arithmetic[0] == "conv2d_transpose filter is [h, w, out, in] = [5,5,8,26]: channels 26 -> 8"
    # A small label map is a Const, not a Fill; it must still be recognised as ones.
    assert G["h2_concat_y"].arithmetic[0] == (
        "[5,1,1,10] * ones[5,7,7,10] -> [5,7,7,10] (broadcast: copied along axes 1, 2)")
    assert D["h1_conv"].arithmetic[1] == "conv2d filter is [h, w, in, out] = [5,5,11,8]: channels 11 -> 8"
    assert D["h2_reshape"].arithmetic == [
        "reshape [5,7,7,16] -> [5,784] (asked for [5,-1]; -1 is inferred): 7*7*16 = 784 values per row"]
    assert D["h2_concat_y"].arithmetic == ["concat axis 1: [5,784] + [5,10] -> [5,794] (784+10 = 794)"]
    assert D["h3_matmul"].weights == [("discrim_W3", [794, 32])]
    assert S["h1_matmul"].arithmetic == ["[6,17] x [17,32] -> [6,32]"]


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


def test_command_table_and_markdown(capsys):
    """Batch 3, z 5, W1 16, W2 8, W3 4. Parameters: G 15*16 + 26*392 + 25*4*18 + 25*1*14 = 240 + 10192 + 1800
    + 350 = 12582; D 25*11*4 + 25*14*8 + 402*16 + 26*1 = 1100 + 2800 + 6432 + 26 = 10358; 22940 in all."""
    flags = ["--batch-size", "3", "--sample-size", "4", "--dim-z", "5", "--dim-W1", "16", "--dim-W2", "8",
             "--dim-W3", "4"]
    assert dcgan_mnist_main(["shapes", *flags]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "batch size 3, sampler batch 4, dim_z 5, dim_W1 16, dim_W2 8, dim_W3 4"
    assert lines[2] == "== G: generate(Z, Y), called by build_model (batch 3) =="
    assert [line.split() for line in lines[3:5]] == [["#", "step", "ops", "inputs", "weight", "output"],
                                                     ["1", "yb", "Reshape", "Y", "[3,10]", "-", "[3,1,1,10]"]]
    assert "      fully connected layer (no bias)\n      = [3,15] x [15,16] -> [3,16]\n" in out
    assert "(batch 4) ==\n" in out and out.count("(batch 3) ==\n") == 3
    assert [line.split() for line in lines[-3:]] == [["G", "total", "12,582"], ["D", "total", "10,358"],
                                                     ["total", "22,940"]]

    assert dcgan_mnist_main(["shapes", *flags, "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert ("| 3 | h1_matmul | MatMul | concat_z_y [3,15] | gen_W1 [15,16] | [3,16] | fully connected layer (no bias)"
            "<br>`[3,15] x [15,16] -> [3,16]` |") in out
    assert "| gen_W2 | [26,392] | 26\\*392 = 10192 |" in out
    assert "| total |  | 22,940 |" in out


@pytest.mark.parametrize("argv,message", [
    (["--dim-W1", "0"], "argument --dim-W1: expected a positive integer, got '0'"),
    (["--format", "html"], "argument --format: invalid choice"),
])
def test_bad_arguments_are_named(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        shapes.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
