"""`python -m dcgan_mnist shapes`: every step of G, D and the sampler, read from the built graph.

Nothing here is a hand-written table of shapes. The model is built in a fresh graph, then each step
recorded in ``DCGAN.layers`` is traced back through the TensorFlow ops that compute it, and the
arithmetic is written from those ops: their real input and output shapes and their attributes
(concat axis, conv strides and padding, reshape target, reduction axes). Only the titles and the
one-line description of what each step does are keyed by name.
"""
import argparse
import sys
from dataclasses import dataclass

import numpy as np

from .cli import positive_int
from .model import DCGAN, _tf, tf

# --dims keys -> DCGAN keyword arguments, with the original train.py's values.
DIMS = {"z": ("dim_z", 100), "y": ("dim_y", 10), "W1": ("dim_W1", 1024), "W2": ("dim_W2", 128),
        "W3": ("dim_W3", 64), "channel": ("dim_channel", 1)}
DEFAULT_BATCH_SIZE = 128   # train.py's batch_size (DCGAN's own default is 100)
DEFAULT_SAMPLE_SIZE = 196  # train.py's visualize_dim

CALL_TITLES = {
    "generate": "G: generate(Z, Y), called by build_model",
    "discriminate": "D on real images: discriminate(image_real, Y)",
    "discriminate_1": "D on generated images: discriminate(image_gen, Y), same weights",
    "samples_generator": "Sampler: samples_generator(batch_size), the generator again with its own placeholders",
}

# What each step does, by (network, step name); network is "G" or "D".
STEP_DOES = {
    ("G", "yb"): "reshape the one-hot label so it can be tiled over feature maps",
    ("G", "concat_z_y"): "append the label to the noise vector",
    ("G", "h1_matmul"): "fully connected layer (no bias)",
    ("G", "h1_bn"): "batchnorm with this batch's own mean and variance",
    ("G", "h1_relu"): "ReLU",
    ("G", "h1_concat_y"): "append the label again",
    ("G", "h2_matmul"): "fully connected layer (no bias)",
    ("G", "h2_bn"): "batchnorm with this batch's own mean and variance",
    ("G", "h2_relu"): "ReLU",
    ("G", "h2_reshape"): "cut each vector into feature maps",
    ("G", "h2_concat_y"): "tile label maps and concat",
    ("G", "h3_deconv"): "transposed convolution, stride 2: doubles height and width",
    ("G", "h3_bn"): "batchnorm per channel with this batch's statistics",
    ("G", "h3_relu"): "ReLU",
    ("G", "h3_concat_y"): "tile label maps and concat",
    ("G", "h4_deconv"): "transposed convolution to the image; returned without activation",
    ("G", "sigmoid"): "sigmoid: pixel values in (0, 1)",
    ("D", "yb"): "reshape the one-hot label so it can be tiled over feature maps",
    ("D", "concat_image_y"): "tile label maps and concat onto the image",
    ("D", "h1_conv"): "convolution, stride 2: halves height and width",
    ("D", "h1_lrelu"): "leaky ReLU (no batchnorm on the first layer)",
    ("D", "h1_concat_y"): "tile label maps and concat",
    ("D", "h2_conv"): "convolution, stride 2: halves height and width",
    ("D", "h2_bn"): "batchnorm per channel with this batch's statistics",
    ("D", "h2_lrelu"): "leaky ReLU",
    ("D", "h2_reshape"): "flatten the feature maps into one vector per image",
    ("D", "h2_concat_y"): "append the label",
    ("D", "h3_matmul"): "fully connected layer (no bias)",
    ("D", "h3_bn"): "batchnorm with this batch's own mean and variance",
    ("D", "h3_lrelu"): "leaky ReLU",
    ("D", "h3_concat_y"): "append the label again",
    ("D", "h4_matmul"): "fully connected layer to one score per image",
    ("D", "h4_bn"): "batchnorm of the scores: each becomes relative to the batch",
    ("D", "h4_lrelu"): "leaky ReLU; the raw score (logit) D returns, no sigmoid",
}

BINARY_SYMBOLS = {"Mul": "*", "AddV2": "+", "Add": "+", "Sub": "-", "RealDiv": "/"}


