"""Parity check: run the original GAN-MNIST ``model.py`` next to this project's model and diff them.

``python -m dcgan_mnist compare --original PATH`` (PATH: a checkout of yihui-he/GAN-MNIST or its
``mnist/`` folder). Nothing of the original is copied: its ``model.py`` is read from PATH.

Loading. The original is TensorFlow 1.x code (``import tensorflow as tf``; ``tf.placeholder``...).
Its file is imported with ``sys.modules['tensorflow']`` pointing at ``tf.compat.v1`` for the
duration of the import, so its module-level ``tf`` is the v1 API (this package has already
disabled v2 behaviour). It is then checked to be the original's interface: a ``DCGAN`` class
taking the original's keyword arguments, with build_model / generate / discriminate /
samples_generator of the original's arity, and a build_model returning seven values.

Layer capture. The original does not expose its intermediate tensors, and it must not be
edited, so after import its module global ``tf`` is swapped for a thin proxy that forwards
everything but records the outputs of the layer-making calls (``concat``, ``matmul``,
``reshape``, ``nn.conv2d``, ``nn.conv2d_transpose``, ``nn.relu``, ``nn.sigmoid``), and its
helpers ``lrelu`` and ``batchnormalize`` are wrapped to record their outputs (calls made inside
a helper are not recorded, so a helper is one step). Recording is on only while one of the
instance's ``generate`` / ``discriminate`` / ``samples_generator`` methods runs; those calls are
named as this project names them (``discriminate``, ``discriminate_1``...). The n-th recorded
step of a call is then paired with the n-th entry of this project's ``model.layers`` for the
same call. This is simpler and sturdier than walking the graph's op list, where every helper
expands into many ops whose order depends on TensorFlow internals.

What is compared, in this order (the first failing row is the "first divergence"):
variables (name, shape), layers (op type, shape, values of one forward pass), the outputs (both
costs, P(real), P(gen), the sampler output) and the gradients of each cost with respect to the
variables its optimizer updates, then lockstep training: the same weights, the same batches and
the original train.py schedule rebuilt around the original's build_model() on one side,
``TrainingGraph.step`` on the other, comparing the printed numbers of every iteration and the
final weights.

A difference is measured as max|ours - original| over a tensor, and its relative size as that
divided by the larger of the two tensors' max|value| (elementwise ratios explode at zeros, and
ReLU/clip outputs are full of them). A row passes when the relative difference is within the
tolerance below. Identical ops on the same CPU give bit-identical results, and that is what
has been measured here (difference 0 everywhere, see docs/compare.md); the tolerances only
leave room for float32 round-off from a harmless reordering of arithmetic.
"""
import argparse
import importlib.util
import inspect
import json
import os
import sys
from itertools import zip_longest

import numpy as np

from .cli import positive_int
from .graph import TrainingGraph, session_config
from .lazy_tf import load_tensorflow
from .model import DCGAN, DIM_Y, LOSSES, tf
from .util import OneHot

# Relative tolerance (to the tensor's scale) for one forward/backward pass: ~80 float32 ulps.
ONE_PASS_RTOL = 1e-5
# Lockstep training, relative to each trace's largest |value|. Identical ops give identical numbers
# (measured: 0 after 20 full-size iterations), so this is tight on purpose. It is not a bound on how
# round-off grows: Adam's m/sqrt(v) can turn a round-off difference in a near-zero gradient into an
# update difference of up to the learning rate, so an equivalent but reordered computation may need
# more room; measure before loosening.
LOCKSTEP_RTOL = 1e-4

# The reference side is built from the original train.py's literals, not from this project's
# settings, so a wrong constant here cannot hide by being mirrored on both sides.
ORIGINAL_LEARNING_RATE = 0.0002
ORIGINAL_BETA1 = 0.5
ORIGINAL_K = 2
VISUALIZE_DIM = 196
IMAGE_SHAPE = [28, 28, 1]

ORIGINAL_INIT_ARGS = ("batch_size", "image_shape", "dim_z", "dim_y", "dim_W1", "dim_W2", "dim_W3", "dim_channel")
ORIGINAL_METHODS = {"build_model": (), "generate": ("Z", "Y"), "discriminate": ("image", "Y"),
                    "samples_generator": ("batch_size",)}
