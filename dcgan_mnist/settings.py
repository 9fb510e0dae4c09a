"""Every setting, defined once: its type, default, allowed values, help and whether it defines the run.

``Settings`` is the whole contract of a training run. train.py's flags are made from its fields,
settings.json is written from it and read back into it, and building one checks every field (type,
range, choice), so a damaged or hand-edited settings.json is refused with the field and the file named.
The other commands take the flags they share with training (data, seed, threads, judge, model widths,
the switches) from the same fields with ``add_flags``; ``Evaluation`` is the same for the scores'
options. Nothing here imports TensorFlow.
"""
import argparse
import dataclasses
import json
import os
from dataclasses import dataclass, field

import numpy as np

from .augment import AUGMENTS, TRANSLATE_PIXELS
from .cli import (
    DECAY,
    NON_NEGATIVE_INT,
    POSITIVE_FLOAT,
    POSITIVE_INT,
    SEED,
    SEED_LIMIT,
    SWITCH,
    TEXT,
    CommandError,
    HelpFormatter,
    Kind,
    Parser,
    choice,
)
from .load import DATASETS
from .model import BATCHNORM_EPSILON, D_OUTPUTS, KERNELS, LEAK, LOSSES
from .precision import PRECISIONS

# The scores --keep-best can pick the best checkpoint by, and whether the lowest or the highest is best.
BEST_SCORES = {"frechet": "lowest", "judge_accuracy": "highest"}
# Batchnorm normalises over the batch: over one image it gives zeros whatever the input (z would be ignored).
BATCH = Kind("an integer of 2 or more (batchnorm normalises over the batch)", int, lambda v: v >= 2)
OPEN_UNIT = Kind("a number between 0 and 1 (both excluded)", float, lambda v: 0 < v < 1)
SQUARE = Kind("a square number of 4 or more (the grid is square; batchnorm normalises over it), such as 196", int,
              lambda v: v >= 4 and round(v ** 0.5) ** 2 == v)


NOT_ADDED_LATER = object()
# The most images a score draws (evaluate and ablate --samples): with their pixels as float32 and as float64 rows for
# the nearest-neighbour search, about 10 kB each, 1 GB in all.
MAX_SAMPLES = 100_000
SAMPLE_BYTES = 28 * 28 * (4 + 8)


def setting(default, kind, help, group, defines_run=False, optional=False, flag=None, metavar=None,
            before_it_existed=NOT_ADDED_LATER):
    """A field of a settings dataclass. ``optional``: None is allowed too (meaning: see the help).
    ``before_it_existed``: for a field added after runs were first written, the value every run written before
    it had (the only one there was then); a settings.json without such a field gets it, while a missing field
    of any other kind is refused."""
    return field(default=default, metadata=dict(kind=kind, help=help, group=group, defines_run=defines_run,
                                                optional=optional, flag=flag, metavar=metavar,
                                                before_it_existed=before_it_existed))


ORIGINAL, DATA, OUTPUT, CONTROL, FIXES, SPEED = ("the original's settings", "data", "output", "control",
                                                 "fixes of the original's training flaws (docs/repaired.md)",
                                                 "speed (docs/performance.md)")


