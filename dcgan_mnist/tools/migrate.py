"""``python -m dcgan_mnist migrate-check``: the TensorFlow 2 twin (dcgan_mnist/twin.py) against the TF1 graph,
rung by rung, and (``--speed``) the two's training speed side by side.

The two never share a process: using ``dcgan_mnist.model.tf`` switches the whole process to TF1 behaviour.
This process is the TF2 side; it starts the TF1 side (migration_tf1.py) in a child process, which builds the TF1
training graph (graph.build_training, as train.py builds it), runs it and writes every number a rung needs, with
the inputs it fed, to ``reference.npz`` and ``reference.json``. This side copies the TF1
weights into the twin, feeds it the same inputs and compares, in compare's report style and with its numpy
helpers (nothing here reads compare's TensorFlow, which would switch this process to TF1). docs/migration.md
explains each rung and what it caught.
"""
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from .. import cli, lazy_tf
from ..batches import prepare_batch
from ..checkpoints import named_checkpoint
from ..cli import NON_NEGATIVE_INT, POSITIVE_INT, CommandError, dumps, parser
from ..files import load_settings
from ..graph import PRINTED
from ..load import DataError, resolve_data_dir, seeded_split
from ..migration_tf1 import FORWARD
from ..parity import LOCKSTEP_RTOL, ONE_PASS_RTOL, aligned_rows, difference, fmt_shape, measure, row
from ..settings import Settings, add_checkpoint_flag, add_flags, describe_switches, model_flags, settings_from

RUNGS = {1: "variables made once", 2: "names, shapes, count", 3: "forward pass", 4: "gradients",
         5: "one Adam step", 6: "lockstep", 7: "checkpoint"}
# Grappler off, the twin runs the TF1 graph's kernels in its order, so every number is bit-identical: 0 is the
# tolerance. Grappler's rewrites (--grappler) change last digits, so compare's tolerances apply then.
EXACT = 0.0
MODES = ("eager", "tf.function")
DEFAULT_ITERATIONS = 20
DEFAULT_CONTINUE = 4


def request(args):
    """{file name: text} of the TF1 side's request for the parsed flags ``args``: what it computes, and the settings
    of the model (a run given with --checkpoint brings its own)."""
    what = {"iterations": args.iterations, "seed": args.seed, "checkpoint": args.checkpoint,
            "continue_iterations": args.continue_iterations}
    return {"request.json": json.dumps(what, sort_keys=True) + "\n", "settings.json": settings_from(args).to_json()}


def write_request(directory, files):
    """Write the request ``files`` into ``directory``, removing the reference of another request found there."""
    os.makedirs(directory, exist_ok=True)
    for name in ("reference.json", "reference.npz", "run", "vis"):
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
    for name, text in files.items():
        with open(os.path.join(directory, name), "w") as f:
            f.write(text)


class TF1Side:
    """The TF1 side's child process for the request ``files``, writing into ``directory``. It starts at once, so it
    runs while this process imports TensorFlow; ``reference()`` waits for it. When ``directory`` holds the
    reference of the same request, that is reused and no child is started."""

    def __init__(self, directory, files):
        self.directory, self.process = directory, None
        self.log = os.path.join(directory, "tf1-side.log")
        if os.path.exists(os.path.join(directory, "reference.json")) and all(
                read_text(os.path.join(directory, name)) == text for name, text in files.items()):
            return
        write_request(directory, files)
        # A file, not a pipe: train.py --resume's lines would fill a pipe and stall the child while this side imports.
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dcgan_mnist.migration_tf1", os.path.join(directory, "request.json")],
                stdout=log, stderr=log)

    def reference(self):
        """(meta, arrays) of ``read_reference``, once the child has written them."""
        if self.process is not None and self.process.wait() != 0:
            written = (read_text(self.log) or "").strip().splitlines()[-20:]
            errors = [line for line in written if line.startswith("error: ")]
            if self.process.returncode == cli.EXIT_ERROR and errors:  # the side's own message, naming the run's files
                raise CommandError(errors[-1][len("error: "):])
            raise CommandError(f"the TF1 side failed (exit status {self.process.returncode}); its last words:\n"
                               + "\n".join(written))
        return read_reference(self.directory)


