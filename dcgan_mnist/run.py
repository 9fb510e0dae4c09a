"""The run directory: the one place that knows its files, and the model and checkpoints built from it.

    RUN_DIR/settings.json         every setting of the run (read back by --resume, generate, evaluate, shapes)
    RUN_DIR/data.json             where the run's data is and the SHA-256 of each of its four files
    RUN_DIR/.writer.lock          locked by the one process training the run (its PID inside)
    RUN_DIR/metrics.jsonl         one line per iteration (records.py)
    RUN_DIR/eval.jsonl            the --eval-every-epoch scores (records.py)
    RUN_DIR/checkpoints/ckpt-N.*  tf.compat.v1.train.Saver checkpoints at iteration N
    RUN_DIR/events.out.tfevents.* TensorBoard

One process writes a run directory: it holds an exclusive lock (``Writer``) for as long as it trains, and
the operating system drops the lock with the process, so even ``kill -9`` leaves no stale lock. A directory
holds one run: a fresh run is refused where a run has a checkpoint, and replaces what an attempt that died
before its first checkpoint left (``claim_for_fresh_run``).

Checkpoints are always looked up inside the run directory given, by file name, so a run directory can be
moved or copied (the Saver's ``checkpoint`` index records relative names; one written with absolute
paths by an older version is read by the names' last part).

Besides the weights and both Adam optimizers' slots and step counters (ordinary graph variables), the
loop's own state lives in non-trainable variables under ``train_state/``: the iteration counter, the epoch
and the position inside it, the epoch's cumulative data order, numpy's global RNG state and the fixed
sample inputs. The Saver writes a checkpoint under temporary names and updates the ``checkpoint`` index
last, so a crash mid-write leaves the previous checkpoint the latest one.
"""
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import sys
import time

import numpy as np

from .cli import CommandError
from .load import FILES, DataError, find_file, read_bytes
from .model import DCGAN, DIM_Y, tf
from .settings import Settings
from .util import write_whole

SETTINGS_FILE = "settings.json"
DATA_FILE = "data.json"
LOCK_FILE = ".writer.lock"
ABANDONED_SUBDIR = "abandoned"
# What a run writes besides its checkpoints: an attempt that died before its first checkpoint leaves these.
RECORD_PATTERNS = (SETTINGS_FILE, DATA_FILE, "metrics.jsonl", "eval.jsonl", "events.out.tfevents.*")
CHECKPOINT_SUBDIR = "checkpoints"
PREFIX = "ckpt"
CHECKPOINT_NAME = re.compile(re.escape(PREFIX) + r"-(\d+)")
EXIT_WRITE_FAILED = 4
# TensorFlow writes a checkpoint file under this suffix and renames it when complete.
TEMPORARY_SUFFIX = re.compile(r"[.]tempstate\d+$")


class WriteError(CommandError):
    """A file of the run could not be written; the message names it and the system's reason."""

    def __init__(self, message):
        super().__init__(message, EXIT_WRITE_FAILED)


def checkpoint_dir(run_dir):
    return os.path.join(run_dir, CHECKPOINT_SUBDIR)


def iteration_of(prefix):
    """The iteration a checkpoint was written at: ``.../ckpt-N`` -> N."""
    return int(CHECKPOINT_NAME.fullmatch(os.path.basename(prefix)).group(1))


# ---- settings.json ----

def save_settings(settings, run_dir):
    """Write settings.json whole or not at all (a full disk never leaves half a file)."""
    write_atomically(os.path.join(run_dir, SETTINGS_FILE), settings.to_json())


def load_settings(run_dir, flag):
    """The run's Settings, every field checked (``Settings.from_file``)."""
    path = os.path.join(run_dir, SETTINGS_FILE)
    if not os.path.isfile(path):
        raise CommandError(f"{flag} {run_dir!r}: no {SETTINGS_FILE} there; expected a run directory written by "
                           f"train.py")
    return Settings.from_file(path)


def write_atomically(path, text):
    """``text`` into ``path`` whole or not at all (util.write_whole), a failure as a WriteError naming the file."""
    try:
        write_whole(path, lambda f: f.write(text.encode()), read_back=None)
    except OSError as e:
        raise WriteError(f"could not write {path}: {e.strerror or e}") from None


def remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass


# ---- one writer, one run ----

class Writer:
    """The exclusive lock of the process that trains ``run_dir``, held until ``close`` or the process's end."""

    def __init__(self, run_dir):
        path = os.path.join(run_dir, LOCK_FILE)
        try:
            self.file = open(path, "a+")
        except OSError as e:
            raise WriteError(f"could not write {path}: {e.strerror or e}") from None
        # A reader's brief shared lock (writer_pid) can stand in the way for a moment; a writer holds on.
        for attempt in range(20):
            try:
                fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.05)
        else:
            self.file.seek(0)
            pid = self.file.read().strip() or "unknown"
            self.file.close()
            raise CommandError(f"{run_dir} is being written by another training process (PID {pid}); a run "
                               f"directory has one writer: wait for it to finish or stop it, then try again")
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"{os.getpid()}\n")
        self.file.flush()

    def close(self):
        self.file.close()


def writer_pid(run_dir):
    """The PID of the process training ``run_dir`` now, or None when nobody is."""
    try:
        f = open(os.path.join(run_dir, LOCK_FILE))
    except OSError:
        return None
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return f.read().strip() or "unknown"
    return None


