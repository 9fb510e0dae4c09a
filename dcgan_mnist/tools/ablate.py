"""`python -m dcgan_mnist ablate`: train the original, each fix alone and the repaired recipe, and score them.

    python -m dcgan_mnist ablate --out ablation --data-dir DIR --valid-size 2000 --seeds 0,1,2,3,4 \
        --iterations 3000 --eval-every 500

Every (variant, seed) is an ordinary run directory, OUT/runs/VARIANT/seed-S, trained in chunks of --eval-every
iterations (train.py's exact resume makes the chunks one run); after each chunk its checkpoint is scored as
`evaluate` scores it (a run trained with --g-average twice: with the average and with G's latest weights). The runs
go one after another. OUT gets:

    ablation.json              every score, by run and iteration (what a second invocation skips)
    ablation.md                median and worst seed of each variant at each number of iterations
    tensorboard/VARIANT/seed-S the scores as TensorBoard scalars: `tensorboard --logdir OUT` overlays the variants
    grids.png                  each variant's final per-digit grid, one column per variant, one row per seed

Stopped (Ctrl-C) or killed, it continues where it stopped when run again with the same flags: stored scores are
skipped and stopped runs resume from their latest checkpoint.

Two ablations may share one --out: each run is trained by whichever takes its lock first (runs/VARIANT/seed-S.lock)
and the other goes on to the next run, and ablation.json keeps both ablations' scores. So the same command started
twice, each with --threads 1, uses two cores and still writes one table; the one that ends last draws the grids of
every finished run of its plan.
"""
import argparse
import fcntl
import json
import os
import shutil
import statistics
import sys
import time

import numpy as np
from PIL import Image, ImageDraw

from .. import cli, run
from ..cli import POSITIVE_INT, CommandError
from ..evaluation import evaluate_run
from ..metrics import flat_scores
from ..records import METRICS_FILE, Events
from ..sampler import TrainedGenerator
from ..settings import MODEL_WIDTHS, RUN_DEFINING, SEED, Evaluation, Settings, add_flags, flag, resolve_switches
from ..train import EXIT_NOT_FINITE, resume_settings, train
from ..util import OneHot, ensure_dir, tile_grid

# Each variant's settings: the original, each switch alone, the recipe with the lrelu left on its logit (which
# of the two fixes of D's output it needs), and the repaired recipe (docs/repaired.md).
VARIANTS = {
    "original": {},
    "stable-loss": {"loss": "stable"},
    "lrelu-logit": {"d_output": "lrelu"},
    "linear-logit": {"d_output": "linear"},
    "stable-lrelu-logit": {"loss": "stable", "d_output": "lrelu"},
    "repaired": {"recipe": "repaired"},
}
# The training settings an ablation sets for all its runs; those that define a run must agree between two
# invocations into one --out, as must the scores' size and interval.
SHARED_SETTINGS = ("dataset", "data_dir", "valid_size", "batch_size", *MODEL_WIDTHS, "judge_dir", "threads")
RECORD_FILE = "ablation.json"
LOCK_SUFFIX = ".lock"
TABLE_FILE = "ablation.md"
GRIDS_FILE = "grids.png"
# Flags that make scores comparable: a second invocation into the same --out must repeat them.
FIXED = ("samples", "eval_every", *(name for name in SHARED_SETTINGS if name in RUN_DEFINING))
GRID_SAMPLES_PER_DIGIT = 10
GRID_SEED = 0
LABEL_HEIGHT = 14
GAP = 8


def variant_flags(variant):
    """The train.py flags of ``variant``."""
    return [text for name, value in VARIANTS[variant].items() for text in (flag(name), str(value))]


def variant_list(text):
    names = [name.strip() for name in text.split(",")]
    if any(name not in VARIANTS for name in names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected distinct names from {', '.join(VARIANTS)} separated by commas, "
                                         f"got {text!r}")
    return names


def seed_list(text):
    try:
        seeds = [int(seed) for seed in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds) or not all(map(SEED.valid, seeds)):
        raise argparse.ArgumentTypeError(f"expected distinct seeds ({SEED.wanted}) separated by commas, got {text!r}")
    return seeds


