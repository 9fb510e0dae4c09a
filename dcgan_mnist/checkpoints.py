"""A run's checkpoints: finding, writing, pruning and restoring them, the trained run they open, and the loop's
state they carry.

Checkpoints are always looked up inside the run directory given, by file name, so a run directory can be
moved or copied (the Saver's ``checkpoint`` index records relative names; one written with absolute
paths by an older version is read by the names' last part). The Saver writes a checkpoint under temporary names
and updates the ``checkpoint`` index last, so a crash mid-write leaves the previous checkpoint the latest one.

Besides the weights and both Adam optimizers' slots and step counters (ordinary graph variables), the
loop's own state lives in non-trainable variables under ``train_state/`` (``TrainState``): the iteration counter,
the epoch and the position inside it, the epoch's cumulative data order, numpy's global RNG state, the fixed
sample inputs and, under --augment adaptive, its p.
"""
import glob
import json
import math
import os
import re
import shutil
import sys

from .batches import rng_state, set_rng_state
from .cli import CommandError
from .files import ABANDONED_SUBDIR, BEST_FILE, CHECKPOINT_SUBDIR, SETTINGS_FILE, load_settings
from .model import tf
from .run import (
    WriteError,
    leftover_records,
    remove_quietly,
    write_atomically,
    writer_pid,
)
from .settings import BEST_SCORES

PREFIX = "ckpt"
CHECKPOINT_NAME = re.compile(re.escape(PREFIX) + r"-(\d+)")
# The best-scored checkpoint (BestCheckpoint), and the name that reads it: RUN_DIR/best.
BEST_PREFIX = "best"
BEST_NAME = re.compile(re.escape(BEST_PREFIX) + r"-(\d+)")
ANY_CHECKPOINT_NAME = re.compile(r"(?:%s|%s)-(\d+)" % (re.escape(PREFIX), re.escape(BEST_PREFIX)))
# TensorFlow writes a checkpoint file under this suffix and renames it when complete.
TEMPORARY_SUFFIX = re.compile(r"[.]tempstate\d+$")


def checkpoint_dir(run_dir):
    return os.path.join(run_dir, CHECKPOINT_SUBDIR)


def iteration_of(prefix):
    """The iteration a checkpoint was written at: ``.../ckpt-N`` -> N."""
    return int(ANY_CHECKPOINT_NAME.fullmatch(os.path.basename(prefix)).group(1))


def claim_for_fresh_run(run_dir, resume_command):
    """Make ``run_dir`` (locked by this process) ready for a new run: refused when it holds a run that has a
    checkpoint; what an attempt that died before its first checkpoint left is removed, since nothing of it can
    continue."""
    complete = complete_checkpoints(run_dir)
    if complete:
        raise CommandError(f"{run_dir} already holds a run (checkpoint at iteration {iteration_of(complete[-1])}); "
                           f"continue it with: {resume_command}; or start this run in another --run-dir")
    leftovers = leftover_records(run_dir)
    if leftovers:
        for path in leftovers:
            remove_quietly(path)
        for path in glob.glob(os.path.join(glob.escape(checkpoint_dir(run_dir)), BEST_PREFIX + "-*")):
            remove_quietly(path)
        remove_temporary_checkpoint_files(run_dir)
        remove_quietly(os.path.join(checkpoint_dir(run_dir), "checkpoint"))
        print(f"starting {run_dir} afresh: the run there stopped before its first checkpoint, so nothing of it "
              f"could continue; its records are replaced", file=sys.stderr)


def no_checkpoint_error(run_dir):
    """What --resume says about a run that has no checkpoint."""
    if leftover_records(run_dir):
        return (f"--resume {run_dir!r}: the run there stopped before its first checkpoint, so there is nothing to "
                f"resume; start it again with the command that started it (its settings are in "
                f"{os.path.join(run_dir, SETTINGS_FILE)}): the new run replaces what that attempt left")
    return f"--resume {run_dir!r}: the run has no checkpoint in {checkpoint_dir(run_dir)}"


def is_complete(prefix):
    """Whether the checkpoint ``prefix`` has both its index and its data files."""
    return os.path.isfile(prefix + ".index") and bool(glob.glob(glob.escape(prefix) + ".data-*"))


def best_checkpoint(run_dir):
    """The prefix of the run's best-scored checkpoint, as best.json names it, or None when the run keeps none. A
    best.json that cannot be read, or names files that are not there, is an error naming it."""
    path = os.path.join(run_dir, BEST_FILE)
    if not os.path.exists(path):
        return None
    record = read_best(path)
    prefix = os.path.join(checkpoint_dir(run_dir), record["checkpoint"])
    if not is_complete(prefix):
        raise CommandError(f"{path} names {record['checkpoint']}, whose .index or .data file is missing in "
                           f"{checkpoint_dir(run_dir)}")
    return prefix


