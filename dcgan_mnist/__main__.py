"""`python -m dcgan_mnist COMMAND ...`, or `dcgan-mnist COMMAND ...` once installed: the tools beside training.

Only the chosen command's module is imported, and no module imports TensorFlow before it is used, so
``--help`` and usage errors answer without loading TensorFlow.
"""
import importlib
import sys

from .cli import did_you_mean

COMMANDS = {
    "train": ("dcgan_mnist.train", "train the model (same as python train.py)"),
    "compare": ("dcgan_mnist.tools.compare", "prove numerical parity with a checkout of the original"),
    "shapes": ("dcgan_mnist.tools.shapes", "print every layer's shape, read from the built graph"),
    "generate": ("dcgan_mnist.tools.generate", "draw a class-ordered grid of digits from a trained run"),
    "gif": ("dcgan_mnist.tools.gif", "turn the vis/ sample series into an animated GIF"),
    "evaluate": ("dcgan_mnist.tools.evaluate", "score a trained generator (NNC/NND, judge accuracy, Frechet distance)"),
    "plot": ("dcgan_mnist.tools.plot", "draw a run's --eval-every-epoch scores against the iteration"),
    "bench": ("dcgan_mnist.tools.bench", "time the real training loop"),
    "ablate": ("dcgan_mnist.tools.ablate", "train and score the original, each fix and the repaired recipe"),
    "migrate-check": ("dcgan_mnist.tools.migrate", "prove the TF2 twin (twin.py) equals the TF1 graph, rung by rung"),
}


def usage():
    lines = ["usage: python -m dcgan_mnist COMMAND [options]", "   or: dcgan-mnist COMMAND [options]", "",
             "commands:"]
    width = max(map(len, COMMANDS))
    lines += [f"  {name:<{width}} {help_text}" for name, (_, help_text) in COMMANDS.items()]
    lines += ["", "python -m dcgan_mnist COMMAND --help shows a command's options."]
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}{did_you_mean(argv[0], COMMANDS)}; python -m dcgan_mnist --help "
              f"lists the commands", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
