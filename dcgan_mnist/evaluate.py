"""Score a trained generator against real data.

    python -m dcgan_mnist evaluate --checkpoint RUN_DIR [--samples 10000] [--json]

Three kinds of score, each also measured on real images as the reference (see docs/evaluation.md):
- NNC and NND, as Newmu's dcgan_code defines them: a 1-nearest-neighbour classifier made of the
  generated images (labelled with the digit they were conditioned on) classifies the validation
  images (NNC = its accuracy), and NND is the mean Euclidean distance, on pixels in [0, 1], from each
  validation image to its nearest generated image. Reference: training images in place of samples.
- Judge accuracy: how often a CNN trained on real digits names the digit a sample was conditioned on.
- Frechet distance between the judge's penultimate features of samples and of real test images.
  Reference: training images against the test images.
"""
import argparse
import os
import sys
import warnings

import numpy as np

from . import judge as judge_module
from .cli import CommandError, dumps, non_negative_int, parser, positive_int, run
from .generate import draw_in_mixed_batches
from .load import DATASETS, DataError, load_dataset, mnist, resolve_data_dir
from .model import DIM_Y
from .restore import TrainedGenerator, add_latest_weights_flag
from .run import switches_of

SMALL_SET = 1000  # Newmu reports NNC and NND at 1k and 10k samples
SAMPLES_DURING_TRAINING = 1000
EVAL_SEED = 0  # the default seed of the evaluation's own draws, and the one used during training
# Distances held at once by the blockwise nearest-neighbour search: 8,000,000 float64s = 64 MB.
DISTANCES_PER_BLOCK = 8_000_000


def pixel_rows(images):
    """float64 rows of 784 in [0, 1], the space the nearest-neighbour distances are measured in."""
    return judge_module.unit_images(images).reshape(len(images), -1).astype(np.float64)


def nearest_neighbours(queries, references, distances_per_block=DISTANCES_PER_BLOCK):
    """For every query row, the index of its nearest reference row (the first of equally near ones, as
    argmin over scipy's cdist picks) and the Euclidean distance to it.

    Squared distances |q|^2 + |r|^2 - 2 q.r come from one float64 matrix product per block of queries, a
    block at a time so memory stays bounded. That is several times faster than cdist, but it rounds at the
    scale of |q|^2 + |r|^2 rather than of the distance, so it can misorder references whose distances differ
    by less than its round-off, and it cannot give an exact 0. Every reference that close to the nearest is
    therefore measured again from the differences, as cdist measures, and decides."""
    queries, references = np.asarray(queries, np.float64), np.asarray(references, np.float64)
    reference_norms = np.einsum("ij,ij->i", references, references)
    # A bound on the product form's round-off in comparing two squared distances, relative to |q|^2 + |r|^2:
    # each dot product of d terms may be off by about d units in the last place.
    slack = 4 * (queries.shape[1] + 1) * np.finfo(np.float64).eps
    block = max(1, distances_per_block // len(references))
    index = np.empty(len(queries), dtype=np.int64)
    distance = np.empty(len(queries))
    for start in range(0, len(queries), block):
        q = queries[start:start + block]
        # |q|^2 is the same along a row, so it is left out: it does not change which reference is nearest.
        partial = reference_norms - 2 * (q @ references.T)
        limit = partial.min(axis=1) + slack * (np.einsum("ij,ij->i", q, q) + reference_norms.max())
        rows, columns = np.nonzero(partial <= limit[:, None])
        exact = row_distances(q, rows, references, columns, distances_per_block)
        # Nearest first, then the lowest index; the first entry of each query row is its answer.
        order = np.lexsort((columns, exact, rows))
        first = order[np.r_[True, rows[order][1:] != rows[order][:-1]]]
        index[start:start + len(q)] = columns[first]
        distance[start:start + len(q)] = exact[first]
    return index, distance


def row_distances(a, a_rows, b, b_rows, values_per_block):
    """The Euclidean distance between a[a_rows[i]] and b[b_rows[i]] for every i, from their differences,
    holding at most about ``values_per_block`` differences at once."""
    out = np.empty(len(a_rows))
    step = max(1, values_per_block // a.shape[1])
    for i in range(0, len(a_rows), step):
        difference = a[a_rows[i:i + step]] - b[b_rows[i:i + step]]
        out[i:i + step] = np.sqrt(np.einsum("ij,ij->i", difference, difference))
    return out


def nnc_nnd(images, labels, valid_images, valid_labels):
    """(NNC, NND) of a labelled image set against the validation images."""
    index, distance = nearest_neighbours(pixel_rows(valid_images), pixel_rows(images))
    return float(np.mean(labels[index] == valid_labels)), float(distance.mean())


def frechet_distance(features_a, features_b):
    """Frechet distance between Gaussians fitted to two feature sets [N, D]."""
    from scipy import linalg  # here, not at the top: importing it costs every command's --help half a second

    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        # A ReLU feature that is always 0 makes the product singular: sqrtm warns, yet its root is
        # accurate; when it is not finite, a tiny ridge on both covariances makes it so.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(root).all():
            ridge = 1e-6 * np.eye(len(cov_a))
            root = linalg.sqrtm((cov_a + ridge) @ (cov_b + ridge))
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root.real))