BUILD_MODEL_OUTPUTS = ("Z", "Y", "image_real", "d_cost", "g_cost", "p_real", "p_gen")
EXPECTED = "a checkout of yihui-he/GAN-MNIST or its mnist/ folder"

RECORDED_TF_CALLS = ("concat", "matmul", "reshape")
RECORDED_NN_CALLS = ("conv2d", "conv2d_transpose", "relu", "sigmoid")
RECORDED_HELPERS = ("lrelu", "batchnormalize")
NETWORK_METHODS = ("generate", "discriminate", "samples_generator")
TRACE_QUANTITIES = ("gen_loss", "discrim_loss", "p_real", "p_gen")  # in the order train.py prints them


class CompareError(Exception):
    """The --original path or the model.py found there is not what the tool expects."""


# ----------------------------------------------------------------------------- loading the original

def find_model_file(path):
    if not os.path.exists(path):
        raise CompareError(f"--original {path!r} does not exist; expected {EXPECTED}")
    if not os.path.isdir(path):
        raise CompareError(f"--original {path!r} is a file, not a directory; expected {EXPECTED}")
    for candidate in (os.path.join(path, "model.py"), os.path.join(path, "mnist", "model.py")):
        if os.path.isfile(candidate):
            return candidate
    raise CompareError(f"--original {path!r}: found neither model.py nor mnist/model.py; expected {EXPECTED}")


def import_as_tf1(model_file):
    """Import ``model_file`` with ``import tensorflow`` resolving to tf.compat.v1."""
    spec = importlib.util.spec_from_file_location("gan_mnist_original_model", model_file)
    module = importlib.util.module_from_spec(spec)
    real_tensorflow = load_tensorflow()  # imported before the swap, so the swap can be undone
    sys.modules["tensorflow"] = tf
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise CompareError(f"{model_file}: importing it failed ({type(e).__name__}: {e}); expected the original "
                           "GAN-MNIST mnist/model.py, which imports nothing but tensorflow") from e
    finally:
        sys.modules["tensorflow"] = real_tensorflow
    return module


def positional_names(function):
    params = list(inspect.signature(function).parameters.values())[1:]  # drop self
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def check_interface(module, model_file):
    """Refuse anything that is not shaped like the original mnist/model.py, saying what was expected."""
    not_original = f"expected the original GAN-MNIST mnist/model.py ({EXPECTED})"
    cls = getattr(module, "DCGAN", None)
    if not inspect.isclass(cls):
        raise CompareError(f"{model_file} has no class DCGAN; {not_original}")
    init_params = inspect.signature(cls.__init__).parameters
    missing = [a for a in ORIGINAL_INIT_ARGS if a not in init_params]
    if missing:
        raise CompareError(
            f"{model_file}: DCGAN.__init__ has no argument {', '.join(missing)}; the original's signature is "
            f"DCGAN({', '.join(ORIGINAL_INIT_ARGS)}); {not_original}")
    for name, args in ORIGINAL_METHODS.items():
        method = getattr(cls, name, None)
        if not callable(method):
            raise CompareError(f"{model_file}: DCGAN has no method {name}; {not_original}")
        if len(positional_names(method)) != len(args):
            raise CompareError(
                f"{model_file}: DCGAN.{name} takes ({', '.join(positional_names(method))}), the original's takes "
                f"({', '.join(args)}); {not_original}")
    if getattr(module, "tf", None) is not tf:
        raise CompareError(f"{model_file} does not `import tensorflow as tf` as the original does; {not_original}")


def load_original(path):
    """The original's model module from an --original path, imported against tf.compat.v1 and checked."""
    model_file = find_model_file(path)
    module = import_as_tf1(model_file)
    check_interface(module, model_file)
    return model_file, module


# ----------------------------------------------------------------------------- capturing its layers

class _Namespace:
    """Stands in for a module: the names in ``overrides`` are replaced, everything else passes through."""

    def __init__(self, target, overrides):
        self._target = target
        self._overrides = overrides

    def __getattr__(self, name):
        if name in self._overrides:
            return self._overrides[name]
        return getattr(self._target, name)


