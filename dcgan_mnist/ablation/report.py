"""The ablation's report: the markdown table of ablation.json and the picture of every variant's final grids.

Both are drawn from what the ablation stored (ablation.json, the runs' checkpoints), so any ablation.json, also
one written by an older version, gives its table again.
"""
import statistics

import numpy as np
from PIL import Image, ImageDraw

from ..sampler import TrainedGenerator
from ..util import OneHot, tile_grid

GRID_SAMPLES_PER_DIGIT = 10
GRID_SEED = 0
LABEL_HEIGHT = 14
GAP = 8


def scores_of(report):
    return {group: report[group] for group in ("generated", "real_train", "real_test")}


# ---- the picture ----

def final_grids(runs, iterations, dim_z):
    """{(variant, seed): (images, caption)} of the runs given as {(variant, seed): (run_dir, report at
    ``iterations``)}: rows are the digits 0-9, drawn from the same z for every run."""
    rng = np.random.RandomState(GRID_SEED)
    labels = np.repeat(np.arange(10), GRID_SAMPLES_PER_DIGIT)
    z = rng.uniform(-1, 1, size=(len(labels), dim_z))
    panels = {}
    for key, (run_dir, report) in runs.items():
        generator = TrainedGenerator(run_dir)
        try:
            images = generator.sample(z, OneHot(labels, 10))
        finally:
            generator.close()
        panels[key] = images, f"seed {key[1]}: judge {report['generated']['judge_accuracy']:.3f}"
    return panels


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