def read_best(path):
    """best.json: {"checkpoint": "best-N", "iteration": N, "epoch": E, "score": NAME, "value": V}, checked."""
    try:
        with open(path) as f:
            record = json.load(f)
        valid = (isinstance(record, dict) and isinstance(record.get("checkpoint"), str)
                 and BEST_NAME.fullmatch(record["checkpoint"]) and record.get("score") in BEST_SCORES
                 and isinstance(record.get("value"), (int, float)) and not isinstance(record.get("value"), bool)
                 and record.get("iteration") == iteration_of(record["checkpoint"]))
    except (OSError, ValueError) as e:
        raise CommandError(f"{path} cannot be read ({e}); it names the run's best checkpoint") from None
    if not valid:
        raise CommandError(f"{path} is not a record of the best checkpoint (checkpoint best-N, its iteration N, a "
                           f"score of {', '.join(BEST_SCORES)} and its value); remove it and the run keeps a new best "
                           f"from its next score on")
    return record


class BestCheckpoint:
    """--keep-best: the checkpoint of the best score the run has given itself so far, RUN_DIR/checkpoints/best-N,
    kept apart from the rotating ckpt-N (which never delete it). Its files are written first and best.json, which
    names them, last and whole, and only then are the previous best's files removed: a kill at any moment leaves
    best.json naming a complete checkpoint. Build it after every variable, as the run's Saver."""

    def __init__(self, run_dir, score):
        self.run_dir, self.score = run_dir, score
        self.saver = tf.train.Saver(max_to_keep=None, save_relative_paths=True)
        self.path = os.path.join(run_dir, BEST_FILE)
        self.record = read_best(self.path) if os.path.exists(self.path) else None
        if self.record is not None and self.record["score"] != score:
            raise CommandError(f"--keep-best {score}: the run's best checkpoint ({self.path}) was picked by "
                               f"{self.record['score']}; resume with --keep-best {self.record['score']}, or remove "
                               f"{self.path} to pick anew")
        kept = self.record["checkpoint"] if self.record else None
        for prefix in self.prefixes():
            if os.path.basename(prefix) != kept:  # what a write that was killed before best.json left
                remove_checkpoint(prefix)
        remove_temporary_checkpoint_files(run_dir, BEST_PREFIX)

    def prefixes(self):
        names = {path.split(".")[0] for path in glob.glob(os.path.join(glob.escape(checkpoint_dir(self.run_dir)),
                                                                      BEST_PREFIX + "-*"))}
        return sorted(p for p in names if BEST_NAME.fullmatch(os.path.basename(p)))

    def value(self, scores):
        """The score of ``scores`` (an eval.jsonl record's) that picks the best, or None when it is not finite."""
        value = scores["generated"][self.score]
        return value if value is not None and math.isfinite(value) else None

    def consider(self, sess, iteration, epoch, scores):
        """Keep the session's weights as the best when ``scores`` beat the best so far; True when they did."""
        value = self.value(scores)
        if value is None or self.record is not None and not self.better(value, self.record["value"]):
            return False
        name = f"{BEST_PREFIX}-{iteration}"
        prefix = os.path.join(checkpoint_dir(self.run_dir), name)
        try:
            self.saver.save(sess, prefix, write_meta_graph=False, write_state=False)
        except (tf.errors.OpError, OSError) as e:
            remove_temporary_checkpoint_files(self.run_dir, name)
            raise WriteError(f"could not write the best checkpoint {prefix}: {write_failure(e)}") from None
        previous, self.record = self.record, {"checkpoint": name, "iteration": iteration, "epoch": epoch,
                                              "score": self.score, "value": value}
        write_atomically(self.path, json.dumps(self.record, indent=2, sort_keys=True) + "\n")
        if previous is not None and previous["checkpoint"] != name:
            remove_checkpoint(os.path.join(checkpoint_dir(self.run_dir), previous["checkpoint"]))
        return True

    def better(self, value, than):
        return value < than if BEST_SCORES[self.score] == "lowest" else value > than


def complete_checkpoints(run_dir):
    """Prefixes of the checkpoints in the run whose index and data files are both there, oldest first."""
    found = []
    for index in glob.glob(os.path.join(glob.escape(checkpoint_dir(run_dir)), PREFIX + "-*.index")):
        prefix = index[:-len(".index")]
        if CHECKPOINT_NAME.fullmatch(os.path.basename(prefix)) and glob.glob(glob.escape(prefix) + ".data-*"):
            found.append(prefix)
    return sorted(found, key=iteration_of)