def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def read_reference(directory):
    """(meta, arrays) the TF1 side wrote into ``directory``."""
    with open(os.path.join(directory, "reference.json")) as f:
        meta = json.load(f)
    with np.load(os.path.join(directory, "reference.npz")) as npz:
        arrays = {name: npz[name] for name in npz.files}
    return meta, arrays


# ---- the TF2 side (this process) ----

def import_twin():
    """dcgan_mnist.twin, with TensorFlow imported in TF2 behaviour (its start-up chatter filtered as lazy_tf
    filters it); refused in a process that already switched TensorFlow to TF1 behaviour."""
    level, found = 0 if lazy_tf.verbose() else lazy_tf.min_log_level(), {}
    with lazy_tf.filtered_stderr(level, found) if level > 0 else contextlib.nullcontext():
        import tensorflow as tf

        from .. import twin
        # Probed while stderr is filtered: on a machine without a GPU the CUDA driver's complaint is dropped.
        found["gpus"] = len(tf.config.list_physical_devices("GPU"))
    check_tf2(tf)
    return twin


def check_tf2(tf):
    if not tf.executing_eagerly():
        raise CommandError("TensorFlow runs with TF1 behaviour in this process (dcgan_mnist.model.tf was used), so "
                           "the TF2 twin cannot run here: the two sides must be kept apart by process")


def check_the_twin_computes(s, trained=None):
    """Refuse settings whose training the twin does not have: the flags', or those of the run ``trained`` (the
    --checkpoint given)."""
    origin = f"--checkpoint {trained} was trained with " if trained else ""
    if s.precision != "fp32":
        raise CommandError(f"{origin}--precision {s.precision}; the twin computes in float32, as the original does: "
                           "--precision fp32 only")
    if s.augment != "none":
        raise CommandError(f"{origin}--augment {s.augment}; the twin has no --augment (its D sees the images as they "
                           "are): --augment none only")
    if s.kernels != "original":
        raise CommandError(f"{origin}--kernels {s.kernels}; the twin writes batchnorm and leaky ReLU out of "
                           "element-wise ops, as the original does: --kernels original only")


def trainer_from_settings(twin, s):
    model = twin.DCGAN(dim_z=s.dim_z, dim_W1=s.dim_W1, dim_W2=s.dim_W2, dim_W3=s.dim_W3, loss=s.loss,
                       d_output=s.d_output)
    return twin.Trainer(model, learning_rate=s.learning_rate, k=s.k, g_average=s.g_average)


def load_state(trainer, arrays, prefix):
    for name, variable in trainer.state().items():
        variable.assign(arrays[f"{prefix}/{name}"])


def state_values(trainer):
    return {name: v.numpy() for name, v in trainer.state().items()}


def tolerance(rung, grappler):
    """Rung ``rung``'s largest max rel difference that passes; None: rungs 1-2 compare counts and names."""
    if rung < 3:
        return None
    if not grappler:
        return EXACT
    return ONE_PASS_RTOL if rung < 6 else LOCKSTEP_RTOL


def rung_row(rung, name, theirs, ours):
    r = row(RUNGS[rung], name, theirs, ours)
    r["rung"] = rung
    return r


def value_row(rung, name, theirs, ours, rtol):
    """A row with the max abs and max rel difference of the values (compare.measure); the elements over ``rtol``
    are in its "over"."""
    theirs, ours = np.asarray(theirs), np.asarray(ours)
    r = rung_row(rung, name, fmt_shape(theirs.shape), fmt_shape(ours.shape))
    r["over"] = measure(r, ours, theirs, rtol) if r["ok"] else None
    return r


