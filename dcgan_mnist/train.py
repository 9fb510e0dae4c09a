"""Train the conditional DCGAN: the original train.py's loop, plus seeds, checkpoints and resume.

Read top to bottom: settings, data, graph, session, then the loop. With no flags every number,
random draw, printed line and vis/ file is the original's (the README lists the switches).
"""
import os
import signal
import sys
import time

import numpy as np

from . import checkpoint
from . import settings as settings_module
from .graph import TrainingGraph, session_config
from .load import DataError, load_dataset
from .model import DCGAN, DIM_Y, tf
from .records import Events, Metrics, Rate, finite, print_compact, print_original
from .util import OneHot, ensure_dir, save_visualization

IMAGE_SHAPE = [28, 28, 1]
# float32(i / 255.) for every byte: the original divided float64 pixels by 255. and TensorFlow
# rounded them to float32 at the feed, so a lookup gives the same floats from uint8 data.
PIXEL_TO_FLOAT = (np.arange(256) / 255.).astype(np.float32)


def batches_per_epoch(n, batch_size):
    """The original's zip(range(0, n, B), range(B, n, B)): drops the partial last batch (and, when n is a
    multiple of B, the last full one too)."""
    return len(range(batch_size, n, batch_size))


def resolve_resume(s):
    """For --resume, take the run-defining settings from the run's settings.json; a flag given now
    that contradicts them is an error rather than a silent change of the run."""
    path = os.path.join(s.resume, "settings.json")
    if not os.path.exists(path):
        raise SystemExit(f"error: --resume {s.resume!r}: no settings.json there; is it a run directory?")
    if checkpoint.latest(s.resume) is None:
        raise SystemExit(f"error: --resume {s.resume!r}: the run has no checkpoint to continue from")
    saved = settings_module.load(path)
    defaults = settings_module.build_parser().parse_args([])
    for name in settings_module.RUN_DEFINING:
        given = getattr(s, name)
        if given != getattr(defaults, name) and given != saved.get(name):
            raise SystemExit(f"error: --{name.replace('_', '-')} {given} contradicts the run's saved "
                             f"setting {saved.get(name)!r} in {path}")
        setattr(s, name, saved[name])
    s.run_dir = s.resume
    return s


def make_session(threads):
    return tf.Session(config=session_config(threads))


def prepare_batch(trX, trY, rows, dim_z):
    """The original's per-batch inputs for training rows ``rows``: images scaled to [0, 1], one-hot labels,
    and a fresh uniform z (the loop's only random draw per batch)."""
    Xs = PIXEL_TO_FLOAT[trX[rows]].reshape([-1] + IMAGE_SHAPE)
    Ys = OneHot(trY[rows], DIM_Y)
    Zs = np.random.uniform(-1, 1, size=[len(rows), dim_z]).astype(np.float32)
    return Xs, Ys, Zs


class StopRequest:
    """Ctrl-C / SIGTERM: finish the iteration under way, checkpoint, then exit."""

    def __init__(self):
        self.signal = None
        self.previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _handle(self, signum, frame):
        self.signal = signum

    def release(self):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def main(argv=None):
    s = settings_module.parse_settings(argv)
    if s.resume:
        s = resolve_resume(s)
    with tf.Graph().as_default():
        train(s)