def latest_checkpoint(run_dir, flag):
    """The checkpoint the run's ``checkpoint`` index names as the latest, found in this run directory, or
    None when the run has none. An index naming a checkpoint that is not there is an error that offers the
    newest complete one instead."""
    # The index first, then the files: a run training meanwhile writes its files before the index names them.
    state = checkpoint_state(run_dir)
    complete = complete_checkpoints(run_dir)
    if state is None or not state.model_checkpoint_path:
        return complete[-1] if complete else None
    named = os.path.join(checkpoint_dir(run_dir), os.path.basename(state.model_checkpoint_path))
    if named in complete:
        return named
    offer = (f"; the newest complete one is {complete[-1]}: pass it as {flag} {complete[-1]}" if complete
             else "; there is no complete checkpoint in the run")
    raise CommandError(f"{checkpoint_dir(run_dir)}/checkpoint names {os.path.basename(named)}, whose files are "
                       f"missing or incomplete{offer}")


def checkpoint_state(run_dir):
    """The ``checkpoint`` index of the run, or None when it has none; a damaged index is an error naming it."""
    try:
        return tf.train.get_checkpoint_state(checkpoint_dir(run_dir))
    except (tf.errors.OpError, ValueError) as e:
        raise CommandError(f"{os.path.join(checkpoint_dir(run_dir), 'checkpoint')} cannot be read "
                           f"({first_line(e)}); remove it and the newest complete checkpoint is used") from None


def named_checkpoint(path):
    """(run directory, checkpoint prefix) when ``path`` names one of a run's checkpoints
    (``RUN_DIR/checkpoints/ckpt-N`` or ``best-N``, with or without a file suffix; ``RUN_DIR/best`` is returned as
    it is, for ``find_checkpoint`` to look up), else (``path``, None): a run directory. Reads no file, so it needs
    no TensorFlow."""
    path = os.path.normpath(path)
    if os.path.basename(path) == BEST_PREFIX:
        return os.path.dirname(path) or ".", path
    match = ANY_CHECKPOINT_NAME.fullmatch(os.path.basename(path).split(".")[0])
    if match and os.path.basename(os.path.dirname(path)) == CHECKPOINT_SUBDIR:
        prefix = os.path.join(os.path.dirname(path), match.group(0))
        return os.path.dirname(os.path.dirname(prefix)), prefix
    return path, None


def find_checkpoint(path, flag):
    """(run directory, checkpoint prefix) for ``path``: a run directory (its latest checkpoint) or one of its
    checkpoints (``RUN_DIR/checkpoints/ckpt-N``, with or without a file suffix)."""
    run_dir, prefix = named_checkpoint(path)
    path = os.path.normpath(path)
    if prefix and flag == "--resume" and os.path.basename(prefix).startswith(BEST_PREFIX):
        raise CommandError(f"--resume {path!r}: the best checkpoint is for drawing and scoring (generate, evaluate); "
                           f"--resume continues the run's newest checkpoint: --resume {run_dir}")
    if prefix == os.path.join(run_dir, BEST_PREFIX):
        if not os.path.isfile(os.path.join(run_dir, SETTINGS_FILE)):
            raise CommandError(f"{flag} {path!r}: {run_dir!r} is not a run directory written by train.py (no "
                               f"{SETTINGS_FILE})")
        best = best_checkpoint(run_dir)
        if best is None:
            raise CommandError(f"{flag} {path!r}: the run has no best checkpoint (one is kept when it is trained with "
                               f"--eval-every-epoch; see --keep-best); its newest is read as {flag} {run_dir}")
        return run_dir, best
    if prefix:
        if not is_complete(prefix):
            complete = complete_checkpoints(run_dir)
            names = ", ".join(os.path.basename(p) for p in complete)
            has = (f"the run has {names} in {checkpoint_dir(run_dir)}: pass one, e.g. {flag} {complete[-1]}, or the "
                   f"run directory for its newest" if complete else
                   f"the run has no checkpoint in {checkpoint_dir(run_dir)}" if os.path.isdir(run_dir) else
                   f"there is no run directory {run_dir}")
            missing = "is incomplete (its .index or .data file is missing)" if checkpoint_files(prefix) \
                else "is not there"
            raise CommandError(f"{flag} {path!r}: the checkpoint {missing}; {has}")
        return run_dir, prefix
    if not os.path.isdir(path):
        raise CommandError(f"{flag} {path!r}: no such run directory or checkpoint")
    if not os.path.isfile(os.path.join(path, SETTINGS_FILE)):
        raise CommandError(f"{flag} {path!r}: no {SETTINGS_FILE} there; expected a run directory written by train.py")
    prefix = latest_checkpoint(path, flag)
    if prefix is None:
        raise CommandError(no_checkpoint_error(path) if flag == "--resume"
                           else f"{flag} {path!r}: the run has no checkpoint in {checkpoint_dir(path)}")
    return path, prefix