def failure_row(rung, doing, error):
    text = str(error).strip().splitlines()
    return rung_row(rung, doing, "runs", f"raised {type(error).__name__}: {text[0] if text else ''}"[:120])


def described(found):
    if found is None:
        return None
    shape, trainable = found
    return fmt_shape(shape) + ("" if trainable else ", not trainable")


def flat(values):
    return np.concatenate([np.ravel(v) for v in values]) if values else np.zeros(0)


def traced_rows(rung, theirs, ours, rtol):
    """Rows of two traces of iterations: how many, the updated net, then each printed number with its first
    iteration over ``rtol``. train.py's metrics.jsonl (a TF1 trace) has None where a compact log skipped one."""
    label = [t.get("iteration", i) for i, t in enumerate(theirs)]
    rows = [rung_row(rung, "iterations", str(len(theirs)), str(len(ours)))]
    schedule = ["".join(t["updated"] for t in trace) for trace in (theirs, ours)]
    rows.append(rung_row(rung, "updated net", *schedule))
    rows[-1]["iteration"] = next((label[i] for i, (a, b) in enumerate(zip(*schedule)) if a != b), None)
    for name in PRINTED:
        kept = [i for i, t in enumerate(theirs[:len(ours)]) if t[name] is not None]
        r = value_row(rung, name, [theirs[i][name] for i in kept], [float(ours[i][name]) for i in kept], rtol)
        over = r.pop("over")
        first = np.flatnonzero(over) if over is not None else []
        r["iteration"] = label[kept[first[0]]] if len(first) else None
        rows.append(r)
    return rows


