"""Parity check: run the original GAN-MNIST ``model.py`` next to this project's model and diff them.

The original's file is imported unmodified from a checkout (``import tensorflow`` resolving to
tf.compat.v1) and its layers are recorded by stand-ins for its ``tf`` and helpers. Every comparison is
one row, in report order: variables, layers, forward outputs, costs, gradients, lockstep training. The
first failing row is the divergence the command names. docs/compare.md explains how and why.
"""
import importlib.util
import inspect
import os
import sys
from itertools import zip_longest

import numpy as np

from .. import checkpoints, cli
from ..cli import EXIT_USAGE, NON_NEGATIVE_INT, CommandError, dumps, parser
from ..graph import PRINTED, build_training, minimized
from ..lazy_tf import load_tensorflow
from ..model import DIM_Y, tf
from ..parity import LOCKSTEP_RTOL, ONE_PASS_RTOL, aligned_rows, draw_inputs, fmt_shape, measure, row
from ..precision import session_config
from ..settings import (
    DEFAULT,
    RECIPES,
    add_checkpoint_flag,
    add_flags,
    describe_switches,
    model_flags,
    settings_from,
)
from ..util import OneHot

# The reference side is built from the original train.py's literals, not from this project's settings,
# so a wrong constant cannot hide by being mirrored on both sides.
ORIGINAL_LEARNING_RATE = 0.0002
ORIGINAL_BETA1 = 0.5
ORIGINAL_K = 2
VISUALIZE_DIM = 196
IMAGE_SHAPE = [28, 28, 1]

ORIGINAL_INIT_ARGS = ("batch_size", "image_shape", "dim_z", "dim_y", "dim_W1", "dim_W2", "dim_W3", "dim_channel")
ORIGINAL_METHODS = {"build_model": (), "generate": ("Z", "Y"), "discriminate": ("image", "Y"),
                    "samples_generator": ("batch_size",)}
BUILD_MODEL_OUTPUTS = ("Z", "Y", "image_real", "d_cost", "g_cost", "p_real", "p_gen")
SAMPLER_OUTPUTS = ("Z_sample", "Y_sample", "image_sample")
EXPECTED = "a checkout of yihui-he/GAN-MNIST or its mnist/ folder"

RECORDED_TF_CALLS = ("concat", "matmul", "reshape")
RECORDED_NN_CALLS = ("conv2d", "conv2d_transpose", "relu", "sigmoid")
RECORDED_HELPERS = ("lrelu", "batchnormalize")
NETWORK_METHODS = ("generate", "discriminate", "samples_generator")

SECTIONS = ("variables", "layers", "forward outputs", "costs", "gradients", "lockstep")
FORWARD_OUTPUTS = (("P(real)", "p_real"), ("P(gen)", "p_gen"), ("sampler output", "image_sample"))


def not_original(message):
    """The error for an --original path, or a model.py found there, that is not the original."""
    return CommandError(message, EXIT_USAGE)


def find_model_file(path):
    if not os.path.exists(path):
        raise not_original(f"--original {path!r} does not exist; expected {EXPECTED}")
    if not os.path.isdir(path):
        raise not_original(f"--original {path!r} is a file, not a directory; expected {EXPECTED}")
    for candidate in (os.path.join(path, "model.py"), os.path.join(path, "mnist", "model.py")):
        if os.path.isfile(candidate):
            return candidate
    raise not_original(f"--original {path!r}: found neither model.py nor mnist/model.py; expected {EXPECTED}")