class Run:
    """A trained run opened from a run directory or one of its checkpoints: ``settings`` (its Settings),
    ``checkpoint`` (the prefix to restore) and ``iteration`` (iterations done when it was written)."""

    def __init__(self, path, flag="--checkpoint"):
        self.path, self.flag = path, flag
        self.run_dir, self.checkpoint = find_checkpoint(path, flag)
        self.settings = load_settings(self.run_dir, flag)
        self.iteration = iteration_of(self.checkpoint)

    def variable_names(self):
        """The names of the variables in the checkpoint, or None if it cannot be read (restore says why)."""
        try:
            return [name for name, _ in tf.train.list_variables(self.checkpoint)]
        except (tf.errors.OpError, ValueError):
            return None

    def restore(self, saver, sess, attempts=5):
        """Restore the checkpoint. A run being trained may prune it meanwhile: then the run's newest is taken
        (when a run directory was given) or the error says so. A damaged one is reported with the older complete
        ones to use instead."""
        try:
            saver.restore(sess, self.checkpoint)
        except (tf.errors.OpError, ValueError) as e:
            if self.checkpoint not in complete_checkpoints(self.run_dir) and writer_pid(self.run_dir):
                if self.path == self.run_dir and attempts > 1:
                    self.run_dir, self.checkpoint = find_checkpoint(self.path, self.flag)
                    self.iteration = iteration_of(self.checkpoint)
                    return self.restore(saver, sess, attempts - 1)
                raise CommandError(f"{self.checkpoint} was removed by the training process (PID "
                                   f"{writer_pid(self.run_dir)}) while it was read; pass the run directory "
                                   f"{self.run_dir} to read its newest checkpoint") from None
            raise self.unreadable(e) from None

    def unreadable(self, error):
        """The error of a damaged checkpoint, offering the run's newest older complete one instead."""
        older = [p for p in complete_checkpoints(self.run_dir) if iteration_of(p) < self.iteration]
        offer = f"; an older complete checkpoint is {older[-1]}: pass it as {self.flag} {older[-1]}" if older else ""
        return CommandError(f"checkpoint {self.checkpoint} cannot be read ({first_line(error)}){offer}")


def new_saver(run_dir, keep):
    """A Saver that records relative names and prunes the run's existing checkpoints too; the run (locked by this
    process) keeps at most ``keep`` of them from the start, and no partial file of a killed write."""
    remove_temporary_checkpoint_files(run_dir)
    complete = complete_checkpoints(run_dir)
    for prefix in complete[:-keep]:
        remove_checkpoint(prefix)
    saver = tf.train.Saver(max_to_keep=keep, save_relative_paths=True)
    saver.recover_last_checkpoints(complete[-keep:])
    return saver


def checkpoint_files(prefix):
    return glob.glob(glob.escape(prefix) + ".*")


def remove_checkpoint(prefix):
    for path in checkpoint_files(prefix):
        remove_quietly(path)


def remove_temporary_checkpoint_files(run_dir, prefix=PREFIX):
    """What a checkpoint write that was killed or failed leaves: TensorFlow's *tempstate* files and folders."""
    for partial in glob.glob(os.path.join(glob.escape(checkpoint_dir(run_dir)), f"{prefix}*temp*")):
        if os.path.isdir(partial):
            shutil.rmtree(partial, ignore_errors=True)
        else:
            remove_quietly(partial)