class LayerRecorder:
    """Records (call, function name, output tensor) for each layer step of the original's networks."""

    def __init__(self):
        self.layers = []
        self.call = None  # the network call being built, or None: record nothing
        self.in_step = False  # inside a recorded function: its own inner calls are not steps
        self.calls_made = {}

    def recording(self, name, function):
        def recorded(*args, **kwargs):
            if self.call is None or self.in_step:
                return function(*args, **kwargs)
            self.in_step = True
            try:
                out = function(*args, **kwargs)
            finally:
                self.in_step = False
            self.layers.append((self.call, name, out))
            return out
        return recorded

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

    def install(self, module):
        """Swap the module's ``tf`` and helpers for recording ones (the module is our private import)."""
        nn = _Namespace(tf.nn, {n: self.recording(n, getattr(tf.nn, n)) for n in RECORDED_NN_CALLS})
        overrides = {n: self.recording(n, getattr(tf, n)) for n in RECORDED_TF_CALLS}
        module.tf = _Namespace(tf, {**overrides, "nn": nn})
        for name in RECORDED_HELPERS:
            if callable(getattr(module, name, None)):
                setattr(module, name, self.recording(name, getattr(module, name)))

    def watch(self, model):
        for name in NETWORK_METHODS:
            setattr(model, name, self.network_call(name, getattr(model, name)))


# ----------------------------------------------------------------------------- the two sides

def prefixed(variables, prefix):
    return [v for v in variables if v.name.startswith(prefix)]


def var_name(variable):
    return variable.name.split(":")[0]


class Side:
    """One model in its own graph and session, with what the comparison needs to fetch from it."""

    def __init__(self, graph, outputs, variables, layers, sample_io):
        self.graph = graph
        self.Z, self.Y, self.image_real, self.d_cost, self.g_cost, self.p_real, self.p_gen = outputs
        self.Z_sample, self.Y_sample, self.image_sample = sample_io
        self.variables = {var_name(v): v for v in variables}
        self.layers = layers  # [(call, step name, tensor)]
        with graph.as_default():
            discrim_vars, gen_vars = prefixed(variables, "discrim"), prefixed(variables, "gen")
            self.gradients = {
                **{f"d_cost/{var_name(v)}": g for v, g in zip(discrim_vars, tf.gradients(self.d_cost, discrim_vars))},
                **{f"g_cost/{var_name(v)}": g for v, g in zip(gen_vars, tf.gradients(self.g_cost, gen_vars))},
            }
        self.session = tf.Session(graph=graph, config=session_config())

    def feed(self, Z, Y, X, Z_sample, Y_sample):
        return {self.Z: Z, self.Y: Y, self.image_real: X, self.Z_sample: Z_sample, self.Y_sample: Y_sample}

    def weights(self):
        names = list(self.variables)
        return dict(zip(names, self.session.run([self.variables[n] for n in names])))


class OurSide(Side):
    """This project's model inside its TrainingGraph; lockstep steps go through TrainingGraph.step."""

    def __init__(self, settings, loss, seed):
        graph = tf.Graph()
        with graph.as_default():
            tf.set_random_seed(seed)
            model = DCGAN(loss=loss, **settings)
            self.training = TrainingGraph(model, visualize_dim=VISUALIZE_DIM)
            t = self.training
            variables = tf.trainable_variables()
            init = tf.global_variables_initializer()
        super().__init__(graph, (t.Z, t.Y, t.image_real, t.d_cost, t.g_cost, t.p_real, t.p_gen),
                         variables, model.layers,
                         (t.Z_sample, t.Y_sample, t.image_sample))
        self.session.run(init)

    def step(self, iteration, Xs, Ys, Zs):
        return self.training.step(self.session, iteration, Xs, Ys, Zs)


