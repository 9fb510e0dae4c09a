"""Turn a training run's sample series (vis/sample_NNNN.jpg) into one animated GIF.

    python -m dcgan_mnist gif --vis-dir vis --out progress.gif
    python -m dcgan_mnist gif --run runs/RUN --out progress.gif

A folder holding the grids of more than one run (vis/.run says which run wrote which, vis.py) is refused: --run
animates the grids of that run alone, found in the vis_dir its settings.json records.
"""
import os

from PIL import Image

from .. import cli, files
from ..settings import add_flags
from ..util import ensure_dir, save_picture
from ..vis import describe, owners, sample_names


def folder_grids(vis_dir):
    """The grids of --vis-dir, refused when they are more than one run's."""
    runs, unnamed = owners(vis_dir)
    if len(runs) + bool(unnamed) > 1:
        held = [f"{cli.counted(len(own), 'grid')} of {describe(entry)}" for entry, own in runs]
        held += [f"{cli.counted(len(unnamed), 'grid')} no run is named for ({', '.join(unnamed[:3])}"
                 f"{', ...' if len(unnamed) > 3 else ''})"] * bool(unnamed)
        newest = runs[-1][0]["run_dir"] if runs else None
        raise cli.CommandError(f"--vis-dir {vis_dir!r} holds the grids of more than one run: {'; '.join(held)}. One "
                               f"animation of them would mix the runs: pass --run RUN_DIR to animate one run's grids"
                               + (f" (e.g. --run {newest})" if newest else "") + ", or delete the others")
    return sample_names(vis_dir)


def run_grids(run_dir):
    """(vis_dir, the grids of the run ``run_dir`` still there): its vis_dir from settings.json, its grids from the
    folder's marker (all of them when no run is named there: a run of a version without the marker)."""
    vis_dir = files.load_settings(run_dir, "--run").vis_dir
    if not os.path.isdir(vis_dir):
        raise cli.CommandError(f"--run {run_dir!r}: its grids' folder {vis_dir} (vis_dir in its {files.SETTINGS_FILE}) "
                               f"is not there")
    runs, unnamed = owners(vis_dir)
    if not runs:
        return vis_dir, unnamed
    mine = [own for entry, own in runs if entry["run_dir"] == os.path.abspath(run_dir)]
    if not mine:
        raise cli.CommandError(f"--run {run_dir!r}: none of the grids in {vis_dir} are this run's; they are "
                               f"{'; '.join(describe(entry) for entry, _ in runs)}'s, written over this run's")
    return vis_dir, mine[-1]


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
    source = p.add_mutually_exclusive_group()
    add_flags(source, ["vis_dir"], vis_dir={"help": "folder of the sample_N.jpg grids written during training (refused "
                                                    "when it holds more than one run's)"})
    source.add_argument("--run", metavar="RUN_DIR",
                        help="animate this run's grids alone, from the vis_dir its settings.json records")
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
    if args.run is not None:
        vis_dir, names = run_grids(args.run)
    elif not os.path.isdir(args.vis_dir):
        raise cli.CommandError(f"--vis-dir {args.vis_dir!r} is not a folder")
    else:
        vis_dir, names = args.vis_dir, folder_grids(args.vis_dir)
    if not names:
        where = f"--run {args.run!r}: {vis_dir}" if args.run is not None else f"--vis-dir {vis_dir!r}"
        raise cli.CommandError(f"{where} has no sample_N.jpg files; train first (train.py writes one every --step "
                               f"iterations)")
    paths = [os.path.join(vis_dir, name) for name in names]

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
    whose = f" of {args.run}" if args.run is not None else ""
    print(f"wrote {args.out}: one frame per sample file{whose} in {vis_dir} ({len(frames)}), {args.duration} ms each")
    return 0
