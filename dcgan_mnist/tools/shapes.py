"""`python -m dcgan_mnist shapes`: every step of G, D and the sampler, read from the built graph.

The model is built in a fresh graph and each step it records in ``DCGAN.layers`` is traced back through
the TensorFlow ops that compute it; the arithmetic is written from those ops' real shapes and attributes
(concat axis, strides and padding, reshape target, reduction axes). Only the line saying what a step
does comes from its name.
"""
import re
import sys
from dataclasses import dataclass

import numpy as np

from .. import checkpoints
from ..cli import POSITIVE_INT, parser, run_command
from ..graph import model_from_settings
from ..model import tf
from ..settings import DEFAULT, MODEL_WIDTHS, add_checkpoint_flag, model_flags, settings_from

CALL_TITLES = {
    "generate": "G: generate(Z, Y), called by build_model",
    "discriminate": "D on real images: discriminate(image_real, Y)",
    "discriminate_1": "D on generated images: discriminate(image_gen, Y), same weights",
    "samples_generator": "Sampler: samples_generator(batch_size), the generator again with its own placeholders",
}
# What a step does, by its name without the layer's hN_ prefix; a pair is (for vectors, for feature maps).
DOES = {
    "yb": "the one-hot label as [batch,1,1,labels], ready to be tiled over feature maps",
    "concat_z_y": "append the label to the noise vector",
    "concat_image_y": "tile the label over the image and concat",
    "concat_y": ("append the label", "tile the label over the maps and concat"),
    "matmul": "fully connected layer (no bias)",
    "conv": "convolution",
    "deconv": "transposed convolution",
    "bn": ("batchnorm with this batch's own mean and variance", "batchnorm per channel with this batch's statistics"),
    "relu": "ReLU",
    "lrelu": "leaky ReLU",
    "reshape": ("flatten the feature maps into one vector per image", "cut each vector into feature maps"),
    "sigmoid": "sigmoid: values in (0, 1)",
    "translate": "--augment translate: move each image by its fed shift, zeros filling the border",
}
BINARY_SYMBOLS = {"Mul": "*", "AddV2": "+", "Add": "+", "Sub": "-", "RealDiv": "/"}


@dataclass
class LayerStep:
    call: str
    name: str
    does: str
    ops: list         # op types computing this step, in graph order
    inputs: list      # (label, shape) of the tensors it reads
    weights: list     # (variable name, shape)
    output: list
    arithmetic: list  # one line per shape-changing op


def does(name, output, returned):
    kind = re.sub(r"^h\d+_", "", name)
    text = DOES[kind] if isinstance(DOES[kind], str) else DOES[kind][len(output) == 4]
    if kind == "bn" and output[-1] == 1:
        text = "batchnorm of one score per image: each becomes relative to the batch"
    return text + ("; the call returns this" if returned else "")


def fmt(shape):
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def shape_of(tensor):
    return tensor.shape.as_list()


def static(tensor):
    return [int(d) for d in np.atleast_1d(tf.get_static_value(tensor))]


def product(dims):
    """'7*7*128 = 6272', or '10' for one factor."""
    return str(dims[0]) if len(dims) == 1 else "*".join(map(str, dims)) + f" = {int(np.prod(dims))}"


def spatial(sizes):
    return str(sizes[0]) if sizes[0] == sizes[1] else "x".join(map(str, sizes))


def axes_text(axes):
    return ("axis " if len(axes) == 1 else "axes ") + ", ".join(map(str, axes))