def positional_names(method):
    params = list(inspect.signature(method).parameters.values())[1:]  # drop self
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def load_original(path):
    """(its model.py, that module imported against tf.compat.v1); anything not shaped like the original
    mnist/model.py is refused with a message saying what was expected."""
    model_file = find_model_file(path)
    spec = importlib.util.spec_from_file_location("gan_mnist_original_model", model_file)
    module = importlib.util.module_from_spec(spec)
    real_tensorflow = load_tensorflow()  # imported before the swap, so the swap can be undone
    sys.modules["tensorflow"] = tf
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise not_original(f"{model_file}: importing it failed ({type(e).__name__}: {e}); expected the original "
                           "GAN-MNIST mnist/model.py, which imports nothing but tensorflow") from e
    finally:
        sys.modules["tensorflow"] = real_tensorflow
    expected = f"expected the original GAN-MNIST mnist/model.py ({EXPECTED})"
    cls = getattr(module, "DCGAN", None)
    if not inspect.isclass(cls):
        raise not_original(f"{model_file} has no class DCGAN; {expected}")
    missing = [a for a in ORIGINAL_INIT_ARGS if a not in inspect.signature(cls.__init__).parameters]
    if missing:
        raise not_original(
            f"{model_file}: DCGAN.__init__ has no argument {', '.join(missing)}; the original's signature is "
            f"DCGAN({', '.join(ORIGINAL_INIT_ARGS)}); {expected}")
    for name, args in ORIGINAL_METHODS.items():
        if not callable(getattr(cls, name, None)):
            raise not_original(f"{model_file}: DCGAN has no method {name}; {expected}")
        if len(positional_names(getattr(cls, name))) != len(args):
            raise not_original(f"{model_file}: DCGAN.{name} takes ({', '.join(positional_names(getattr(cls, name)))}"
                               f"), the original's takes ({', '.join(args)}); {expected}")
    if getattr(module, "tf", None) is not tf:
        raise not_original(f"{model_file} does not `import tensorflow as tf` as the original does; {expected}")
    return model_file, module


class _Namespace:
    """Stands in for a module: the names in ``overrides`` are replaced, everything else passes through."""

    def __init__(self, target, overrides):
        self._target, self._overrides = target, overrides

    def __getattr__(self, name):
        return self._overrides[name] if name in self._overrides else getattr(self._target, name)


class LayerRecorder:
    """Installed in the original's module (our private import of it): records (call, function, output) of
    every layer-making call while a watched network method runs. What a recorded function calls itself is
    not recorded, so a helper is one step; calls are named as this project names them."""

    def __init__(self, module):
        self.layers, self.calls_made = [], {}
        self.call = None  # the network call being built; None: record nothing
        nn = _Namespace(tf.nn, {n: self.recording(n, getattr(tf.nn, n)) for n in RECORDED_NN_CALLS})
        module.tf = _Namespace(tf, {**{n: self.recording(n, getattr(tf, n)) for n in RECORDED_TF_CALLS}, "nn": nn})
        for name in RECORDED_HELPERS:
            if callable(getattr(module, name, None)):
                setattr(module, name, self.recording(name, getattr(module, name)))

    def recording(self, name, function):
        def recorded(*args, **kwargs):
            call, self.call = self.call, None  # what a recorded function calls is part of its step
            try:
                out = function(*args, **kwargs)
            finally:
                self.call = call
            if call is not None:
                self.layers.append((call, name, out))
            return out
        return recorded

    def watch(self, model):
        for base in NETWORK_METHODS:
            setattr(model, base, self.network_call(base, getattr(model, base)))

    def network_call(self, base, method):
        def called(*args, **kwargs):
            if self.call is not None:  # a network method calling another stays one call
                return method(*args, **kwargs)
            n = self.calls_made.get(base, 0)
            self.calls_made[base] = n + 1
            self.call = base if n == 0 else f"{base}_{n}"
            try:
                return method(*args, **kwargs)
            finally:
                self.call = None
        return called


def var_name(variable):
    return variable.name.split(":")[0]


def picked(variables, prefix):
    """The variables an optimizer updates, picked by name prefix as train.py does."""
    return [v for v in variables if v.name.startswith(prefix)]