def build_parser():
    p = cli.parser("python -m dcgan_mnist ablate",
                   "Train every variant (the original, each fix alone, the repaired recipe) for each seed, one run "
                   "after another, score each every --eval-every iterations, and write the scores as JSON, a "
                   "markdown table, TensorBoard scalars and one PNG of the final grids. Run it again to continue "
                   "an interrupted ablation; start it twice (each with --threads 1) to use two cores, the two "
                   "sharing the runs and --out. Details: docs/repaired.md.")
    p.add_argument("--out", required=True, metavar="DIR", help="folder of the ablation's runs and results")
    p.add_argument("--variants", type=variant_list, default=list(VARIANTS),
                   help=f"which variants, in this order (default: {','.join(VARIANTS)})")
    p.add_argument("--seeds", type=seed_list, default=[0, 1, 2, 3, 4],
                   help="seeds of each variant, separated by commas (default: 0,1,2,3,4)")
    p.add_argument("--iterations", type=POSITIVE_INT.parse, default=3000, help="iterations of every run")
    p.add_argument("--eval-every", type=POSITIVE_INT.parse, default=500,
                   help="iterations between scores (the last score is at --iterations)")
    add_flags(p, ["samples"], source=Evaluation, samples={"help": "generated images per score (evaluate's --samples)"})
    add_flags(p, SHARED_SETTINGS,
              valid_size={"help": "train.py's --valid-size (the validation images NNC and NND are measured on)"})
    return p