@dataclass(frozen=True)
class Settings:
    """One training run. The original train.py's values are the defaults."""
    n_epochs: int = setting(100, POSITIVE_INT, "passes over the training split", ORIGINAL)
    learning_rate: float = setting(0.0002, POSITIVE_FLOAT, "Adam learning rate of both optimizers", ORIGINAL, True)
    batch_size: int = setting(128, BATCH, "images per iteration (baked into the placeholders; the partial "
                              "last batch is dropped)", ORIGINAL, True)
    dim_z: int = setting(100, POSITIVE_INT, "length of the noise vector z", ORIGINAL, True)
    dim_W1: int = setting(1024, POSITIVE_INT, "width of the first fully connected layer of G (and last of D)",
                          ORIGINAL, True)
    dim_W2: int = setting(128, POSITIVE_INT, "channels of the 7x7 maps", ORIGINAL, True)
    dim_W3: int = setting(64, POSITIVE_INT, "channels of the 14x14 maps", ORIGINAL, True)
    visualize_dim: int = setting(196, SQUARE, "samples in each vis/ grid (a square number: 196 = 14x14)",
                                 ORIGINAL, True)
    k: int = setting(2, POSITIVE_INT, "alternation period: D is updated when iteration %% k == 0, G otherwise",
                     ORIGINAL, True)
    step: int = setting(200, POSITIVE_INT, "write vis/sample_NNNN.jpg every this many iterations", ORIGINAL, True)

    dataset: str = setting("mnist", choice(*DATASETS), "mnist reads (or downloads into) --data-dir; fashion-mnist "
                           "also finds Debian's dataset-fashion-mnist in /usr/share/datasets/fashion-mnist", DATA,
                           True)
    # Not compared by name on resume: the run's data is checked by its fingerprint (run.check_data), so a moved
    # data folder can be named anew.
    data_dir: str = setting(None, TEXT, "folder with the four IDX files, raw or .gz (default: data/)", DATA,
                            optional=True)
    valid_size: int = setting(10000, NON_NEGATIVE_INT, "training images held out as the validation split (the "
                              "original: 10000 of 60000)", DATA, True)
    download: bool = setting(True, SWITCH, "fail instead of downloading MNIST when --data-dir has no files", DATA,
                             flag="--no-download")

    vis_dir: str = setting("vis", TEXT, "where sample_NNNN.jpg grids are written", OUTPUT, True)
    log: str = setting("original", choice("original", "compact"), "original: the six lines per iteration of the "
                       "original; compact: one line every --log-every iterations, and the post-update numbers are "
                       "only computed for those", OUTPUT)
    log_every: int = setting(50, POSITIVE_INT, "iterations between lines in --log compact", OUTPUT)
    run_dir: str = setting(None, TEXT, "where settings, metrics, checkpoints and TensorBoard events go (default: "
                           "runs/<timestamp>)", OUTPUT, optional=True)
    checkpoint_every: int = setting(1000, POSITIVE_INT, "iterations between checkpoints (one is also written when "
                                    "the run ends or is stopped)", OUTPUT)
    keep_checkpoints: int = setting(3, POSITIVE_INT, "how many recent checkpoints to keep (each is ~160 MB at the "
                                    "default sizes)", OUTPUT)
    eval_every_epoch: bool = setting(False, SWITCH, "score the generator (NNC/NND, judge accuracy, Frechet "
                                     "distance) after every epoch and at the end of the run, into eval.jsonl",
                                     OUTPUT)
    keep_best: str = setting("frechet", choice(*BEST_SCORES, "none"), "with --eval-every-epoch: the score that picks "
                             "the checkpoint kept as the run's best, apart from the rotating newest ones and never "
                             "deleted by them (frechet: the lowest Frechet distance; judge_accuracy: the highest "
                             "accuracy); read it as RUN_DIR/best, e.g. generate --checkpoint RUN_DIR/best. none: keep "
                             "no best", OUTPUT, metavar="SCORE", before_it_existed="none")
    judge_dir: str = setting(None, TEXT, "where the evaluation's digit classifier is cached (default: "
                             "$XDG_CACHE_HOME/dcgan-mnist/judge, ~/.cache/... when that is unset)", OUTPUT,
                             optional=True)

    seed: int = setting(None, SEED, "seed numpy and TensorFlow; same seed on CPU = same numbers (default: a fresh "
                        "seed is drawn, printed and recorded, so every run can be resumed and repeated)", CONTROL,
                        True, optional=True)
    max_iterations: int = setting(None, NON_NEGATIVE_INT, "stop after this many iterations of the whole run "
                                  "(counting from 0, resumes included)", CONTROL, optional=True)
    threads: int = setting(0, NON_NEGATIVE_INT, "TensorFlow intra/inter-op threads (0: TensorFlow decides)",
                           CONTROL)

    recipe: str = setting("original", choice("original", "repaired"), "a preset of the switches below: original "
                          "changes nothing; repaired is --loss stable --d-output linear --g-average 0.99. A switch "
                          "given as well overrides the recipe's value", FIXES, True)
    loss: str = setting("clipped", choice(*LOSSES), "clipped (the recipe original's): the original's bce, which "
                        "clips the raw logits to [1e-7, 1-1e-7] and zeroes their gradient outside it "
                        "(docs/lessons.md 7); stable: sigmoid cross-entropy on the unclipped logits (the fix for "
                        "upstream issue #4)", FIXES, True)
    d_output: str = setting("original", choice(*D_OUTPUTS), "D's last layer, whose output is the logit: original "
                            "(the recipe original's) is lrelu(batchnorm(matmul)), whose batchnorm over the [B,1] "
                            "scores makes them batch-relative (docs/lessons.md 8); lrelu drops the batchnorm; "
                            "linear is the matmul alone. All three use the original's discrim_W4 [dim_W1+10, 1] "
                            "and no new variable (its 10 label rows act as a bias per digit)", FIXES, True)
    g_average: float = setting(0.0, DECAY, "0 (the recipe original's): the vis/ grids, generate and evaluate use "
                               "G's latest weights; DECAY > 0: training also keeps an exponential moving average "
                               "of G's weights (average = DECAY * average + (1 - DECAY) * weight after each G "
                               "update) and those use it instead. Training itself is unchanged. Adds one variable "
                               "per G weight, gen_W1/ExponentialMovingAverage ... gen_W4/ExponentialMovingAverage, "
                               "saved in the checkpoints; 0.99 measured best (docs/repaired.md)", FIXES, True,
                               metavar="DECAY")
    augment: str = setting("none", choice(*AUGMENTS), "none (both recipes'): D sees the images as they are; "
                           "translate: in training, D sees every real and generated image moved by a random "
                           f"-{TRANSLATE_PIXELS}..{TRANSLATE_PIXELS} pixels in x and in y (zeros fill the border; G "
                           "learns through the move), drawn anew each step from the run's seeded RNG. Against the "
                           "memorising of the training digits that makes the recipe's Frechet distance drift up "
                           "over a long run (docs/performance.md); adaptive: each of those images is moved with a "
                           "probability p that starts at 0 and follows how sure D is of the real images it trains "
                           "on (ADA, Karras et al. 2020: --augment-target, --augment-speed). No new variable", FIXES,
                           True, before_it_existed="none")
    augment_target: float = setting(0.5, OPEN_UNIT, "--augment adaptive: the mean sign of D's logits on its real "
                                    "training images that p is steered to (above it p rises, below it p falls)",
                                    FIXES, True, metavar="R", before_it_existed=0.5)
    augment_speed: int = setting(200000, POSITIVE_INT, "--augment adaptive: real images D trains on for p to move "
                                 "from 0 to 1 (p moves every 4 D updates)", FIXES, True, metavar="IMAGES",
                                 before_it_existed=200000)

    precision: str = setting("fp32", choice(*PRECISIONS), "fp32: the original's float32 arithmetic, to the bit; "
                             "bf16: the training graph rewritten by TensorFlow into mixed precision (bfloat16 "
                             "through oneDNN on a CPU with bfloat16 instructions, float16 on a GPU), with the "
                             "weights, Adam moments, losses and printed numbers float32. Faster, and not the "
                             "original's numbers; on a CPU without AVX-512 oneDNN has no bfloat16 and it stays "
                             "float32 (the run says so)", SPEED, True, before_it_existed="fp32")
    kernels: str = setting("original", choice(*KERNELS), "original (both recipes'): batchnorm and leaky ReLU "
                           "written out of element-wise ops, as the original writes them; fused: every batchnorm is "
                           "TensorFlow's fused batch norm in training mode (this batch's statistics, no running "
                           f"averages, the original's epsilon {BATCHNORM_EPSILON:g}; a [B, N] layer as [B, 1, 1, N] "
                           f"maps), leaky ReLU one LeakyRelu op (slope {LEAK:g}) and the label maps broadcast instead "
                           "of multiplied by ones: fewer ops, other round-off than the original's. The same variables, "
                           "so its checkpoints have the original's layout", SPEED, True, before_it_existed="original")

    def __post_init__(self):
        check_fields(self)

    def check_combination(self):
        """Refuse settings that only mean something with a switch that is off (a run's whole settings: the flags of
        a resume are merged with the run's own first)."""
        if self.augment != "adaptive":
            for name in ADAPTIVE_ONLY:
                if getattr(self, name) != Settings.__dataclass_fields__[name].default:
                    raise CommandError(f"{flag(name)} {getattr(self, name)} goes with --augment adaptive, not "
                                       f"--augment {self.augment}")

    @classmethod
    def from_file(cls, path):
        """The settings a run saved in ``path`` (settings.json), every field checked: a wrong type, a value out
        of range, an unknown field or a missing one (a run written by an older version) is a CommandError
        naming the field and the file."""
        try:
            with open(path) as f:
                values = json.load(f)
        except (OSError, ValueError) as e:
            raise CommandError(f"{path} cannot be read ({e}); the file is damaged or truncated. The settings the run "
                               f"was started with are needed to rebuild it") from None
        if not isinstance(values, dict):
            raise CommandError(f"{path} holds no training settings (a JSON object of them); is this a run directory "
                               f"written by train.py?")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise CommandError(f"{path}: field {unknown[0]!r} is not a setting of this version of dcgan-mnist")
        for f in dataclasses.fields(cls):
            if f.name not in values and f.metadata["before_it_existed"] is not NOT_ADDED_LATER:
                values[f.name] = f.metadata["before_it_existed"]
        missing = [name for name in names if name not in values]
        if missing:
            raise CommandError(f"{path}: field {missing[0]!r} is missing; the run was written by an older version "
                               f"of dcgan-mnist, and filling it with today's default could rebuild another run")
        try:
            settings = cls(**values)
        except ValueError as e:
            raise CommandError(f"{path}: {e}") from None
        try:
            settings.check_combination()
        except CommandError as e:
            raise CommandError(f"{path}: {e}") from None
        return settings

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def command_flags(self):
        """train.py flags that start a run with these settings (every field that is not its default)."""
        words = []
        for f in dataclasses.fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if value == f.default or value is None:
                continue
            if meta["kind"] is SWITCH:
                words.append(meta["flag"] or flag(f.name))
            else:
                words += [meta["flag"] or flag(f.name), str(value)]
        return words

    def switches(self):
        """The switches this run was built with: loss, d_output, g_average, augment and kernels."""
        return {name: getattr(self, name) for name in SWITCHES}

    def widths(self):
        return {name: getattr(self, name) for name in MODEL_WIDTHS}