def abandon_newer_checkpoints(run_dir, checkpoint):
    """--fork: move the checkpoints newer than ``checkpoint`` into RUN_DIR/abandoned/ and make ``checkpoint`` the
    latest, so the run continues from it with one history."""
    kept = [p for p in complete_checkpoints(run_dir) if iteration_of(p) <= iteration_of(checkpoint)]
    newer = [p for p in complete_checkpoints(run_dir) if iteration_of(p) > iteration_of(checkpoint)]
    target = os.path.join(run_dir, ABANDONED_SUBDIR)
    try:
        os.makedirs(target, exist_ok=True)
        best = best_checkpoint(run_dir)
        if best is not None and iteration_of(best) > iteration_of(checkpoint):  # the best of the abandoned future
            newer.append(best)
            os.replace(os.path.join(run_dir, BEST_FILE), os.path.join(target, BEST_FILE))
        for prefix in newer:
            for path in checkpoint_files(prefix):
                os.replace(path, os.path.join(target, os.path.basename(path)))
        tf.train.update_checkpoint_state(checkpoint_dir(run_dir), os.path.basename(checkpoint),
                                         [os.path.basename(p) for p in kept])
    except (OSError, tf.errors.OpError) as e:
        raise WriteError(f"could not move the newer checkpoints into {target}: {write_failure(e)}") from None
    print(f"--fork: {', '.join(os.path.basename(p) for p in newer)} moved into {target}; continuing from "
          f"{os.path.basename(checkpoint)}", file=sys.stderr)


def save_checkpoint(saver, sess, run_dir, iteration):
    """Write ckpt-``iteration``; on failure remove TensorFlow's partial files and raise WriteError."""
    try:
        return saver.save(sess, os.path.join(checkpoint_dir(run_dir), PREFIX), global_step=iteration,
                          write_meta_graph=False)
    except (tf.errors.OpError, OSError) as e:
        remove_temporary_checkpoint_files(run_dir, f"{PREFIX}-{iteration}")
        raise WriteError(f"could not write the checkpoint of iteration {iteration}: {write_failure(e)}") from None


def first_line(error):
    text = getattr(error, "message", None) or str(error)
    lines = [line for line in text.splitlines() if line.strip() and "Graph execution error" not in line]
    return lines[0].strip() if lines else type(error).__name__


def write_failure(error):
    """'FILE: REASON' for a failed write: an OSError, or a TensorFlow error whose text names the file."""
    if isinstance(error, OSError):
        return f"{error.filename}: {error.strerror}" if error.filename else str(error)
    found = re.search(r"^(\S+); ([^\n\[]+)", getattr(error, "message", str(error)), re.M)
    if found:
        return f"{TEMPORARY_SUFFIX.sub('', found.group(1))}: {found.group(2).strip()}"
    return first_line(error)


class TrainState:
    """Graph variables mirroring the loop state. Build after the model, before the Saver."""

    def __init__(self, n_train, visualize_dim, dim_z, dim_y, adaptive=False):
        with tf.variable_scope("train_state"):
            def var(name, shape, dtype):
                return tf.get_variable(name, shape, dtype, initializer=tf.zeros_initializer(), trainable=False)
            self.vars = {
                "iteration": var("iteration", [], tf.int64),
                "epoch": var("epoch", [], tf.int64),
                "batch_in_epoch": var("batch_in_epoch", [], tf.int64),
                "order": var("order", [n_train], tf.int64),
                "rng_key": var("rng_key", [624], tf.int64),
                "rng_pos": var("rng_pos", [], tf.int64),
                "rng_has_gauss": var("rng_has_gauss", [], tf.int64),
                "rng_cached_gaussian": var("rng_cached_gaussian", [], tf.float64),
                "sample_z": var("sample_z", [visualize_dim, dim_z], tf.float64),
                "sample_y": var("sample_y", [visualize_dim, dim_y], tf.float64),
            }
            if adaptive:  # --augment adaptive's p and the measure it is adjusting on (augment.AdaptiveStrength)
                self.vars.update(augment_p=var("augment_p", [], tf.float64),
                                 augment_signs=var("augment_signs", [], tf.float64),
                                 augment_seen=var("augment_seen", [], tf.int64))
            self.inputs = {name: tf.placeholder(v.dtype.base_dtype, v.shape) for name, v in self.vars.items()}
            self.assign = tf.group(*[v.assign(self.inputs[name]) for name, v in self.vars.items()])

    def store(self, sess, iteration, epoch, batch_in_epoch, order, sample_z, sample_y, augment=None):
        """Copy the loop state, numpy's global RNG state and (``augment``: its ``state()``) --augment adaptive's into
        the variables."""
        values = dict(iteration=iteration, epoch=epoch, batch_in_epoch=batch_in_epoch, order=order, **rng_state(),
                      sample_z=sample_z, sample_y=sample_y,
                      **{f"augment_{name}": value for name, value in (augment or {}).items()})
        sess.run(self.assign, feed_dict={self.inputs[name]: value for name, value in values.items()})

    def fetch(self, sess):
        """Read the state back and put numpy's global RNG where it was."""
        s = sess.run(self.vars)
        set_rng_state(s)
        return s
