"""The run directory: the one place that knows its files, and the model and checkpoints built from it.

    RUN_DIR/settings.json         every setting of the run (read back by --resume, generate, evaluate, shapes)
    RUN_DIR/metrics.jsonl         one line per iteration (records.py)
    RUN_DIR/eval.jsonl            the --eval-every-epoch scores (records.py)
    RUN_DIR/checkpoints/ckpt-N.*  tf.compat.v1.train.Saver checkpoints at iteration N
    RUN_DIR/events.out.tfevents.* TensorBoard

Checkpoints are always looked up inside the run directory given, by file name, so a run directory can be
moved or copied (the Saver's ``checkpoint`` index records relative names; one written with absolute
paths by an older version is read by the names' last part).

Besides the weights and both Adam optimizers' slots and step counters (ordinary graph variables), the
loop's own state lives in non-trainable variables under ``train_state/``: the iteration counter, the epoch
and the position inside it, the epoch's cumulative data order, numpy's global RNG state and the fixed
sample inputs. The Saver writes a checkpoint under temporary names and updates the ``checkpoint`` index
last, so a crash mid-write leaves the previous checkpoint the latest one.
"""
import glob
import os
import re

import numpy as np

from .cli import CommandError
from .model import DCGAN, DIM_Y, tf
from .settings import Settings

SETTINGS_FILE = "settings.json"
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
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        remove_quietly(tmp)
        raise WriteError(f"could not write {path}: {e.strerror or e}") from None


def remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass


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
    complete = complete_checkpoints(run_dir)
    state = tf.train.get_checkpoint_state(checkpoint_dir(run_dir))
    if state is None or not state.model_checkpoint_path:
        return complete[-1] if complete else None
    named = os.path.join(checkpoint_dir(run_dir), os.path.basename(state.model_checkpoint_path))
    if named in complete:
        return named
    offer = (f"; the newest complete one is {complete[-1]}: pass it as {flag} {complete[-1]}" if complete
             else "; there is no complete checkpoint in the run")
    raise CommandError(f"{checkpoint_dir(run_dir)}/checkpoint names {os.path.basename(named)}, whose files are "
                       f"missing or incomplete{offer}")


def find_checkpoint(path, flag):
    """(run directory, checkpoint prefix) for ``path``: a run directory (its latest checkpoint) or one of its
    checkpoints (``RUN_DIR/checkpoints/ckpt-N``, with or without a file suffix)."""
    path = os.path.normpath(path)
    name = os.path.basename(path)
    match = re.fullmatch(re.escape(PREFIX) + r"-\d+", name.split(".")[0])
    if match and os.path.basename(os.path.dirname(path)) == CHECKPOINT_SUBDIR:
        prefix = os.path.join(os.path.dirname(path), match.group(0))
        run_dir = os.path.dirname(os.path.dirname(prefix))
        if prefix not in complete_checkpoints(run_dir):
            raise CommandError(f"{flag} {path!r}: the checkpoint's .index or .data file is missing")
        return run_dir, prefix
    if not os.path.isdir(path):
        raise CommandError(f"{flag} {path!r}: no such run directory or checkpoint")
    if not os.path.isfile(os.path.join(path, SETTINGS_FILE)):
        raise CommandError(f"{flag} {path!r}: no {SETTINGS_FILE} there; expected a run directory written by train.py")
    prefix = latest_checkpoint(path, flag)
    if prefix is None:
        raise CommandError(f"{flag} {path!r}: the run has no checkpoint in {checkpoint_dir(path)}")
    return path, prefix


class Run:
    """A trained run opened from a run directory or one of its checkpoints: ``settings`` (its Settings),
    ``checkpoint`` (the prefix to restore) and ``iteration`` (iterations done when it was written)."""

    def __init__(self, path, flag="--checkpoint"):
        self.run_dir, self.checkpoint = find_checkpoint(path, flag)
        self.settings = load_settings(self.run_dir, flag)
        self.iteration = iteration_of(self.checkpoint)
        self.flag = flag

    def restore(self, saver, sess):
        """Restore the checkpoint; a damaged one is reported with the older complete ones to use instead."""
        try:
            saver.restore(sess, self.checkpoint)
        except (tf.errors.OpError, ValueError) as e:
            older = [p for p in complete_checkpoints(self.run_dir) if iteration_of(p) < self.iteration]
            offer = f"; an older complete checkpoint is {older[-1]}: pass it as {self.flag} {older[-1]}" if older \
                else ""
            raise CommandError(f"checkpoint {self.checkpoint} cannot be read ({first_line(e)}){offer}") from None


def new_saver(run_dir, keep):
    """A Saver that records relative names and counts the run's existing checkpoints when it prunes."""
    saver = tf.train.Saver(max_to_keep=keep, save_relative_paths=True)
    saver.recover_last_checkpoints(complete_checkpoints(run_dir))
    return saver


def save_checkpoint(saver, sess, run_dir, iteration):
    """Write ckpt-``iteration``; on failure remove TensorFlow's partial files and raise WriteError."""
    try:
        return saver.save(sess, os.path.join(checkpoint_dir(run_dir), PREFIX), global_step=iteration,
                          write_meta_graph=False)
    except (tf.errors.OpError, OSError) as e:
        for partial in glob.glob(os.path.join(glob.escape(checkpoint_dir(run_dir)), f"{PREFIX}-{iteration}*temp*")):
            if os.path.isdir(partial):
                for inner in glob.glob(os.path.join(glob.escape(partial), "*")):
                    remove_quietly(inner)
                os.rmdir(partial)
            else:
                remove_quietly(partial)
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

    def __init__(self, n_train, visualize_dim, dim_z, dim_y):
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
            self.inputs = {name: tf.placeholder(v.dtype.base_dtype, v.shape) for name, v in self.vars.items()}
            self.assign = tf.group(*[v.assign(self.inputs[name]) for name, v in self.vars.items()])

    def store(self, sess, iteration, epoch, batch_in_epoch, order, sample_z, sample_y):
        """Copy the loop state and numpy's global RNG state into the variables."""
        _, key, pos, has_gauss, cached = np.random.get_state()
        values = dict(iteration=iteration, epoch=epoch, batch_in_epoch=batch_in_epoch, order=order,
                      rng_key=key.astype(np.int64), rng_pos=pos, rng_has_gauss=has_gauss,
                      rng_cached_gaussian=cached, sample_z=sample_z, sample_y=sample_y)
        sess.run(self.assign, feed_dict={self.inputs[name]: value for name, value in values.items()})

    def fetch(self, sess):
        """Read the state back and put numpy's global RNG where it was."""
        s = sess.run(self.vars)
        np.random.set_state(("MT19937", s["rng_key"].astype(np.uint32), int(s["rng_pos"]),
                             int(s["rng_has_gauss"]), float(s["rng_cached_gaussian"])))
        return s
