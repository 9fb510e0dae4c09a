"""Draw a class-ordered grid of digits from a trained run: one row per digit, --per-digit columns.

    python -m dcgan_mnist generate --checkpoint runs/RUN --digits 0-9 --per-digit 20 --seed 1 --out digits.png

The generator normalises with the statistics of the batch it draws, so samples are drawn in batches whose
digits are mixed as in training (``draw_in_mixed_batches``, which evaluate uses too).
"""
import argparse
import os

import numpy as np
from PIL import Image

from .. import cli
from ..cli import POSITIVE_INT, parser
from ..sampler import TrainedGenerator, draw_in_mixed_batches
from ..settings import Evaluation, add_checkpoint_flag, add_flags, fresh_seed
from ..util import ensure_dir, save_visualization


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
               "batchnorm uses the statistics of the batch it draws.")
    add_checkpoint_flag(p, "the run to draw from")
    p.add_argument("--digits", type=parse_digits, default="0-9",
                   help="which digits, one row each, in this order: e.g. 0-9, 3, 1,4,7 or 2-5,8; no repeats")
    p.add_argument("--per-digit", type=POSITIVE_INT.parse, default=20, help="samples per digit, the grid's columns")
    add_flags(p, ["seed"], seed={"help": "seed of the z draws (default: a fresh one, printed so the grid can be "
                                         "drawn again)"})
    p.add_argument("--interpolate", action="store_true",
                   help="each row walks z in a straight line from one random point to another across the "
                        "columns; every row uses the same two points, so rows differ only by the label")
    p.add_argument("--npz", default=None, metavar="FILE",
                   help="also save the raw samples: images [N,28,28] float32 in [0,1], labels [N], z [N,dim_z]")
    p.add_argument("--out", required=True, metavar="FILE.png",
                   help="the grid picture (format from the extension; PNG keeps it lossless)")
    add_flags(p, ["latest_weights"], source=Evaluation)
    return p


def draw_z(rng, n_rows, n_cols, dim_z, interpolate):
    """Noise for the grid, row-major [n_rows*n_cols, dim_z].

    Interpolation's two endpoints are the first two draws, so they are the z of the first two samples of the
    plain grid with the same seed.
    """
    if not interpolate:
        return rng.uniform(-1, 1, size=(n_rows * n_cols, dim_z))
    start, end = rng.uniform(-1, 1, size=(2, dim_z))
    t = np.linspace(0, 1, n_cols)[:, None]
    row = (1 - t) * start + t * end
    return np.tile(row, (n_rows, 1))


def check_out_path(path, flag, parser):
    extension = os.path.splitext(path)[1].lower()
    if extension not in Image.registered_extensions():
        parser.error(f"{flag} {path!r}: unknown picture format {extension or '(no extension)'!r}; use e.g. .png")


def main(argv=None):
    return cli.run_command(generate_command, argv)


def generate_command(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.interpolate and args.per_digit < 2:
        parser.error(f"--interpolate needs --per-digit of 2 or more (start and end), got {args.per_digit}")
    check_out_path(args.out, "--out", parser)
    seed = args.seed if args.seed is not None else fresh_seed()

    generator = TrainedGenerator(args.checkpoint, latest=args.latest_weights)
    n_rows, n_cols = len(args.digits), args.per_digit
    rng = np.random.RandomState(seed)
    Z = draw_z(rng, n_rows, n_cols, generator.dim_z, args.interpolate)
    labels = np.repeat(args.digits, n_cols)
    images = draw_in_mixed_batches(generator.sample, Z, labels, generator.settings.visualize_dim, rng)
    generator.close()

    for path in (args.out, args.npz):
        if path and os.path.dirname(path):
            ensure_dir(os.path.dirname(path), "output folder")
    save_visualization(images, (n_rows, n_cols), args.out)
    if args.npz:
        with open(args.npz, "wb") as f:  # a file object, so numpy writes exactly the name given
            np.savez(f, images=images[..., 0].astype(np.float32), labels=labels, z=Z)
    kind = "interpolations" if args.interpolate else "samples"
    print(f"wrote {args.out}: digits {','.join(map(str, args.digits))}, {n_cols} {kind} each, seed {seed}, "
          f"from {generator.checkpoint}" + (f" with {generator.weights}" if generator.model.g_average else "")
          + (f"; raw samples in {args.npz}" if args.npz else ""))
    return 0
