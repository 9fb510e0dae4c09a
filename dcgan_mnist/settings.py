"""Every setting of a training run: the original train.py's values as defaults, each a flag.

This is the one place settings are defined and parsed; train.py, bench, compare and shapes take their
model flags from here. Nothing here imports TensorFlow (model.py imports it on first use).
"""
import argparse
import time

from .cli import CommandError, HelpFormatter, decay, non_negative_int, positive_float, positive_int
from .load import DATASETS
from .model import D_OUTPUTS, LOSSES

# (name, default, help). The original train.py's settings, with its values.
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
DEFAULT = {name: default for name, default, _ in ORIGINAL_SETTINGS}
MODEL_WIDTHS = ("dim_z", "dim_W1", "dim_W2", "dim_W3")
# Presets of the switches that fix the original's training flaws (docs/repaired.md): "original" holds each
# switch's default, "repaired" the combination the ablation measured best.
RECIPES = {"original": {"loss": "clipped", "d_output": "original", "g_average": 0.0},
           "repaired": {"loss": "stable", "d_output": "linear", "g_average": 0.99}}


def flag(name):
    return "--" + name.replace("_", "-")


def add_original_setting(parser, name):
    """Add the original's setting ``name`` as a flag with its default and help."""
    default, help_text = next((d, h) for n, d, h in ORIGINAL_SETTINGS if n == name)
    parser.add_argument(flag(name), dest=name, type=positive_float if isinstance(default, float) else positive_int,
                        default=default, help=help_text)


def add_model_flags(parser, names=MODEL_WIDTHS):
    """The model-width flags (--dim-z, --dim-W1, --dim-W2, --dim-W3), for every command that builds the model."""
    for name in names:
        add_original_setting(parser, name)


def build_parser():
    p = argparse.ArgumentParser(
        prog="python train.py",
        description="Train the conditional DCGAN of yihui-he/GAN-MNIST. With no flags this is the original "
                    "program: same settings, same random draws, same console lines and vis/ files.",
        formatter_class=HelpFormatter)
    g = p.add_argument_group("the original's settings")
    for name, _, _ in ORIGINAL_SETTINGS:
        add_original_setting(g, name)

    g = p.add_argument_group("data")
    g.add_argument("--dataset", choices=DATASETS, default="mnist",
                   help="mnist reads (or downloads into) --data-dir; fashion-mnist also finds Debian's "
                        "dataset-fashion-mnist in /usr/share/datasets/fashion-mnist")
    g.add_argument("--data-dir", default=None,
                   help="folder with the four IDX files, raw or .gz (default: data/)")
    g.add_argument("--valid-size", type=non_negative_int, default=10000,
                   help="training images held out as the validation split (the original: 10000 of 60000)")
    g.add_argument("--no-download", dest="download", action="store_false",
                   help="fail instead of downloading MNIST when --data-dir has no files")

    g = p.add_argument_group("output")
    g.add_argument("--vis-dir", default="vis", help="where sample_NNNN.jpg grids are written")
    g.add_argument("--log", choices=["original", "compact"], default="original",
                   help="original: the six lines per iteration of the original; compact: one line every "
                        "--log-every iterations, and the post-update numbers are only computed for those")
    g.add_argument("--log-every", type=positive_int, default=50, help="iterations between lines in --log compact")
    g.add_argument("--run-dir", default=None,
                   help="where settings, metrics, checkpoints and TensorBoard events go "
                        "(default: runs/<timestamp>)")
    g.add_argument("--checkpoint-every", type=positive_int, default=1000,
                   help="iterations between checkpoints (one is also written when the run ends or is stopped)")
    g.add_argument("--keep-checkpoints", type=positive_int, default=3,
                   help="how many recent checkpoints to keep (each is ~160 MB at the default sizes)")
    g.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR (or from one of its checkpoints, RUN_DIR/checkpoints/ckpt-N) "
                        "exactly where it stopped, with the settings it was started with")
    g.add_argument("--eval-every-epoch", action="store_true",
                   help="score the generator (NNC/NND, judge accuracy, Frechet distance) after every epoch "
                        "and at the end of the run, into eval.jsonl")
    g.add_argument("--judge-dir", default=None,
                   help="where the evaluation's digit classifier is cached (default: ~/.cache/dcgan-mnist/judge)")

    g = p.add_argument_group("control")
    g.add_argument("--seed", type=int, default=None,
                   help="seed numpy and TensorFlow; same seed on CPU = same numbers (default: a fresh seed is "
                        "drawn, printed and recorded, so every run can be resumed and repeated)")
    g.add_argument("--max-iterations", type=non_negative_int, default=None,
                   help="stop after this many iterations of the whole run (counting from 0, resumes included)")
    g.add_argument("--threads", type=non_negative_int, default=0,
                   help="TensorFlow intra/inter-op threads (0: TensorFlow decides)")

    add_switches(p.add_argument_group("fixes of the original's training flaws (docs/repaired.md)"))
    return p


