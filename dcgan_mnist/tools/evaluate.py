"""`python -m dcgan_mnist evaluate --checkpoint RUN_DIR [--samples 10000] [--json]`: score a trained generator
against real data (the scores: dcgan_mnist/metrics.py, docs/evaluation.md)."""
from .. import cli
from ..cli import dumps, parser, run_command
from ..evaluation import evaluate_run
from ..model import DIM_Y
from ..settings import add_checkpoint_flag, check_samples, describe_switches, evaluation_flags, evaluation_from


def build_parser():
    p = parser("python -m dcgan_mnist evaluate",
               "Score a trained generator: NNC/NND (Newmu's nearest-neighbour scores), the accuracy of a CNN judge "
               "on the samples, and the Frechet distance of its features; each beside the same score for real "
               "images. Details: docs/evaluation.md.")
    add_checkpoint_flag(p, "the run to score")
    evaluation_flags(p)
    cli.add_json_flag(p, "the scores")
    return p


def table(report):
    """The report as aligned text."""
    g, train, test = report["generated"], report["real_train"], report["real_test"]
    d, j = report["data"], report["judge"]
    split = f"the run's split (seed {d['run_seed']})" if d["run_split"] else "NOT the run's split"
    header = [
        f"run      {report['run_dir']}: {report['checkpoint']}, {report['iterations']} iterations, "
        f"{describe_switches(report)}"
        + (f"; {report['weights']}" if report["g_average"] else ""),
        f"data     {d['dataset']} in {d['data_dir']}: {d['train_images']} train, {d['validation_images']} "
        f"validation, {d['test_images']} test; {split}",
        f"samples  {report['samples']}, every digit equally often, drawn {report['samples_per_batch']} per "
        f"generator batch with the digits mixed; evaluation seed {report['seed']}",
        f"judge    test accuracy {j['test_accuracy']:.4f} on {j['test_images']} images, trained on "
        f"{j['train_images']}; cached in {j['directory']}"
        + (f"\n         (NOT a test: {d['test_images_in_training_file']} of the test images are also training images)"
           if d["test_images_in_training_file"] else ""),
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
    check_samples(args.samples)
    report = evaluate_run(args.checkpoint, evaluation_from(args))[0]
    print(dumps(report, indent=2) if args.json else table(report))
    return 0


def main(argv=None):
    return run_command(command, argv)
