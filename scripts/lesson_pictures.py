"""The pictures of docs/lessons.md (7, 9, 11) and docs/shapes.md, drawn from the real code and a real run.

    .venv/bin/python scripts/lesson_pictures.py DATA_DIR [--iterations 400] [--out docs]

DATA_DIR holds the four MNIST files. It trains one run of --recipe repaired (seed 0, --valid-size 2000) for
--iterations in a temporary folder (about 5 minutes on two cores at 400), then draws:

    lesson-7-clip.png          the original's clipped loss and its gradient against the logit, beside the stable loss
    lesson-9-shift.png         the run's samples as G makes them, shifted by (x+1)/2 and saved with a fixed scale, and
                               as the original saves them (min-max scaled: the shift undone)
    lesson-11-sevens.png       the run's 7s drawn in a batch of mixed digits and in a batch of only 7s, with the share
                               of each the evaluation's judge names 7
    shapes-architecture.png    G and D as blocks, every step's output shape read from the built graph

--tiny (for the test) trains a tiny model for a few iterations and a quick judge: same pictures, no meaning.
"""
import argparse
import contextlib
import io
import os
import sys
import tempfile

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dcgan_mnist import judge as judge_module  # noqa: E402
from dcgan_mnist.load import mnist, resolve_data_dir  # noqa: E402
from dcgan_mnist.model import DIM_Y, bce, tf  # noqa: E402
from dcgan_mnist.sampler import TrainedGenerator  # noqa: E402
from dcgan_mnist.settings import RECIPES, Settings  # noqa: E402
from dcgan_mnist.tools import shapes  # noqa: E402
from dcgan_mnist.train import train  # noqa: E402
from dcgan_mnist.util import grid_image, save_picture, tile_grid  # noqa: E402

TINY = {"batch_size": 16, "dim_z": 8, "dim_W1": 16, "dim_W2": 8, "dim_W3": 4, "valid_size": 50}
SIDE = 7  # the grids of lessons 9 and 11 show 7x7 samples


def figure(width, height):
    picture = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(picture)
    return picture


def save(picture, path):
    """Render the figure and write it through save_picture, the project's one writer of pictures."""
    png = io.BytesIO()
    picture.savefig(png, format="png")
    png.seek(0)
    with Image.open(png) as image:
        save_picture(image.convert("RGB"), path)
    print(f"wrote {path}")


def clip_picture(path):
    """Lesson 7: model.bce with and without its clip, and the gradient TensorFlow computes of each, one logit at
    a time."""
    logits = np.linspace(-4, 4, 401)
    curves = {}
    with tf.Graph().as_default(), tf.Session() as sess:
        o = tf.placeholder(tf.float32, [1])
        for clip in (True, False):
            for target in (1.0, 0.0):
                cost = bce(o, tf.constant([target]), clip=clip)
                gradient = tf.gradients(cost, o)[0][0]
                curves[clip, target] = np.array([sess.run([cost, gradient], {o: [x]}) for x in logits]).T
    picture = figure(11, 4.2)
    loss_axes, gradient_axes = picture.subplots(1, 2)
    for (clip, target), (loss, gradient) in curves.items():
        style = dict(color="tab:red" if target else "tab:blue", linestyle="-" if clip else ":",
                     label=f"{'clipped (the original)' if clip else 'stable'}, target {target:g}")
        loss_axes.plot(logits, loss, **style)
        gradient_axes.plot(logits, gradient, **style)
    for axes in (loss_axes, gradient_axes):
        axes.axvspan(1e-7, 1 - 1e-7, color="grey", alpha=0.2, label="the clip's range [1e-7, 1-1e-7]")
        axes.grid(True, alpha=0.3)
        axes.set_xlabel("D's raw output (the logit)")
    loss_axes.set(ylabel="loss", title="the loss: flat outside the clip's range")
    gradient_axes.set(ylabel="d loss / d logit", title="its gradient: exactly 0 outside the range")
    gradient_axes.legend(fontsize="small")
    save(picture, path)


def train_run(data_dir, work, iterations, tiny):
    """A --recipe repaired run (seed 0) in ``work``; its printed lines are dropped."""
    s = Settings(**{**RECIPES["repaired"], "recipe": "repaired", "seed": 0, "data_dir": data_dir, "valid_size": 2000,
                    "max_iterations": iterations, "log": "compact", "log_every": 100, "step": iterations,
                    "run_dir": os.path.join(work, "run"), "vis_dir": os.path.join(work, "vis"),
                    **(TINY if tiny else {})})
    with contextlib.redirect_stdout(io.StringIO()):
        status = train(s)
    if status:
        raise SystemExit(f"training the run for the pictures ended with status {status}")
    return s.run_dir


def shift_picture(generator, path):
    """Lesson 9: G's samples as it makes them, then shifted by (x+1)/2 and saved with a fixed *255 (a pale grey),
    and as the original saves them: shifted, then min-max scaled, which undoes the shift."""
    rng = np.random.RandomState(0)
    n = generator.settings.visualize_dim
    z = rng.uniform(-1, 1, (n, generator.dim_z))
    y = np.eye(DIM_Y)[np.arange(n) % DIM_Y]
    images = generator.sample(z, y)[:SIDE * SIDE]
    shifted = (images + 1.) / 2.

    def fixed(x):
        return (tile_grid(x, (SIDE, SIDE)) * 255).clip(0, 255).astype(np.uint8)
    panels = [(fixed(images), "G's output in [0, 1], *255"),
              (fixed(shifted), f"(x+1)/2, then a fixed *255: values {int(shifted.min() * 255)}..255"),
              (np.asarray(grid_image(shifted, (SIDE, SIDE))), "(x+1)/2, saved as the original saves it\n"
                                                              "(min-max scaled: the shift undone)")]
    picture = figure(11, 4.6)
    for axes, (pixels, title) in zip(picture.subplots(1, 3), panels):
        axes.imshow(pixels, vmin=0, vmax=255, interpolation="nearest")
        axes.set_title(title, fontsize="medium")
        axes.set_axis_off()
    save(picture, path)