class OriginalSide(Side):
    """The original's DCGAN, with the original train.py's two optimizers and schedule rebuilt around it."""

    def __init__(self, module, model_file, settings):
        graph = tf.Graph()
        recorder = LayerRecorder()
        recorder.install(module)
        try:
            with graph.as_default():
                model = module.DCGAN(**settings)
                recorder.watch(model)
                outputs = model.build_model()
                if not isinstance(outputs, (tuple, list)) or len(outputs) != len(BUILD_MODEL_OUTPUTS):
                    raise CompareError(
                        f"{model_file}: DCGAN.build_model() must return {len(BUILD_MODEL_OUTPUTS)} values "
                        f"({', '.join(BUILD_MODEL_OUTPUTS)}) as the original's does")
                variables = tf.trainable_variables()
                d_cost, g_cost = outputs[3], outputs[4]
                self.train_op_discrim = tf.train.AdamOptimizer(ORIGINAL_LEARNING_RATE, beta1=ORIGINAL_BETA1).minimize(
                    d_cost, var_list=prefixed(variables, "discrim"))
                self.train_op_gen = tf.train.AdamOptimizer(ORIGINAL_LEARNING_RATE, beta1=ORIGINAL_BETA1).minimize(
                    g_cost, var_list=prefixed(variables, "gen"))
                sample_io = model.samples_generator(VISUALIZE_DIM)
                init = tf.global_variables_initializer()
        except CompareError:
            raise
        except Exception as e:
            raise CompareError(f"{model_file}: building its graph failed: {type(e).__name__}: {e}") from e
        super().__init__(graph, outputs, variables, recorder.layers, sample_io)
        self.session.run(init)

    def load_weights(self, values):
        with self.graph.as_default():
            slots = {name: tf.placeholder(v.dtype.base_dtype, v.shape) for name, v in self.variables.items()}
            assign = [self.variables[name].assign(slot) for name, slot in slots.items()]
        self.session.run(assign, feed_dict={slots[name]: values[name] for name in slots})

    def step(self, iteration, Xs, Ys, Zs):
        """One iteration exactly as the original train.py runs it (k=2, evaluation after the update)."""
        feed = {self.Z: Zs, self.image_real: Xs, self.Y: Ys}
        if np.mod(iteration, ORIGINAL_K) != 0:
            _, gen_loss = self.session.run([self.train_op_gen, self.g_cost], feed_dict={self.Z: Zs, self.Y: Ys})
            discrim_loss, p_real, p_gen = self.session.run([self.d_cost, self.p_real, self.p_gen], feed_dict=feed)
            updated = "G"
        else:
            _, discrim_loss = self.session.run([self.train_op_discrim, self.d_cost], feed_dict=feed)
            gen_loss, p_real, p_gen = self.session.run([self.g_cost, self.p_real, self.p_gen], feed_dict=feed)
            updated = "D"
        return {"updated": updated, "gen_loss": gen_loss, "discrim_loss": discrim_loss,
                "p_real": p_real.mean(), "p_gen": p_gen.mean()}


# ----------------------------------------------------------------------------- measuring differences

def shape_of(tensor):
    return [None if d is None else int(d) for d in tensor.shape.as_list()]


def difference(ours, original):
    """(max |ours - original|, that relative to the larger max |value| of the two) as floats."""
    ours, original = np.asarray(ours, np.float64), np.asarray(original, np.float64)
    if ours.size == 0:
        return 0.0, 0.0
    max_abs = float(np.max(np.abs(ours - original)))
    scale = float(max(np.max(np.abs(ours)), np.max(np.abs(original))))
    return max_abs, (max_abs / scale if scale > 0 else max_abs)


def within(max_rel, rtol):
    return bool(max_rel <= rtol)  # False for NaN too


def row(section, name, ok, **fields):
    return {"section": section, "name": name, "ok": ok, **fields}


def variable_rows(ours, original):
    rows = []
    for name in list(original.variables) + [n for n in ours.variables if n not in original.variables]:
        a, b = ours.variables.get(name), original.variables.get(name)
        shape_a, shape_b = (shape_of(a) if a is not None else None), (shape_of(b) if b is not None else None)
        rows.append(row("variables", name, shape_a == shape_b, original_shape=shape_b, our_shape=shape_a,
                        original_params=int(np.prod(shape_b)) if shape_b else None,
                        our_params=int(np.prod(shape_a)) if shape_a else None))
    return rows