class Ladder:
    """The rungs of the TF2 side against one TF1 reference (meta, arrays); ``twin`` is the module of the twin under
    test (a wrong one in the tests)."""

    def __init__(self, twin, meta, arrays, grappler=False):
        self.twin, self.tf, self.meta, self.arrays, self.grappler = twin, twin.tf, meta, arrays, grappler
        self.trainer = trainer_from_settings(twin, Settings(**meta["settings"]))
        self.model = self.trainer.model
        self.inputs = [self.tf.constant(arrays[f"inputs/{n}"], self.tf.float32) for n in ("X", "Y", "Z")]
        self.sample_inputs = [self.tf.constant(arrays[f"inputs/{n}"], self.tf.float32)
                              for n in ("sample_z", "sample_y")]

    def rows(self, last_rung=7):
        found = []
        for rung, method in ((1, self.made_once), (2, self.names), (3, self.forward), (4, self.gradients),
                             (5, self.adam_steps), (6, self.lockstep), (7, self.checkpoint))[:last_rung]:
            try:
                found += [{key: value for key, value in r.items() if key != "over"} for r in method(rung)]
            except Exception as e:  # a twin that cannot run a rung fails it, saying where
                found.append(failure_row(rung, method.__doc__.split(":")[0], e))
        return found

    def value_row(self, rung, name, theirs, ours):
        return value_row(rung, name, theirs, ours, tolerance(rung, self.grappler))

    def made_once(self, rung):
        """calls: each network and step called twice, counting the variables each call makes"""
        tf, model, trainer = self.tf, self.model, self.trainer
        X, Y, Z = self.inputs
        calls = {"generate": lambda: model.generate(Z, Y), "discriminate": lambda: model.discriminate(X, Y),
                 "sampler": lambda: trainer.sample(*self.sample_inputs), "D step": lambda: trainer.d_step(X, Y, Z),
                 "G step": lambda: trainer.g_step(X, Y, Z)}
        made = []

        def counting(next_creator, **kwargs):
            made.append(kwargs.get("name"))
            return next_creator(**kwargs)

        rows = [rung_row(rung, "trainable variables of the model", str(self.meta["made_by_init"]),
                         str(len(model.trainable_variables)))]
        for name, call in calls.items():
            counts = []
            for _ in range(2):
                made.clear()
                with tf.variable_creator_scope(counting):
                    call()
                counts.append(len(made))
            rows.append(rung_row(rung, f"{name}: new variables, 1st and 2nd call",
                                 ", ".join(map(str, self.meta["made_once"][name])), ", ".join(map(str, counts))))
        return rows

    def names(self, rung):
        """variables: names, shapes, count"""
        theirs = {name: (shape, trainable) for name, shape, trainable in self.meta["variables"]}
        ours = {name: (v.shape.as_list(), v.trainable) for name, v in self.trainer.state().items()}

        def count(found):
            return f"{len(found)} ({sum(trainable for _, trainable in found.values())} trainable)"

        rows = [rung_row(rung, "variables", count(theirs), count(ours))]
        for name in dict.fromkeys(list(theirs) + list(ours)):
            rows.append(rung_row(rung, name, described(theirs.get(name)), described(ours.get(name))))
        return rows

    def forward(self, rung):
        """forward pass: G, D, both costs and the sampler on the TF1 weights"""
        tf, model, trainer = self.tf, self.model, self.trainer
        load_state(trainer, self.arrays, "state0")

        def outputs(X, Y, Z, sample_z, sample_y):
            h4 = model.generate(Z, Y)
            image_gen = tf.nn.sigmoid(h4)
            raw_real, raw_gen = model.discriminate(X, Y), model.discriminate(image_gen, Y)
            d_cost, g_cost = model.costs(raw_real, raw_gen)
            return dict(zip(FORWARD, (h4, image_gen, raw_real, raw_gen, tf.nn.sigmoid(raw_real),
                                      tf.nn.sigmoid(raw_gen), d_cost, g_cost, trainer.sample(sample_z, sample_y))))

        return self.both_modes(rung, outputs, "forward", *self.inputs, *self.sample_inputs)

    def gradients(self, rung):
        """gradients: of d_cost by D's weights and of g_cost by G's"""
        tf, model = self.tf, self.model
        load_state(self.trainer, self.arrays, "state0")

        def gradients(X, Y, Z):
            with tf.GradientTape(persistent=True) as tape:
                d_cost, g_cost = model.costs(model.discriminate(X, Y),
                                             model.discriminate(tf.nn.sigmoid(model.generate(Z, Y)), Y))
            found = {}
            for cost, name, weights in ((d_cost, "d_cost", model.discrim_weights),
                                        (g_cost, "g_cost", model.gen_weights)):
                for w, g in zip(weights, tape.gradient(cost, weights)):
                    found[f"{name} by {self.twin.slot_name(w)}"] = g
            return found

        return self.both_modes(rung, gradients, "gradients", *self.inputs)

    def both_modes(self, rung, compute, prefix, *inputs):
        """Rows of ``compute``'s outputs, run eagerly (the tf.functions it calls too) and as one tf.function,
        against the TF1 arrays ``prefix/NAME``."""
        rows = []
        for mode in MODES:
            self.tf.config.run_functions_eagerly(mode == "eager")
            try:
                found = (compute if mode == "eager" else self.tf.function(compute, autograph=False))(*inputs)
            finally:
                self.tf.config.run_functions_eagerly(False)
            rows += [self.value_row(rung, f"{name} ({mode})", self.arrays[f"{prefix}/{name}"], value.numpy())
                     for name, value in found.items()]
        return rows

    def adam_steps(self, rung):
        """Adam steps: a D step from the TF1 weights, a G step from TF1's state after it"""
        trainer, slot_name = self.trainer, self.twin.slot_name
        d, g = trainer.d_optimizer, trainer.g_optimizer
        # In the order the step computes them, so the first row that differs is where the step goes wrong.
        written = {"D step": d.m + d.v + self.model.discrim_weights + [d.beta1_power, d.beta2_power],
                   "G step": g.m + g.v + self.model.gen_weights + [g.beta1_power, g.beta2_power]
                   + (trainer.averages or [])}
        rows = []
        for i, (step, start) in enumerate((("D step", "state0"), ("G step", "after D step"))):
            load_state(trainer, self.arrays, start)
            out = trainer.iterate(i, *[self.arrays[f"inputs/{n}"] for n in ("X", "Y", "Z")])
            theirs = self.meta["steps"][step]
            rows.append(rung_row(rung, f"{step}: updated net", theirs["updated"], out["updated"]))
            after = state_values(trainer)
            names = [slot_name(v) for v in written[step]]
            rows += [self.value_row(rung, f"{step}: {name}", self.arrays[f"after {step}/{name}"], after[name])
                     for name in names]
            rest = [name for name in after if name not in names]
            rows.append(self.value_row(rung, f"{step}: the {len(rest)} other variables",
                                       flat([self.arrays[f"after {step}/{name}"] for name in rest]),
                                       flat([after[name] for name in rest])))
            rows += [self.value_row(rung, f"{step}: {name}", theirs[name], out[name]) for name in PRINTED]
        return rows

    def lockstep(self, rung):
        """lockstep: N iterations from the TF1 weights on the TF1 batches and z"""
        load_state(self.trainer, self.arrays, "state0")
        a = self.arrays
        trace = [self.trainer.iterate(i, *[a[f"batches/{i}/{n}"] for n in ("X", "Y", "Z")])
                 for i in range(self.meta["iterations"])]
        return traced_rows(rung, self.meta["lockstep"], trace, tolerance(rung, self.grappler)) + [
            self.value_row(rung, f"final {name}", a[f"lockstep final/{name}"], value)
            for name, value in state_values(self.trainer).items()]

    def checkpoint(self, rung):
        """checkpoint: a train.py checkpoint loaded in TF2 and trained on, against train.py --resume"""
        info = self.meta.get("checkpoint")
        if info is None:
            return []
        twin = self.twin
        s = load_settings(info["run_dir"], "--checkpoint")
        trainer = trainer_from_settings(twin, s)
        try:
            data = seeded_split(s.seed, resolve_data_dir(s.dataset, s.data_dir, download=False), s.valid_size)
        except DataError as e:
            raise CommandError(f"rung 7 needs the run's data: {e}") from None
        reader = trainer.load_tf1_checkpoint(info["checkpoint"])
        position = twin.restore_loop_state(reader)
        loaded = state_values(trainer)
        rows = [rung_row(rung, "loop position", f"iteration {info['iteration']}",
                         f"iteration {position['iteration']}"),
                self.value_row(rung, f"the {len(loaded)} variables loaded by name",
                               flat([reader.get_tensor(name) for name in loaded]), flat(list(loaded.values())))]
        trace = [out for _, _, out in twin.train(trainer, data.trX, data.trY, s.batch_size, s.n_epochs, **position,
                                                 last_iteration=info["iteration"] + len(info["trace"]))]
        rows += traced_rows(rung, info["trace"], trace, tolerance(rung, self.grappler))
        continued = self.tf.train.load_checkpoint(info["continued"])
        _, key, pos, _, _ = np.random.get_state()
        rows.append(self.value_row(rung, "numpy's random state after", np.append(
            continued.get_tensor("train_state/rng_key"), continued.get_tensor("train_state/rng_pos")),
            np.append(key.astype(np.int64), pos)))
        return rows + [self.value_row(rung, f"final {name}", continued.get_tensor(name), value)
                       for name, value in state_values(trainer).items()]