def add_switches(parser):
    """--recipe and the switches it presets (--loss, --d-output, --g-average), for every command that builds the
    model; a switch left out takes the recipe's value (``resolve_switches``)."""
    repaired = " ".join(f"{flag(name)} {value}" for name, value in RECIPES["repaired"].items())
    parser.add_argument("--recipe", choices=list(RECIPES), default="original",
                        help=f"a preset of the switches below: original changes nothing; repaired is {repaired}. "
                             f"A switch given as well overrides the recipe's value")
    parser.add_argument("--loss", choices=LOSSES, default=None,
                        help="clipped (the recipe original's): the original's bce, which clips the raw logits to "
                             "[1e-7, 1-1e-7] and zeroes their gradient outside it (docs/lessons.md 7); stable: "
                             "sigmoid cross-entropy on the unclipped logits (the fix for upstream issue #4)")
    parser.add_argument("--d-output", choices=D_OUTPUTS, default=None,
                        help="D's last layer, whose output is the logit: original (the recipe original's) is "
                             "lrelu(batchnorm(matmul)), whose batchnorm over the [B,1] scores makes them "
                             "batch-relative (docs/lessons.md 8); lrelu drops the batchnorm; linear is the matmul "
                             "alone. All three use the original's discrim_W4 [dim_W1+10, 1] and no new variable "
                             "(its 10 label rows act as a bias per digit)")
    parser.add_argument("--g-average", type=decay, default=None, metavar="DECAY",
                        help="0 (the recipe original's): the vis/ grids, generate and evaluate use G's latest "
                             "weights; DECAY > 0: training also keeps an exponential moving average of G's weights "
                             "(average = DECAY * average + (1 - DECAY) * weight after each G update) and those "
                             "use it instead. Training itself is unchanged. Adds one variable per G weight, "
                             "gen_W1/ExponentialMovingAverage ... gen_W4/ExponentialMovingAverage, saved in the "
                             "checkpoints; 0.99 measured best (docs/repaired.md)")


def resolve_switches(args):
    """Fill each switch not given on the command line with the value of ``args.recipe``."""
    for name, value in RECIPES[args.recipe].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


# Settings that define the run; --resume takes these from the run's settings.json and refuses others.
RUN_DEFINING = [name for name, _, _ in ORIGINAL_SETTINGS if name != "n_epochs"] + [
    "dataset", "data_dir", "valid_size", "seed", "vis_dir", "recipe", *RECIPES["original"]]


def given_flags(parser, argv):
    """Names of the settings given on the command line ``argv`` (whatever their value)."""
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def parse_settings(argv=None):
    """The settings of ``python train.py ARGV``. With --resume the result is the run's saved settings, with
    the flags given now in place of its saved ones; ``saved`` (a dict) is how the run was started."""
    parser = build_parser()
    settings = parser.parse_args(argv)
    side = round(settings.visualize_dim ** 0.5)
    if side * side != settings.visualize_dim:
        parser.error(f"--visualize-dim must be a square number (the grid is square), got {settings.visualize_dim}")
    if settings.run_dir is None and settings.resume is None:
        settings.run_dir = time.strftime("runs/%Y%m%d-%H%M%S")
    return resolve_switches(settings)


def merge_resumed(settings, saved, given, source):
    """--resume: the run's ``saved`` settings, overridden by the flags ``given`` now, except the ones that
    define the run, which must agree (``source`` names the file in the error)."""
    for name in RUN_DEFINING:
        if name in given and getattr(settings, name) != saved.get(name):
            raise CommandError(f"{flag(name)} {getattr(settings, name)} contradicts the run's setting "
                               f"{saved.get(name)!r} in {source}; a resumed run keeps the settings that define it")
    merged = dict(saved)
    merged.update({name: getattr(settings, name) for name in given})
    merged.update(resume=settings.resume)
    return argparse.Namespace(**{**vars(settings), **merged})

