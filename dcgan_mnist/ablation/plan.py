"""An ablation's plan: its variants, the iterations each run is scored at, and what the work will cost (``Work``,
``Pace``: measured on the workers by ``tasks.probe`` before training)."""
import dataclasses
import statistics
import time

from ..cli import duration
from ..metrics import set_sizes
from ..settings import MODEL_WIDTHS, RUN_DEFINING, flag

# Each variant's settings: the original, each switch alone, the recipe with the lrelu left on its logit (which
# of the two fixes of D's output it needs), and the repaired recipe (docs/repaired.md).
VARIANTS = {
    "original": {},
    "stable-loss": {"loss": "stable"},
    "lrelu-logit": {"d_output": "lrelu"},
    "linear-logit": {"d_output": "linear"},
    "stable-lrelu-logit": {"loss": "stable", "d_output": "lrelu"},
    "repaired": {"recipe": "repaired"},
    "repaired-bf16": {"recipe": "repaired", "precision": "bf16"},
    "repaired-translate": {"recipe": "repaired", "augment": "translate"},
    "repaired-bf16-translate": {"recipe": "repaired", "precision": "bf16", "augment": "translate"},
    "repaired-adaptive": {"recipe": "repaired", "augment": "adaptive"},
    "repaired-bf16-adaptive": {"recipe": "repaired", "precision": "bf16", "augment": "adaptive"},
    "repaired-fused": {"recipe": "repaired", "kernels": "fused"},
    "repaired-bf16-fused": {"recipe": "repaired", "precision": "bf16", "kernels": "fused"},
}


# bf16 and the fused kernels are speed-ups, not fixes, and --augment answers what a whole 100-epoch run does, not the
# 3,000 iterations an ablation runs by default: an ablation has them only when asked for by name.
DEFAULT_VARIANTS = [name for name, changes in VARIANTS.items()
                    if not {"precision", "augment", "kernels"} & set(changes)]


# The training settings an ablation sets for all its runs; those that define a run must agree between two
# invocations into one --out, as must the scores' size and interval.
SHARED_SETTINGS = ("dataset", "data_dir", "valid_size", "batch_size", *MODEL_WIDTHS, "judge_dir", "threads")


# Flags that make scores comparable: a second invocation into the same --out must repeat them.
FIXED = ("samples", "eval_every", *(name for name in SHARED_SETTINGS if name in RUN_DEFINING))


def variant_flags(variant):
    """The train.py flags of ``variant``."""
    return [text for name, value in VARIANTS[variant].items() for text in (flag(name), str(value))]


def budgets(iterations, every):
    """The iteration counts a run is scored at: every ``every`` iterations, and at ``iterations``."""
    return sorted(set(range(every, iterations, every)) | {iterations})


def run_name(variant, seed):
    return f"{variant}/seed-{seed}"


@dataclasses.dataclass
class Work:
    """What is left of one run: iterations to train, chunks they are trained in, scores and the sets of G's weights
    each score draws with."""
    iterations: int
    chunks: int
    scores: int
    weights: int


def size(n):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.{1 if unit == 'GB' else 0}f} {unit}"
    return f"{n} bytes"


class Pace:
    """The seconds the work left takes on the workers: from the probe until tasks have ended, then from the time
    the ended ones took (a training chunk's time includes building its graph and writing its checkpoint), and the
    judge's training before the first score when it is not cached (``judge_steps`` of it)."""

    def __init__(self, probes, samples, valid_size, workers, judge_steps=0):
        def mean(key, default=None):
            return statistics.mean(p[key] if default is None else p.get(key, default) for p in probes)
        self.iteration, self.build = mean("iteration_seconds"), mean("build_seconds")
        # A chunk builds its graph and prepares its first steps (a probe given by hand may leave those out).
        self.chunk = self.build + mean("first_steps_seconds", 0.0)
        nearest_pairs = valid_size * sum(set_sizes(samples))
        # A score restores the generator, draws the samples and searches their nearest neighbours once per set of
        # G's weights; the real images' references are searched once. The judge's share is left out: it is small.
        self.per_weights = self.build + samples * mean("image_seconds") + nearest_pairs * mean("pair_seconds")
        self.per_score = nearest_pairs * mean("pair_seconds")
        self.judge = judge_steps * mean("judge_step_seconds") if judge_steps else 0
        self.workers = workers
        self.started, self.estimated = time.perf_counter(), None
        self.trained = self.training_seconds = 0
        self.weights_scored = self.scoring_seconds = 0

    def trained_chunk(self, result):
        self.trained += result["trained"]
        self.training_seconds += result["seconds"]

    def scored(self, result):
        self.judge = 0  # the judge is ready once a score is done
        self.weights_scored += result["weights_scored"]
        self.scoring_seconds += result["seconds"]

    def training(self, work):
        if self.trained:
            return sum(w.iterations for w in work) * self.training_seconds / self.trained
        return sum(w.iterations * self.iteration + w.chunks * self.chunk for w in work)

    def scoring(self, work):
        if self.weights_scored:
            return sum(w.scores * w.weights for w in work) * self.scoring_seconds / self.weights_scored
        return sum(w.scores * (self.per_score + w.weights * self.per_weights) for w in work)

    def wall(self, work):
        """The seconds of the work on the workers at once, each training one run: the work shared among them, but
        no less than the longest run's, whose tasks follow one another (the judge's training is a task too)."""
        busy = [w for w in work if w.chunks or w.scores]
        if not busy:
            return 0
        runs = [self.training([w]) + self.scoring([w]) for w in busy]
        return max((sum(runs) + self.judge) / self.workers, max(runs))

    def eta(self, work):
        return duration(self.wall(work))

    def summary(self):
        """What this invocation did, how fast, and how long against the estimate."""
        trained = (f"trained {self.trained} iterations at {self.trained / self.training_seconds:.2f} it/s per worker"
                   if self.trained else "trained nothing")
        scored = (f"scored {self.weights_scored} times, {self.scoring_seconds / self.weights_scored:.1f} s each"
                  if self.weights_scored else "scored nothing")
        took = duration(time.perf_counter() - self.started)
        return f"{trained}, {scored}; took {took}, estimated {duration(self.estimated or 0)}"
