"""Plot the scores that train.py --eval-every-epoch wrote (RUN_DIR/eval.jsonl) against the iteration, for one
run or several side by side, and say for each whether it degraded late.

    python -m dcgan_mnist plot runs/recipe-fp32 runs/recipe-bf16 runs/faithful --out curves.png
"""
import io
import math
import os

from PIL import Image

from .. import cli, files
from ..util import ensure_dir, picture_format, save_picture

# Judge accuracy counts as degraded when it falls further than this below the best score before it (issue 26).
TOLERATED_FALL = 0.01


def build_parser():
    p = cli.parser("python -m dcgan_mnist plot",
                   "Draw judge accuracy and Frechet distance of the generated digits against the iteration from "
                   "each run's eval.jsonl (written by train.py --eval-every-epoch), with the real test images' "
                   "judge accuracy and the real training images' Frechet distance for reference, and print for "
                   "each run its best and last scores and the largest fall of judge accuracy below the best "
                   "score before it.")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories holding an eval.jsonl")
    p.add_argument("--label", action="append", metavar="NAME",
                   help="the legend's name of each run, once per RUN_DIR in their order (default: the paths)")
    p.add_argument("--out", required=True, metavar="FILE.png", help="the picture to write (PNG, JPEG, ...)")
    cli.add_json_flag(p, "the runs' summaries")
    return p


def main(argv=None):
    return cli.run_command(plot, argv)


def read_scores(run_dir):
    """The run's --eval-every-epoch scores (files.read_scores checks every line), in iteration order."""
    scores = [{"iteration": record["iteration"], "epoch": record["epoch"],
               "judge_accuracy": record["generated"]["judge_accuracy"], "frechet": record["generated"]["frechet"],
               "real_judge_accuracy": record.get("real_test", {}).get("judge_accuracy"),
               "real_frechet": record.get("real_train", {}).get("frechet")} for record in files.read_scores(run_dir)]
    if not scores:
        raise cli.CommandError(f"{os.path.join(run_dir, files.EVAL_FILE)} holds no scores yet: the run's first epoch "
                               f"has not ended")
    return sorted(scores, key=lambda s: s["iteration"])


def summary(scores):
    """Best and last scores, and the largest fall of judge accuracy below the best one before it (None where a
    score was not finite, which eval.jsonl writes as null)."""
    judged = [s for s in scores if s["judge_accuracy"] is not None]
    best_so_far, fall, fall_at = -math.inf, 0.0, None
    for s in judged:
        best_so_far = max(best_so_far, s["judge_accuracy"])
        if best_so_far - s["judge_accuracy"] > fall:
            fall, fall_at = best_so_far - s["judge_accuracy"], s["iteration"]
    best = max(judged, key=lambda s: s["judge_accuracy"], default=None)
    closest = min((s for s in scores if s["frechet"] is not None), key=lambda s: s["frechet"], default=None)
    last = scores[-1]
    return {"scores": len(scores), "last_iteration": last["iteration"],
            "best_judge_accuracy": best and best["judge_accuracy"], "best_judge_iteration": best and best["iteration"],
            "last_judge_accuracy": last["judge_accuracy"],
            "largest_fall": fall, "largest_fall_iteration": fall_at, "degraded": fall > TOLERATED_FALL,
            "best_frechet": closest and closest["frechet"], "best_frechet_iteration": closest and closest["iteration"],
            "last_frechet": last["frechet"]}


def with_decimals(value, digits):
    """``value`` to ``digits`` decimals, or "-" for a score that was not finite."""
    return "-" if value is None else f"{value:.{digits}f}"