def same_as(name):
    """A field like Settings' ``name``, for another settings type."""
    original = Settings.__dataclass_fields__[name]
    return field(default=original.default, metadata=original.metadata)


@dataclass(frozen=True)
class Evaluation:
    """How a trained generator is scored (evaluate, ablate): the data, judge and draws of the scores."""
    samples: int = setting(10000, Kind("2 or more (a Frechet distance needs two samples)", int, lambda v: v >= 2),
                           f"generated images, at most {MAX_SAMPLES:,} (each takes about 10 kB while it is scored); "
                           "NNC and NND are reported at 1000 and at this many", "scores")
    seed: int = setting(0, SEED, "seed of the evaluation's own draws: z, labels, real subsets", "scores")
    judge_dir: str = same_as("judge_dir")
    threads: int = same_as("threads")
    latest_weights: bool = setting(False, SWITCH, "for a run trained with --g-average: use G's latest weights "
                                   "instead of their average, to see what the average changes", "scores")
    accept_damaged_records: bool = setting(False, SWITCH, "go on when the run's data.json (which data it was trained "
                                           "on) is missing or damaged: the data is then not checked, and a warning "
                                           "says so", "scores")
    # None: the run's own.
    dataset: str = setting(None, choice(*DATASETS), "override the run's data set", "scores", optional=True)
    data_dir: str = setting(None, TEXT, "override the run's data folder", "scores", optional=True)
    valid_size: int = setting(None, POSITIVE_INT, "override the run's validation size (another size is not the "
                              "run's split)", "scores", optional=True)

    def __post_init__(self):
        check_fields(self)