# ---- the report ----

def ladder(meta, arrays, twin=None, grappler=False, last_rung=7):
    """The report of the rungs up to ``last_rung`` of the TF2 side against the TF1 reference (meta, arrays);
    ``twin`` is the module of the twin (dcgan_mnist.twin unless given)."""
    twin = twin or import_twin()
    if not grappler:
        twin.without_grappler()
    check_tf2(twin.tf)
    rows = Ladder(twin, meta, arrays, grappler).rows(last_rung)
    check_tf2(twin.tf)  # nothing the rungs ran switched this process to TF1 behaviour
    return report(meta, rows, grappler)


def report(meta, rows, grappler):
    rungs = []
    for number, title in RUNGS.items():
        mine = [r for r in rows if r["rung"] == number]
        measured = [r for r in mine if r["max_abs"] is not None]
        rungs.append({"rung": number, "title": title, "rows": len(mine), "tolerance": tolerance(number, grappler),
                      "max_abs": max((r["max_abs"] for r in measured), default=None),
                      "max_rel": max((r["max_rel"] for r in measured), default=None),
                      "ok": all(r["ok"] for r in mine) if mine else None})
    for r in rungs:
        r["exact"] = bool(r["ok"]) and r["max_abs"] in (None, 0.0)
    failing = [r for r in rows if not r["ok"]]
    first = None
    if failing:
        rung = failing[0]["rung"]
        same = [r for r in failing if r["rung"] == rung]
        first = min(same, key=lambda r: np.inf if r["iteration"] is None else r["iteration"])
    return {"settings": meta["settings"], "iterations": meta["iterations"], "grappler": grappler,
            "checkpoint": meta.get("checkpoint", {}).get("checkpoint"), "rungs": rungs, "rows": rows,
            "match": first is None,
            "first_divergence": None if first is None else {"rung": first["rung"], "name": first["name"],
                                                            "iteration": first["iteration"], "text": describe(first)}}


