"""Command-line helpers every command shares: number types, the help layout, strict JSON and errors.

Nothing here imports TensorFlow, so a command can build its parser and answer --help quickly.

Exit codes of every command: 0 done, 1 a failure the message explains (``CommandError``), 2 a usage error
(argparse). train.py adds 3 (a loss went non-finite), 4 (a file could not be written) and 128 + the signal
number when stopped by Ctrl-C (130) or SIGTERM (143).
"""
import argparse
import json
import math
import sys

EXIT_ERROR = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """A failure the user can act on. ``main`` prints ``error: MESSAGE`` on stderr and exits with ``status``."""

    def __init__(self, message, status=EXIT_ERROR):
        super().__init__(message)
        self.status = status


def run(main, argv=None):
    """Call ``main(argv)`` and turn a CommandError into its message and exit status."""
    try:
        return main(argv)
    except CommandError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.status


def _whole_number(text, minimum, wanted):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
    return value


def positive_int(text):
    """argparse type: a whole number of at least 1."""
    return _whole_number(text, 1, "a positive integer")


def non_negative_int(text):
    """argparse type: a whole number of at least 0."""
    return _whole_number(text, 0, "an integer of 0 or more")


def positive_float(text):
    """argparse type: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def decay(text):
    """argparse type: a number in [0, 1), the weight a moving average gives its past."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 up to (not including) 1, got {text!r}")
    return value


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default once: not for on/off flags, unset options, or help that already names it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.default in (None, argparse.SUPPRESS) or action.nargs == 0 or "%(default)" in text
                or "default" in text):
            return text
        return text + " (default: %(default)s)"


def parser(prog, description):
    return argparse.ArgumentParser(prog=prog, description=description, formatter_class=HelpFormatter)


def json_safe(value):
    """``value`` with numpy scalars and arrays as plain Python and every NaN or infinity as None."""
    if isinstance(value, dict):
        return {key: json_safe(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return json_safe(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value, **options):
    """Strict JSON (no bare NaN or Infinity): non-finite numbers become null."""
    return json.dumps(json_safe(value), allow_nan=False, **options)
