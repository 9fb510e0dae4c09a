"""Train the conditional DCGAN: the original train.py's loop, plus seeds, checkpoints and resume.

Read top to bottom: ``train`` is the original loop; ``Training`` holds its state and does each named
piece (start or resume, one iteration, its log lines, the sample grid, checkpoints, the end). With no
flags every number, random draw, printed line and vis/ file is the original's (the README lists the
switches). Exit codes: 0 done, 1 a usage or data problem, 3 a loss went non-finite, 4 a file could not be
written, 128 + N stopped by signal N (130 for Ctrl-C, 143 for SIGTERM).
"""
import os
import signal
import sys
import threading
import time

import numpy as np

from . import checkpoints, cli, files, run
from .augment import AdaptiveStrength
from .batches import Position, batches_per_epoch, prepare_batch
from .cli import CommandError
from .graph import LOSS_SCALE_VARIABLE, build_training
from .load import DataError, resolve_data_dir, seeded_split
from .model import DIM_Y, tf
from .precision import warn_without_native_bfloat16
from .records import Events, JsonLines, Metrics, Rate, finite, print_compact, print_original
from .run import WriteError
from .settings import fresh_seed, merge_resumed, parse_train_flags
from .util import OneHot, ensure_dir, save_visualization
from .vis import GridFolder

EXIT_NOT_FINITE = 3


def main(argv=None):
    return cli.run_command(train_command, argv)


def train_command(argv):
    settings, flags, given = parse_train_flags(argv)
    if flags.resume is None:
        if flags.fork:
            raise CommandError("--fork goes with --resume RUN_DIR/checkpoints/ckpt-N")
        if flags.accept_damaged_records:
            raise CommandError("--accept-damaged-records goes with --resume RUN_DIR: a new run has no records yet")
        return train(settings)
    if "run_dir" in given:
        raise CommandError("--run-dir cannot be combined with --resume: a resumed run stays in its own directory")
    settings, checkpoint = resume_settings(flags.resume, {name: getattr(settings, name) for name in given})
    return train(settings, checkpoint, fork=flags.fork, accept_damaged=flags.accept_damaged_records)


def resume_settings(path, given):
    """--resume ``path``: the run's own settings, with the settings ``given`` now (a dict) in place of its own
    (those that define the run must agree), and the checkpoint to continue from."""
    run_dir, checkpoint = checkpoints.find_checkpoint(path, "--resume")
    saved = files.load_settings(run_dir, "--resume")
    if saved.seed is None:
        raise CommandError(f"--resume {path!r}: the run was started without a seed by an older version, so "
                           f"its train/validation split cannot be drawn again and it cannot continue exactly")
    settings = merge_resumed(saved, given, os.path.join(run_dir, files.SETTINGS_FILE))
    return settings.replace(run_dir=run_dir), checkpoint