def draw_samples(sample, n, chunk, dim_z, rng):
    """``n`` images [n, 28, 28, 1] and their labels: every digit n/10 times (as near as n allows) in random
    order, z ~ uniform(-1, 1), drawn in batches of ``chunk`` (the run's visualize_dim, 196, the batch the
    original samples in) whose digits are mixed as in training, as generate draws them."""
    labels = rng.permutation(np.arange(n) % DIM_Y)
    z = rng.uniform(-1, 1, size=(n, dim_z))
    return draw_in_mixed_batches(sample, z, labels, chunk, rng), labels


def judge_scores(probabilities, labels):
    """How often the judge names the label, overall and per digit, and its mean confidence in what it names."""
    correct = probabilities.argmax(axis=1) == labels
    return {"judge_accuracy": float(correct.mean()),
            "judge_accuracy_per_digit": [float(correct[labels == d].mean()) if np.any(labels == d) else None
                                         for d in range(DIM_Y)],
            "judge_confidence": float(probabilities.max(axis=1).mean())}


def set_sizes(n):
    """The set sizes NNC and NND are reported at: 1000 and n."""
    return sorted({min(SMALL_SET, n), n})


def nearest_neighbour_scores(images, labels, valid, sizes):
    """NNC and NND of the first n images for each n in ``sizes``; none without validation images."""
    if len(valid[0]) == 0:
        return []
    return [dict(zip(("n", "nnc", "nnd"), (n, *nnc_nnd(images[:n], labels[:n], *valid)))) for n in sizes]


def real_references(data, judge, real_rows):
    """The real images' side of ``score``: the test images' judge features, and the scores of the training images
    ``real_rows`` and of the test images."""
    vaX, vaY, trX, trY, teX, teY = data
    test_probabilities, test_features = judge.classify(teX)
    _, real_features = judge.classify(trX[real_rows])
    real_train = {"n": len(real_rows),
                  "nearest_neighbour": nearest_neighbour_scores(trX[real_rows], trY[real_rows], (vaX, vaY),
                                                                set_sizes(len(real_rows))),
                  "frechet": frechet_distance(real_features, test_features)}
    return {"test_features": test_features, "real_train": real_train,
            "real_test": {"n": len(teX), **judge_scores(test_probabilities, teY)}}


def score(sample, n, chunk, dim_z, data, judge, rng, references=None):
    """Every score of ``n`` generated images and of the real references. ``sample(z, y)`` draws
    ``chunk`` images; ``data`` is (vaX, vaY, trX, trY, teX, teY); only ``rng`` is drawn from. ``references``, a
    dict kept between calls with the same data, judge, n and rng seed, keeps the real side (which is then the
    same) so that it is computed once."""
    vaX, vaY, trX, trY, teX, teY = data
    images, labels = draw_samples(sample, n, chunk, dim_z, rng)
    real_rows = rng.permutation(len(trX))[:n]
    if references is None:
        references = {}
    if not references:
        references.update(real_references(data, judge, real_rows))
    probabilities, features = judge.classify(images)
    generated = {"n": n, "nearest_neighbour": nearest_neighbour_scores(images, labels, (vaX, vaY), set_sizes(n)),
                 **judge_scores(probabilities, labels),
                 "frechet": frechet_distance(features, references["test_features"])}
    return {"generated": generated, "real_train": references["real_train"], "real_test": references["real_test"]}


def judge_for(dataset, data_dir, judge_dir=None, threads=0):
    """The judge of a data set: trained on its whole training file and tested on its test file."""
    trX, teX, trY, teY = mnist(resolve_data_dir(dataset, data_dir, download=False))
    return judge_module.load_or_train(judge_dir or judge_module.default_root(), dataset, trX, trY, teX, teY,
                                      threads=threads)


def flat_scores(scores, prefix="eval"):
    """{'eval/generated/nnc_1000': ..., ...}: the numbers of ``score``'s result as one flat dict."""
    flat = {}
    for group, values in scores.items():
        for entry in values.get("nearest_neighbour", []):
            flat[f"{prefix}/{group}/nnc_{entry['n']}"] = entry["nnc"]
            flat[f"{prefix}/{group}/nnd_{entry['n']}"] = entry["nnd"]
        for name in ("judge_accuracy", "judge_confidence", "frechet"):
            if name in values:
                flat[f"{prefix}/{group}/{name}"] = values[name]
        for digit, value in enumerate(values.get("judge_accuracy_per_digit", [])):
            flat[f"{prefix}/{group}/judge_accuracy_digit_{digit}"] = value
    return flat