class Side:
    """One model in its own graph and session: its tensors by name (BUILD_MODEL_OUTPUTS, SAMPLER_OUTPUTS),
    variables, recorded layers and the gradients each optimizer applies (``applied``: the (gradient, variable)
    pairs of each cost's update, as ``graph.minimized`` gives them)."""

    def __init__(self, graph, tensors, layers, config, applied):
        self.graph, self.tensors, self.layers = graph, tensors, layers
        with graph.as_default():
            self.variables = {var_name(v): v for v in tf.trainable_variables()}
            self.gradients = {f"{cost}/{var_name(v)}": g for cost, pairs in applied.items() for g, v in pairs}
            init = tf.global_variables_initializer()
        self.session = tf.Session(graph=graph, config=config)
        self.session.run(init)

    def feed(self, inputs):
        return {self.tensors[name]: value for name, value in inputs.items()}

    def run(self, fetches, inputs):
        return self.session.run(fetches, feed_dict=self.feed(inputs))

    def weights(self):
        return self.session.run(self.variables)


class OurSide(Side):
    def __init__(self, settings, seed):
        graph = tf.Graph()
        with graph.as_default():
            self.training = build_training(settings.replace(seed=seed, learning_rate=ORIGINAL_LEARNING_RATE,
                                                            visualize_dim=VISUALIZE_DIM))
        super().__init__(graph, {n: getattr(self.training, n) for n in BUILD_MODEL_OUTPUTS + SAMPLER_OUTPUTS},
                         self.training.model.layers, self.training.session_config,
                         {"d_cost": self.training.discrim_gradients, "g_cost": self.training.gen_gradients})

    def feed(self, inputs):
        # --augment translate: the layers and gradients are compared with every image where it is (no shift), so
        # the comparison draws nothing the training steps would have drawn.
        feed, shifts = super().feed(inputs), self.training.model.shifts
        if shifts is not None:
            feed[shifts] = np.zeros(shifts.shape.as_list(), np.int32)
        return feed

    def iterate(self, iteration, Xs, Ys, Zs):
        return self.training.iterate(self.session, iteration, Xs, Ys, Zs)


class OriginalSide(Side):
    """The original's DCGAN with the original train.py's two optimizers, sampler and schedule around it."""

    def __init__(self, module, model_file, settings):
        recorder = LayerRecorder(module)
        graph = tf.Graph()
        try:
            with graph.as_default():
                model = module.DCGAN(**settings)
                recorder.watch(model)
                outputs = model.build_model()
                if not isinstance(outputs, (tuple, list)) or len(outputs) != len(BUILD_MODEL_OUTPUTS):
                    raise not_original(f"{model_file}: DCGAN.build_model() must return {len(BUILD_MODEL_OUTPUTS)} "
                                       f"values ({', '.join(BUILD_MODEL_OUTPUTS)}) as the original's does")
                t = dict(zip(BUILD_MODEL_OUTPUTS, outputs))
                variables = tf.trainable_variables()
                applied = {}
                # The original's minimize(cost, var_list=...) with its default gating, in its two halves.
                self.train_op_discrim, applied["d_cost"] = minimized(
                    tf.train.AdamOptimizer(ORIGINAL_LEARNING_RATE, beta1=ORIGINAL_BETA1), t["d_cost"],
                    picked(variables, "discrim"), tf.train.Optimizer.GATE_OP)
                self.train_op_gen, applied["g_cost"] = minimized(
                    tf.train.AdamOptimizer(ORIGINAL_LEARNING_RATE, beta1=ORIGINAL_BETA1), t["g_cost"],
                    picked(variables, "gen"), tf.train.Optimizer.GATE_OP)
                t.update(zip(SAMPLER_OUTPUTS, model.samples_generator(VISUALIZE_DIM)))
        except CommandError:
            raise
        except Exception as e:
            raise not_original(f"{model_file}: building its graph failed: {type(e).__name__}: {e}") from e
        super().__init__(graph, t, recorder.layers, session_config(), applied)

    def load_weights(self, values):
        with self.graph.as_default():
            slots = {name: tf.placeholder(v.dtype.base_dtype, v.shape) for name, v in self.variables.items()}
            assign = [self.variables[name].assign(slot) for name, slot in slots.items()]
        self.session.run(assign, feed_dict={slots[name]: values[name] for name in slots})

    def iterate(self, iteration, Xs, Ys, Zs):
        """One iteration as the original train.py runs it: the update, then a second run for what it prints."""
        t, feed = self.tensors, {"Z": Zs, "image_real": Xs, "Y": Ys}
        if np.mod(iteration, ORIGINAL_K) != 0:
            _, gen_loss = self.run([self.train_op_gen, t["g_cost"]], {"Z": Zs, "Y": Ys})
            discrim_loss, p_real, p_gen = self.run([t["d_cost"], t["p_real"], t["p_gen"]], feed)
            updated = "G"
        else:
            _, discrim_loss = self.run([self.train_op_discrim, t["d_cost"]], feed)
            gen_loss, p_real, p_gen = self.run([t["g_cost"], t["p_real"], t["p_gen"]], feed)
            updated = "D"
        return {"updated": updated, **dict(zip(PRINTED, (gen_loss, discrim_loss, p_real.mean(), p_gen.mean())))}