def paired_layers(ours, original):
    """(row name, original's function name, our tensor, original tensor) per step; None where a side has none."""
    calls = list(dict.fromkeys([c for c, _, _ in ours.layers] + [c for c, _, _ in original.layers]))
    pairs = []
    for call in calls:
        mine = [(step, t) for c, step, t in ours.layers if c == call]
        theirs = [(function, t) for c, function, t in original.layers if c == call]
        for i, (a, b) in enumerate(zip_longest(mine, theirs)):
            name = f"{call}/{a[0]}" if a else f"{call}/#{i + 1}"
            pairs.append((name, b[0] if b else None, a[1] if a else None, b[1] if b else None))
    return pairs


def layer_rows(pairs, values):
    """One row per paired step: op type and static shape, plus the values' difference where ``values``
    (index -> (ours, original) arrays) has them."""
    rows = []
    for i, (name, function, a, b) in enumerate(pairs):
        fields = {"original_call": function,
                  "original_op": b.op.type if b is not None else None, "our_op": a.op.type if a is not None else None,
                  "original_shape": shape_of(b) if b is not None else None,
                  "our_shape": shape_of(a) if a is not None else None}
        ok = a is not None and b is not None and fields["original_op"] == fields["our_op"] \
            and fields["original_shape"] == fields["our_shape"]
        if ok and i in values:
            fields["max_abs"], fields["max_rel"] = difference(*values[i])
            ok = within(fields["max_rel"], ONE_PASS_RTOL)
        rows.append(row("layers", name, ok, **fields))
    return rows


def value_rows(section, names, our_values, original_values, rtol):
    rows = []
    for name, va, vb in zip(names, our_values, original_values):
        if np.shape(va) != np.shape(vb):
            rows.append(row(section, name, False, original_shape=list(np.shape(vb)), our_shape=list(np.shape(va))))
            continue
        max_abs, max_rel = difference(va, vb)
        rows.append(row(section, name, within(max_rel, rtol), shape=list(np.shape(va)), max_abs=max_abs,
                        max_rel=max_rel))
    return rows


OUTPUTS = (("d_cost", "d_cost"), ("g_cost", "g_cost"), ("P(real)", "p_real"), ("P(gen)", "p_gen"),
           ("sampler output", "image_sample"))


def one_pass(ours, original, inputs):
    """Rows for the layers, the outputs and the gradients of one pass on identical weights and on
    ``inputs`` (Z, Y, X, Z_sample, Y_sample); with ``inputs=None`` only the layers' op types and shapes."""
    pairs = paired_layers(ours, original)
    if inputs is None:
        return layer_rows(pairs, {})
    comparable = [i for i, (_, _, a, b) in enumerate(pairs) if a is not None and b is not None
                  and shape_of(a) == shape_of(b)]
    grad_names = [n for n in ours.gradients if n in original.gradients]

    def fetch(side, which):
        fetches = {"layers": [pairs[i][which] for i in comparable],
                   "outputs": [getattr(side, attr) for _, attr in OUTPUTS],
                   "gradients": [side.gradients[n] for n in grad_names]}
        return side.session.run(fetches, feed_dict=side.feed(*inputs))

    mine, theirs = fetch(ours, 2), fetch(original, 3)
    rows = layer_rows(pairs, dict(zip(comparable, zip(mine["layers"], theirs["layers"]))))
    rows += value_rows("outputs", [n for n, _ in OUTPUTS], mine["outputs"], theirs["outputs"], ONE_PASS_RTOL)
    rows += value_rows("gradients", grad_names, mine["gradients"], theirs["gradients"], ONE_PASS_RTOL)
    rows += [row("gradients", n, False, note="only on one side")
             for n in sorted(set(ours.gradients) ^ set(original.gradients))]
    return rows


def trace_row(name, ours, original):
    """A lockstep row for one printed number; an iteration is over tolerance when its difference
    exceeds LOCKSTEP_RTOL times the largest |value| in either trace."""
    a, b = np.asarray(ours, np.float64), np.asarray(original, np.float64)
    max_abs, max_rel = difference(a, b)
    scale = max(np.max(np.abs(a)), np.max(np.abs(b))) if a.size else 0.0
    over = [i for i in range(a.size) if not within(abs(a[i] - b[i]), LOCKSTEP_RTOL * scale)]
    return row("lockstep", name, not over, max_abs=max_abs, max_rel=max_rel,
               first_bad_iteration=over[0] if over else None, ours=a.tolist(), original=b.tolist())