def describe(r):
    text = f"rung {r['rung']} ({RUNGS[r['rung']]}), {r['name']}"
    if r["iteration"] is not None:
        text += f" (from iteration {r['iteration']})"
    if r["max_abs"] is not None:
        return text + f": max abs {r['max_abs']:.3g}, max rel {r['max_rel']:.3g}"
    return text + f": {r['original'] or 'nothing'} in TF1, {r['ours'] or 'nothing'} in TF2"


def text_report(rep):
    s = rep["settings"]
    lines = [f"TF1: graph.TrainingGraph in a tf.compat.v1 session (its own process); TF2: dcgan_mnist.twin, "
             f"{'Grappler on' if rep['grappler'] else 'Grappler off'}",
             f"{describe_switches(s)}, batch "
             f"{s['batch_size']}, dim_z {s['dim_z']}, dim_W1/W2/W3 {s['dim_W1']}/{s['dim_W2']}/{s['dim_W3']}, "
             f"seed {s['seed']}; lockstep {rep['iterations']} iterations (k={s['k']}, Adam lr {s['learning_rate']}, "
             f"beta1 0.5)" + (f"; checkpoint {rep['checkpoint']}" if rep["checkpoint"] else "")]
    header, row_lines = aligned_rows(("TF1 graph", "TF2 twin"), rep["rows"])
    lines.append(header)
    for rung in rep["rungs"]:
        if not rung["rows"]:
            reason = " (give --checkpoint RUN_DIR)" if rung["rung"] == 7 and rep["checkpoint"] is None else ""
            lines += ["", f"rung {rung['rung']} {rung['title']}: not run{reason}"]
            continue
        lines += ["", f"rung {rung['rung']} {rung['title']}"]
        for i, r in enumerate(rep["rows"]):
            if r["rung"] == rung["rung"]:
                lines.append(row_lines[i])
    lines.append("")
    for rung in rep["rungs"]:
        if rung["rows"]:
            tol = "equal" if rung["tolerance"] is None else "exact" if rung["tolerance"] == 0 else \
                f"max rel <= {rung['tolerance']:g}"
            lines.append(f"rung {rung['rung']} {rung['title']:<21} max abs {difference(rung['max_abs']):>8}, max rel "
                         f"{difference(rung['max_rel']):>8}; tolerance {tol}: "
                         + (("exact" if rung["exact"] else "pass") if rung["ok"] else "FAIL"))
    if rep["match"]:
        exact = [str(r["rung"]) for r in rep["rungs"] if r["exact"]]
        return "\n".join(lines + [f"result: MATCH; bit-identical rungs: {', '.join(exact) or 'none'}"])
    return "\n".join(lines + [f"result: DIFFERENT, first divergence: {rep['first_divergence']['text']}"])