def built(tensor, with_op=False):
    """What a side built, as a row shows it: its shape, after the op type with ``with_op``."""
    if tensor is None:
        return None
    return (f"{tensor.op.type} " if with_op else "") + fmt_shape(tensor.shape.as_list())


def union(*groups):
    return list(dict.fromkeys(name for group in groups for name in group))


def tensor_pairs(ours, original):
    """(section, row name, our tensor, original tensor) for everything one pass compares, in report order;
    None where a side has nothing. Layers pair by position within each network call."""
    pairs = [("variables", n, ours.variables.get(n), original.variables.get(n))
             for n in union(original.variables, ours.variables)]
    for call in union([c for c, _, _ in ours.layers], [c for c, _, _ in original.layers]):
        mine = [(step, t) for c, step, t in ours.layers if c == call]
        theirs = [t for c, _, t in original.layers if c == call]
        for i, (a, b) in enumerate(zip_longest(mine, theirs)):
            pairs.append(("layers", f"{call}/{a[0]}" if a else f"{call}/#{i + 1}", a[1] if a else None, b))
    pairs += [("forward outputs", name, ours.tensors[key], original.tensors[key]) for name, key in FORWARD_OUTPUTS]
    pairs += [("costs", name, ours.tensors[name], original.tensors[name]) for name in ("d_cost", "g_cost")]
    pairs += [("gradients", n, ours.gradients.get(n), original.gradients.get(n))
              for n in union(ours.gradients, original.gradients)]
    return pairs


def lockstep(ours, original, batches):
    """Train both from the same weights on the same batches. Rows for the updated net, each PRINTED
    number and the final weights, and both sides' traces."""
    traces = {"original": [original.iterate(i, *b) for i, b in enumerate(batches)],
              "ours": [ours.iterate(i, *b) for i, b in enumerate(batches)]}
    schedule = {side: "".join(t["updated"] for t in trace) for side, trace in traces.items()}
    r = row("lockstep", "updated net", schedule["original"], schedule["ours"])
    r["iteration"] = next((i for i, (a, b) in enumerate(zip(*schedule.values())) if a != b), None)
    rows = [r]
    for name in PRINTED:
        rows.append(row("lockstep", name, fmt_shape([len(batches)]), fmt_shape([len(batches)])))
        values = {side: [float(t[name]) for t in trace] for side, trace in traces.items()}
        over = np.flatnonzero(measure(rows[-1], values["ours"], values["original"], LOCKSTEP_RTOL))
        rows[-1]["iteration"] = int(over[0]) if over.size else None
    final_ours, final_original = ours.weights(), original.weights()
    for name, value in final_original.items():
        rows.append(row("lockstep", f"final {name}", fmt_shape(value.shape), fmt_shape(final_ours[name].shape)))
        measure(rows[-1], final_ours[name], value, LOCKSTEP_RTOL)
    return rows, traces