class TrainingScorer:
    """train.py --eval-every-epoch: scores the live generator and appends the scores to eval.jsonl and TensorBoard
    under the last iteration done. Draws only from its own fixed-seed RNG (the same z and labels every epoch), so
    the training's random numbers are untouched; the judge is loaded and the real images scored once per run."""

    def __init__(self, s, data):
        self.s, self.data = s, data  # data: (vaX, vaY, trX, trY, teX, teY)
        self.judge = judge_for(s.dataset, s.data_dir, s.judge_dir, s.threads)
        self.references = {}

    def __call__(self, sess, graph, epoch, iterations, log, events):
        s = self.s
        scores = score(lambda z, y: graph.sample(sess, z, y), SAMPLES_DURING_TRAINING, s.visualize_dim, s.dim_z,
                       self.data, self.judge, np.random.RandomState(EVAL_SEED), self.references)
        last = iterations - 1
        log.write({"iteration": last, "epoch": epoch, **scores})
        events.scalars(last, flat_scores(scores))
        events.flush()
        generated = scores["generated"]
        nn = "".join(f" | NNC@{e['n']} {e['nnc']:.4f} | NND@{e['n']} {e['nnd']:.3f}"
                     for e in generated["nearest_neighbour"])
        print(f"eval after epoch {epoch} (iteration {last}){nn} | judge accuracy {generated['judge_accuracy']:.4f} "
              f"| Frechet {generated['frechet']:.3f}", flush=True)

    def close(self):
        self.judge.close()


# ---- the command line ----

def sample_count(text):
    """argparse type of --samples: a Frechet distance needs at least two samples."""
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected 2 or more (a Frechet distance needs two samples), got {text!r}")
    return value


def build_parser():
    p = parser("python -m dcgan_mnist evaluate",
               "Score a trained generator: NNC/NND (Newmu's nearest-neighbour scores), the accuracy of a CNN judge "
               "on the samples, and the Frechet distance of its features; each beside the same score for real "
               "images. Details: docs/evaluation.md.")
    p.add_argument("--checkpoint", required=True, metavar="RUN_DIR",
                   help="run directory written by train.py (its latest checkpoint is scored) or one of its "
                        "checkpoints, RUN_DIR/checkpoints/ckpt-N")
    p.add_argument("--samples", type=sample_count, default=10000,
                   help="generated images; NNC and NND are reported at 1000 and at this many")
    p.add_argument("--json", action="store_true", help="print the scores as JSON instead of a table")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="override the run's data set")
    p.add_argument("--data-dir", default=None, help="override the run's data folder")
    p.add_argument("--valid-size", type=positive_int, default=None,
                   help="override the run's validation size (another size is not the run's split)")
    p.add_argument("--judge-dir", default=None,
                   help="where judges are cached (default: $XDG_CACHE_HOME/dcgan-mnist/judge, ~/.cache/... "
                        "when that is unset)")
    p.add_argument("--seed", type=int, default=EVAL_SEED,
                   help="seed of the evaluation's own draws: z, labels, real subsets")
    p.add_argument("--threads", type=non_negative_int, default=0, help="TensorFlow threads (0: TensorFlow decides)")
    add_latest_weights_flag(p)
    return p


def load_run_split(settings, args):
    """The run's train/validation/test split (overridden by the flags), and whether it is the run's own.
    The split is numpy's first random draw after seeding, so a seeded run's split is drawn again exactly;
    an unseeded run's cannot be, and a fresh random split is used."""
    dataset = args.dataset or settings["dataset"]
    data_dir = args.data_dir if args.data_dir is not None else settings["data_dir"]
    valid_size = args.valid_size if args.valid_size is not None else settings["valid_size"]
    same_split = (settings["seed"] is not None and dataset == settings["dataset"]
                  and valid_size == settings["valid_size"])
    if settings["seed"] is not None:
        np.random.seed(settings["seed"])
    try:
        data = load_dataset(dataset, data_dir, valid_size)
        directory = resolve_data_dir(dataset, data_dir, download=False)
    except DataError as e:
        raise CommandError(str(e)) from None
    if not same_split:
        why = "was not seeded" if settings["seed"] is None else "is scored with another data set or --valid-size"
        print(f"warning: the run {why}, so this is not its train/validation split: the validation images may "
              f"include images the generator trained on, which flatters NNC and NND", file=sys.stderr)
    if len(data[1]) == 0:
        raise CommandError("the run has no validation images (valid_size 0) for NNC and NND; pass --valid-size N")
    return data, {"dataset": dataset, "data_dir": directory, "valid_size": valid_size, "run_seed": settings["seed"],
                  "run_split": same_split}


