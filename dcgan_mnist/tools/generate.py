"""Draw a class-ordered grid of digits from a trained run: one row per digit, --per-digit columns.

    python -m dcgan_mnist generate --checkpoint runs/RUN --digits 0-9 --per-digit 20 --seed 1 --out digits.png

The generator normalises with the statistics of the batch it draws, so samples are drawn in batches whose
digits are mixed as in training (``draw_in_mixed_batches``, which evaluate uses too). The k-th sample of
digit d has a z that depends only on the seed, d and k, and the batches' other places get the z the full
grid would give them, so a row comes out bit for bit the same whatever other rows are asked for.
"""
import argparse
import os

import numpy as np
from PIL import Image

from .. import cli
from ..cli import POSITIVE_INT, parser
from ..files import read_data_record
from ..sampler import TrainedGenerator, draw_in_mixed_batches
from ..settings import Evaluation, add_checkpoint_flag, add_flags, fresh_seed
from ..util import ensure_dir, grid_image, picture_format, save_arrays, save_picture

# The grid is drawn as float64 RGB before it is enlarged, and the picture is held as 8-bit RGB: these keep both
# under a few hundred MB, far past any grid one looks at (the default is 20 x 10 digits at --scale 3).
MAX_PER_DIGIT = 1000
MAX_PIXELS = 100_000_000
DIGIT_SIDE = 28


def parse_digits(text):
    """'0-9', '3', '1,4,7', '2-5,8' -> [digits] in the order written; each digit 0..9 at most once."""
    digits = []
    for part in text.split(","):
        first, sep, last = part.strip().partition("-")
        if not (first.isdigit() and (not sep or last.isdigit())):
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not a digit or a range like 2-5 (in {text!r})")
        low, high = int(first), int(last) if sep else int(first)
        if high > 9:
            raise argparse.ArgumentTypeError(f"digits run from 0 to 9, got {part.strip()!r}")
        if low > high:
            raise argparse.ArgumentTypeError(f"range {part.strip()!r} runs backwards; write {high}-{low}")
        for digit in range(low, high + 1):
            if digit in digits:
                raise argparse.ArgumentTypeError(f"digit {digit} is listed twice in {text!r}")
            digits.append(digit)
    return digits


def build_parser():
    p = parser("python -m dcgan_mnist generate",
               "Draw a grid of digits from a trained run's generator: one row per digit (in the order given), "
               "--per-digit samples per row, z ~ uniform(-1, 1) as in training. Samples are drawn in batches "
               "of the run's --visualize-dim whose digits are mixed as in training, because the generator's "
               "batchnorm uses the statistics of the batch it draws; a row is the same whatever other rows "
               "are asked for.")
    add_checkpoint_flag(p, "the run to draw from")
    p.add_argument("--digits", type=parse_digits, default="0-9",
                   help="which digits, one row each, in this order: e.g. 0-9, 3, 1,4,7 or 2-5,8; no repeats")
    p.add_argument("--per-digit", type=POSITIVE_INT.parse, default=20,
                   help=f"samples per digit, the grid's columns, at most {MAX_PER_DIGIT:,} (without --interpolate, "
                        f"fewer gives the first columns of a longer row)")
    add_flags(p, ["seed"], seed={"help": "seed of the z draws (default: a fresh one, printed so the grid can be "
                                         "drawn again)"})
    p.add_argument("--interpolate", action="store_true",
                   help="each row walks z in a straight line from one random point to another across the "
                        "columns; every row uses the same two points, so rows differ only by the label")
    p.add_argument("--scale", type=POSITIVE_INT.parse, default=3, metavar="N",
                   help=f"enlarge the picture N times, each pixel an NxN block (28 px per digit at 1), up to a "
                        f"picture of {MAX_PIXELS:,} pixels; --npz keeps the samples unscaled")
    p.add_argument("--npz", default=None, metavar="FILE",
                   help="also save the raw samples: images [N,28,28] float32 in [0,1], labels [N], z [N,dim_z]")
    p.add_argument("--out", required=True, metavar="FILE.png",
                   help="the grid picture (format from the extension; PNG keeps it lossless)")
    add_flags(p, ["latest_weights", "accept_damaged_records"], source=Evaluation, accept_damaged_records={
        "help": "draw from the run even when its data.json (which data it was trained on) is missing or damaged; a "
                "warning says so"})
    return p