# ---- speed ----

def time_twin(twin, s, batches, warmup):
    """Milliseconds of each D and G step of the twin (Trainer.iterate, the inputs already prepared)."""
    trainer = trainer_from_settings(twin, s)
    for i in range(2 * warmup):
        trainer.iterate(i, *batches[i % len(batches)])
    seconds = {"D": [], "G": []}
    for i, batch in enumerate(batches):
        started = time.perf_counter()
        out = trainer.iterate(i, *batch)
        seconds[out["updated"]].append(time.perf_counter() - started)
    return {f"ms_{net.lower()}_step": float(np.median(t)) * 1000 for net, t in seconds.items()}


def time_tf1(s, iterations, warmup):
    """bench's faithful timing of the TF1 loop, in its own process."""
    flags = ["--json", "--iterations", str(iterations), "--warmup", str(warmup), "--batch-size", str(s.batch_size),
             "--threads", str(s.threads), "--seed", str(s.seed), "--recipe", s.recipe]
    flags += [word for name, value in (*s.widths().items(), *s.switches().items())
              for word in (f"--{name.replace('_', '-')}", str(value))]
    done = subprocess.run([sys.executable, "-m", "dcgan_mnist", "bench", *flags], capture_output=True, text=True)
    if done.returncode != 0:
        raise CommandError(f"bench failed: {done.stderr.strip()[-2000:]}")
    found = json.loads(done.stdout)
    return {key: found[key] for key in ("ms_d_step", "ms_g_step")}


def speed(s, rounds, iterations, warmup, grappler):
    """Both loops' median ms per D and G step: ``rounds`` turns of ``iterations`` of each, TF1 (bench, a fresh
    process each turn) then the twin (this process, a fresh twin each turn, traced in its warm-up). The ratio
    is the median of each round's twin / TF1, so that a change in what else the machine runs, which falls on
    both turns of a round, cancels."""
    twin = import_twin()
    if not grappler:
        twin.without_grappler()
    rng = np.random.RandomState(s.seed)
    trX, trY = rng.randint(0, 256, size=(2000, 784), dtype=np.uint8), rng.randint(10, size=2000)
    batches = [prepare_batch(trX, trY, rng.choice(2000, s.batch_size, replace=False), s.dim_z)
               for _ in range(iterations)]
    turns = {"tf1": [], "tf2": []}
    for _ in range(rounds):
        turns["tf1"].append(time_tf1(s, iterations, warmup))
        turns["tf2"].append(time_twin(twin, s, batches, warmup))
    medians = {side: {key: float(np.median([t[key] for t in found])) for key in ("ms_d_step", "ms_g_step")}
               for side, found in turns.items()}
    ratios = {key: float(np.median([b[key] / a[key] for a, b in zip(turns["tf1"], turns["tf2"])]))
              for key in ("ms_d_step", "ms_g_step")}
    return {"batch_size": s.batch_size, "widths": s.widths(), "rounds": rounds, "iterations": iterations,
            "grappler": grappler, "tensorflow": twin.tf.__version__, "turns": turns, "medians": medians,
            "tf2_over_tf1": ratios}


