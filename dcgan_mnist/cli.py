"""Command-line helpers every command shares: number types, the help layout, strict JSON and errors.

Nothing here imports TensorFlow, so a command can build its parser and answer --help quickly.

Exit codes of every command: 0 done, 1 a failure the message explains (``CommandError``), 2 a usage error
(argparse). train.py adds 3 (a loss went non-finite), 4 (a file could not be written) and 128 + the signal
number when stopped by Ctrl-C (130) or SIGTERM (143).
"""
import argparse
import contextlib
import difflib
import json
import math
import os
import shlex
import shutil
import signal
import sys
import threading

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM


class CommandError(Exception):
    """A failure the user can act on. ``main`` prints ``error: MESSAGE`` on stderr and exits with ``status``."""

    def __init__(self, message, status=EXIT_ERROR):
        super().__init__(message)
        self.status = status


def run_command(main, argv=None):
    """Call ``main(argv)`` and turn a CommandError into its message and exit status; Ctrl-C and SIGTERM end it
    through its ``finally`` blocks (what it was making is cleaned up), without a traceback."""
    try:
        with sigterm_unwinds():
            return main(argv)
    except CommandError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_SIGINT


def raise_system_exit(signum, frame):
    raise SystemExit(EXIT_SIGTERM)


@contextlib.contextmanager
def sigterm_unwinds():
    """SIGTERM's default action ends the process at once, without the cleanup of ``finally`` blocks; while the
    default is in place, make it raise SystemExit(EXIT_SIGTERM) instead, so the staging folder is removed. A
    handler someone else installed is left alone (the training loop has its own), and so is SIGTERM outside
    the main thread, where Python cannot set handlers."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    previous = signal.signal(signal.SIGTERM, raise_system_exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


SEED_LIMIT = 2**32  # numpy's legacy seeding takes 0 <= seed < 2**32


class Kind:
    """What values a setting takes: ``wanted`` says it in words; ``accepts(value)`` checks a value of the
    right Python type; ``parse(text)`` is its argparse type."""

    def __init__(self, wanted, python, accepts=lambda value: True, choices=None):
        self.wanted, self.python, self.accepts, self.choices = wanted, python, accepts, choices

    def valid(self, value):
        if self.python is float:
            typed = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else:  # an int must not be a bool or 16.0; a str must be a str
            typed = type(value) is self.python
        return typed and self.accepts(value)

    def parse(self, text):
        try:
            value = self.python(text)
        except ValueError:
            value = None
        if value is None or not self.valid(value):
            raise argparse.ArgumentTypeError(f"expected {self.wanted}, got {text!r}")
        return value


POSITIVE_INT = Kind("a positive integer", int, lambda v: v >= 1)
NON_NEGATIVE_INT = Kind("an integer of 0 or more", int, lambda v: v >= 0)
POSITIVE_FLOAT = Kind("a positive number", float, lambda v: v > 0)
DECAY = Kind("a number from 0 up to (not including) 1", float, lambda v: 0 <= v < 1)
SEED = Kind(f"an integer from 0 to {SEED_LIMIT - 1}", int, lambda v: 0 <= v < SEED_LIMIT)
TEXT = Kind("a text", str)
SWITCH = Kind("true or false", bool)


def choice(*values):
    return Kind("one of " + ", ".join(values), str, lambda v: v in values, choices=values)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default once: not for on/off flags, unset options, or help that already names it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.default in (None, argparse.SUPPRESS) or action.nargs == 0 or "%(default)" in text
                or "(default" in text):
            return text
        return text + " (default: %(default)s)"


def counted(n, word):
    """'1 sample', '2 samples': ``n`` and ``word``, plural unless n is 1."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def duration(seconds, hours=False):
    """'3m05s', or past an hour '1h02m'; with ``hours`` always hours, minutes and seconds ('0h03m05s'), the fixed
    width of the compact log's ETA column."""
    seconds = int(round(seconds))
    if hours:
        return "%dh%02dm%02ds" % (seconds // 3600, seconds % 3600 // 60, seconds % 60)
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def shell_command(*words):
    """``words`` as one line a shell runs as they are: every word quoted where it needs it."""
    return " ".join(shlex.quote(str(word)) for word in words)


def program(command):
    """The words that start ``command`` (train, generate, ...) the way this process was started: the
    ``dcgan-mnist`` console command, this interpreter with ``-m dcgan_mnist``, or this interpreter with the
    script it ran (``python train.py``); so a printed command also runs outside the virtualenv."""
    started = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if os.path.basename(started) == "dcgan-mnist":
        return ["dcgan-mnist" if shutil.which("dcgan-mnist") == started else started, command]
    if command == "train" and os.path.basename(started) == "train.py" and os.path.isfile(started):
        return [sys.executable, started]
    return [sys.executable, "-m", "dcgan_mnist", command]


def installed_command(name):
    """The console command ``name`` (tensorboard, dask) installed beside this interpreter, as a path that runs
    without the virtualenv on PATH; the bare name when it is not there."""
    beside = os.path.join(os.path.dirname(sys.executable), name)
    return beside if os.access(beside, os.X_OK) else name


def add_json_flag(parser, what):
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON instead of a table")


def did_you_mean(word, known):
    """' (did you mean --recipe?)' when ``word`` is a near miss of one of ``known``, else ''."""
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that answers a usage error in one line, not the whole usage block: a mistyped flag with the
    flag it was probably meant to be, and where the flags are listed."""

    def error(self, message):
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            # The words after a mistyped flag are most often its value: only the flags are named.
            unknown = [word for word in message[len(prefix):].split() if word.startswith("-")]
            flags = [option for action in self._actions for option in action.option_strings]
            if unknown:
                message = f"unknown flag{'s' * (len(unknown) > 1)} " + ", ".join(
                    word + did_you_mean(word.split("=")[0], flags) for word in unknown)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}; {self.prog} --help lists the flags\n")


def parser(prog, description):
    return Parser(prog=prog, description=description, formatter_class=HelpFormatter)


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