def check_size(args):
    """Refuse a grid whose samples or picture would not fit in memory, saying what it would take."""
    n_rows, n_cols = len(args.digits), args.per_digit
    if n_cols > MAX_PER_DIGIT:
        samples = n_rows * n_cols
        raise cli.CommandError(f"--per-digit {n_cols:,} would draw {samples:,} samples ("
                               f"{samples * DIGIT_SIDE ** 2 * 4 / 1e9:,.1f} GB of images); the limit is "
                               f"{MAX_PER_DIGIT:,} per digit")
    width, height = DIGIT_SIDE * n_cols * args.scale, DIGIT_SIDE * n_rows * args.scale
    if width * height > MAX_PIXELS:
        raise cli.CommandError(f"--scale {args.scale:,} would make a {width:,} x {height:,} picture "
                               f"({width * height * 3 / 1e9:,.1f} GB as RGB) of {n_rows} x {n_cols} digits; the limit "
                               f"is {MAX_PIXELS:,} pixels: lower --scale or --per-digit")


def digit_z(seed, digit, n, dim_z):
    """The first ``n`` z of the digit's own stream of the seed: the k-th does not depend on ``n``."""
    # A spawn key gives each digit a stream of its own, apart from the seed's root stream (interpolation's).
    stream = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(digit,)))
    return stream.uniform(-1, 1, size=(n, dim_z))


def grid_z(seed, dim_z, n_cols, interpolate):
    """``z_of(digits, ks)``: the z [N, dim_z] of the ks-th sample of each of ``digits`` (two arrays [N]).

    Plain: the k-th draw of the digit's own stream, so a row depends only on the seed and its digit, and a
    shorter row is the start of a longer one. Interpolation: point k of the walk across the n_cols columns
    between the seed's first two draws, the same for every digit; the batch places past the last column
    (which draw_in_mixed_batches fills) walk it again.
    """
    if interpolate:
        start, end = np.random.default_rng(seed).uniform(-1, 1, size=(2, dim_z))
        t = np.linspace(0, 1, n_cols)[:, None]
        walk = (1 - t) * start + t * end
        return lambda digits, ks: walk[ks % n_cols]

    def z_of(digits, ks):
        Z = np.empty((len(digits), dim_z))
        for digit in np.unique(digits):
            mine = digits == digit
            Z[mine] = digit_z(seed, digit, ks[mine].max() + 1, dim_z)[ks[mine]]
        return Z
    return z_of


def check_outputs(args, parser):
    """Every reason --out or --npz cannot be written that shows before the run is loaded; their folders are
    made here."""
    outputs = [(flag, path) for flag, path in (("--out", args.out), ("--npz", args.npz)) if path]
    for flag, path in outputs:
        if os.path.isdir(path):
            parser.error(f"{flag} {path!r} is a folder; name a file to write (in it, or elsewhere)")
    try:
        picture_format(args.out)
    except ValueError as e:
        parser.error(f"--out {args.out!r}: {e}")
    for flag, path in outputs:
        if os.path.dirname(path):
            ensure_dir(os.path.dirname(path), f"{flag} folder")


def write_output(flag, path, save):
    """``save()``, which writes ``path``; its failure is a CommandError naming ``flag``."""
    try:
        save()
    except OSError as e:
        raise cli.CommandError(f"could not write {flag} {path!r}: {e.strerror}") from None


def main(argv=None):
    return cli.run_command(generate_command, argv)


def generate_command(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.interpolate and args.per_digit < 2:
        parser.error(f"--interpolate needs --per-digit of 2 or more (start and end), got {args.per_digit}")
    check_size(args)
    check_outputs(args, parser)
    seed = args.seed if args.seed is not None else fresh_seed()

    generator = TrainedGenerator(args.checkpoint, latest=args.latest_weights)
    try:
        read_data_record(generator.run.run_dir, "generate", args.accept_damaged_records, "draws from the run anyway")
        n_rows, n_cols = len(args.digits), args.per_digit
        z_of = grid_z(seed, generator.dim_z, n_cols, args.interpolate)
        labels = np.repeat(args.digits, n_cols)
        Z = z_of(labels, np.tile(np.arange(n_cols), n_rows))
        images = draw_in_mixed_batches(generator.sample, Z, labels, generator.settings.visualize_dim, fill=z_of)
    finally:
        generator.close()

    picture = grid_image(images, (n_rows, n_cols))
    picture = picture.resize((picture.width * args.scale, picture.height * args.scale), Image.NEAREST)
    write_output("--out", args.out, lambda: save_picture(picture, args.out))
    if args.npz:
        write_output("--npz", args.npz, lambda: save_arrays(args.npz, images=images[..., 0].astype(np.float32),
                                                            labels=labels, z=Z))
    kind = cli.counted(n_cols, "interpolation" if args.interpolate else "sample")
    print(f"wrote {args.out}: digits {','.join(map(str, args.digits))}, {kind} each, seed {seed}, "
          f"from {generator.checkpoint}" + (f" with {generator.weights}" if generator.model.g_average else "")
          + (f"; raw samples in {args.npz}" if args.npz else ""))
    return 0
