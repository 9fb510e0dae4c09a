"""The run directory: its one writer, its settings and its data (its files are named in files.py).

    RUN_DIR/settings.json         every setting of the run (read back by --resume, generate, evaluate, shapes)
    RUN_DIR/data.json             where the run's data is and the SHA-256 of each of its four files
    RUN_DIR/.writer.lock          locked by the one process training the run (its PID inside)
    RUN_DIR/metrics.jsonl         one line per iteration (records.py)
    RUN_DIR/eval.jsonl            the --eval-every-epoch scores (records.py)
    RUN_DIR/checkpoints/ckpt-N.*  tf.compat.v1.train.Saver checkpoints at iteration N (checkpoints.py)
    RUN_DIR/checkpoints/best-N.*  the best-scored checkpoint, kept apart from the rotating ones (checkpoints.py)
    RUN_DIR/best.json             which checkpoint is the best, and by which score
    RUN_DIR/events.out.tfevents.* TensorBoard

One process writes a run directory: it holds an exclusive lock (``Writer``) for as long as it trains, and
the operating system drops the lock with the process, so even ``kill -9`` leaves no stale lock. A directory
holds one run: a fresh run is refused where a run has a checkpoint, and replaces what an attempt that died
before its first checkpoint left (``checkpoints.claim_for_fresh_run``).
"""
import fcntl
import glob
import hashlib
import json
import os
import time

from .cli import CommandError
from .files import BEST_FILE, DATA_FILE, EVAL_FILE, LOCK_FILE, METRICS_FILE, SETTINGS_FILE, read_data_record
from .load import FILES, DataError, find_file, read_bytes
from .util import write_whole

# What a run writes besides its checkpoints: an attempt that died before its first checkpoint leaves these.
RECORD_PATTERNS = (SETTINGS_FILE, DATA_FILE, METRICS_FILE, EVAL_FILE, BEST_FILE, "events.out.tfevents.*")
EXIT_WRITE_FAILED = 4
class WriteError(CommandError):
    """A file of the run could not be written; the message names it and the system's reason."""

    def __init__(self, message):
        super().__init__(message, EXIT_WRITE_FAILED)


# ---- settings.json ----

def save_settings(settings, run_dir):
    """Write settings.json whole or not at all (a full disk never leaves half a file)."""
    write_atomically(os.path.join(run_dir, SETTINGS_FILE), settings.to_json())


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


def check_data(run_dir, directory, flag, record=False, accept_damaged=False):
    """Refuse data in ``directory`` that is not what the run trained on (data.json, ``files.read_data_record``).
    With ``accept_damaged`` a missing or damaged data.json is not checked; with ``record`` too (its writer resuming
    it) it is written anew."""
    going_on = f"takes the data in {directory} as the run's and records it anew" if record else \
        f"goes on without checking the data in {directory}"
    recorded = read_data_record(run_dir, flag, accept_damaged, going_on)
    if recorded is None:
        if record:
            record_data(run_dir, directory)
        return
    path = os.path.join(run_dir, DATA_FILE)
    now = data_fingerprint(directory)
    differ = [name for name in FILES if recorded["sha256"][name] != now[name]]
    if differ:
        raise CommandError(f"{flag}: the data in {directory} is not the data {run_dir} was trained on: "
                           f"{', '.join(differ)} differ{'s' if len(differ) == 1 else ''} from {path}; pass "
                           f"--data-dir with the run's data")