def check_samples(samples):
    """Refuse --samples past MAX_SAMPLES, saying the memory it would take, before anything is loaded."""
    if samples > MAX_SAMPLES:
        raise CommandError(f"--samples {samples:,} would hold {samples * SAMPLE_BYTES / 1e9:,.1f} GB of images while "
                           f"they are scored; the limit is {MAX_SAMPLES:,}")


def check_fields(settings):
    for f in dataclasses.fields(settings):
        value, meta = getattr(settings, f.name), f.metadata
        if value is None and meta["optional"]:
            continue
        if not meta["kind"].valid(value):
            raise ValueError(f"field {f.name!r} must be {meta['kind'].wanted}"
                             + (" or null" if meta["optional"] else "") + f", got {value!r}")


MODEL_WIDTHS = ("dim_z", "dim_W1", "dim_W2", "dim_W3")
ADAPTIVE_ONLY = ("augment_target", "augment_speed")
SWITCHES = ("loss", "d_output", "g_average", "augment", "kernels")
DEFAULT = Settings()
# Presets of the switches that fix the original's training flaws (docs/repaired.md): "original" holds each
# switch's default, "repaired" the combination the ablation measured best.
RECIPES = {"original": DEFAULT.switches(),
           "repaired": {"loss": "stable", "d_output": "linear", "g_average": 0.99, "augment": "none",
                        "kernels": "original"}}
