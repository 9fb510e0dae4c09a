"""What a run writes besides checkpoints: the console lines, metrics.jsonl and TensorBoard events."""
import io
import json
import os
import time

import numpy as np

from .model import tf
from .util import grid_image

METRICS_FILE = "metrics.jsonl"


def print_original(out, iteration):
    """The six lines the original prints every iteration."""
    print("=========== updating %s ==========" % out["updated"])
    print("iteration:", iteration)
    print("gen loss:", out["gen_loss"])
    print("discrim loss:", out["discrim_loss"])
    print("Average P(real)=", out["p_real"])
    print("Average P(gen)=", out["p_gen"])


def _duration(seconds):
    seconds = int(seconds)
    return "%dh%02dm%02ds" % (seconds // 3600, seconds % 3600 // 60, seconds % 60)


def print_compact(out, iteration, epoch, rate, remaining):
    eta = _duration(remaining / rate) if rate > 0 else "?"
    print("epoch %d iter %d (%s) | gen loss %.4f | discrim loss %.4f | P(real) %.4f | P(gen) %.4f | %.2f it/s | ETA %s"
          % (epoch, iteration, out["updated"], out["gen_loss"], out["discrim_loss"], out["p_real"], out["p_gen"],
             rate, eta), flush=True)


def _number(value):
    return None if value is None else float(value)


class Metrics:
    """metrics.jsonl: one JSON object per iteration. On resume, lines past the checkpoint are cut
    so the file reads as if the run had never stopped."""

    def __init__(self, run_dir, resume_at=None):
        self.path = os.path.join(run_dir, METRICS_FILE)
        if resume_at is not None and os.path.exists(self.path):
            with open(self.path) as f:
                kept = [line for line in f if line.strip() and json.loads(line).get("iteration", -1) < resume_at]
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                f.writelines(kept)
            os.replace(tmp, self.path)
        self.file = open(self.path, "a")

    def write(self, record):
        self.file.write(json.dumps(record) + "\n")

    def iteration(self, iteration, epoch, out, seconds):
        self.write({"iteration": iteration, "epoch": epoch, "updated": out["updated"],
                    "gen_loss": _number(out.get("gen_loss")), "discrim_loss": _number(out.get("discrim_loss")),
                    "p_real": _number(out.get("p_real")), "p_gen": _number(out.get("p_gen")),
                    "seconds": round(seconds, 6)})

    def flush(self):
        self.file.flush()

    def close(self):
        self.file.close()


class Events:
    """TensorBoard events (scalars, the sample grid, the graph) through tf.compat.v1.summary.FileWriter."""

    def __init__(self, run_dir, graph, resume_at=None):
        self.writer = tf.summary.FileWriter(run_dir, graph=None if resume_at else graph)
        if resume_at is not None:
            # Tells TensorBoard to drop what an earlier process logged past the checkpoint.
            self.writer.add_session_log(tf.SessionLog(status=tf.SessionLog.START), resume_at)

    def scalars(self, step, values):
        summary = tf.Summary(value=[tf.Summary.Value(tag=tag, simple_value=float(v))
                                    for tag, v in values.items() if v is not None])
        self.writer.add_summary(summary, step)

    def grid(self, step, images, nh_nw, tag="samples"):
        png = io.BytesIO()
        picture = grid_image(images, nh_nw)
        picture.save(png, format="PNG")
        image = tf.Summary.Image(height=picture.height, width=picture.width, colorspace=3,
                                 encoded_image_string=png.getvalue())
        self.writer.add_summary(tf.Summary(value=[tf.Summary.Value(tag=tag, image=image)]), step)

    def flush(self):
        self.writer.flush()

    def close(self):
        self.writer.close()


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