def lockstep(ours, original, batches):
    """Train both from the same weights on the same batches; rows for every trace and the final weights."""
    mine, theirs = [], []
    for iteration, (Xs, Ys, Zs) in enumerate(batches):
        mine.append(ours.step(iteration, Xs, Ys, Zs))
        theirs.append(original.step(iteration, Xs, Ys, Zs))
    updated_ours, updated_original = "".join(t["updated"] for t in mine), "".join(t["updated"] for t in theirs)
    bad = [i for i, (a, b) in enumerate(zip(updated_ours, updated_original)) if a != b]
    rows = [row("lockstep", "updated net", not bad, first_bad_iteration=bad[0] if bad else None,
                ours=updated_ours, original=updated_original)]
    rows += [trace_row(q, [float(t.get(q, np.nan)) for t in mine], [float(t[q]) for t in theirs])
             for q in TRACE_QUANTITIES]
    final_ours, final_original = ours.weights(), original.weights()
    names = [n for n in final_original if n in final_ours]
    for r in value_rows("lockstep", [f"final {n}" for n in names], [final_ours[n] for n in names],
                        [final_original[n] for n in names], LOCKSTEP_RTOL):
        rows.append({**r, "first_bad_iteration": None if r["ok"] else len(batches)})
    return rows


# ----------------------------------------------------------------------------- the comparison

def draw_inputs(rng, batch_size, dim_z):
    """One batch as train.py feeds it (images float64 in [0,1], one-hot labels, float32 uniform Z)."""
    Xs = rng.rand(batch_size, *IMAGE_SHAPE)
    Ys = OneHot(rng.randint(DIM_Y, size=batch_size), DIM_Y)
    Zs = rng.uniform(-1, 1, size=[batch_size, dim_z]).astype(np.float32)
    return Xs, Ys, Zs


def first_divergence(rows):
    """The first failing row, in report order; within the lockstep section, the earliest iteration."""
    failing = [r for r in rows if not r["ok"]]
    if not failing:
        return None
    first = failing[0]
    if first["section"] == "lockstep":
        lockstep_failing = [r for r in failing if r["section"] == "lockstep"]
        first = min(lockstep_failing, key=lambda r: r["first_bad_iteration"])
    return first


def describe(r):
    what = {"variables": "variable ", "layers": "layer ", "gradients": "gradient of ", "lockstep": "lockstep "}
    text = what.get(r["section"], "") + r["name"]
    if r.get("first_bad_iteration") is not None and not r["name"].startswith("final "):
        text += f" (from iteration {r['first_bad_iteration']})"
    if r.get("max_abs") is not None:
        text += f": max abs {r['max_abs']:.3g}, max rel {r['max_rel']:.3g}"
    elif isinstance(r.get("ours"), str):
        text += f": {r['original']} in the original, {r['ours']} here"
    elif r.get("original_shape") != r.get("our_shape"):
        text += f": shape {fmt_shape(r.get('original_shape'))} in the original, {fmt_shape(r.get('our_shape'))} here"
    elif r.get("original_op") != r.get("our_op"):
        text += f": op {r.get('original_op')} in the original, {r.get('our_op')} here"
    return text


def summarise(rows):
    """Rows and differing rows per part of the report; None for a part that was not run."""
    def part(section, names=None):
        chosen = [r for r in rows if r["section"] == section and (names is None or r["name"] in names)]
        return {"rows": len(chosen), "differ": sum(not r["ok"] for r in chosen)} if chosen else None
    return {"variables": part("variables"), "layers": part("layers"),
            "forward outputs": part("outputs", ("P(real)", "P(gen)", "sampler output")),
            "costs": part("outputs", ("d_cost", "g_cost")),
            "gradients": part("gradients"), "lockstep": part("lockstep")}