# Settings that define the run: --resume takes these from the run's settings.json and refuses others.
RUN_DEFINING = tuple(f.name for f in dataclasses.fields(Settings) if f.metadata["defines_run"])


def describe_switches(values):
    """'recipe repaired (--loss stable --d-output linear --g-average 0.99 --augment none --kernels original)': every
    report's words for a model's switches, from any mapping that holds the recipe and each of SWITCHES (settings.json,
    a report)."""
    return f"recipe {values['recipe']} (" + " ".join(switch_words(name, values[name]) for name in SWITCHES) + ")"


def switch_words(name, value):
    """'--g-average 0.99': a switch as its flag would set it."""
    return f"{flag(name)} {value:g}" if isinstance(value, float) else f"{flag(name)} {value}"


def fresh_seed():
    """A seed drawn from the system's entropy, as an unseeded numpy would seed itself."""
    return int(np.random.SeedSequence().entropy % SEED_LIMIT)


def flag(name):
    return "--" + name.replace("_", "-")


def add_flags(parser, names, source=Settings, **changes):
    """Add the flags of ``source``'s fields ``names`` to ``parser``. ``changes`` maps a name to what differs for
    this command: {"default": ..., "help": ..., "required": ...}. Each flag of the package is declared here."""
    fields = source.__dataclass_fields__
    for name in names:
        meta, change = fields[name].metadata, changes.get(name, {})
        default = change.get("default", fields[name].default)
        help_text = change.get("help", meta["help"])
        if meta["kind"] is SWITCH:
            parser.add_argument(meta["flag"] or flag(name), dest=name, help=help_text,
                                action="store_true" if not default else "store_false")
        else:
            kind = meta["kind"]
            parser.add_argument(meta["flag"] or flag(name), dest=name, type=kind.parse, default=default,
                                help=help_text, required=change.get("required", False), metavar=meta["metavar"],
                                choices=kind.choices)


def group_names(group):
    return [f.name for f in dataclasses.fields(Settings) if f.metadata["group"] == group]


