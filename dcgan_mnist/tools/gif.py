"""Turn the training run's sample series (vis/sample_NNNN.jpg) into one animated GIF.

    python -m dcgan_mnist gif --vis-dir vis --out progress.gif
"""
import os
import re

from PIL import Image

from .. import cli
from ..settings import add_flags
from ..util import ensure_dir, save_picture

SAMPLE_NAME = re.compile(r"sample_(\d+)\.jpg")


def sample_files(vis_dir):
    """Paths of vis_dir's sample_N.jpg in the order N counts (past 9999 the names outgrow %04d)."""
    numbered = [(int(m.group(1)), name) for name in os.listdir(vis_dir) if (m := SAMPLE_NAME.fullmatch(name))]
    return [os.path.join(vis_dir, name) for _, name in sorted(numbered)]


def read_frame(path):
    """The grid in ``path`` as a grey frame. The grids are grey; as 'L' frames the GIF keeps every grey level
    instead of a dithered colour palette."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise cli.CommandError(f"could not read {path}: {e.strerror or e}") from None
    with f:
        try:
            with Image.open(f) as picture:
                return picture.convert("L")
        except OSError as e:  # Pillow's error for a file it cannot identify or decode to the end
            reason = "it is empty" if os.fstat(f.fileno()).st_size == 0 else f"it is truncated or not a JPEG: {e}"
            raise cli.CommandError(f"{path} is damaged ({reason}); delete it to make the GIF without it "
                                   f"(resuming the run from a checkpoint before it writes it again)") from None


def build_parser():
    p = cli.parser("python -m dcgan_mnist gif",
                   "Make an animated GIF with one frame per vis/sample_N.jpg, in training order, looping forever.")
    add_flags(p, ["vis_dir"], vis_dir={"help": "folder of the sample_N.jpg grids written during training"})
    p.add_argument("--duration", type=cli.POSITIVE_INT.parse, default=200, help="milliseconds each frame is shown")
    p.add_argument("--out", required=True, metavar="FILE.gif", help="the animated GIF to write (ends in .gif)")
    return p


def main(argv=None):
    return cli.run_command(make_gif, argv)


def make_gif(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    # save_picture takes the format from the name, and this command promises a GIF.
    if os.path.splitext(args.out)[1].lower() != ".gif":
        parser.error(f"--out {args.out!r}: the animation is written as a GIF, so the file name must end in .gif")
    if not os.path.isdir(args.vis_dir):
        raise cli.CommandError(f"--vis-dir {args.vis_dir!r} is not a folder")
    paths = sample_files(args.vis_dir)
    if not paths:
        raise cli.CommandError(f"--vis-dir {args.vis_dir!r} has no sample_N.jpg files; train first "
                               f"(train.py writes one every --step iterations)")

    frames = [read_frame(path) for path in paths]
    for path, frame in zip(paths, frames):
        if frame.size != frames[0].size:
            raise cli.CommandError(f"{path} is {frame.size[0]}x{frame.size[1]} but {paths[0]} is "
                                   f"{frames[0].size[0]}x{frames[0].size[1]}; one GIF needs one frame size")
    if os.path.dirname(args.out):
        ensure_dir(os.path.dirname(args.out), "--out folder")
    try:
        # Pillow folds a frame identical to the one before it into that frame, adding up their durations.
        save_picture(frames[0], args.out, save_all=True, append_images=frames[1:], duration=args.duration, loop=0)
    except OSError as e:
        raise cli.CommandError(f"could not write --out {args.out!r}: {e.strerror}") from None
    print(f"wrote {args.out}: one frame per sample file of {args.vis_dir} ({len(frames)}), {args.duration} ms each")
    return 0