def describe(label, s):
    fall = (f"largest fall below the best before it {s['largest_fall']:.4f} at iteration "
            f"{s['largest_fall_iteration']}" if s["largest_fall_iteration"] is not None else "it never fell")
    verdict = f"degraded (a fall of more than {TOLERATED_FALL})" if s["degraded"] else "held"
    return (f"{label}: {cli.counted(s['scores'], 'score')} to iteration {s['last_iteration']}; judge accuracy best "
            f"{with_decimals(s['best_judge_accuracy'], 4)} at iteration {s['best_judge_iteration']}, last "
            f"{with_decimals(s['last_judge_accuracy'], 4)}, {fall}: {verdict}; Frechet distance best "
            f"{with_decimals(s['best_frechet'], 2)} at iteration {s['best_frechet_iteration']}, last "
            f"{with_decimals(s['last_frechet'], 2)}")


def read_strength(run_dir):
    """--augment adaptive's p over the run from its metrics.jsonl ([(iteration, p)]), or [] for a run without it."""
    if not os.path.exists(os.path.join(run_dir, files.METRICS_FILE)):
        return []
    return [(r["iteration"], r["augment_p"]) for r in files.read_metrics(run_dir) if r.get("augment_p") is not None]


def draw(runs, path):
    """Two panels over the iteration: judge accuracy, and the Frechet distance on a log scale (it falls from
    hundreds to a few); a third with the augmentation strength p where a run was trained with --augment adaptive.
    Drawn with matplotlib's Agg canvas, no pyplot state, and written by save_picture."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    adaptive = any(strength for _, _, strength in runs)
    figure = Figure(figsize=(16.5 if adaptive else 11, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, 3 if adaptive else 2)
    accuracy, frechet = panels[:2]
    for label, scores, strength in runs:
        x = [s["iteration"] for s in scores]
        line, = accuracy.plot(x, [s["judge_accuracy"] for s in scores], label=label)
        frechet.plot(x, [s["frechet"] for s in scores], color=line.get_color(), label=label)
        if strength:
            panels[2].plot(*zip(*strength), color=line.get_color(), label=label)
    references = [s for _, scores, _ in runs for s in scores[-1:]]
    real_accuracy = {s["real_judge_accuracy"] for s in references} - {None}
    real_frechet = {s["real_frechet"] for s in references} - {None}
    if len(real_accuracy) == 1:
        accuracy.axhline(*real_accuracy, color="grey", linestyle=":", label="the real test images")
    if len(real_frechet) == 1:
        frechet.axhline(*real_frechet, color="grey", linestyle=":", label="the real training images")
    accuracy.set(xlabel="iteration", ylabel="judge accuracy of the generated digits", ylim=(None, 1.0))
    frechet.set(xlabel="iteration", ylabel="Frechet distance to the test images", yscale="log")
    if adaptive:
        panels[2].set(xlabel="iteration", ylabel="p of --augment adaptive",
                      ylim=(0, 1))
    for axes in panels:
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize="small")
    png = io.BytesIO()
    figure.savefig(png, format="png")
    png.seek(0)
    with Image.open(png) as picture:
        save_picture(picture.convert("RGB"), path)


def plot(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.label is not None and len(args.label) != len(args.runs):
        parser.error(f"--label given {len(args.label)} times for {cli.counted(len(args.runs), 'run')}: give it once "
                     f"per RUN_DIR or not at all")
    try:
        picture_format(args.out)
    except ValueError as e:
        parser.error(f"--out {args.out!r}: {e}")
    runs = [(label, read_scores(run_dir), read_strength(run_dir))
            for label, run_dir in zip(args.label or args.runs, args.runs)]
    ensure_dir(os.path.dirname(os.path.abspath(args.out)), "--out folder")
    try:
        draw(runs, args.out)
    except OSError as e:
        raise cli.CommandError(f"could not write --out {args.out!r}: {e.strerror or e}") from None
    summaries = [{"run": run_dir, "label": label, **summary(scores)}
                 for run_dir, (label, scores, _) in zip(args.runs, runs)]
    if args.json:
        print(cli.dumps({"out": args.out, "runs": summaries}))
    else:
        for s in summaries:
            print(describe(s["label"], s))
        print(f"wrote {args.out}")
    return 0