def build_parser():
    p = Parser(
        prog="python train.py",
        description="Train the conditional DCGAN of yihui-he/GAN-MNIST. With no flags this is the original "
                    "program: same settings, same random draws, same console lines and vis/ files.",
        formatter_class=HelpFormatter)
    for group in (ORIGINAL, DATA, OUTPUT, CONTROL, FIXES, SPEED):
        flags = p.add_argument_group(group)
        # The switches default to None, meaning "the recipe's value" (resolve_switches).
        add_flags(flags, group_names(group), **{name: {"default": None} for name in SWITCHES})
        if group == OUTPUT:
            flags.add_argument("--resume", default=None, metavar="RUN_DIR",
                               help="continue the run in RUN_DIR (or from one of its checkpoints, "
                                    "RUN_DIR/checkpoints/ckpt-N) exactly where it stopped, with the settings it was "
                                    "started with")
            flags.add_argument("--fork", action="store_true",
                               help="with --resume from a checkpoint older than the run's newest: continue from it, "
                                    "moving the newer checkpoints into RUN_DIR/abandoned/ (without --fork that is "
                                    "refused, so no history is dropped by mistake)")
            flags.add_argument("--accept-damaged-records", action="store_true",
                               help="with --resume: go on when the run's data.json is missing or damaged (the data "
                                    "given is taken as the run's and recorded anew), or a line of metrics.jsonl or "
                                    "eval.jsonl is damaged (it is dropped), or metrics.jsonl is missing (a new one "
                                    "starts at the checkpoint); each is named in a warning. Without it --resume "
                                    "refuses them, so no record is lost or re-made by mistake")
    return p


def model_flags(parser, batch_size=True):
    """The flags of every command that builds the model: --batch-size, the widths, --recipe and its switches."""
    add_flags(parser, (("batch_size",) if batch_size else ()) + MODEL_WIDTHS + ("recipe",) + SWITCHES + ("precision",),
              **{name: {"default": None} for name in SWITCHES})


def resolve_switches(values):
    """``values`` (a dict of flags) with each switch not given (None) taken from its recipe."""
    recipe = RECIPES[values.get("recipe") or "original"]
    return {**values, **{name: recipe[name] for name in SWITCHES if values.get(name) is None}}


def settings_from(namespace, **extra):
    """The Settings of the parsed flags ``namespace`` (fields it has not: the defaults), switches resolved."""
    values = resolve_switches({**vars(namespace), **extra})
    return Settings(**{name: values[name] for name in Settings.__dataclass_fields__ if name in values})


def evaluation_from(namespace):
    return Evaluation(**{name: getattr(namespace, name) for name in Evaluation.__dataclass_fields__
                         if hasattr(namespace, name)})


def given_flags(parser, argv):
    """Names of the settings given on the command line ``argv`` (whatever their value)."""
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def parse_train_flags(argv=None):
    """(settings, the parsed flags, the names of the settings given) of ``python train.py ARGV``. A run_dir of
    None is the default runs/<timestamp>, made when the run starts."""
    namespace = build_parser().parse_args(argv)
    given = given_flags(build_parser(), argv) - {"resume", "fork", "accept_damaged_records"}
    return settings_from(namespace), namespace, given


def same_path(name, value):
    """``value``, a path spelled one way (``D/``, ``./D`` and ``D`` are one folder) when ``name`` is a folder."""
    return os.path.abspath(value) if name in PATHS and value is not None else value


PATHS = ("data_dir", "vis_dir", "run_dir", "judge_dir")


def merge_resumed(saved, given, source):
    """--resume: the run's ``saved`` settings with the flags ``given`` now (a dict) in place of its own, except the
    ones that define the run, which must agree (``source`` names the file in the error)."""
    for name in RUN_DEFINING:
        if name in given and same_path(name, given[name]) != same_path(name, getattr(saved, name)):
            raise CommandError(f"{flag(name)} {given[name]} contradicts the run's setting "
                               f"{getattr(saved, name)!r} in {source}; a resumed run keeps the settings that define it")
    return saved.replace(**given)


def add_checkpoint_flag(parser, use, required=True):
    """--checkpoint: a run directory written by train.py (its newest checkpoint) or one of its checkpoints."""
    parser.add_argument("--checkpoint", required=required, metavar="RUN_DIR",
                        help=f"{use}: a run directory written by train.py (its newest checkpoint) or one of its "
                             f"checkpoints, RUN_DIR/checkpoints/ckpt-N")


def evaluation_flags(parser):
    """The flags of ``Evaluation``: every command that scores a run."""
    add_flags(parser, [f.name for f in dataclasses.fields(Evaluation)], source=Evaluation)
