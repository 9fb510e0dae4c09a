"""What a run writes besides checkpoints: the console lines, metrics.jsonl and TensorBoard events."""
import contextlib
import io
import math
import os
import threading
import time

import numpy as np

from .checkpoints import write_failure
from .cli import dumps, duration
from .files import METRICS_FILE, lines_before
from .graph import PRINTED
from .model import tf
from .run import WriteError, write_atomically
from .util import grid_image

ADAPTIVE_RECORDS = ("augment_p", "augment_r")


def print_original(out, iteration):
    """The six lines the original prints every iteration."""
    print("=========== updating %s ==========" % out["updated"])
    print("iteration:", iteration)
    print("gen loss:", out["gen_loss"])
    print("discrim loss:", out["discrim_loss"])
    print("Average P(real)=", out["p_real"])
    print("Average P(gen)=", out["p_gen"])


def print_compact(out, iteration, epoch, rate, remaining):
    """The compact log's line; ``epoch`` counts from 1, as the scores' "after epoch N" do."""
    eta = duration(int(remaining / rate), hours=True) if rate > 0 else "?"
    augment = " | augment p %.3f" % out["augment_p"] if "augment_p" in out else ""
    print("epoch %d iter %d (%s) | gen loss %.4f | discrim loss %.4f | P(real) %.4f | P(gen) %.4f%s | %.2f it/s | "
          "ETA %s" % (epoch, iteration, out["updated"], out["gen_loss"], out["discrim_loss"], out["p_real"],
                      out["p_gen"], augment, rate, eta), flush=True)


class JsonLines:
    """A file of one strict-JSON object per line (a non-finite number is written as null). Each line is
    flushed when written, so a full disk is noticed at the iteration that hit it. On resume, lines of
    iterations at or past the checkpoint (and a line cut short by a crash) are dropped, so the file reads
    as if the run had never stopped; a damaged line is refused unless ``accept_damaged`` (files.lines_before)."""

    def __init__(self, path, resume_at=None, accept_damaged=False):
        self.path = path
        kept = None if resume_at is None else lines_before(path, resume_at, accept_damaged)
        try:
            if kept is not None:
                write_atomically(path, kept)
            self.file = open(path, "a", buffering=1)
        except OSError as e:
            raise WriteError(f"could not write {path}: {e.strerror or e}") from None

    def write(self, record):
        try:
            self.file.write(dumps(record) + "\n")
        except OSError as e:
            raise WriteError(f"could not write {self.path}: {e.strerror or e}") from None

    def close(self):
        try:
            self.file.close()
        except OSError:
            pass  # already reported by the write that failed


class Metrics(JsonLines):
    """metrics.jsonl: one line per iteration; its "epoch" is the epoch the iteration is in, counting from 1."""

    def __init__(self, run_dir, resume_at=None, accept_damaged=False):
        super().__init__(os.path.join(run_dir, METRICS_FILE), resume_at, accept_damaged)

    def iteration(self, iteration, epoch, out, seconds):
        numbers = {name: None if out.get(name) is None else float(out[name]) for name in PRINTED}
        # --augment adaptive: the p this iteration's images were moved with, and the measure of an adjustment.
        adaptive = {name: float(out[name]) for name in ADAPTIVE_RECORDS if name in out}
        record = {"iteration": iteration, "epoch": epoch, "updated": out["updated"], **numbers, **adaptive,
                  "seconds": round(seconds, 6)}
        if not all(math.isfinite(v) for v in numbers.values() if v is not None):
            record["finite"] = False  # the numbers that were NaN or infinite are written as null
        self.write(record)


class Events:
    """TensorBoard events (scalars, the sample grid, the graph) through tf.compat.v1.summary.FileWriter.

    The writer works in a thread of its own; when a write fails (a full disk), the thread dies and the next
    call here raises, which becomes one WriteError naming the file instead of the thread's stack dump."""

    def __init__(self, run_dir, graph, resume_at=None):
        threading.excepthook = _quiet_event_writer_thread
        tf.get_logger().addFilter(_drop_event_writer_errors)
        with self._writing():
            self.writer = tf.summary.FileWriter(run_dir, graph=None if resume_at else graph)
            if resume_at is not None:
                # Tells TensorBoard to drop what an earlier process logged past the checkpoint.
                self.writer.add_session_log(tf.SessionLog(status=tf.SessionLog.START), resume_at)

    def scalars(self, step, values):
        summary = tf.Summary(value=[tf.Summary.Value(tag=tag, simple_value=float(v))
                                    for tag, v in values.items() if v is not None])
        with self._writing():
            self.writer.add_summary(summary, step)

    def grid(self, step, images, nh_nw, tag="samples"):
        png = io.BytesIO()
        picture = grid_image(images, nh_nw)
        picture.save(png, format="PNG")
        image = tf.Summary.Image(height=picture.height, width=picture.width, colorspace=3,
                                 encoded_image_string=png.getvalue())
        with self._writing():
            self.writer.add_summary(tf.Summary(value=[tf.Summary.Value(tag=tag, image=image)]), step)

    def flush(self):
        with self._writing():
            self.writer.flush()

    def close(self):
        try:
            self.writer.close()
        except (OSError, RuntimeError, tf.errors.OpError):
            pass  # already reported by the call that failed

    @staticmethod
    @contextlib.contextmanager
    def _writing():
        try:
            yield
        except (OSError, RuntimeError, tf.errors.OpError) as e:
            raise WriteError(f"could not write TensorBoard events: {write_failure(e)}") from None


_default_excepthook = threading.excepthook


def _quiet_event_writer_thread(args):
    if args.thread is None or args.thread.name != "EventLoggerThread":
        _default_excepthook(args)


def _drop_event_writer_errors(record):
    return not record.getMessage().startswith("EventFileWriter writer thread error")


class Rate:
    """Iterations per second over the last ``window`` iterations."""

    def __init__(self, window=50):
        self.times = []
        self.window = window

    def tick(self):
        self.times.append(time.perf_counter())
        del self.times[:-self.window - 1]

    def per_second(self):
        if len(self.times) < 2:
            return 0.0
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


def finite(out):
    return all(np.isfinite(v) for k, v in out.items() if k != "updated")