RUNS = "runs"


def new_run_dir():
    """A fresh default run directory, created here: runs/<timestamp>, with -2, -3... when that is taken (two runs
    started in the same second)."""
    base = os.path.join(RUNS, time.strftime("%Y%m%d-%H%M%S"))
    try:
        os.makedirs(os.path.dirname(base), exist_ok=True)
        for number in range(1, 10000):
            path = base if number == 1 else f"{base}-{number}"
            try:
                os.mkdir(path)
                return path
            except FileExistsError:
                continue
    except OSError as e:
        raise CommandError(f"run directory {base!r} cannot be created: {e.strerror or e}") from None
    raise CommandError(f"every run directory {base}-N is taken")


def leftover_records(run_dir):
    return [path for pattern in RECORD_PATTERNS for path in glob.glob(os.path.join(glob.escape(run_dir), pattern))]


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


# ---- the run's data ----

def data_fingerprint(directory):
    """{file name: SHA-256 of its bytes} of the four IDX files in ``directory``; a gzipped file is hashed
    decompressed, so gzipping or unpacking the data keeps its fingerprint."""
    found = {}
    for name in FILES:
        path = find_file(directory, name)
        if path is None:
            raise CommandError(f"{directory} has no {name} (or {name}.gz)")
        try:
            found[name] = hashlib.sha256(read_bytes(path)).hexdigest()
        except DataError as e:
            raise CommandError(str(e)) from None
    return found


def record_data(run_dir, directory):
    """data.json of a new run: where its data is and its fingerprint."""
    write_atomically(os.path.join(run_dir, DATA_FILE),
                     json.dumps({"directory": os.path.abspath(directory), "sha256": data_fingerprint(directory)},
                                indent=2, sort_keys=True) + "\n")


def check_data(run_dir, directory, flag, record=False):
    """Refuse data in ``directory`` that is not what the run trained on (data.json). A run written before data.json
    existed is not checked; with ``record`` (its writer resuming it) it gets one now."""
    path = os.path.join(run_dir, DATA_FILE)
    if not os.path.exists(path):
        if record:
            record_data(run_dir, directory)
        return
    try:
        with open(path) as f:
            recorded = json.load(f)["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CommandError(f"{path} cannot be read ({e}); it records the run's data, so it cannot be checked")
    now = data_fingerprint(directory)
    differ = [name for name in FILES if recorded.get(name) != now[name]]
    if differ:
        raise CommandError(f"{flag}: the data in {directory} is not the data {run_dir} was trained on: "
                           f"{', '.join(differ)} differ{'s' if len(differ) == 1 else ''} from {path}; pass "
                           f"--data-dir with the run's data")


# ---- checkpoints ----

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
    (``RUN_DIR/checkpoints/ckpt-N``, with or without a file suffix), else (``path``, None): a run directory.
    Reads no file, so it needs no TensorFlow."""
    path = os.path.normpath(path)
    match = re.fullmatch(re.escape(PREFIX) + r"-\d+", os.path.basename(path).split(".")[0])
    if match and os.path.basename(os.path.dirname(path)) == CHECKPOINT_SUBDIR:
        prefix = os.path.join(os.path.dirname(path), match.group(0))
        return os.path.dirname(os.path.dirname(prefix)), prefix
    return path, None


def find_checkpoint(path, flag):
    """(run directory, checkpoint prefix) for ``path``: a run directory (its latest checkpoint) or one of its
    checkpoints (``RUN_DIR/checkpoints/ckpt-N``, with or without a file suffix)."""
    run_dir, prefix = named_checkpoint(path)
    path = os.path.normpath(path)
    if prefix:
        complete = complete_checkpoints(run_dir)
        if prefix not in complete:
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
            older = [p for p in complete_checkpoints(self.run_dir) if iteration_of(p) < self.iteration]
            offer = f"; an older complete checkpoint is {older[-1]}: pass it as {self.flag} {older[-1]}" if older \
                else ""
            raise CommandError(f"checkpoint {self.checkpoint} cannot be read ({first_line(e)}){offer}") from None


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


# ---- the model of a run ----

def model_from_settings(settings, batch_size=None):
    """The DCGAN of ``settings`` (the original's variables, the run's widths and switches), at its batch size
    unless another is given."""
    return DCGAN(batch_size=batch_size or settings.batch_size, dim_y=DIM_Y, **settings.widths(),
                 **settings.switches())


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
        _, key, pos, has_gauss, cached = np.random.get_state()
        values = dict(iteration=iteration, epoch=epoch, batch_in_epoch=batch_in_epoch, order=order,
                      rng_key=key.astype(np.int64), rng_pos=pos, rng_has_gauss=has_gauss,
                      rng_cached_gaussian=cached, sample_z=sample_z, sample_y=sample_y,
                      **{f"augment_{name}": value for name, value in (augment or {}).items()})
        sess.run(self.assign, feed_dict={self.inputs[name]: value for name, value in values.items()})

    def fetch(self, sess):
        """Read the state back and put numpy's global RNG where it was."""
        s = sess.run(self.vars)
        np.random.set_state(("MT19937", s["rng_key"].astype(np.uint32), int(s["rng_pos"]),
                             int(s["rng_has_gauss"]), float(s["rng_cached_gaussian"])))
        return s