def sevens_picture(generator, judge, path):
    """Lesson 11: the 7s of a batch of mixed digits (0-9 in turn), and the same z drawn in a batch of only 7s."""
    rng = np.random.RandomState(0)
    n = generator.settings.visualize_dim
    z = rng.uniform(-1, 1, (n, generator.dim_z))
    mixed = np.arange(n) % DIM_Y
    sevens = mixed == 7
    in_mixed = generator.sample(z, np.eye(DIM_Y)[mixed])[sevens]
    only_sevens = generator.sample(z, np.eye(DIM_Y)[np.full(n, 7)])

    def named(images):
        return float(np.mean(judge.classify(images)[0].argmax(1) == 7))
    shown = 2 * SIDE if sevens.sum() >= 2 * SIDE else SIDE
    panels = [(in_mixed, f"the {sevens.sum()} 7s of a batch of the digits 0-9: the judge names 7 for "
                         f"{named(in_mixed):.0%}"),
              (only_sevens[sevens], f"the same z in a batch of only 7s: the judge names 7 for {named(only_sevens):.0%} "
                                    f"of its {n}")]
    picture = figure(8, 5.2)
    for axes, (images, title) in zip(picture.subplots(2, 1), panels):
        axes.imshow(np.asarray(grid_image(images[:shown], (shown // SIDE, SIDE))), interpolation="nearest")
        axes.set_title(title, fontsize="medium")
        axes.set_axis_off()
    save(picture, path)


def architecture_picture(path):
    """shapes.md: G and D as columns of blocks, each a step of the built graph with its output shape."""
    _, steps, _ = shapes.build()
    columns = [("G: generate(Z, Y)", [s for s in steps if s.call == "generate"]),
               ("D: discriminate(image, Y)", [s for s in steps if s.call == "discriminate"])]
    rows = max(len(chosen) for _, chosen in columns)
    picture = figure(12, 0.42 * rows + 1.2)
    axes = picture.subplots()
    axes.set(xlim=(0, 2), ylim=(rows + 0.3, -1.0))
    axes.set_axis_off()
    for column, (title, chosen) in enumerate(columns):
        x = column + 0.05
        axes.text(x + 0.45, -0.6, title, ha="center", fontsize="large", weight="bold")
        for row, step in enumerate(chosen):
            weight = f"  {step.weights[0][0]} {shapes.fmt(step.weights[0][1])}" if step.weights else ""
            # What the step reads besides the step above it: the label, or Z and the image at the start.
            feeds = [label for label, _ in step.inputs if row == 0 or label != chosen[row - 1].name]
            extra = f"  + {', '.join(feeds)}" if feeds else ""
            colour = {"matmul": "#cfe2f3", "conv": "#d9ead3", "deconv": "#d9ead3", "bn": "#fff2cc"}.get(
                step.name.split("_", 1)[-1], "#eeeeee")
            axes.add_patch(FancyBboxPatch((x, row - 0.35), 0.9, 0.7, boxstyle="round,pad=0.02", facecolor=colour,
                                          edgecolor="grey"))
            axes.text(x + 0.02, row, f"{step.name}: {step.does}", va="center", fontsize=7.5)
            axes.text(x + 0.88, row, f"{shapes.fmt(step.output)}{weight}{extra}", va="center", ha="right",
                      fontsize=7.5, family="monospace")
            if row:
                axes.annotate("", (x + 0.45, row - 0.37), (x + 0.45, row - 0.63),
                              arrowprops=dict(arrowstyle="->", color="grey"))
    save(picture, path)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_dir", help="folder of the four MNIST files")
    p.add_argument("--iterations", type=int, default=400, help="iterations of the run the samples are drawn from")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs"),
                   help="folder the pictures are written into")
    p.add_argument("--tiny", action="store_true", help="a tiny model and a quick judge (for the test)")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    data_dir = os.path.abspath(args.data_dir)
    clip_picture(os.path.join(args.out, "lesson-7-clip.png"))
    architecture_picture(os.path.join(args.out, "shapes-architecture.png"))
    with tempfile.TemporaryDirectory() as work:
        generator = TrainedGenerator(train_run(data_dir, work, args.iterations, args.tiny))
        trX, teX, trY, teY = mnist(resolve_data_dir("mnist", data_dir, download=False))
        training = {**judge_module.TRAINING, "steps": 20} if args.tiny else judge_module.TRAINING
        judge = judge_module.load_or_train(os.path.join(work, "judge") if args.tiny else judge_module.default_root(),
                                           "mnist", trX, trY, teX, teY, training)
        try:
            shift_picture(generator, os.path.join(args.out, "lesson-9-shift.png"))
            sevens_picture(generator, judge, os.path.join(args.out, "lesson-11-sevens.png"))
        finally:
            judge.close()
            generator.close()


if __name__ == "__main__":
    main()
