"""docs/lessons.md is executable. Every lesson's snippet runs here and must print exactly the output the
document shows, and that output must hold the key part of TensorFlow's real message; the walkthrough check's
stated shapes are compared with the real graph."""
import contextlib
import io
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT

from dcgan_mnist.tools import shapes

LESSONS = os.path.join(ROOT, "docs", "lessons.md")
LESSONS_KO = os.path.join(ROOT, "docs", "lessons.ko.md")
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```$", re.M | re.S)
ONEDNN_OFF = "TF_ENABLE_ONEDNN_OPTS=0"

# The part of each lesson's real output that the lesson is about.
KEY_TEXT = {
    1: ["batches: 390  last one: (49792, 49920)  images never fed: 80",
        "with 256 images: [(0, 128)]",
        "ValueError: Cannot feed value of shape (80, 100) for Tensor Placeholder:0, which has shape (128, 100)",
        "TypeError: Failed to convert elements of [None, 1, 1, 10] to Tensor"],
    2: ["OneHot(labels).shape: (128, 9) ; OneHot(labels, 10).shape: (128, 10)",
        "ValueError: Cannot feed value of shape (128, 9) for Tensor Placeholder_1:0, which has shape (128, 10)"],
    3: ["Depth of input (26) is not a multiple of input depth of filter (8)",
        "Dimensions must be equal, but are 26 and 8 for '{{node conv2d_transpose}} = Conv2DBackpropInput",
        "Tried to convert 'input_sizes' to a tensor and failed. Error: None values not supported.",
        "output_shape [4,13,13,8]: graph builds, static shape (4, 13, 13, 8); runs: (4, 13, 13, 8)",
        "output_shape [4,14,14,8]: graph builds, static shape (4, 14, 14, 8); runs: (4, 14, 14, 8)",
        "output_shape [4,28,28,8]: graph builds, static shape (4, 28, 28, 8); sess.run fails:"],
    4: ["Dimension 1 in both shapes must be equal, but are 16 and 10. Shapes are [7,16] and [7,10].",
        "Dimension 1 in both shapes must be equal, but are 7 and 14. Shapes are [4,7,7] and [4,14,14].",
        "Shape must be at least rank 4 but is rank 2"],
    5: ["h2_lrelu (4, 7, 7, 128) -> h2_reshape (4, 6272) -> h2_concat_y (4, 6282) ; discrim_W3 (6282, 1024)",
        "Dimension 1 in both shapes must be equal, but are 32 and 28.",
        "still draws (4, 28, 28, 1)",
        "Dimensions must be equal, but are 8202 and 6282"],
    6: ["image 2's label at every pixel: True ; same as tf.tile: True",
        "Dimension 1 in both shapes must be equal, but are 28 and 1. Shapes are [4,28,28] and [4,1,1].",
        "Cannot reshape a tensor with 40 elements to shape [4,28,28,10] (31360 elements)"],
    7: ["clipped costs against target 1 lie between 0.3133 and 0.6931"],
    8: ["|mean| 0.0 std 1.0", "8 copies of image 0: scores before h4_bn agree to 0.001: True",
        "P(real) for 8 equal scores:         [0.5 0.5 0.5 0.5 0.5 0.5 0.5 0.5]"],
    9: ["bytes written: 0 .. 255", "written with min-max scaling: [  0 255] ; with a fixed *255: [127 255]"],
    10: ["fed float64 -> result float32 ; identical to feeding float32: True",
         "Cannot feed value of shape (4, 784) for Tensor Placeholder_2:0, which has shape (4, 28, 28, 1)",
         "Cannot feed value of shape (4,) for Tensor Placeholder_1:0, which has shape (4, 10)",
         "Cannot feed value of shape (28, 28, 1) for Tensor Placeholder_2:0, which has shape (4, 28, 28, 1)",
         "Tensors in list passed to 'values' of 'ConcatV2' Op have types [float64, float32] that don't all match."],
    11: ["variables: 8", "only 7s or only 3s: same first layer: True",
         "mixed digits, sample 0's digit changed: same first layer: False",
         "ValueError: Cannot feed value of shape (128, 100) for Tensor Placeholder_3:0, which has shape (196, 100)"],
}
# How a stride-2 transposed convolution with a too-large output_shape fails when run, per CPU kernel.
TRANSPOSE_RUN_ERROR = {"": "AbortedError at node 'conv2d_transpose_4'\nOperation received an exception:Status: 2, "
                           "message: could not create a primitive descriptor",
                       ONEDNN_OFF: "InvalidArgumentError at node 'conv2d_transpose_4'\nConv2DCustomBackpropInput: "
                                   "Size of out_backprop doesn't match computed: actual = 7, computed = 14"}


def read(path):
    with open(path) as f:
        return f.read()


def sections(text):
    """{heading: body} for every '## ' section."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def lessons(text):
    """{number: (title, body, code, {variant: output})}; variant '' is the default run."""
    found = {}
    for heading, body in sections(text).items():
        number = re.match(r"(\d+)\. (.+)", heading)
        if not number:
            continue
        code, outputs = None, {}
        for info, block in FENCE.findall(body):
            if info == "python":
                assert code is None, f"lesson {heading!r} has more than one python block"
                code = block
            elif info.startswith("text"):
                outputs[info[len("text"):].strip()] = block
        found[int(number.group(1))] = (number.group(2), body, code, outputs)
    return found


def run_here(code):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<lesson>", "exec"), {"__name__": "__lesson__"})
    return out.getvalue()


def run_with_env(code, variant):
    name, value = variant.split("=")
    result = subprocess.run([sys.executable, "-"], input=code, cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, **{name: value}))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


LESSON_TEXT = read(LESSONS)
ALL = lessons(LESSON_TEXT)


def test_at_least_ten_complete_lessons():
    assert sorted(ALL) == list(range(1, len(ALL) + 1)) and len(ALL) >= 10
    for number, (title, body, code, outputs) in ALL.items():
        for part in ("**Symptom.**", "**Reproduce.**", "**Output", "**Why.**", "**Fix.**"):
            assert part in body, f"lesson {number} ({title}) has no {part}"
        assert code and "" in outputs, f"lesson {number} needs a python block and its text output"


@pytest.mark.parametrize("number", sorted(KEY_TEXT))
def test_lesson_prints_what_the_doc_shows(number):
    title, _, code, outputs = ALL[number]
    real = run_here(code)
    for key in KEY_TEXT[number]:
        assert key in real, f"lesson {number} ({title}): {key!r} is no longer in the real output:\n{real}"
    if number == 3:
        assert any(error in real for error in TRANSPOSE_RUN_ERROR.values()), real
    assert real in outputs.values(), f"lesson {number} ({title}) now prints:\n{real}"


@pytest.mark.parametrize("number,variant", [(n, v) for n, (_, _, _, out) in sorted(ALL.items()) for v in out if v])
def test_lesson_variant_output(number, variant):
    """Outputs documented for another environment (e.g. without oneDNN) are checked in that environment."""
    title, _, code, outputs = ALL[number]
    real = run_with_env(code, variant)
    if number == 3:
        assert TRANSPOSE_RUN_ERROR[variant] in real, real
    assert real == outputs[variant], f"lesson {number} ({title}) with {variant} now prints:\n{real}"


def test_clip_zeroes_exactly_the_gradients_outside_the_range():
    """Lesson 7's claim, read from its real output: every logit outside [1e-7, 1-1e-7] has gradient 0."""
    real = run_here(ALL[7][2])
    toy = re.findall(r"clip=(True|False): cost ([\d.]+), gradient per logit \[(.*)\]", real)
    assert [flag for flag, _, _ in toy] == ["True", "False"]
    clipped, stable = ([float(g) for g in grads.split()] for _, _, grads in toy)
    assert clipped[0] == 0 and clipped[2] == 0 and clipped[1] == stable[1] != 0
    assert all(g != 0 for g in stable)
    counts = {loss: (int(inside), int(zero)) for loss, inside, zero in re.findall(
        r"loss=(\w+): .*; (\d+) of 64 inside .*; gradient exactly 0 for (\d+) of 64", real)}
    inside, zero = counts["clipped"]
    assert 0 < inside < 64 and zero == 64 - inside
    assert counts["stable"] == (inside, 0)


def test_batchnorm_lesson_shows_a_batch_relative_score():
    real = run_here(ALL[8][2])
    alone, with_others = re.search(r"P\(real\) of image 0: ([\d.]+) ; with other batch-mates: ([\d.]+)", real).groups()
    assert alone != with_others
    a, b = re.search(r"100\*s - 7: (\[.*?\]) (\[.*?\])", real).groups()
    assert a == b
    # The amplification: a 0.0001 difference among otherwise equal scores moves P(real) by more than 0.1.
    nudged = re.search(r"two of them 0.0001 higher: \[(.*)\]", real).group(1).split()
    low, high = float(nudged[0]), float(nudged[-1])
    assert nudged[:6] == [nudged[0]] * 6 and nudged[6] == nudged[7]
    assert low < 0.5 < high and high - low > 0.1


def test_shift_lesson_bytes_match_up_to_rounding():
    real = run_here(ALL[9][2])
    assert int(re.search(r"unshifted grid: (\d+)", real).group(1)) <= 1


WALKTHROUGH = sections(LESSON_TEXT)["Checking the walkthrough against the real graph"]


def table_rows(text):
    """Cells of every numbered table row: (number, claim, real, verdict, reference, shown by)."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in text.splitlines() if re.match(r"\| \d+ \|", line)]
    assert all(len(row) == 6 for row in rows), [row[0] for row in rows if len(row) != 6]
    return rows


SHAPE = re.compile(r"\[\d+(?:,\d+)*\]")
TABLE_CALL = {"G": "generate", "D": "discriminate"}


def reference_shapes():
    """Shapes of everything a walkthrough row may name, from the default graph (batch 128)."""
    model, steps, outputs = shapes.build()
    ref = {v.op.name: v.shape.as_list() for v in model.gen_weights + model.discrim_weights}
    ref.update((name, t.shape.as_list()) for name, t in outputs)
    ref.update((f"{s.call}.{s.name}", s.output) for s in steps)
    image_gen = next(shape for label, shape in steps_of(steps, "discriminate_1")["concat_image_y"].inputs
                     if label.startswith("image_gen"))
    ref["image_gen"] = image_gen
    return ref, steps


def steps_of(steps, call):
    return {s.name: s for s in steps if s.call == call}


def test_walkthrough_rows_state_the_real_shapes():
    ref, steps = reference_shapes()
    rows = table_rows(WALKTHROUGH)
    assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1))
    checked = 0
    for number, _, real, _, name, shown_by in rows:
        if not name:
            continue
        assert name in ref, f"row {number}: unknown reference {name!r}"
        stated = SHAPE.search(real)
        assert stated, f"row {number}: no shape in {real!r}"
        assert stated.group(0) == shapes.fmt(ref[name]), f"row {number}: {name} is {ref[name]}, not {stated.group(0)}"
        checked += 1
        # "`shapes` G 7-9" must point at the steps that make this tensor.
        cited = re.search(r"`shapes` (G|D) (\d+)(?:-(\d+))?", shown_by)
        call, _, step = name.partition(".")
        if cited and step and TABLE_CALL[cited.group(1)] == call:
            index = [s.name for s in steps if s.call == call].index(step) + 1
            first, last = int(cited.group(2)), int(cited.group(3) or cited.group(2))
            assert first <= index <= last, f"row {number}: step {step} is {index}, not {first}-{last}"
    assert checked >= 30


def test_walkthrough_verdict_counts():
    rows = table_rows(WALKTHROUGH)
    wrong = sum(1 for r in rows if r[3].startswith("**wrong**"))
    right = sum(1 for r in rows if r[3].startswith("right"))
    assert right + wrong == len(rows)
    summary = f"Of the {len(rows)} claims, {right} are right. The mistakes are the {wrong} marked **wrong**."
    assert summary in WALKTHROUGH


def test_walkthrough_stack_answer():
    """Row 27: tf.stack of Python numbers is a Const holding the reshape target."""
    from dcgan_mnist.model import DCGAN, tf
    with tf.Graph().as_default() as graph:
        DCGAN(batch_size=128).build_model()
        stack = graph.get_operation_by_name("discriminate/stack")
        assert stack.type == "Const"
        assert tf.make_ndarray(stack.get_attr("value")).tolist() == [128, 1, 1, 10]


@pytest.mark.skipif(not os.path.exists(LESSONS_KO), reason="no Korean version")
def test_korean_version_matches_the_english_one():
    korean = read(LESSONS_KO)
    assert FENCE.findall(korean) == FENCE.findall(LESSON_TEXT), "code and outputs must be the English ones"
    korean_lessons = lessons(korean)
    assert sorted(korean_lessons) == sorted(ALL)
    for number, (title, body, _, _) in korean_lessons.items():
        for part in ("**증상.**", "**재현.**", "**출력", "**원인.**", "**해결.**"):
            assert part in body, f"Korean lesson {number} ({title}) has no {part}"
    english_rows, korean_rows = table_rows(WALKTHROUGH), table_rows(korean)
    assert [(r[0], r[4], SHAPE.findall(r[2])) for r in korean_rows] == [
        (r[0], r[4], SHAPE.findall(r[2])) for r in english_rows]
    wrong = [r[3].startswith("**wrong**") for r in english_rows]
    assert [r[3].startswith("**틀림**") for r in korean_rows] == wrong
    assert all(r[3].startswith("맞음") for r, bad in zip(korean_rows, wrong) if not bad)
    assert (f"주장 {len(wrong)}개 중 {len(wrong) - sum(wrong)}개가 맞습니다. "
            f"틀린 것은 **틀림**으로 표시한 {sum(wrong)}개입니다.") in korean
