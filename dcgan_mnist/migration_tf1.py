"""The TF1 side of ``migrate-check``, in a process of its own: ``python -m dcgan_mnist.migration_tf1 REQUEST``.

It builds the TF1 training graph as train.py does (graph.build_training), runs every rung's computation on the
request's inputs and writes the numbers, with the inputs, to ``reference.npz`` and ``reference.json`` beside the
request; the ``--checkpoint`` rung continues the run with train.py itself, in a copy. The TF2 side
(tools/migrate.py) compares the twin with them; using ``model.tf`` switches a process to TF1 behaviour, so the two
never share one.
"""
import contextlib
import json
import os
import shutil
import sys

import numpy as np

from .cli import CommandError, dumps
from .graph import PRINTED
from .parity import draw_inputs
from .settings import Settings

FORWARD = ("G(z, y)", "sigmoid(G(z, y))", "D(x, y)", "D(G(z, y), y)", "P(real)", "P(gen)", "d_cost", "g_cost",
           "sampler output")
SAMPLES = 16  # the sampler's batch here: train.py draws --visualize-dim (196), but any batch checks the same ops


def tf1_side(request_file):
    """Write reference.npz and reference.json beside ``request_file`` (the TF1 numbers of every rung)."""
    from .checkpoints import Run
    from .graph import build_training
    from .model import tf

    with open(request_file) as f:
        request = json.load(f)
    directory = os.path.dirname(request_file)
    trained = Run(request["checkpoint"]) if request["checkpoint"] else None
    s = (trained.settings if trained else Settings.from_file(os.path.join(directory, "settings.json"))).replace(
        seed=request["seed"])
    rng = np.random.RandomState(s.seed)
    batch0 = draw_inputs(rng, s.batch_size, s.dim_z)
    sample_z = rng.uniform(-1, 1, size=(SAMPLES, s.dim_z))
    sample_y = draw_inputs(rng, SAMPLES, s.dim_z)[1]
    batches = [draw_inputs(rng, s.batch_size, s.dim_z) for _ in range(request["iterations"])]
    arrays = {"inputs/X": batch0[0], "inputs/Y": batch0[1], "inputs/Z": batch0[2], "inputs/sample_z": sample_z,
              "inputs/sample_y": sample_y}
    for i, (Xs, Ys, Zs) in enumerate(batches):
        arrays.update({f"batches/{i}/X": Xs, f"batches/{i}/Y": Ys, f"batches/{i}/Z": Zs})
    meta = {"settings": json.loads(s.to_json()), "iterations": request["iterations"]}

    with tf.Graph().as_default():
        training = build_training(s.replace(visualize_dim=SAMPLES))
        model = training.model
        # The optimizers and the sampler add no trainable variable: these are the model's own.
        made_by_init = len(tf.trainable_variables())
        made_once = {}
        with model.not_recording():
            for name, build in (("generate", lambda: model.generate(training.Z, training.Y)),
                                ("discriminate", lambda: model.discriminate(training.image_real, training.Y)),
                                ("sampler", lambda: model.samples_generator(SAMPLES))):
                made_once[name] = [new_variables(tf, build) for _ in range(2)]
        variables = tf.global_variables()
        trainable = {v.op.name for v in tf.trainable_variables()}
        meta["variables"] = [[v.op.name, v.shape.as_list(), v.op.name in trainable] for v in variables]
        meta["made_by_init"] = made_by_init
        image_gen = model.image_gen
        forward = dict(zip(FORWARD, (image_gen.op.inputs[0], image_gen, model.raw_real, training.p_gen.op.inputs[0],
                                     training.p_real, training.p_gen, training.d_cost, training.g_cost,
                                     training.image_sample)))
        gradients = {}
        for cost, weights, applied in (("d_cost", model.discrim_weights, training.discrim_gradients),
                                       ("g_cost", model.gen_weights, training.gen_gradients)):
            by_weight = {v.op.name: g for g, v in applied}  # the gradients the update applies
            gradients.update((f"{cost} by {w.op.name}", by_weight[w.op.name]) for w in weights)
        slots = {v.op.name: tf.placeholder(v.dtype.base_dtype, v.shape) for v in variables}
        load = tf.group(*[v.assign(slots[v.op.name]) for v in variables])
        with tf.Session(config=training.session_config) as sess:
            sess.run(tf.global_variables_initializer())

            def state(prefix):
                arrays.update((f"{prefix}/{name}", value) for name, value in
                              zip([v.op.name for v in variables], sess.run(variables)))

            def iterate(i, Xs, Ys, Zs):
                out = training.iterate(sess, i, Xs, Ys, Zs, k=s.k)
                return {"updated": out["updated"], **{name: float(out[name]) for name in PRINTED}}

            state("state0")
            feed = {training.Z: batch0[2], training.Y: batch0[1], training.image_real: batch0[0],
                    training.Z_sample: sample_z, training.Y_sample: sample_y}
            arrays.update((f"forward/{name}", value) for name, value in sess.run(forward, feed).items())
            arrays.update((f"gradients/{name}", value) for name, value in sess.run(gradients, feed).items())
            # Rung 5: a D step from the initial weights, then a G step; then each again, for rung 1's count.
            meta["steps"] = {}
            for i, step in enumerate(("D step", "G step")):
                before = len(tf.global_variables())
                meta["steps"][step] = iterate(i, *batch0)
                made_once[step] = [len(tf.global_variables()) - before]
                state(f"after {step}")
            for i, step in enumerate(("D step", "G step")):
                made_once[step].append(new_variables(tf, lambda: iterate(i, *batch0)))
            meta["made_once"] = made_once
            sess.run(load, {slots[name]: arrays[f"state0/{name}"] for name in slots})
            meta["lockstep"] = [iterate(i, *b) for i, b in enumerate(batches)]
            state("lockstep final")
    if trained:
        meta["checkpoint"] = continue_tf1_run(trained, request["continue_iterations"], directory)
    np.savez(os.path.join(directory, "reference.npz"), **arrays)
    with open(os.path.join(directory, "reference.json"), "w") as f:
        f.write(dumps(meta))
    return 0