def compare(original_path, batch_size=128, iterations=20, loss="clipped", seed=0,
            dim_z=100, dim_W1=1024, dim_W2=128, dim_W3=64):
    """The whole comparison as a JSON-ready report dict (``match`` says whether everything agreed)."""
    model_file, module = load_original(original_path)
    settings = {"batch_size": batch_size, "image_shape": list(IMAGE_SHAPE), "dim_z": dim_z, "dim_y": DIM_Y,
                "dim_W1": dim_W1, "dim_W2": dim_W2, "dim_W3": dim_W3, "dim_channel": 1}
    original = OriginalSide(module, model_file, settings)
    ours = OurSide(settings, loss, seed)
    try:
        rows = variable_rows(ours, original)
        numeric = all(r["ok"] for r in rows)
        if numeric:
            original.load_weights(ours.weights())
            rng = np.random.RandomState(seed)
            Xs, Ys, Zs = draw_inputs(rng, batch_size, dim_z)
            Z_sample = rng.uniform(-1, 1, size=(VISUALIZE_DIM, dim_z))
            Y_sample = OneHot(rng.randint(DIM_Y, size=VISUALIZE_DIM), DIM_Y)
            rows += one_pass(ours, original, (Zs, Ys, Xs, Z_sample, Y_sample))
            rows += lockstep(ours, original, [draw_inputs(rng, batch_size, dim_z) for _ in range(iterations)])
        else:
            rows += one_pass(ours, original, None)
    finally:
        ours.session.close()
        original.session.close()
    first = first_divergence(rows)
    return {
        "original": model_file,
        "settings": {**settings, "loss": loss, "iterations": iterations, "seed": seed,
                     "visualize_dim": VISUALIZE_DIM, "k": ORIGINAL_K, "learning_rate": ORIGINAL_LEARNING_RATE,
                     "beta1": ORIGINAL_BETA1},
        "tolerances": {"one_pass_rtol": ONE_PASS_RTOL, "lockstep_rtol": LOCKSTEP_RTOL},
        "numeric": numeric,
        "match": first is None,
        "first_divergence": None if first is None else {"section": first["section"], "name": first["name"],
                                                        "iteration": first.get("first_bad_iteration"),
                                                        "text": describe(first)},
        "summary": summarise(rows),
        "rows": rows,
    }


# ----------------------------------------------------------------------------- printing

def fmt_shape(shape):
    return "-" if shape is None else "x".join("?" if d is None else str(d) for d in shape) or "scalar"


def fmt_number(x):
    if x is None:
        return "-"
    return "0" if x == 0 else f"{x:.2e}"


def fmt_part(counts):
    if counts is None:
        return "not run"
    return f"{counts['rows'] - counts['differ']}/{counts['rows']} match"


def mark(r):
    return "ok" if r["ok"] else "DIFF"