def parse_args(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data_dir is not None:
        args.data_dir = os.path.abspath(args.data_dir)
    return args


def budgets(iterations, every):
    """The iteration counts a run is scored at: every ``every`` iterations, and at ``iterations``."""
    return sorted(set(range(every, iterations, every)) | {iterations})


def run_name(variant, seed):
    return f"{variant}/seed-{seed}"


def iterations_done(run_dir):
    """Iterations of the run's latest checkpoint (0 when it has none)."""
    if not os.path.isdir(run_dir):
        return 0
    latest = run.latest_checkpoint(run_dir, "--out")
    return 0 if latest is None else run.iteration_of(latest)


def metrics(run_dir):
    """The run's metrics.jsonl records, one per iteration done."""
    with open(os.path.join(run_dir, METRICS_FILE)) as f:
        return [json.loads(line) for line in f]


def lock(path, wait=True):
    """An open file holding an exclusive lock on ``path`` (created when missing) until it is closed (``with
    lock(path):``); None when ``wait`` is False and another process holds the lock."""
    handle = open(path, "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def held_elsewhere(run_dir):
    """Whether another ablation holds the run's lock (a lock file nobody made is nobody's, and is not made here)."""
    if not os.path.exists(run_dir + LOCK_SUFFIX):
        return False
    held = lock(run_dir + LOCK_SUFFIX, wait=False)
    if held is None:
        return True
    held.close()
    return False


class Record:
    """ablation.json: the fixed settings, each variant's flags and every run's scores, written whole after each
    change (a crash never leaves half a file). Another ablation may write the same file: the runs this one
    claimed are its own, every other run is taken from the file as it is when saving."""

    def __init__(self, out, args):
        self.path = os.path.join(out, RECORD_FILE)
        self.claimed = set()
        fixed = {name: getattr(args, name) for name in FIXED}
        self.data = self.read() or {"settings": fixed, "variants": {}, "runs": {}}
        stored = self.data["settings"]
        changed = [f"{flag(name)} {stored.get(name)!r} (now {value!r})"
                   for name, value in fixed.items() if stored.get(name) != value]
        if changed:
            raise CommandError(f"{out} holds an ablation run with {', '.join(changed)}; its scores are only "
                               f"comparable with the same flags: repeat them or use another --out")
        self.data["variants"].update({name: variant_flags(name) for name in args.variants})

    def read(self):
        """The file's data; None when there is no file yet."""
        if not os.path.exists(self.path):
            return None
        try:
            with open(self.path) as f:
                data = json.load(f)
            missing = [key for key in ("settings", "variants", "runs") if key not in data]
            if missing:
                raise ValueError(f"no {', '.join(missing)}")
        except (OSError, ValueError, TypeError) as e:
            raise CommandError(f"{self.path} cannot be read ({e}); move it away to start the ablation again")
        return data

    def entry(self, variant, seed):
        return self.data["runs"].setdefault(run_name(variant, seed), {
            "variant": variant, "seed": seed, "run_dir": os.path.join("runs", variant, f"seed-{seed}"),
            "scores": {}, "stopped": None, "step_seconds": None})

    def claim(self, variant, seed):
        """Make the run this ablation's own, starting from its entry as the file has it now (another ablation
        may have scored it since this one started)."""
        with lock(self.path + LOCK_SUFFIX):
            stored = (self.read() or {"runs": {}})["runs"].get(run_name(variant, seed))
        if stored is not None:
            self.data["runs"][run_name(variant, seed)] = stored
        self.claimed.add(run_name(variant, seed))
        return self.entry(variant, seed)

    def save(self):
        with lock(self.path + LOCK_SUFFIX):
            stored = self.read()
            if stored is not None:
                self.data["variants"] = {**stored["variants"], **self.data["variants"]}
                self.data["runs"] = {**self.data["runs"], **stored["runs"],
                                     **{name: self.data["runs"][name] for name in self.claimed}}
            run.write_atomically(self.path, cli.dumps(self.data, indent=1, sort_keys=True) + "\n")


class Progress:
    """Counts the work left and estimates the time it takes from the pace of this invocation."""

    def __init__(self, remaining_iterations, remaining_scores):
        self.iterations, self.scores = remaining_iterations, remaining_scores
        self.trained = self.training_seconds = 0
        self.scored = self.scoring_seconds = 0

    def trained_chunk(self, iterations, seconds):
        self.iterations -= iterations
        self.trained += iterations
        self.training_seconds += seconds

    def scored_one(self, seconds):
        self.scores -= 1
        self.scored += 1
        self.scoring_seconds += seconds

    def pace(self):
        """What this invocation did, and how fast (training chunks include building the graph and checkpoints)."""
        trained = (f"trained {self.trained} iterations at {self.trained / self.training_seconds:.2f} it/s"
                   if self.trained else "trained nothing")
        scored = (f"scored {self.scored} times, {self.scoring_seconds / self.scored:.0f} s each" if self.scored
                  else "scored nothing")
        return f"{trained}, {scored}"

    def eta(self):
        if (self.iterations and not self.trained) or (self.scores and not self.scored):
            return "?"
        seconds = (self.iterations * self.training_seconds / max(self.trained, 1)
                   + self.scores * self.scoring_seconds / max(self.scored, 1))
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def say(text):
    print(f"ablate: {text}", file=sys.stderr, flush=True)


class Ablation:
    def __init__(self, args):
        self.args = args
        self.out = args.out
        self.budgets = budgets(args.iterations, args.eval_every)
        self.plan = [(variant, seed) for variant in args.variants for seed in args.seeds]
        self.record = Record(args.out, args)
        self.skipped = 0

    def run_dir(self, variant, seed):
        return os.path.join(self.out, self.record.entry(variant, seed)["run_dir"])

    def work_left(self):
        """Iterations to train and scores to make, leaving out the runs another ablation is training now."""
        iterations = scores = 0
        for variant, seed in self.plan:
            entry, run_dir = self.record.entry(variant, seed), self.run_dir(variant, seed)
            if entry["stopped"] is None and not held_elsewhere(run_dir):
                iterations += max(0, self.args.iterations - iterations_done(run_dir))
                scores += sum(str(b) not in entry["scores"] for b in self.budgets)
        return iterations, scores

    def run(self):
        progress = Progress(*self.work_left())
        say(f"{len(self.args.variants)} variants x {len(self.args.seeds)} seeds, {self.args.iterations} iterations "
            f"each, scored every {self.args.eval_every} with {self.args.samples} samples; left: "
            f"{progress.iterations} iterations and {progress.scores} scores, in {self.out}")
        for number, (variant, seed) in enumerate(self.plan, 1):
            status = self.advance(variant, seed, f"run {number}/{len(self.plan)}", progress)
            if status:
                return status
        self.write_grids()
        say(f"done: {progress.pace()}; {os.path.join(self.out, TABLE_FILE)}, {os.path.join(self.out, GRIDS_FILE)}; "
            f"tensorboard --logdir {self.out}")
        if self.skipped:
            say(f"{self.skipped} of the runs were another ablation's; the one that ends last draws their grids too")
        return 0

    def advance(self, variant, seed, position, progress):
        """Train and score one run up to --iterations, unless another ablation is training it; a status other than
        0 stops the ablation."""
        os.makedirs(os.path.dirname(self.run_dir(variant, seed)), exist_ok=True)
        held = lock(self.run_dir(variant, seed) + LOCK_SUFFIX, wait=False)
        if held is None:
            say(f"{position}: {run_name(variant, seed)} is being trained by another ablation; skipped")
            self.skipped += 1
            return 0
        with held:
            return self.advance_held(variant, seed, position, progress)

    def advance_held(self, variant, seed, position, progress):
        entry = self.record.claim(variant, seed)
        if entry["stopped"] is not None:
            say(f"{run_name(variant, seed)} stopped at iteration {entry['stopped']['iteration']} "
                f"(status {entry['stopped']['status']}); not continued")
            return 0
        run_dir = self.run_dir(variant, seed)
        events = None
        try:
            for budget in self.budgets:
                if str(budget) in entry["scores"]:
                    continue
                done = iterations_done(run_dir)
                if done > budget:
                    raise CommandError(f"{run_dir} is at iteration {done}, past {budget}, which has no stored score "
                                       f"and no checkpoint any more; use another --out")
                if done < budget:
                    say(f"{position}: {run_name(variant, seed)}, iterations {done} to {budget}")
                    started = time.perf_counter()
                    status = self.train(variant, seed, run_dir, done, budget)
                    if status == EXIT_NOT_FINITE:  # the run cannot go on; the ablation can
                        entry["stopped"] = {"status": status, "iteration": metrics(run_dir)[-1]["iteration"]}
                        self.record.save()
                        self.write_table()
                        return 0
                    if status:
                        say("stopped; run the same command again to continue")
                        return status
                    progress.trained_chunk(budget - done, time.perf_counter() - started)
                    if iterations_done(run_dir) != budget:
                        raise CommandError(f"{run_dir} ends at iteration {iterations_done(run_dir)}, its last epoch, "
                                           f"before {budget}: lower --iterations")
                started = time.perf_counter()
                # A run trained with --g-average is also scored with G's latest weights: what the average changes.
                averaged = run.load_settings(run_dir, "--out").g_average > 0
                report, *latest = self.score(run_dir, budget, [False, True] if averaged else [False])
                if latest:
                    entry.setdefault("latest_weights_scores", {})[str(budget)] = latest[0]
                progress.scored_one(time.perf_counter() - started)
                entry["scores"][str(budget)] = report
                entry["step_seconds"] = statistics.median(record["seconds"] for record in metrics(run_dir))
                self.record.save()
                if events is None:
                    events = Events(os.path.join(self.out, "tensorboard", variant, f"seed-{seed}"), None)
                events.scalars(budget, flat_scores(scores_of(report)))
                events.flush()
                self.write_table()
                generated = report["generated"]
                say(f"{position}: {run_name(variant, seed)} at {budget}: judge accuracy "
                    f"{generated['judge_accuracy']:.3f}, Frechet {generated['frechet']:.1f}, NND "
                    f"{generated['nearest_neighbour'][-1]['nnd']:.2f}; left: {progress.iterations} iterations to "
                    f"train, {progress.scores} to score, ETA {progress.eta()}")
        finally:
            if events is not None:
                events.close()
        return 0

    def train(self, variant, seed, run_dir, done, budget):
        """Train the run up to iteration ``budget`` from ``done``; train.py's exit status."""
        if done:
            return train(*resume_settings(run_dir, {"max_iterations": budget}))
        if os.path.isdir(run_dir):  # stopped before its first checkpoint: nothing to resume, start it afresh
            shutil.rmtree(run_dir)
        shared = {name: getattr(self.args, name) for name in SHARED_SETTINGS}
        return train(Settings(**resolve_switches({
            **shared, **VARIANTS[variant], "seed": seed, "run_dir": run_dir,
            "vis_dir": os.path.join(self.out, "vis", variant, f"seed-{seed}"), "max_iterations": budget,
            "log": "compact", "checkpoint_every": self.args.eval_every, "keep_checkpoints": 1})))

    def score(self, run_dir, budget, latest_choices):
        a = self.args
        checkpoint = os.path.join(run.checkpoint_dir(run_dir), f"{run.PREFIX}-{budget}")
        return evaluate_run(checkpoint, Evaluation(samples=a.samples, judge_dir=a.judge_dir, threads=a.threads),
                            latest_choices)

    def write_table(self):
        run.write_atomically(os.path.join(self.out, TABLE_FILE), table(self.record.data))

    def write_grids(self):
        """One panel per run at --iterations: rows are the digits 0-9, drawn from the same z for every panel."""
        rng = np.random.RandomState(GRID_SEED)
        labels = np.repeat(np.arange(10), GRID_SAMPLES_PER_DIGIT)
        z = rng.uniform(-1, 1, size=(len(labels), self.args.dim_z))
        panels = {}
        for variant, seed in self.plan:
            report = self.record.entry(variant, seed)["scores"].get(str(self.args.iterations))
            if report is not None and iterations_done(self.run_dir(variant, seed)) == self.args.iterations:
                generator = TrainedGenerator(self.run_dir(variant, seed))
                try:
                    images = generator.sample(z, OneHot(labels, 10))
                finally:
                    generator.close()
                panels[variant, seed] = images, f"seed {seed}: judge {report['generated']['judge_accuracy']:.3f}"
        picture = grid_picture(self.args.variants, self.args.seeds, panels, self.args.iterations)
        picture.save(os.path.join(self.out, GRIDS_FILE))


def scores_of(report):
    return {group: report[group] for group in ("generated", "real_train", "real_test")}


def grid_picture(variants, seeds, panels, iterations):
    """The panels side by side, a column per variant under its name and a row per seed, each captioned; grey
    where a run has no panel. ``panels`` maps (variant, seed) to (images, caption). Pixels are the generator's
    output times 255, not stretched to the grid's range as the vis/ grids are, so a flat grey grid looks grey."""
    side = 28 * GRID_SAMPLES_PER_DIGIT
    column_width, row_height = side + GAP, LABEL_HEIGHT + side + GAP
    picture = Image.new("RGB", (GAP + len(variants) * column_width, 2 * LABEL_HEIGHT + len(seeds) * row_height),
                        "white")
    draw = ImageDraw.Draw(picture)
    draw.text((GAP, 2), f"after {iterations} iterations; each panel's rows are the digits 0-9", fill="black")
    for column, variant in enumerate(variants):
        left = GAP + column * column_width
        draw.text((left, LABEL_HEIGHT + 2), variant, fill="black")
        for row, seed in enumerate(seeds):
            top = 2 * LABEL_HEIGHT + row * row_height
            images, caption = panels.get((variant, seed), (None, f"seed {seed}: not trained"))
            draw.text((left, top + 2), caption, fill="black")
            top += LABEL_HEIGHT
            if images is None:
                draw.rectangle([left, top, left + side - 1, top + side - 1], fill=(200, 200, 200))
            else:
                tiles = tile_grid(images, (10, GRID_SAMPLES_PER_DIGIT))
                picture.paste(Image.fromarray((tiles * 255).round().astype(np.uint8), "RGB"), (left, top))
    return picture


# ---- the table ----

def summary(values, higher_is_better):
    """'median | worst (seed S)' of {seed: value}."""
    seeds = sorted(values, key=lambda seed: values[seed], reverse=higher_is_better)
    return f"{statistics.median(values.values()):.3f} | {values[seeds[-1]]:.3f} (seed {seeds[-1]})"


SCORES = (  # (column, higher is better, value of a report)
    ("judge accuracy", True, lambda r: r["generated"]["judge_accuracy"]),
    ("Frechet distance", False, lambda r: r["generated"]["frechet"]),
    ("NND", False, lambda r: r["generated"]["nearest_neighbour"][-1]["nnd"]),
    ("NNC", True, lambda r: r["generated"]["nearest_neighbour"][-1]["nnc"]),
)


REAL = {  # the same scores of real images, the references evaluate reports beside them
    "judge accuracy": lambda r: r["real_test"]["judge_accuracy"],
    "Frechet distance": lambda r: r["real_train"]["frechet"],
    "NND": lambda r: r["real_train"]["nearest_neighbour"][-1]["nnd"],
}


def table(data):
    """The markdown table of ablation.json's data: for each number of iterations, each variant's median and worst
    seed of every score, and its median training speed."""
    runs = list(data["runs"].values())
    settings = data["settings"]
    lines = ["# Ablation", "",
             f"Scores of {settings['samples']} samples (`evaluate`), median and worst seed of each variant; "
             f"NND and NNC at {settings['samples']} samples.", ""]
    for name, flags in data["variants"].items():
        lines.append(f"- `{name}`: `python train.py {' '.join(flags)}`" if flags else f"- `{name}`: `python train.py`")
    header = "| variant | seeds | " + " | ".join(f"{name}: median | worst" for name, _, _ in SCORES) + " |"
    budgets_scored = sorted({int(b) for r in runs for b in r["scores"]})
    for budget in budgets_scored:
        lines += ["", f"## {budget} iterations", "", header, "|---" * (2 + 2 * len(SCORES)) + "|"]
        for variant in data["variants"]:
            stopped = [r["seed"] for r in runs if r["variant"] == variant and r["stopped"] is not None
                       and r["stopped"]["iteration"] < budget]
            # A run trained with --g-average is also scored with G's latest weights, in a row of its own.
            for label, key in ((variant, "scores"), (f"{variant}, G's latest weights", "latest_weights_scores")):
                scored = {r["seed"]: r[key][str(budget)] for r in runs
                          if r["variant"] == variant and str(budget) in r.get(key, {})}
                if not scored and (key != "scores" or not stopped):
                    continue
                seeds = f"{len(scored)}" + (f", stopped: {', '.join(map(str, stopped))}" if stopped else "")
                cells = [summary({seed: value(report) for seed, report in scored.items()}, higher) if scored
                         else "- | -" for _, higher, value in SCORES]
                lines.append(f"| {label} | {seeds} | " + " | ".join(cells) + " |")
        reports = [r["scores"][str(budget)] for r in runs if str(budget) in r["scores"]]
        real = {name: statistics.median(value(report) for report in reports) for name, value in REAL.items()}
        lines += ["", f"Real images (median over the runs' splits): judge accuracy {real['judge accuracy']:.3f} "
                      f"(test images); Frechet distance {real['Frechet distance']:.3f} and NND {real['NND']:.3f} "
                      f"(training images)."]
    lines += ["", "## Training speed", "",
              "The median time of one training step (`seconds` in metrics.jsonl) of each run, and the median over "
              "a variant's runs. Runs that shared the machine with other work are slower.", "",
              "| variant | runs | median step (ms) | iterations/s |", "|---|---|---|---|"]
    for variant in data["variants"]:
        steps = [r["step_seconds"] for r in runs if r["variant"] == variant and r["step_seconds"]]
        if steps:
            step = statistics.median(steps)
            lines.append(f"| {variant} | {len(steps)} | {1000 * step:.1f} | {1 / step:.2f} |")
    return "\n".join(lines) + "\n"


def ablate_command(argv):
    args = parse_args(argv)
    ensure_dir(args.out, "--out folder")
    try:
        return Ablation(args).run()
    except KeyboardInterrupt:
        say("interrupted; run the same command again to continue")
        return 130


def main(argv=None):
    return cli.run_command(ablate_command, argv)