@dataclass
class Step:
    call: str
    name: str
    does: str
    ops: list                                       # op types computing this step, in graph order
    inputs: list                                    # (label, shape) of the tensors it reads
    weights: list                                   # (variable name, shape)
    output: list
    arithmetic: list                                # one line per shape-changing op


def fmt(shape):
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def shape_of(tensor):
    return tensor.shape.as_list()


def product(dims):
    """'7*7*128 = 6272' (or just '10' for one factor)."""
    if len(dims) == 1:
        return str(dims[0])
    return "*".join(map(str, dims)) + f" = {int(np.prod(dims))}"


def spatial(shape):
    h, w = shape[1], shape[2]
    return str(h) if h == w else f"{h}x{w}"


def conv_output_size(size, kernel, stride, padding):
    if padding == "SAME":
        return -(-size // stride)
    return -(-(size - kernel + 1) // stride)


def explain_conv(op):
    image, filt = shape_of(op.inputs[0]), shape_of(op.inputs[1])
    strides = op.get_attr("strides")
    padding = op.get_attr("padding").decode()
    out = shape_of(op.outputs[0])
    rules = [f"ceil({image[i]}/{strides[i]})" if padding == "SAME" else
             f"ceil(({image[i]}-{filt[i - 1]}+1)/{strides[i]})" for i in (1, 2)]
    rule = rules[0] if rules[0] == rules[1] else " x ".join(rules)
    return [f"conv {filt[0]}x{filt[1]} stride {strides[1]} {padding}: {spatial(image)} -> {spatial(out)} "
            f"({rule} = {spatial(out)})",
            f"conv2d filter is [h, w, in, out] = {fmt(filt)}: channels {image[3]} -> {out[3]}"]


def explain_conv_transpose(op):
    output_shape = [int(d) for d in _tf.get_static_value(op.inputs[0])]
    filt, value = shape_of(op.inputs[1]), shape_of(op.inputs[2])
    strides = op.get_attr("strides")
    padding = op.get_attr("padding").decode()
    back = [conv_output_size(output_shape[i], filt[i - 1], strides[i], padding) for i in (1, 2)]
    return [f"conv2d_transpose filter is [h, w, out, in] = {fmt(filt)}: channels {value[3]} -> {output_shape[3]}",
            f"stride {strides[1]} {padding}: {spatial(value)} -> {spatial(output_shape)}, taken from output_shape="
            f"{fmt(output_shape)}; allowed because conv {filt[0]}x{filt[1]} stride {strides[1]} {padding} maps "
            f"{spatial(output_shape)} back to {back[0] if back[0] == back[1] else 'x'.join(map(str, back))}"]


def explain_reshape(op):
    source, target = shape_of(op.inputs[0]), shape_of(op.outputs[0])
    requested = [int(d) for d in _tf.get_static_value(op.inputs[1])]
    line = f"reshape {fmt(source)} -> {fmt(target)}"
    if -1 in requested:
        line += f" (asked for {fmt(requested)}; -1 is inferred)"
    if source[0] != target[0]:
        return [f"{line}: {product(source)} values in all"]
    left, right = source[1:], target[1:]
    if len(left) >= len(right):  # flattening: '7*7*128 = 6272'
        return [f"{line}: {product(left)} values per row"]
    return [f"{line}: {int(np.prod(left))} = {'*'.join(map(str, right))} values per row"]


def explain_op(op):
    """Lines of shape arithmetic for one op; [] when the op keeps its input's shape."""
    kind = op.type
    if kind == "MatMul":
        a, b = shape_of(op.inputs[0]), shape_of(op.inputs[1])
        if op.get_attr("transpose_a"):
            a = a[::-1]
        if op.get_attr("transpose_b"):
            b = b[::-1]
        return [f"{fmt(a)} x {fmt(b)} -> {fmt(shape_of(op.outputs[0]))}"]
    if kind == "ConcatV2":
        axis = int(_tf.get_static_value(op.inputs[-1]))
        parts = [shape_of(t) for t in op.inputs[:-1]]
        sizes = "+".join(str(p[axis]) for p in parts)
        out = shape_of(op.outputs[0])
        return [f"concat axis {axis}: " + " + ".join(map(fmt, parts)) + f" -> {fmt(out)} ({sizes} = {out[axis]})"]
    if kind == "Reshape":
        return explain_reshape(op)
    if kind == "Conv2D":
        return explain_conv(op)
    if kind == "Conv2DBackpropInput":
        return explain_conv_transpose(op)
    if kind in ("Mean", "Sum"):
        axes = np.atleast_1d(_tf.get_static_value(op.inputs[1])).tolist()
        return [f"{kind.lower()} over {axes_text(axes)}: "
                f"{fmt(shape_of(op.inputs[0]))} -> {fmt(shape_of(op.outputs[0]))}"]
    if kind in BINARY_SYMBOLS:
        a, b = shape_of(op.inputs[0]), shape_of(op.inputs[1])
        if a != b and a and b:  # a scalar operand broadcasts trivially; say nothing
            out = shape_of(op.outputs[0])
            left, right = (operand(t) for t in op.inputs)
            return [f"{left} {BINARY_SYMBOLS[kind]} {right} -> {fmt(out)} ({broadcast_note(a, b, out)})"]
    return []


def is_ones(tensor):
    """tf.ones makes a Fill op for big shapes and a Const for small ones."""
    if tensor.op.type == "Fill":
        return _tf.get_static_value(tensor.op.inputs[1]) == 1
    value = _tf.get_static_value(tensor) if tensor.op.type == "Const" else None
    return value is not None and bool(np.all(value == 1))


def operand(tensor):
    return ("ones" if is_ones(tensor) else "") + fmt(shape_of(tensor))


def broadcast_note(a, b, out):
    """Which output axes are copies. Broadcasting lines shapes up from the right, so a missing
    leading axis counts as size 1."""
    padded = [[1] * (len(out) - len(s)) + s for s in (a, b)]
    axes = [i for i in range(len(out)) if out[i] > 1 and any(s[i] == 1 for s in padded)]
    return "broadcast: copied along " + axes_text(axes) if axes else "broadcast"


def axes_text(axes):
    return ("axis " if len(axes) == 1 else "axes ") + ", ".join(map(str, axes))


def is_variable_read(tensor):
    return tensor.op.type == "Identity" and tensor.op.inputs[0].op.type == "VariableV2"


def trace(tensor, known):
    """The ops that compute ``tensor`` from tensors in ``known`` (earlier steps and named inputs),
    variables and constants; returns (ops in graph order, input tensors, variable reads)."""
    ops, inputs, weights, stack = {}, [], [], [tensor.op]
    while stack:
        op = stack.pop()
        if op.name in ops:
            continue
        ops[op.name] = op
        for t in op.inputs:
            if t in known:
                if t not in inputs:
                    inputs.append(t)
            elif is_variable_read(t):
                if t not in weights:
                    weights.append(t)
            elif t.op.type != "Const":
                stack.append(t.op)
    order = {op.name: i for i, op in enumerate(tensor.graph.get_operations())}
    return sorted(ops.values(), key=lambda op: order[op.name]), inputs, weights


def unique(items):
    return list(dict.fromkeys(items))


def walk(model, named):
    """One Step per entry of ``model.layers``. ``named`` maps placeholder-like tensors to labels."""
    owner = {t: (None, label) for t, label in named.items()}  # tensor -> (call that made it, label)
    steps = []
    for call, name, tensor in model.layers:
        ops, inputs, weights = trace(tensor, owner)
        network = "D" if call.startswith("discriminate") else "G"
        labels = [label if made_by in (None, call) else f"{made_by}.{label}"
                  for made_by, label in (owner[t] for t in inputs)]
        steps.append(Step(
            call=call, name=name, does=STEP_DOES.get((network, name), ""),
            ops=unique(op.type for op in ops),
            inputs=[(label, shape_of(t)) for label, t in zip(labels, inputs)],
            weights=[(w.op.inputs[0].op.name, shape_of(w)) for w in weights],
            output=shape_of(tensor),
            arithmetic=unique(line for op in ops for line in explain_op(op)),
        ))
        owner[tensor] = (call, name)
    return steps


def build(batch_size=DEFAULT_BATCH_SIZE, sample_size=DEFAULT_SAMPLE_SIZE, dims=None):
    """Build the model as train.py does (build_model, then the sampler) in a fresh graph.
    Returns (model, steps, outputs) where outputs are build_model's named results."""
    kwargs = {arg: value for arg, value in DIMS.values()}
    kwargs.update(dims or {})
    with tf.Graph().as_default():
        # 28x28 is the only image size the model supports (its map sizes are literals; docs/lessons.md 5).
        model = DCGAN(batch_size=batch_size, image_shape=[28, 28, kwargs["dim_channel"]], **kwargs)
        Z, Y, image_real, d_cost, g_cost, p_real, p_gen = model.build_model()
        Z_sample, Y_sample, _ = model.samples_generator(sample_size)
    h4 = next(t for call, step, t in model.layers if call == "generate" and step == "h4_deconv")
    image_gen = next(op.outputs[0] for op in h4.consumers() if op.type == "Sigmoid")
    named = {Z: "Z", Y: "Y", image_real: "image_real", image_gen: "image_gen = sigmoid(G's h4)",
             Z_sample: "Z (sampler)", Y_sample: "Y (sampler)"}
    steps = walk(model, named)
    outputs = [("Z", Z), ("Y", Y), ("image_real", image_real), ("d_cost", d_cost), ("g_cost", g_cost),
               ("p_real", p_real), ("p_gen", p_gen)]
    return model, steps, outputs


def parameter_rows(model):
    """(variable, shape, count) for each of the eight weights, in creation order."""
    return [(v.op.name, shape_of(v), int(np.prod(shape_of(v)))) for v in model.gen_weights + model.discrim_weights]


def parameter_totals(rows):
    gen = sum(n for name, _, n in rows if name.startswith("gen"))
    discrim = sum(n for name, _, n in rows if name.startswith("discrim"))
    return [("G total", gen), ("D total", discrim), ("total", gen + discrim)]


def describe_inputs(step):
    return ", ".join(f"{label} {fmt(shape)}" for label, shape in step.inputs) or "-"


def describe_weights(step):
    return ", ".join(f"{name} {fmt(shape)}" for name, shape in step.weights) or "-"


def by_call(steps):
    return [(call, [s for s in steps if s.call == call]) for call in unique(s.call for s in steps)]


def heading(call, steps):
    return f"{CALL_TITLES[call]} (batch {steps[0].output[0]})"


def output_shape(tensor):
    return fmt(shape_of(tensor)) + (" (scalar)" if not shape_of(tensor) else "")


def settings_line(batch_size, sample_size, dims):
    return (f"batch size {batch_size}, sampler batch {sample_size}, "
            + ", ".join(f"{k}={v}" for k, v in dims.items()))


def render_markdown(batch_size, sample_size, dims, model, steps, outputs):
    code = lambda text: f"`{text}`"  # noqa: E731  (keeps markdown from reading 7*7*128 as emphasis)
    lines = ["# Shapes of every step", "",
             "Generated by `python -m dcgan_mnist shapes --format markdown > docs/shapes.md` from the built "
             "graph; do not edit by hand (a test fails when it is out of date). Other batch sizes and widths: "
             "`python -m dcgan_mnist shapes --help`.", "",
             f"Settings: {settings_line(batch_size, sample_size, dims)}.", "",
             "Each row is one step recorded by `model.py`. *ops* are the TensorFlow op types that compute it; "
             "*inputs* are the tensors it reads (earlier steps by name); *arithmetic* is written from the ops' "
             "real shapes and attributes. Shapes are `[batch, height, width, channels]` for images and feature "
             "maps, `[batch, features]` for vectors.", ""]
    for call, call_steps in by_call(steps):
        lines += [f"## {heading(call, call_steps)}", "",
                  "| # | step | what it does | ops | inputs | weight | output | arithmetic |",
                  "|---|---|---|---|---|---|---|---|"]
        for i, s in enumerate(call_steps, 1):
            arithmetic = "<br>".join(map(code, s.arithmetic)) or "same shape"
            lines.append(f"| {i} | `{s.name}` | {s.does} | {', '.join(s.ops)} | {describe_inputs(s)} | "
                         f"{describe_weights(s)} | {fmt(s.output)} | {arithmetic} |")
        lines.append("")
    lines += ["## What build_model returns", "", "| name | shape | op |", "|---|---|---|"]
    lines += [f"| {name} | {output_shape(t)} | {t.op.type} |" for name, t in outputs]
    rows = parameter_rows(model)
    lines += ["", "## Parameters", "", "| variable | shape | count |", "|---|---|---|"]
    lines += [f"| {name} | {fmt(shape)} | {code(product(shape))} |" for name, shape, _ in rows]
    lines += [f"| **{label}** | | **{n:,}** |" for label, n in parameter_totals(rows)]
    return "\n".join(lines) + "\n"


def aligned(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]


def render_table(batch_size, sample_size, dims, model, steps, outputs):
    lines = [settings_line(batch_size, sample_size, dims)]
    for call, call_steps in by_call(steps):
        lines += ["", f"== {heading(call, call_steps)} =="]
        rows = [("#", "step", "ops", "inputs", "weight", "output")]
        rows += [(str(i), s.name, ", ".join(s.ops), describe_inputs(s), describe_weights(s), fmt(s.output))
                 for i, s in enumerate(call_steps, 1)]
        table = aligned(rows)
        lines.append(table[0])
        for row, s in zip(table[1:], call_steps):
            lines += [row, f"      {s.does}"] + [f"      = {line}" for line in s.arithmetic]
    lines += ["", "== What build_model returns =="]
    lines += aligned([(name, output_shape(t), t.op.type) for name, t in outputs])
    rows = parameter_rows(model)
    lines += ["", "== Parameters =="]
    lines += aligned([(name, fmt(shape), product(shape)) for name, shape, _ in rows]
                     + [(label, "", f"{n:,}") for label, n in parameter_totals(rows)])
    return "\n".join(lines) + "\n"


def parse_dims(text):
    """'z=100,W1=1024' -> {'dim_z': 100, 'dim_W1': 1024}; errors name the key and the argument."""
    dims = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in DIMS:
            raise argparse.ArgumentTypeError(
                f"{item!r} is not KEY=N with KEY one of {', '.join(DIMS)}")
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{key}={value!r}: the value must be a whole number") from None
        if n <= 0:
            raise argparse.ArgumentTypeError(f"{key}={n}: the value must be positive")
        dims[DIMS[key][0]] = n
    return dims




def build_parser():
    defaults = ",".join(f"{k}={v}" for k, (_, v) in DIMS.items())
    p = argparse.ArgumentParser(
        prog="python -m dcgan_mnist shapes",
        description="Build the model in a fresh graph and print, for every step of G, D and the sampler, "
                    "what it does, its ops, input/weight/output shapes and the arithmetic behind them, "
                    "then the parameter counts.")
    p.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE,
                   help=f"batch size baked into the placeholders (default {DEFAULT_BATCH_SIZE}, as train.py)")
    p.add_argument("--sample-size", type=positive_int, default=DEFAULT_SAMPLE_SIZE,
                   help=f"batch size of the sampler (default {DEFAULT_SAMPLE_SIZE}, train.py's visualize_dim)")
    p.add_argument("--dims", type=parse_dims, default={},
                   help=f"comma-separated KEY=N to change model widths; keys and defaults: {defaults}")
    p.add_argument("--format", choices=["table", "markdown"], default="table",
                   help="table: aligned plain text (default); markdown: what docs/shapes.md holds")
    return p


def report(batch_size=DEFAULT_BATCH_SIZE, sample_size=DEFAULT_SAMPLE_SIZE, dims=None, form="table"):
    """The command's whole output as one string."""
    dims = dims or {}
    model, steps, outputs = build(batch_size, sample_size, dims)
    shown = {key: dims.get(arg, default) for key, (arg, default) in DIMS.items()}
    render = render_markdown if form == "markdown" else render_table
    return render(batch_size, sample_size, shown, model, steps, outputs)


def main(argv=None):
    args = build_parser().parse_args(argv)
    sys.stdout.write(report(args.batch_size, args.sample_size, args.dims, args.format))
    return 0


if __name__ == "__main__":
    sys.exit(main())