def print_report(report):
    s = report["settings"]
    p = print
    p(f"original: {report['original']} (TensorFlow 1.x code run on tf.compat.v1)")
    p(f"this project: dcgan_mnist.model.DCGAN(loss={s['loss']!r})")
    p(f"batch {s['batch_size']}, dim_z {s['dim_z']}, dim_W1/W2/W3 {s['dim_W1']}/{s['dim_W2']}/{s['dim_W3']}, "
      f"{s['visualize_dim']} samples, {s['iterations']} lockstep iterations, seed {s['seed']}")
    rows = report["rows"]

    p("\nvariables")
    p(f"  {'name':<12} {'original':>16} {'params':>10} {'this project':>16} {'params':>10}")
    for r in (r for r in rows if r["section"] == "variables"):
        p(f"  {r['name']:<12} {fmt_shape(r['original_shape']):>16} {r['original_params'] or '-':>10} "
          f"{fmt_shape(r['our_shape']):>16} {r['our_params'] or '-':>10}  {mark(r)}")
    totals = [sum(r[k] or 0 for r in rows if r["section"] == "variables") for k in ("original_params", "our_params")]
    p(f"  {'total':<12} {'':>16} {totals[0]:>10} {'':>16} {totals[1]:>10}")

    p("\nlayers (one pass, same weights and inputs)")
    p(f"  {'layer':<30} {'original call':<17} {'op':<20} {'original':>13} {'this project':>13} {'max abs':>9} "
      f"{'max rel':>9}")
    for r in (r for r in rows if r["section"] == "layers"):
        op = r["our_op"] if r["our_op"] == r["original_op"] else f"{r['original_op']}/{r['our_op']}"
        p(f"  {r['name']:<30} {r['original_call'] or '-':<17} {op:<20} {fmt_shape(r['original_shape']):>13} "
          f"{fmt_shape(r['our_shape']):>13} "
          f"{fmt_number(r.get('max_abs')):>9} {fmt_number(r.get('max_rel')):>9}  {mark(r)}")

    if report["numeric"]:
        p("\noutputs and gradients (one pass)")
        p(f"  {'quantity':<34} {'shape':>14} {'max abs':>9} {'max rel':>9}")
        for r in (r for r in rows if r["section"] in ("outputs", "gradients")):
            name = r["name"] if r["section"] == "outputs" else "d {} / d {}".format(*r["name"].split("/"))
            p(f"  {name:<34} {fmt_shape(r.get('shape')):>14} {fmt_number(r.get('max_abs')):>9} "
              f"{fmt_number(r.get('max_rel')):>9}  {mark(r)}")
        p(f"\nlockstep training ({s['iterations']} iterations, k={s['k']}, two Adam(lr {s['learning_rate']}, "
          f"beta1 {s['beta1']}), values after the update)")
        p(f"  {'quantity':<34} {'max abs':>9} {'max rel':>9} {'first over tolerance':>22}")
        for r in (r for r in rows if r["section"] == "lockstep"):
            first = r.get("first_bad_iteration")
            first = "-" if first is None else "at the end" if r["name"].startswith("final ") else f"iteration {first}"
            p(f"  {r['name']:<34} {fmt_number(r.get('max_abs')):>9} {fmt_number(r.get('max_rel')):>9} "
              f"{first:>22}  {mark(r)}")
    else:
        p("\nvalues and lockstep training not run: the variables differ, so the weights cannot be copied across")

    t = report["tolerances"]
    p(f"\ntolerance: max abs / max |value| <= {t['one_pass_rtol']:g} for one pass, <= {t['lockstep_rtol']:g} "
      "for lockstep training")
    p("summary: " + "; ".join(f"{part} {fmt_part(counts)}" for part, counts in report["summary"].items()))
    if report["match"]:
        p("result: MATCH")
    else:
        p(f"result: DIFFERENT, first divergence: {report['first_divergence']['text']}")
        if s["loss"] != "clipped":
            p(f"(expected: loss={s['loss']!r} is the opt-in fix; the original clips the discriminator's logits)")


# ----------------------------------------------------------------------------- command line

def non_negative_int(text):
    return 0 if text.strip() == "0" else positive_int(text)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m dcgan_mnist compare",
        description="Run the original GAN-MNIST model.py (unmodified, on tf.compat.v1) side by side with this "
                    "project's model: variables, layers, one forward/backward pass and lockstep training. "
                    "Exit 0 when everything matches, 1 at a divergence, 2 on bad input.")
    parser.add_argument("--original", required=True, metavar="PATH",
                        help="a checkout of yihui-he/GAN-MNIST, or its mnist/ folder")
    parser.add_argument("--batch-size", type=positive_int, default=128)
    parser.add_argument("--iterations", type=non_negative_int, default=20, help="lockstep training iterations")
    parser.add_argument("--loss", choices=LOSSES, default="clipped",
                        help="this project's loss; 'stable' shows where the opt-in fix departs from the original")
    parser.add_argument("--seed", type=int, default=0, help="seeds the initial weights and the random batches")
    parser.add_argument("--dim-z", type=positive_int, default=100)
    parser.add_argument("--dim-W1", type=positive_int, default=1024)
    parser.add_argument("--dim-W2", type=positive_int, default=128)
    parser.add_argument("--dim-W3", type=positive_int, default=64)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser.parse_args(argv)


def json_safe(value):
    """NaN and infinities (a diverged run) as strings, so the output stays valid JSON."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


def main(argv=None):
    args = parse_args(argv)
    try:
        report = compare(args.original, batch_size=args.batch_size, iterations=args.iterations, loss=args.loss,
                         seed=args.seed, dim_z=args.dim_z, dim_W1=args.dim_W1, dim_W2=args.dim_W2, dim_W3=args.dim_W3)
    except CompareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(json_safe(report), indent=1, allow_nan=False))
    else:
        print_report(report)
    return 0 if report["match"] else 1