def new_variables(tf, build):
    before = len(tf.global_variables())
    build()
    return len(tf.global_variables()) - before


def continue_tf1_run(trained, iterations, directory):
    """``train.py --resume`` the checkpoint of Run ``trained`` for ``iterations`` more, in a copy of the run
    directory (whose settings.json sends its sample grids to the copy and scores nothing): the run is not touched."""
    from . import checkpoints, files, run
    from .files import ACCEPT_DAMAGED
    from .train import main as train_main

    check_readable(trained)  # here, where the run's older checkpoints can be offered; the copy has only this one
    copy = os.path.join(directory, "run")
    os.makedirs(checkpoints.checkpoint_dir(copy))
    for path in checkpoints.checkpoint_files(trained.checkpoint):
        shutil.copy(path, checkpoints.checkpoint_dir(copy))
    if os.path.exists(os.path.join(trained.run_dir, files.DATA_FILE)):
        shutil.copy(os.path.join(trained.run_dir, files.DATA_FILE), copy)
    run.save_settings(trained.settings.replace(vis_dir=os.path.join(directory, "vis"), eval_every_epoch=False), copy)
    start = trained.iteration
    copied = os.path.join(checkpoints.checkpoint_dir(copy), os.path.basename(trained.checkpoint))
    with contextlib.redirect_stdout(sys.stderr):  # the original's six lines per iteration
        # The copy has no metrics.jsonl, and no data.json when the run has none: they are not what is checked here.
        status = train_main(["--resume", copied, "--max-iterations", str(start + iterations), ACCEPT_DAMAGED])
    if status != 0:
        raise CommandError(f"train.py --resume {copied} failed with exit status {status}")
    with open(os.path.join(copy, files.METRICS_FILE)) as f:
        lines = [json.loads(line) for line in f]
    return {"run_dir": os.path.abspath(trained.run_dir), "checkpoint": os.path.abspath(trained.checkpoint),
            "iteration": start, "continued": os.path.abspath(checkpoints.complete_checkpoints(copy)[-1]),
            "trace": [{name: line[name] for name in ("iteration", "updated") + PRINTED} for line in lines
                      if line["iteration"] >= start]}


def check_readable(trained):
    """Read every tensor of Run ``trained``'s checkpoint where it is: damage is then reported with the run's older
    checkpoints to use instead (``Run.unreadable``)."""
    from .model import tf

    try:
        reader = tf.train.NewCheckpointReader(trained.checkpoint)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    # The reader's own errors, and those pybind makes of a TensorFlow status (a truncated file: IndexError).
    except (tf.errors.OpError, ValueError, IndexError, RuntimeError) as e:
        raise trained.unreadable(e) from None


if __name__ == "__main__":
    tf1_side(sys.argv[1])