class Stopped(BaseException):
    """Ctrl-C or SIGTERM where the work under way is dropped at once (start-up, scoring)."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


class Signals:
    """Ctrl-C and SIGTERM. While ``immediate`` (start-up, scoring, which may train the judge for a minute) they raise
    Stopped; in the loop they are noted, and the iteration under way is finished and checkpointed first."""

    def __init__(self):
        self.signal, self.immediate = None, True
        # Python sets handlers only in the main thread. Elsewhere (a Dask worker's task thread) a signal ends the
        # process as a whole, and the run continues from its last checkpoint.
        on_main_thread = threading.current_thread() is threading.main_thread()
        self.previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)
                         if on_main_thread}

    def _handle(self, signum, frame):
        self.signal = signum
        if self.immediate:
            raise Stopped(signum)

    def release(self):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def train(s, checkpoint=None, fork=False, accept_damaged=False):
    """Train the run of Settings ``s`` (from ``checkpoint`` on, when given; ``fork``: also when newer checkpoints
    exist, which are moved aside; ``accept_damaged``: also when its records are missing or damaged, see files.py)
    in a graph of its own; returns the exit status (0: done)."""
    s.check_combination()
    signals = Signals()
    try:
        with tf.Graph().as_default():
            return train_in_graph(s, checkpoint, fork, signals, accept_damaged)
    except Stopped as e:
        print(f"stopped by signal {e.signum} while starting; nothing was trained", file=sys.stderr)
        return 128 + e.signum
    finally:
        signals.release()


def train_in_graph(s, checkpoint, fork, signals, accept_damaged):
    """The original loop: D at even iterations, G at odd ones, a sample grid every ``step`` iterations."""
    created = []
    if s.run_dir is None:
        parent_made = not os.path.isdir(run.RUNS)
        s = s.replace(run_dir=run.new_run_dir())
        created += [s.run_dir, run.RUNS] if parent_made else [s.run_dir]
    created += [path for path, what in ((s.run_dir, "run directory"), (s.vis_dir, "vis directory"))
                if ensure_dir(path, what)]
    writer = None
    try:
        writer = run.Writer(s.run_dir)
        if checkpoint is None:
            checkpoints.claim_for_fresh_run(s.run_dir, resume_command(s.run_dir))
        else:
            continue_one_history(s.run_dir, checkpoint, fork)
        t = Training(s, resuming=checkpoint is not None, accept_damaged=accept_damaged)
        if checkpoint:
            t.resume(checkpoint)
        else:
            t.start()
    except BaseException:
        if writer is not None:
            writer.close()
        for path in created:  # a start that failed leaves no folder behind
            remove_quietly_made(path)
        raise
    try:
        if t.iteration >= t.last_iteration:
            return t.already_finished()
        return loop(t, signals)
    finally:
        t.close()
        writer.close()


def loop(t, signals):
    s = t.s
    try:
        # From here a signal is noted and the run stops after its next iteration, checkpointed, so that the
        # records opened now are never left without a checkpoint to continue from.
        signals.immediate = False
        t.open_records()
        t.rate.tick()  # the clock starts here, so the first line already has a rate
        for step in t.position.walk(s.n_epochs, t.last_iteration):
            if step == "batch":
                out = t.iterate()
                if not finite(out):
                    return t.stop_not_finite(out)
                t.record(out)
                if signals.signal is not None:
                    t.checkpoint()
                    return t.stopped_by(signals.signal)
                if t.iteration % s.checkpoint_every == 0:
                    t.checkpoint()
            elif s.eval_every_epoch:
                status = t.evaluate(signals)
                if status is not None:
                    return status
        t.checkpoint()
        if s.eval_every_epoch and t.evaluated_at != t.iteration:
            status = t.evaluate(signals)  # a run that ends mid-epoch is scored too
            if status is not None:
                return status
        return t.finished()
    except WriteError as e:
        return t.stop_after_write_failure(e)


def continue_one_history(run_dir, checkpoint, fork):
    """A resume from a checkpoint older than the run's newest drops the newer ones' future: refused without
    --fork, so that nothing is lost by mistake; with it they are moved into RUN_DIR/abandoned/."""
    after = checkpoints.iteration_of(checkpoint)
    newer = [p for p in checkpoints.complete_checkpoints(run_dir) if checkpoints.iteration_of(p) > after]
    if newer and not fork:
        raise CommandError(f"{checkpoint} is older than the run's newest checkpoint {newer[-1]}; continuing from it "
                           f"abandons what came after. Add --fork to do so (the newer checkpoints are moved into "
                           f"{os.path.join(run_dir, files.ABANDONED_SUBDIR)}), or resume the run directory itself")
    if newer:
        checkpoints.abandon_newer_checkpoints(run_dir, checkpoint)


def remove_quietly_made(path):
    """Remove the folder ``path`` this start made, with what the start left in it (the lock, an empty
    checkpoints folder)."""
    run.remove_quietly(os.path.join(path, files.LOCK_FILE))
    for folder in (os.path.join(path, files.CHECKPOINT_SUBDIR), path):
        try:
            os.rmdir(folder)
        except OSError:
            pass  # not empty, or not there


def resume_command(run_dir):
    return cli.shell_command(*cli.program("train"), "--resume", os.path.abspath(run_dir))


class Training:
    """The data, graph, session and loop position of one run, and each piece of the loop."""

    def __init__(self, s, resuming, accept_damaged=False):
        # The original's first random draw is the train/validation split; an unseeded run draws a seed
        # first, so that a resume (which seeds again) gets the same split.
        if s.seed is None:
            s = s.replace(seed=fresh_seed())
            print(f"seed {s.seed} (drawn for this run; --seed {s.seed} repeats it)", file=sys.stderr)
        self.s = s
        try:
            # A resumed run never downloads: its data is the files it recorded.
            directory = resolve_data_dir(s.dataset, s.data_dir, download=s.download and not resuming)
            if resuming:
                run.check_data(s.run_dir, directory, "--resume", record=True, accept_damaged=accept_damaged)
            self.data = seeded_split(s.seed, directory, s.valid_size)
        except DataError as e:
            raise CommandError(str(e)) from None
        # Recorded as absolute paths, so the run finds its data and grids from any folder, also after a move.
        self.s = s = s.replace(data_dir=os.path.abspath(directory), vis_dir=os.path.abspath(s.vis_dir))
        self.resuming, self.accept_damaged = resuming, accept_damaged
        self.trX, self.trY = self.data.trX, self.data.trY
        self.n_batches = batches_per_epoch(len(self.trY), s.batch_size)
        if self.n_batches == 0:
            raise CommandError(f"{len(self.trY)} training images make no full batch of --batch-size "
                               f"{s.batch_size} (the last partial batch is always dropped); lower --batch-size "
                               f"or --valid-size")
        epochs_end = s.n_epochs * self.n_batches
        self.last_iteration = epochs_end if s.max_iterations is None else min(s.max_iterations, epochs_end)

        self.training = build_training(s)
        self.strength = AdaptiveStrength(s.augment_target, s.augment_speed, s.batch_size) \
            if s.augment == "adaptive" else None
        self.state = checkpoints.TrainState(len(self.trY), s.visualize_dim, s.dim_z, DIM_Y,
                                            adaptive=self.strength is not None)
        self.saver = checkpoints.new_saver(s.run_dir, s.keep_checkpoints)
        self.best = checkpoints.BestCheckpoint(s.run_dir, s.keep_best) \
            if s.eval_every_epoch and s.keep_best != "none" else None
        warn_without_native_bfloat16(s.precision)
        self.sess = tf.Session(config=self.training.session_config)
        self.grid_side = round(s.visualize_dim ** 0.5)
        self.metrics = self.events = self.eval_log = None
        self.saved_at = self.evaluated_at = self.scorer = None
        self.checkpoint_failed = False
        self.rate = Rate()

    # The loop's position (batches.Position), read where the loop's lines and records name it.
    iteration = property(lambda self: self.position.iteration)
    epoch = property(lambda self: self.position.epoch)
    batch = property(lambda self: self.position.batch)

    # ---- start or resume ----

    def start(self):
        self.sess.run(tf.global_variables_initializer())
        s = self.s
        self.sample_z = np.random.uniform(-1, 1, size=(s.visualize_dim, s.dim_z))
        self.sample_y = OneHot(np.random.randint(10, size=[s.visualize_dim]), DIM_Y)
        self.position = Position(len(self.trY), s.batch_size)

    def resume(self, checkpoint):
        stopped = checkpoints.Run(checkpoint, "--resume")
        names = stopped.variable_names()
        if names is not None and (LOSS_SCALE_VARIABLE in names) != self.training.scales_losses:
            trained, here = ("a GPU", "a CPU") if LOSS_SCALE_VARIABLE in names else ("a CPU", "a GPU")
            raise CommandError(f"checkpoint {stopped.checkpoint} was trained with --precision bf16 on {trained}, "
                               f"whose updates differ from those on {here} (float16 on a GPU scales its losses): "
                               f"resume it on {trained}; generate and evaluate read it on either")
        stopped.restore(self.saver, self.sess)
        restored = self.state.fetch(self.sess)
        self.position = Position(len(self.trY), self.s.batch_size, int(restored["iteration"]), int(restored["epoch"]),
                                 int(restored["batch_in_epoch"]), restored["order"])
        self.sample_z, self.sample_y = restored["sample_z"], restored["sample_y"]
        if self.strength is not None:
            self.strength = AdaptiveStrength(self.s.augment_target, self.s.augment_speed, self.s.batch_size,
                                             *[restored[f"augment_{name}"] for name in AdaptiveStrength.STATE])
        self.saved_at = (self.iteration, self.epoch, self.batch)
        # The position of the next iteration, its epoch counted from 1 as the compact line and metrics.jsonl do.
        epoch, batch = (self.epoch + 2, 0) if self.batch == self.n_batches else (self.epoch + 1, self.batch)
        print(f"resuming {self.s.run_dir} at iteration {self.iteration} (epoch {epoch}, batch {batch})",
              file=sys.stderr)

    def open_records(self):
        resumed = self.resuming
        resume_at = self.iteration if resumed else None
        # The records first: a resume that refuses a damaged one has changed nothing else.
        self.metrics = Metrics(self.s.run_dir, resume_at, self.accept_damaged)
        # An epoch's scores are written after the checkpoint of its last iteration: a run stopped between the
        # two scores that epoch again when it resumes, so the line of that epoch goes.
        scored_at = resume_at - 1 if resumed and self.batch == self.n_batches else resume_at
        self.eval_log = JsonLines(os.path.join(self.s.run_dir, files.EVAL_FILE), scored_at, self.accept_damaged) \
            if self.s.eval_every_epoch else None
        run.save_settings(self.s, self.s.run_dir)
        if not resumed:
            run.record_data(self.s.run_dir, self.s.data_dir)
        self.events = Events(self.s.run_dir, self.sess.graph, resume_at)
        self.grids = GridFolder(self.s.vis_dir, self.s.run_dir, resumed)

    # ---- one iteration ----

    def iterate(self):
        s = self.s
        Xs, Ys, Zs = prepare_batch(self.trX, self.trY, self.position.rows(), s.dim_z)
        started = time.perf_counter()
        self.logged = (s.log == "original" or self.iteration % s.log_every == 0
                       or self.iteration == self.last_iteration - 1)
        strength = self.strength
        out = self.training.iterate(self.sess, self.iteration, Xs, Ys, Zs, k=s.k, after_update=self.logged,
                                    augment_p=strength.p if strength else 1.0)
        if strength is not None:
            out["augment_p"] = strength.p
            sign = out.pop("real_sign", None)
            if sign is not None and strength.observe(sign) is not None:
                out["augment_r"] = strength.last_r
        self.seconds = time.perf_counter() - started
        self.rate.tick()
        return out

    def record(self, out):
        """Write what the original shows of the iteration just done (and its metrics line), then move past it;
        also when a write fails, because its update is done."""
        try:
            self.metrics.iteration(self.iteration, self.epoch + 1, out, self.seconds)
            self.log(out)
            if np.mod(self.iteration, self.s.step) == 0:
                self.write_grid()
        finally:
            self.position.advance()

    def log(self, out):
        if self.s.log == "original":
            print_original(out, self.iteration)
        elif self.logged:
            print_compact(out, self.iteration, self.epoch + 1, self.rate.per_second(),
                          self.last_iteration - self.iteration - 1)
        if self.logged:
            self.events.scalars(self.iteration, {"loss/gen": out["gen_loss"], "loss/discrim": out["discrim_loss"],
                                                 "p/real": out["p_real"], "p/gen": out["p_gen"],
                                                 "iterations_per_second": self.rate.per_second() or None,
                                                 "augment/p": out.get("augment_p"),
                                                 "augment/r": self.strength.last_r if self.strength else None})

    def write_grid(self):
        samples = self.training.sample(self.sess, self.sample_z, self.sample_y)
        # The original's shift for tanh outputs; min-max scaling on save undoes it.
        samples = (samples + 1.) / 2.
        number = int(self.iteration / self.s.step)
        path = self.grids.path(number)
        try:
            self.grids.save(lambda p: save_visualization(samples, (self.grid_side, self.grid_side), save_path=p),
                            number)
        except OSError as e:
            run.remove_quietly(path)
            raise WriteError(f"could not write {e.filename or path}: {e.strerror or e}") from None
        self.events.grid(self.iteration, samples, (self.grid_side, self.grid_side))

    def evaluate(self, signals):
        """Score the generator. None when done; else the exit status of a scoring that failed or was stopped, after
        a checkpoint, so no training is lost."""
        signals.immediate = True  # the first scoring may train the judge for a minute
        try:
            if self.scorer is None:
                from .evaluation import TrainingScorer
                self.scorer = TrainingScorer(self.s, self.data)
            scores = self.scorer(self.sess, self.training, self.scored_epoch(), self.iteration, self.eval_log,
                                 self.events)
            if self.best is not None:
                self.store_state()  # the best checkpoint holds the loop's state too, as every checkpoint does
                if self.best.consider(self.sess, self.iteration, self.scored_epoch(), scores):
                    print(f"kept as the best checkpoint ({self.s.keep_best} {self.best.record['value']:.4g}): "
                          f"{os.path.join(self.s.run_dir, checkpoints.BEST_PREFIX)}", flush=True)
        except Stopped as e:
            self.checkpoint()
            return self.stopped_by(e.signum)
        except CommandError as e:
            self.checkpoint()
            print(f"error: scoring after epoch {self.scored_epoch()} failed: {e}\ntraining is kept: "
                  f"{self.what_is_kept()}; once fixed, continue with: {resume_command(self.s.run_dir)}",
                  file=sys.stderr)
            return e.status
        finally:
            signals.immediate = False
        self.evaluated_at = self.iteration
        return None

    def scored_epoch(self):
        """The epoch of the last iteration done, counted from 1: the one just ended, or the one a run ends in."""
        return self.epoch if self.batch == 0 else self.epoch + 1

    # ---- checkpoints and the end ----

    def checkpoint(self):
        position = (self.iteration, self.epoch, self.batch)
        if self.saved_at == position:
            return
        self.store_state()
        self.checkpoint_failed = True
        checkpoints.save_checkpoint(self.saver, self.sess, self.s.run_dir, self.iteration)
        self.checkpoint_failed = False
        self.saved_at = position
        self.events.flush()

    def store_state(self):
        self.state.store(self.sess, self.iteration, self.epoch, self.batch, self.position.order, self.sample_z,
                         self.sample_y, self.strength.state() if self.strength else None)

    def what_is_kept(self):
        complete = checkpoints.complete_checkpoints(self.s.run_dir)
        return f"the newest good checkpoint is {complete[-1]}" if complete else "there is no checkpoint yet"

    def stop_after_write_failure(self, error):
        """A file could not be written: keep the iterations done (checkpoint, unless that is what failed),
        then say what failed, what is kept and how to continue."""
        lines = [f"error: {error}"]
        if not self.checkpoint_failed:
            try:
                self.checkpoint()
            except WriteError as also:
                lines.append(f"error: {also}")
        lines += [f"{self.what_is_kept()}; free some space or fix the folder, then continue with: "
                  f"{resume_command(self.s.run_dir)}"]
        print("\n".join(lines), file=sys.stderr)
        return run.EXIT_WRITE_FAILED

    def stop_not_finite(self, out):
        try:
            self.metrics.iteration(self.iteration, self.epoch + 1, out, self.seconds)
        except WriteError:
            pass  # the message below says all there is to say
        print(f"error: a loss or probability is not finite at iteration {self.iteration} ({out}); stopping without "
              f"a checkpoint: {self.what_is_kept()}", file=sys.stderr)
        return EXIT_NOT_FINITE

    def stopped_by(self, signum):
        print(f"stopped by signal {signum} after iteration {self.iteration - 1}; checkpoint written. "
              f"Continue with: {resume_command(self.s.run_dir)}", file=sys.stderr)
        return 128 + signum

    def finished(self):
        latest = checkpoints.complete_checkpoints(self.s.run_dir)[-1]
        where = os.path.abspath(self.s.run_dir)
        draw = cli.shell_command(*cli.program("generate"), "--checkpoint", where, "--out", "digits.png")
        score = cli.shell_command(*cli.program("evaluate"), "--checkpoint", where)
        print(f"done: {self.iteration} iterations in {self.s.run_dir} (checkpoint {latest})\n"
              f"  draw digits: {draw}\n  score it:    {score}", file=sys.stderr)
        return 0

    def already_finished(self):
        s = self.s
        limit = (f"--max-iterations {s.max_iterations}" if s.max_iterations is not None
                 and s.max_iterations < s.n_epochs * self.n_batches else f"all {s.n_epochs} epochs")
        print(f"{s.run_dir} is finished: it has done its {self.iteration} iterations ({limit}). To train it further, "
              f"raise the limit: {resume_command(s.run_dir)} --max-iterations N (or --n-epochs N)", file=sys.stderr)
        return 0

    def close(self):
        for record in (self.metrics, self.eval_log, self.events, self.scorer):
            if record is not None:
                record.close()
        self.sess.close()