def evaluate_run(args):
    """evaluate's report of the checkpoint ``args.checkpoint``."""
    return evaluate_weights(args, [args.latest_weights])[0]


def evaluate_weights(args, latest_choices):
    """One report per choice of G's weights in ``latest_choices`` (True: G's latest weights, as --latest-weights),
    all on the same z and labels; the data, the judge and the real images' scores are loaded and computed once."""
    reports, references, judge = [], {}, None
    try:
        for latest in latest_choices:
            generator = TrainedGenerator(args.checkpoint, threads=args.threads, latest=latest)
            try:
                settings = generator.settings
                if judge is None:
                    (trX, vaX, teX, trY, vaY, teY), data_info = load_run_split(settings, args)
                    judge = judge_for(data_info["dataset"], data_info["data_dir"], args.judge_dir, args.threads)
                    data_info.update(train_images=len(trX), validation_images=len(vaX), test_images=len(teX))
                scores = score(generator.sample, args.samples, settings["visualize_dim"], settings["dim_z"],
                               (vaX, vaY, trX, trY, teX, teY), judge, np.random.RandomState(args.seed), references)
            finally:
                generator.close()
            reports.append({
                "run_dir": generator.run.run_dir, "checkpoint": os.path.basename(generator.checkpoint),
                "iterations": generator.run.iteration, **switches_of(settings), "weights": generator.weights,
                "data": data_info, "samples": args.samples, "samples_per_batch": settings["visualize_dim"],
                "seed": args.seed,
                "judge": {"directory": judge.directory, **{k: judge.info[k] for k in
                                                           ("test_accuracy", "train_images", "test_images")}},
                **scores})
    finally:
        if judge is not None:
            judge.close()
    return reports


def table(report):
    """The report as aligned text."""
    g, train, test = report["generated"], report["real_train"], report["real_test"]
    d, j = report["data"], report["judge"]
    split = f"the run's split (seed {d['run_seed']})" if d["run_split"] else "NOT the run's split"
    header = [
        f"run      {report['run_dir']}: {report['checkpoint']}, {report['iterations']} iterations, "
        f"loss {report['loss']}" + (f"; {report['weights']}" if report["g_average"] else ""),
        f"data     {d['dataset']} in {d['data_dir']}: {d['train_images']} train, {d['validation_images']} "
        f"validation, {d['test_images']} test; {split}",
        f"samples  {report['samples']}, every digit equally often, drawn {report['samples_per_batch']} per "
        f"generator batch with the digits mixed; evaluation seed {report['seed']}",
        f"judge    test accuracy {j['test_accuracy']:.4f} on {j['test_images']} images, trained on "
        f"{j['train_images']}; cached in {j['directory']}",
        "",
    ]
    rows, notes = [], []  # (score, generated, real, real images used)
    for gen, real in zip(g["nearest_neighbour"], train["nearest_neighbour"]):
        used = "training images"
        if real["n"] != gen["n"]:
            used += "*"
            notes.append(f"* all {real['n']} training images: there are fewer than {gen['n']}")
        rows.append((f"NNC, {gen['n']} images (higher is better)", gen["nnc"], real["nnc"], used))
        rows.append((f"NND, {gen['n']} images (lower is better)", gen["nnd"], real["nnd"], used))
    rows.append(("Frechet distance (lower is better)", g["frechet"], train["frechet"], "training vs test images"))
    rows.append(("judge accuracy", g["judge_accuracy"], test["judge_accuracy"], "test images"))
    rows.append(("judge confidence", g["judge_confidence"], test["judge_confidence"], "test images"))
    width = max(len(row[0]) for row in rows) + 2
    lines = header + [f"{'score':<{width}}{'generated':>10}{'real':>10}  real images used"]
    lines += [f"{name:<{width}}{gen:>10.4f}{real:>10.4f}  {used}" for name, gen, real, used in rows]
    lines += ["", f"{'judge accuracy by digit':<{width}}" + "".join(f"{d:>7}" for d in range(DIM_Y))]
    for name, values in (("generated", g), ("real test images", test)):
        lines.append(f"{name:<{width}}" + "".join("      -" if v is None else f"{v:>7.3f}"
                                                  for v in values["judge_accuracy_per_digit"]))
    return "\n".join(lines + [""] + notes if notes else lines)


def command(argv):
    args = build_parser().parse_args(argv)
    report = evaluate_run(args)
    print(dumps(report, indent=2) if args.json else table(report))
    return 0


def main(argv=None):
    return run(command, argv)
