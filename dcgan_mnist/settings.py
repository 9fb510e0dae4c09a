"""Every setting of a training run: the original train.py's values as defaults, each a flag.

This is the one place settings are defined and parsed; train.py, bench and evaluate read them here.
"""
import argparse
import json
import time

# (name, default, help). The first block is the original train.py's settings, with its values.
ORIGINAL_SETTINGS = [
    ("n_epochs", 100, "passes over the training split"),
    ("learning_rate", 0.0002, "Adam learning rate of both optimizers"),
    ("batch_size", 128, "images per iteration (baked into the placeholders; the partial last batch is dropped)"),
    ("dim_z", 100, "length of the noise vector z"),
    ("dim_W1", 1024, "width of the first fully connected layer of G (and last of D)"),
    ("dim_W2", 128, "channels of the 7x7 maps"),
    ("dim_W3", 64, "channels of the 14x14 maps"),
    ("visualize_dim", 196, "samples in each vis/ grid (a square number: 196 = 14x14)"),
    ("k", 2, "alternation period: D is updated when iteration %% k == 0, G otherwise"),
    ("step", 200, "write vis/sample_NNNN.jpg every this many iterations"),
]


def positive_int(text):
    """argparse type for counts and sizes: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _flag(name):
    return "--" + name.replace("_", "-")


def build_parser():
    p = argparse.ArgumentParser(
        prog="python train.py",
        description="Train the conditional DCGAN of yihui-he/GAN-MNIST. With no flags this is the original "
                    "program: same settings, same random draws, same console lines and vis/ files.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("the original's settings")
    for name, default, help_text in ORIGINAL_SETTINGS:
        g.add_argument(_flag(name), dest=name, type=type(default), default=default, help=help_text)

    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist",
                   help="mnist reads (or downloads into) --data-dir; fashion-mnist also finds Debian's "
                        "dataset-fashion-mnist in /usr/share/datasets/fashion-mnist")
    g.add_argument("--data-dir", default=None,
                   help="folder with the four IDX files, raw or .gz (default: data/)")
    g.add_argument("--valid-size", type=int, default=10000,
                   help="training images held out as the validation split (the original: 10000 of 60000)")
    g.add_argument("--no-download", dest="download", action="store_false",
                   help="fail instead of downloading MNIST when --data-dir has no files")

    g = p.add_argument_group("output")
    g.add_argument("--vis-dir", default="vis", help="where sample_NNNN.jpg grids are written")
    g.add_argument("--log", choices=["original", "compact"], default="original",
                   help="original: the six lines per iteration of the original; compact: one line every "
                        "--log-every iterations, and the post-update numbers are only computed for those")
    g.add_argument("--log-every", type=int, default=50, help="iterations between lines in --log compact")
    g.add_argument("--run-dir", default=None,
                   help="where settings, metrics, checkpoints and TensorBoard events go "
                        "(default: runs/<timestamp>)")
    g.add_argument("--checkpoint-every", type=int, default=1000,
                   help="iterations between checkpoints (also written at each epoch's end and the run's end)")
    g.add_argument("--keep-checkpoints", type=int, default=3,
                   help="how many recent checkpoints to keep (each is ~160 MB at the default sizes)")
    g.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR exactly where its last checkpoint stopped")
    g.add_argument("--eval-every-epoch", action="store_true",
                   help="score the generator (NNC/NND, judge accuracy, Frechet distance) after every epoch")
    g.add_argument("--judge-dir", default=None,
                   help="where the evaluation's digit classifier is cached (default: ~/.cache/dcgan-mnist/judge/...)")

    g = p.add_argument_group("control")
    g.add_argument("--seed", type=int, default=None,
                   help="seed numpy and TensorFlow (the original is unseeded); same seed on CPU = same numbers")
    g.add_argument("--max-iterations", type=int, default=None,
                   help="stop after this many iterations of the whole run (counting from 0, resumes included)")
    g.add_argument("--loss", choices=["clipped", "stable"], default="clipped",
                   help="clipped: the original's bce, which clips the raw logits to [1e-7, 1-1e-7] (and zeroes "
                        "their gradient outside it); stable: sigmoid cross-entropy on the unclipped logits "
                        "(the fix for upstream issue #4)")
    g.add_argument("--threads", type=int, default=0,
                   help="TensorFlow intra/inter-op threads (0: TensorFlow decides)")
    return p


def check(settings, parser):
    """Reject settings that would only fail later, naming the flag."""
    positive = ["n_epochs", "batch_size", "dim_z", "dim_W1", "dim_W2", "dim_W3", "visualize_dim", "k", "step",
                "log_every", "checkpoint_every", "keep_checkpoints"]
    for name in positive:
        if getattr(settings, name) <= 0:
            parser.error(f"{_flag(name)} must be positive, got {getattr(settings, name)}")
    if settings.learning_rate <= 0:
        parser.error(f"--learning-rate must be positive, got {settings.learning_rate}")
    side = round(settings.visualize_dim ** 0.5)
    if side * side != settings.visualize_dim:
        parser.error(f"--visualize-dim must be a square number (the grid is square), got {settings.visualize_dim}")
    if settings.valid_size < 0:
        parser.error(f"--valid-size must be 0 or more, got {settings.valid_size}")
    if settings.max_iterations is not None and settings.max_iterations < 0:
        parser.error(f"--max-iterations must be 0 or more, got {settings.max_iterations}")
    if settings.threads < 0:
        parser.error(f"--threads must be 0 or more, got {settings.threads}")


def parse_settings(argv=None):
    parser = build_parser()
    settings = parser.parse_args(argv)
    check(settings, parser)
    if settings.run_dir is None and settings.resume is None:
        settings.run_dir = time.strftime("runs/%Y%m%d-%H%M%S")
    return settings


# Settings that define the run; --resume takes these from the run's settings.json.
RUN_DEFINING = [name for name, _, _ in ORIGINAL_SETTINGS] + [
    "dataset", "data_dir", "valid_size", "seed", "loss", "vis_dir"]


def save(settings, path):
    with open(path, "w") as f:
        json.dump(vars(settings), f, indent=2, sort_keys=True)
        f.write("\n")


def load(path):
    with open(path) as f:
        return json.load(f)