def speed_text(r):
    m, ratio = r["medians"], r["tf2_over_tf1"]
    lines = [f"speed: batch {r['batch_size']}, dim_z/W1/W2/W3 {'/'.join(str(v) for v in r['widths'].values())}, "
             f"{r['rounds']} rounds of {r['iterations']} iterations each, taking turns; TensorFlow {r['tensorflow']}; "
             f"twin with Grappler {'on' if r['grappler'] else 'off'}",
             f"  {'':<28}{'ms per D step':>16}{'ms per G step':>16}",
             f"  {'TF1 graph (bench, faithful)':<28}{m['tf1']['ms_d_step']:>16.1f}{m['tf1']['ms_g_step']:>16.1f}",
             f"  {'TF2 twin (tf.function)':<28}{m['tf2']['ms_d_step']:>16.1f}{m['tf2']['ms_g_step']:>16.1f}",
             f"  {'TF2 / TF1, median of rounds':<28}{ratio['ms_d_step']:>16.2f}{ratio['ms_g_step']:>16.2f}"]
    return "\n".join(lines)


# ---- the command ----

def build_parser():
    p = parser("python -m dcgan_mnist migrate-check",
               "Check the TensorFlow 2 twin (dcgan_mnist/twin.py) against the TF1 training graph, run in a process "
               "of its own, rung by rung: (1) variables made once, (2) names, shapes, count, (3) forward pass, "
               "(4) gradients, (5) one Adam step of D and of G, (6) N iterations in lockstep, (7) a train.py "
               "checkpoint loaded and trained on in TF2. Exit 0 when every rung passes, 1 at a divergence.")
    p.add_argument("--iterations", type=NON_NEGATIVE_INT.parse, default=DEFAULT_ITERATIONS,
                   help="rung 6: lockstep iterations")
    add_flags(p, ["seed", "threads"], seed={"default": 0, "help": "seeds the TF1 initial weights and the inputs"})
    model_flags(p)
    add_checkpoint_flag(p, "rung 7: load this run's checkpoint into the twin and train on, against train.py "
                           "--resume of it (in a copy of the run; the run is not touched); every rung is then "
                           "built with the run's settings", required=False)
    p.add_argument("--continue", dest="continue_iterations", type=POSITIVE_INT.parse, default=DEFAULT_CONTINUE,
                   help="rung 7: iterations to train after the checkpoint")
    p.add_argument("--reference", metavar="DIR",
                   help="keep the TF1 side's numbers in DIR, and reuse them while the flags are the same: the twin "
                        "is checked again without running TF1 (default: a temporary folder)")
    p.add_argument("--grappler", action="store_true",
                   help="let Grappler rewrite the twin's tf.functions (TF2's default); the numbers are then no "
                        "longer bit-identical, and compare's tolerances apply")
    p.add_argument("--speed", type=POSITIVE_INT.parse, default=None, metavar="ROUNDS",
                   help="instead of the ladder, time both training loops: ROUNDS turns of --speed-iterations each")
    p.add_argument("--speed-iterations", type=POSITIVE_INT.parse, default=10, help="timed iterations per turn")
    cli.add_json_flag(p, "the report")
    return p


def command(argv):
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    settings = settings_from(args)
    check_the_twin_computes(settings)
    if args.checkpoint:
        # The run's settings.json, read without TensorFlow: this process must stay free of TF1 behaviour.
        check_the_twin_computes(load_settings(named_checkpoint(args.checkpoint)[0], "--checkpoint"), args.checkpoint)
    if args.speed:
        result = speed(settings, args.speed, args.speed_iterations, 2, args.grappler)
        print(dumps(result, indent=1) if args.json else speed_text(result))
        return 0
    with contextlib.ExitStack() as stack:
        directory = args.reference or stack.enter_context(tempfile.TemporaryDirectory(prefix="migrate-check-"))
        tf1 = TF1Side(directory, request(args))
        twin = import_twin()
        meta, arrays = tf1.reference()
        rep = ladder(meta, arrays, twin, args.grappler)
    print(dumps(rep, indent=1) if args.json else text_report(rep))
    return 0 if rep["match"] else 1


def main(argv=None):
    return cli.run_command(command, argv)


if __name__ == "__main__":
    sys.exit(main())