def conv_output_size(size, kernel, stride, padding):
    return -(-size // stride) if padding == "SAME" else -(-(size - kernel + 1) // stride)


def explain_conv(op):
    image, filt, out = shape_of(op.inputs[0]), shape_of(op.inputs[1]), shape_of(op.outputs[0])
    strides, padding = op.get_attr("strides"), op.get_attr("padding").decode()
    rules = [f"ceil({image[i]}/{strides[i]})" if padding == "SAME" else
             f"ceil(({image[i]}-{filt[i - 1]}+1)/{strides[i]})" for i in (1, 2)]
    return [f"conv {filt[0]}x{filt[1]} stride {strides[1]} {padding}: {spatial(image[1:3])} -> {spatial(out[1:3])} "
            f"({rules[0] if rules[0] == rules[1] else ' x '.join(rules)} = {spatial(out[1:3])})",
            f"conv2d filter is [h, w, in, out] = {fmt(filt)}: channels {image[3]} -> {out[3]}"]


def explain_conv_transpose(op):
    out, filt, value = static(op.inputs[0]), shape_of(op.inputs[1]), shape_of(op.inputs[2])
    strides, padding = op.get_attr("strides"), op.get_attr("padding").decode()
    back = [conv_output_size(out[i], filt[i - 1], strides[i], padding) for i in (1, 2)]
    return [f"conv2d_transpose filter is [h, w, out, in] = {fmt(filt)}: channels {value[3]} -> {out[3]}",
            f"stride {strides[1]} {padding}: {spatial(value[1:3])} -> {spatial(out[1:3])}, taken from output_shape="
            f"{fmt(out)}; allowed because conv {filt[0]}x{filt[1]} stride {strides[1]} {padding} maps "
            f"{spatial(out[1:3])} back to {spatial(back)}"]


def explain_reshape(op):
    source, target, requested = shape_of(op.inputs[0]), shape_of(op.outputs[0]), static(op.inputs[1])
    line = f"reshape {fmt(source)} -> {fmt(target)}"
    if -1 in requested:
        line += f" (asked for {fmt(requested)}; -1 is inferred)"
    if source[0] != target[0]:
        return [f"{line}: {product(source)} values in all"]
    if len(source) >= len(target):  # flattening: '7*7*128 = 6272'
        return [f"{line}: {product(source[1:])} values per row"]
    return [f"{line}: {int(np.prod(source[1:]))} = {'*'.join(map(str, target[1:]))} values per row"]


def explain_fused_batch_norm(op):
    """--kernels fused's batchnorm: the axes its statistics are taken over, read from its data format."""
    image, layout = shape_of(op.inputs[0]), op.get_attr("data_format").decode()
    axes = [i for i, letter in enumerate(layout) if letter != "C"]
    return [f"fused batch norm of {fmt(image)}: mean and variance over {axes_text(axes)}, one of each per channel "
            f"({image[layout.index('C')]})"]


def explain_broadcast_to(op):
    """--kernels fused's label maps: the labels broadcast over the maps' height and width."""
    source, out = shape_of(op.inputs[0]), shape_of(op.outputs[0])
    return [f"broadcast_to {fmt(source)} -> {fmt(out)} ({broadcast_note(source, out, out)})"]


def explain_op(op):
    """Lines of shape arithmetic for one op; [] when the op keeps its input's shape."""
    kind, out = op.type, shape_of(op.outputs[0])
    if kind == "MatMul":
        a, b = (shape_of(t)[::-1] if op.get_attr(f"transpose_{side}") else shape_of(t)
                for t, side in zip(op.inputs, "ab"))
        return [f"{fmt(a)} x {fmt(b)} -> {fmt(out)}"]
    if kind == "ConcatV2":
        axis, parts = static(op.inputs[-1])[0], [shape_of(t) for t in op.inputs[:-1]]
        return [f"concat axis {axis}: " + " + ".join(map(fmt, parts))
                + f" -> {fmt(out)} ({'+'.join(str(p[axis]) for p in parts)} = {out[axis]})"]
    if kind in ("Mean", "Sum"):
        return [f"{kind.lower()} over {axes_text(static(op.inputs[1]))}: {fmt(shape_of(op.inputs[0]))} -> {fmt(out)}"]
    if kind in BINARY_SYMBOLS:
        a, b = shape_of(op.inputs[0]), shape_of(op.inputs[1])
        if a != b and a and b:  # a scalar operand broadcasts trivially; say nothing
            left, right = (("ones" if is_ones(t) else "") + fmt(shape_of(t)) for t in op.inputs)
            return [f"{left} {BINARY_SYMBOLS[kind]} {right} -> {fmt(out)} ({broadcast_note(a, b, out)})"]
    explain = {"Reshape": explain_reshape, "Conv2D": explain_conv, "Conv2DBackpropInput": explain_conv_transpose,
               "FusedBatchNormV3": explain_fused_batch_norm, "BroadcastTo": explain_broadcast_to}
    return explain[kind](op) if kind in explain else []


def is_ones(tensor):
    """tf.ones makes a Fill op for big shapes and a Const for small ones."""
    if tensor.op.type == "Fill":
        return tf.get_static_value(tensor.op.inputs[1]) == 1
    return tensor.op.type == "Const" and bool(np.all(tf.get_static_value(tensor) == 1))


def broadcast_note(a, b, out):
    """Which output axes are copies. Broadcasting lines shapes up from the right, so a missing leading
    axis counts as size 1."""
    padded = [[1] * (len(out) - len(s)) + s for s in (a, b)]
    axes = [i for i in range(len(out)) if out[i] > 1 and any(s[i] == 1 for s in padded)]
    return "broadcast: copied along " + axes_text(axes) if axes else "broadcast"


def trace(tensor, known):
    """The ops that compute ``tensor`` from tensors in ``known`` (earlier steps and named inputs),
    variables and constants: (ops in graph order, input tensors, variable reads)."""
    ops, inputs, weights, stack = {}, [], [], [tensor.op]
    while stack:
        op = stack.pop()
        if op.name in ops:
            continue
        ops[op.name] = op
        for t in op.inputs:
            if t in known:
                inputs += [t] if t not in inputs else []
            elif t.op.type == "Identity" and t.op.inputs[0].op.type == "VariableV2":  # a variable read
                weights += [t] if t not in weights else []
            elif t.op.type != "Const":
                stack.append(t.op)
    order = {op.name: i for i, op in enumerate(tensor.graph.get_operations())}
    return sorted(ops.values(), key=lambda op: order[op.name]), inputs, weights


def unique(items):
    return list(dict.fromkeys(items))


def build(batch_size=DEFAULT.batch_size, sample_size=DEFAULT.visualize_dim, **options):
    """Build the model as train.py does (build_model, then the sampler) in a fresh graph; ``options`` are
    settings of a run (dim_z, dim_W1, ..., loss, d_output), the original's where left out. Returns (model,
    one LayerStep per entry of model.layers, build_model's results as (name, tensor))."""
    with tf.Graph().as_default():
        model = model_from_settings(DEFAULT.replace(**options, batch_size=batch_size))
        Z, Y, image_real, d_cost, g_cost, p_real, p_gen = model.build_model()
        Z_sample, Y_sample, _ = model.samples_generator(sample_size)
    named = {Z: "Z", Y: "Y", image_real: "image_real", model.image_gen: "image_gen = sigmoid(G's h4)",
             Z_sample: "Z (sampler)", Y_sample: "Y (sampler)"}
    if model.shifts is not None:
        named[model.shifts] = "shifts"
    owner = {t: (None, label) for t, label in named.items()}  # tensor -> (the call that made it, its label)
    steps = []
    for i, (call, name, tensor) in enumerate(model.layers):
        ops, inputs, weights = trace(tensor, owner)
        returned = i + 1 == len(model.layers) or model.layers[i + 1][0] != call
        # An input made by another call is named after it: generate.yb.
        labels = [label if made_by in (None, call) else f"{made_by}.{label}"
                  for made_by, label in map(owner.get, inputs)]
        steps.append(LayerStep(call=call, name=name, does=does(name, shape_of(tensor), returned),
                          ops=unique(op.type for op in ops), inputs=list(zip(labels, map(shape_of, inputs))),
                          weights=[(w.op.inputs[0].op.name, shape_of(w)) for w in weights], output=shape_of(tensor),
                          arithmetic=unique(line for op in ops for line in explain_op(op))))
        owner[tensor] = (call, name)
    outputs = [("Z", Z), ("Y", Y), ("image_real", image_real), ("d_cost", d_cost), ("g_cost", g_cost),
               ("p_real", p_real), ("p_gen", p_gen)]
    return model, steps, outputs


def tables(model, steps, outputs):
    """The report as (title, column names, rows); a row is (cells, notes), where notes are what the row
    does followed by its arithmetic."""
    result = []
    for call in unique(s.call for s in steps):
        chosen = [s for s in steps if s.call == call]
        rows = [([str(i), s.name, ", ".join(s.ops), ", ".join(f"{label} {fmt(shape)}" for label, shape in s.inputs),
                  ", ".join(f"{name} {fmt(shape)}" for name, shape in s.weights) or "-", fmt(s.output)],
                 [s.does] + s.arithmetic) for i, s in enumerate(chosen, 1)]
        result.append((f"{CALL_TITLES[call]} (batch {chosen[0].output[0]})",
                       ("#", "step", "ops", "inputs", "weight", "output"), rows))
    result.append(("What build_model returns", ("name", "shape", "op"),
                   [([name, fmt(shape_of(t)) + ("" if shape_of(t) else " (scalar)"), t.op.type], [])
                    for name, t in outputs]))
    counts = {v.op.name: shape_of(v) for v in model.gen_weights + model.discrim_weights}
    totals = {f"{net} total": sum(int(np.prod(s)) for n, s in counts.items() if n.startswith(prefix))
              for net, prefix in (("G", "gen"), ("D", "discrim"))}
    totals["total"] = sum(totals.values())
    result.append(("Parameters", ("variable", "shape", "count"),
                   [([name, fmt(shape), product(shape)], []) for name, shape in counts.items()]
                   + [([label, "", f"{n:,}"], []) for label, n in totals.items()]))
    return result


def render_table(settings, report):
    lines = [settings]
    for title, columns, rows in report:
        widths = [max(len(cells[i]) for cells in [columns] + [c for c, _ in rows]) for i in range(len(columns))]
        lines += ["", f"== {title} ==", "  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
        for cells, notes in rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
            lines += [f"      {note}" for note in notes[:1]] + [f"      = {line}" for line in notes[1:]]
    return "\n".join(lines) + "\n"


# docs/shapes.md's picture of the default model, drawn from ``build`` by scripts/lesson_pictures.py.
ARCHITECTURE_PICTURE = "shapes-architecture.png"


def render_markdown(settings, report, picture=False):
    def line(cells, notes=()):  # a backslash keeps markdown from reading 7*7*128 as emphasis
        text = "| " + " | ".join(c.replace("*", r"\*") for c in cells) + " |"
        return text + (" " + "<br>".join(notes[:1] + [f"`{a}`" for a in notes[1:]]) + " |" if notes else "")

    lines = ["# Shapes of every step", "",
             "Generated by `python -m dcgan_mnist shapes --format markdown > docs/shapes.md` from the built graph; "
             "do not edit by hand (a test fails when it is out of date). Other batch sizes and widths: "
             "`python -m dcgan_mnist shapes --help`.", "",
             f"Settings: {settings}.", ""]
    if picture:
        lines += [f"![G and D as blocks, each step of the built graph with its output shape]({ARCHITECTURE_PICTURE})",
                  "",
                  "Drawn from this graph by `python scripts/lesson_pictures.py DATA_DIR`; the tables below give each "
                  "step's inputs, ops and arithmetic.", ""]
    lines += ["Each step is one entry of `model.layers`. *ops* are the TensorFlow op types that compute it, "
             "*inputs* the tensors it reads (earlier steps by name); its arithmetic is written from the ops' real "
             "shapes and attributes. Shapes are `[batch, height, width, channels]` for images and feature maps, "
             "`[batch, features]` for vectors.", ""]
    for title, columns, rows in report:
        noted = ["what it does and the arithmetic"] if any(notes for _, notes in rows) else []
        lines += [f"## {title}", "", line(list(columns) + noted), line(["---"] * (len(columns) + len(noted)))]
        lines += [line(cells, notes) for cells, notes in rows] + [""]
    return "\n".join(lines)


def report(batch_size=DEFAULT.batch_size, sample_size=DEFAULT.visualize_dim, form="table", **options):
    """The command's whole output. ``options`` are as ``build`` takes them; the switches are named when they are
    not the original's."""
    model, steps, outputs = build(batch_size, sample_size, **options)
    settings = f"batch size {batch_size}, sampler batch {sample_size}, " + ", ".join(
        [f"{name} {getattr(model, name)}" for name in MODEL_WIDTHS]
        + [f"{name} {getattr(model, name)}" for name, value in DEFAULT.switches().items()
           if getattr(model, name) != value])
    if form == "markdown":
        default = (all(getattr(DEFAULT, name) == value for name, value in options.items())
                   and (batch_size, sample_size) == (DEFAULT.batch_size, DEFAULT.visualize_dim))
        return render_markdown(settings, tables(model, steps, outputs), picture=default)
    return render_table(settings, tables(model, steps, outputs))


def build_parser():
    p = parser("python -m dcgan_mnist shapes",
               "Build the model in a fresh graph and print, for every step of G, D and the sampler, what it does, "
               "its ops, input/weight/output shapes and the arithmetic behind them, then the parameter counts.")
    model_flags(p)
    p.add_argument("--sample-size", type=POSITIVE_INT.parse, default=DEFAULT.visualize_dim,
                   help="batch size of the sampler (train.py's visualize_dim)")
    add_checkpoint_flag(p, "show the graph of a trained run instead, with the batch sizes, widths and switches of "
                           "its settings.json", required=False)
    p.add_argument("--format", choices=["table", "markdown"], default="table",
                   help="table: aligned plain text; markdown: what docs/shapes.md holds")
    return p


def main(argv=None):
    return run_command(shapes_command, argv)


def shapes_command(argv):
    args = build_parser().parse_args(argv)
    if args.checkpoint is None:
        settings, sample_size = settings_from(args), args.sample_size
    else:  # the run's graph: its sizes and switches
        settings = checkpoints.Run(args.checkpoint).settings
        sample_size = settings.visualize_dim
    sys.stdout.write(report(settings.batch_size, sample_size, args.format, **settings.widths(), **settings.switches()))
    return 0