def train(s):
    # Fail on unwritable output before loading data and training, not after an hour.
    ensure_dir(s.run_dir, "run directory")
    ensure_dir(checkpoint.checkpoint_dir(s.run_dir), "checkpoint directory")
    ensure_dir(s.vis_dir, "vis directory")
    if not s.resume:
        settings_module.save(s, os.path.join(s.run_dir, "settings.json"))

    # ---- data (the original's first random draw is the train/valid split) ----
    if s.seed is not None:
        np.random.seed(s.seed)
    try:
        trX, vaX, teX, trY, vaY, teY = load_dataset(s.dataset, s.data_dir, s.valid_size, download=s.download)
    except DataError as e:
        raise SystemExit(f"error: {e}") from None
    n_batches = batches_per_epoch(len(trY), s.batch_size)
    if n_batches == 0:
        raise SystemExit(f"error: {len(trY)} training images make no full batch of --batch-size {s.batch_size} "
                         f"(the last partial batch is always dropped); lower --batch-size or --valid-size")

    # ---- graph ----
    if s.seed is not None:
        tf.set_random_seed(s.seed)
    model = DCGAN(batch_size=s.batch_size, image_shape=IMAGE_SHAPE, dim_z=s.dim_z, dim_y=DIM_Y,
                  dim_W1=s.dim_W1, dim_W2=s.dim_W2, dim_W3=s.dim_W3, loss=s.loss)
    graph = TrainingGraph(model, learning_rate=s.learning_rate, visualize_dim=s.visualize_dim)
    state = checkpoint.TrainState(len(trY), s.visualize_dim, s.dim_z, DIM_Y)
    saver = tf.train.Saver(max_to_keep=s.keep_checkpoints)
    sess = make_session(s.threads)

    if s.resume:
        saver.restore(sess, checkpoint.latest(s.run_dir))
        restored = state.fetch(sess)
        iterations, epoch = int(restored["iteration"]), int(restored["epoch"])
        batch, order = int(restored["batch_in_epoch"]), restored["order"]
        Z_np_sample, Y_np_sample = restored["sample_z"], restored["sample_y"]
        print(f"resuming {s.run_dir} at iteration {iterations} (epoch {epoch}, batch {batch})", file=sys.stderr)
    else:
        sess.run(tf.global_variables_initializer())
        Z_np_sample = np.random.uniform(-1, 1, size=(s.visualize_dim, s.dim_z))
        Y_np_sample = OneHot(np.random.randint(10, size=[s.visualize_dim]), DIM_Y)
        iterations, epoch, batch, order = 0, 0, 0, np.arange(len(trY))

    metrics = Metrics(s.run_dir, resume_at=iterations if s.resume else None)
    events = Events(s.run_dir, sess.graph, resume_at=iterations if s.resume else None)
    grid_side = round(s.visualize_dim ** 0.5)
    last_iteration = s.n_epochs * n_batches if s.max_iterations is None else min(s.max_iterations,
                                                                                   s.n_epochs * n_batches)
    stop = StopRequest()
    rate = Rate()
    last_saved = None

    def save_checkpoint():
        nonlocal last_saved
        if last_saved == (iterations, epoch, batch):
            return
        last_saved = (iterations, epoch, batch)
        state.store(sess, iterations, epoch, batch, order, Z_np_sample, Y_np_sample)
        try:
            checkpoint.save(saver, sess, s.run_dir, iterations)
        except (tf.errors.OpError, OSError) as e:
            finish(4, f"error: writing the checkpoint of iteration {iterations} failed ({e}); the previous "
                      f"checkpoint {checkpoint.latest(s.run_dir)} is kept")
        metrics.flush()
        events.flush()

    def finish(status, message=None):
        if message:
            print(message, file=sys.stderr)
        stop.release()
        metrics.close()
        events.close()
        sess.close()
        if status:
            raise SystemExit(status)

    # ---- the loop: the original's, resumable at any batch ----
    while epoch < s.n_epochs and iterations < last_iteration:
        if batch == 0:
            # The original reorders its arrays every epoch, so each epoch's order composes with the last.
            index = np.arange(len(trY))
            np.random.shuffle(index)
            order = order[index]
        while batch < n_batches and iterations < last_iteration:
            rows = order[batch * s.batch_size:(batch + 1) * s.batch_size]
            Xs, Ys, Zs = prepare_batch(trX, trY, rows, s.dim_z)

            started = time.perf_counter()
            logged = s.log == "original" or iterations % s.log_every == 0
            out = graph.step(sess, iterations, Xs, Ys, Zs, k=s.k, evaluate=logged)
            rate.tick()
            metrics.iteration(iterations, epoch, out, time.perf_counter() - started)
            if not finite(out):
                finish(3, f"error: a loss or probability is not finite at iteration {iterations} ({out}); "
                          f"stopping without a checkpoint, so the last good one in "
                          f"{checkpoint.checkpoint_dir(s.run_dir)} stays the latest")
            if s.log == "original":
                print_original(out, iterations)
            elif logged:
                print_compact(out, iterations, epoch, rate.per_second(), last_iteration - iterations - 1)
            if logged:
                events.scalars(iterations, {"loss/gen": out["gen_loss"], "loss/discrim": out["discrim_loss"],
                                            "p/real": out["p_real"], "p/gen": out["p_gen"],
                                            "iterations_per_second": rate.per_second() or None})

            if np.mod(iterations, s.step) == 0:
                generated_samples = graph.sample(sess, Z_np_sample, Y_np_sample)
                # The original's shift for tanh outputs; min-max scaling on save undoes it.
                generated_samples = (generated_samples + 1.) / 2.
                save_visualization(generated_samples, (grid_side, grid_side),
                                   save_path=os.path.join(s.vis_dir, 'sample_%04d.jpg' % int(iterations / s.step)))
                events.grid(iterations, generated_samples, (grid_side, grid_side))

            iterations += 1
            batch += 1
            if stop.signal is not None:
                save_checkpoint()
                finish(128 + stop.signal,
                       f"stopped by signal {stop.signal} after iteration {iterations - 1}; checkpoint written. "
                       f"Continue with: python train.py --resume {s.run_dir}")
            if iterations % s.checkpoint_every == 0:
                save_checkpoint()
        if batch == n_batches:
            epoch += 1
            batch = 0
            save_checkpoint()
            if s.eval_every_epoch:
                from .evaluate import evaluate_during_training
                evaluate_during_training(sess, graph, s, epoch, iterations, (vaX, vaY, trX, trY, teX, teY),
                                         metrics, events)
    save_checkpoint()
    finish(0)