def first_divergence(rows):
    """The first failing row in report order; within lockstep, the earliest over tolerance (the final
    weights count as after the last iteration)."""
    failing = [r for r in rows if not r["ok"]]
    if failing and failing[0]["section"] == "lockstep":
        return min(failing, key=lambda r: np.inf if r["iteration"] is None else r["iteration"])
    return failing[0] if failing else None


def describe(r):
    prefix = {"variables": "variable ", "layers": "layer ", "gradients": "gradient of ", "lockstep": "lockstep "}
    text = prefix.get(r["section"], "") + r["name"]
    if r["iteration"] is not None:
        text += f" (from iteration {r['iteration']})"
    if r["max_abs"] is not None:
        return text + f": max abs {r['max_abs']:.3g}, max rel {r['max_rel']:.3g}"
    return text + f": {r['original'] or 'nothing'} in the original, {r['ours'] or 'nothing'} here"


def compare(original_path, ours=DEFAULT, iterations=20, seed=0):
    """The whole comparison as a JSON-ready report (``match`` says whether everything agreed). ``ours`` is the
    Settings of this project's side: its batch size, widths and switches (the original's by default)."""
    model_file, module = load_original(original_path)
    batch_size, dim_z = ours.batch_size, ours.dim_z
    settings = {"batch_size": batch_size, "image_shape": list(IMAGE_SHAPE), "dim_y": DIM_Y, "dim_channel": 1,
                **ours.widths()}
    switches, recipe = ours.switches(), ours.recipe
    original = OriginalSide(module, model_file, settings)
    ours = OurSide(ours, seed)
    try:
        pairs = tensor_pairs(ours, original)
        rows = [row(section, name, built(b, section == "layers"), built(a, section == "layers"))
                for section, name, a, b in pairs]
        numeric = all(r["ok"] for r in rows if r["section"] == "variables")
        traces = None
        if not numeric:  # the weights cannot be copied across: compare only what each side built
            rows = [r for r in rows if r["section"] in ("variables", "layers")]
        else:
            original.load_weights(ours.weights())
            rng = np.random.RandomState(seed)
            Xs, Ys, Zs = draw_inputs(rng, batch_size, dim_z)
            inputs = {"Z": Zs, "Y": Ys, "image_real": Xs, "Z_sample": rng.uniform(-1, 1, size=(VISUALIZE_DIM, dim_z)),
                      "Y_sample": OneHot(rng.randint(DIM_Y, size=VISUALIZE_DIM), DIM_Y)}
            compared = [i for i, r in enumerate(rows) if r["ok"] and r["section"] != "variables"]
            mine = ours.run([pairs[i][2] for i in compared], inputs)
            theirs = original.run([pairs[i][3] for i in compared], inputs)
            for i, a, b in zip(compared, mine, theirs):
                measure(rows[i], a, b, ONE_PASS_RTOL)
            if iterations:  # with none, nothing is trained: lockstep is "not run", not a match of untrained weights
                lockstep_rows, traces = lockstep(ours, original, [draw_inputs(rng, batch_size, dim_z)
                                                                  for _ in range(iterations)])
                rows += lockstep_rows
    finally:
        ours.session.close()
        original.session.close()
    first = first_divergence(rows)
    parts = {section: [r["ok"] for r in rows if r["section"] == section] for section in SECTIONS}
    return {
        "original": model_file,
        "settings": {**settings, "recipe": recipe, **switches, "iterations": iterations, "seed": seed,
                     "visualize_dim": VISUALIZE_DIM, "k": ORIGINAL_K, "learning_rate": ORIGINAL_LEARNING_RATE,
                     "beta1": ORIGINAL_BETA1},
        "tolerances": {"one_pass_rtol": ONE_PASS_RTOL, "lockstep_rtol": LOCKSTEP_RTOL},
        "numeric": numeric,
        "match": first is None,
        "first_divergence": None if first is None else {"section": first["section"], "name": first["name"],
                                                        "iteration": first["iteration"], "text": describe(first)},
        "summary": {section: {"rows": len(oks), "differ": oks.count(False)} if oks else None
                    for section, oks in parts.items()},
        "rows": rows,
        "traces": traces,
    }


def text_report(report):
    s, t = report["settings"], report["tolerances"]
    lines = [f"original: {report['original']} (TensorFlow 1.x code run on tf.compat.v1)",
             f"this project: dcgan_mnist.model.DCGAN, {describe_switches(s)}",
             f"batch {s['batch_size']}, dim_z {s['dim_z']}, dim_W1/W2/W3 {s['dim_W1']}/{s['dim_W2']}/{s['dim_W3']}, "
             f"{s['visualize_dim']} samples, seed {s['seed']}; one pass on the same weights and inputs, then "
             f"{s['iterations']} lockstep iterations (k={s['k']}, two Adam(lr {s['learning_rate']}, beta1 "
             f"{s['beta1']}), numbers after each update)"]

    header, row_lines = aligned_rows(("original", "this project"), report["rows"])
    lines.append(header)
    for i, r in enumerate(report["rows"]):
        if i == 0 or r["section"] != report["rows"][i - 1]["section"]:
            lines += ["", r["section"]]
        lines.append(row_lines[i])
    if not report["numeric"]:
        lines.append("\nvalues and lockstep training not run: the variables differ, so the weights cannot be "
                     "copied across")
    lines.append(f"\ntolerance: max abs / max |value| <= {t['one_pass_rtol']:g} for one pass, "
                 f"<= {t['lockstep_rtol']:g} for lockstep training")
    counts = {part: "not run" if n is None else f"{n['rows'] - n['differ']}/{n['rows']} match"
              for part, n in report["summary"].items()}
    lines.append("summary: " + "; ".join(f"{part} {text}" for part, text in counts.items()))
    if report["match"]:
        return "\n".join(lines + ["result: MATCH"])
    lines.append(f"result: DIFFERENT, first divergence: {report['first_divergence']['text']}")
    fixes = [f"{name}={s[name]!r}" for name, value in RECIPES["original"].items() if s[name] != value]
    if fixes:
        lines.append(f"(expected: {', '.join(fixes)} departs from the original on purpose; docs/repaired.md)")
    return "\n".join(lines)


def build_parser():
    p = parser("python -m dcgan_mnist compare",
               "Run the original GAN-MNIST model.py (unmodified, on tf.compat.v1) side by side with this project's "
               "model: variables, layers, one forward/backward pass and lockstep training. Exit 0 when everything "
               "matches, 1 at a divergence, 2 on bad input.")
    p.add_argument("--original", required=True, metavar="PATH",
                   help="a checkout of yihui-he/GAN-MNIST, or its mnist/ folder")
    p.add_argument("--iterations", type=NON_NEGATIVE_INT.parse, default=20, help="lockstep training iterations")
    add_flags(p, ["seed"], seed={"default": 0, "help": "seeds the initial weights and the random batches"})
    model_flags(p)
    add_checkpoint_flag(p, "build this project's side as a run was built, with the batch size, widths and switches "
                           "of its settings.json (the weights are not read), to see where its switches depart from "
                           "the original", required=False)
    cli.add_json_flag(p, "the report")
    return p


def command(argv):
    args = build_parser().parse_args(argv)
    ours = settings_from(args) if args.checkpoint is None else checkpoints.Run(args.checkpoint).settings
    report = compare(args.original, ours, iterations=args.iterations, seed=args.seed)
    print(dumps(report, indent=1) if args.json else text_report(report))
    return 0 if report["match"] else 1


def main(argv=None):
    return cli.run_command(command, argv)
