"""TensorFlow, imported on first use and without its start-up chatter.

Importing TensorFlow takes seconds, so nothing is imported until a TensorFlow attribute is first read
through ``Module`` (``dcgan_mnist.model.tf`` and ``_tf``): ``--help`` and argument errors answer at once.
That first read imports TensorFlow, switches it to v1 graph behaviour (``disable_v2_behavior``) before
anything can build a graph, and keeps off stderr what a user never needs to read:

* TensorFlow's C++ INFO lines (CPU instruction notes, the MLIR pass notice): ``TF_CPP_MIN_LOG_LEVEL`` is set
  to 1, which keeps C++ warnings and errors. A ``TF_CPP_MIN_LOG_LEVEL`` already in the environment is kept.
* Lines written while TensorFlow's libraries load, before any setting is read (the CUDA probe's "Could not
  find cuda drivers" and absl's "All log messages before absl::InitializeLog() is called ..." notice): no
  environment variable reaches them, so stderr (file descriptor 2) goes to a temporary file for the length of
  the import and is then written back without the log lines below that level (absl's notice counts as INFO).
  If the import fails, everything it wrote is written back.
* TensorFlow's Python notices that a compat.v1 API "is deprecated and will be removed"; its other Python
  warnings stay.

It also keeps TensorFlow from loading Keras as it imports: TensorFlow loads Keras' optimizers eagerly (so that
loading a SavedModel finds them registered), and Keras loads matplotlib's pyplot, about a fifth of the import's
time for a program that uses neither. TensorFlow expects that import to be able to fail and goes on without it;
``import keras`` works as before afterwards.

``DCGAN_MNIST_VERBOSE=1`` turns all of this off, so TensorFlow prints what it always prints; that is also the
way to see TensorFlow's last words should it crash while loading.
"""
import contextlib
import logging
import os
import re
import sys
import tempfile

VERBOSE_VARIABLE = "DCGAN_MNIST_VERBOSE"
LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
DEFAULT_LEVEL = 1  # TensorFlow's scale: 0 everything, 1 no INFO, 2 no WARNING either, 3 no ERROR either
SEVERITIES = "IWEF"  # an absl log line starts with its severity letter; its index is its level on that scale
ABSL_LINE = re.compile(r"([IWEF])\d{4} [\d:.]+ +\d+ \S+:\d+\] ")
ABSL_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
# What TensorFlow logs only to say the machine has no GPU: the full wheel's error on every machine without a usable
# one, and the warning of each traced Session.run (bench --profile) that there was no GPU to trace.
NO_GPU_LINES = ("failed call to cuInit", "GPU trace was not collected")
EAGER_KERAS = "keras.src.optimizers"  # the module tensorflow/__init__.py imports inside a try

_tensorflow = None


def verbose():
    return os.environ.get(VERBOSE_VARIABLE, "") not in ("", "0")


def min_log_level():
    """The user's TF_CPP_MIN_LOG_LEVEL, or DEFAULT_LEVEL set for TensorFlow to read when they have none."""
    value = os.environ.setdefault(LEVEL_VARIABLE, str(DEFAULT_LEVEL))
    try:
        return int(value)
    except ValueError:
        return 0  # TensorFlow reads a level it cannot parse as 0


def severity(line):
    """An absl log line's severity on TensorFlow's level scale (absl's notice counts as INFO); None for any
    other line, such as a Python warning or a traceback."""
    if line.rstrip("\r\n") == ABSL_NOTICE:
        return 0
    found = ABSL_LINE.match(line)
    return SEVERITIES.index(found.group(1)) if found else None


def kept_lines(text, level, no_gpu=False):
    """The lines of ``text`` a user with this TF_CPP_MIN_LOG_LEVEL asked to see: all but absl lines below it,
    and (``no_gpu``) the NO_GPU_LINES, which only say the machine has no GPU to use."""
    for line in text.splitlines(keepends=True):
        if no_gpu and any(notice in line for notice in NO_GPU_LINES):
            continue
        if (found := severity(line)) is None or found >= level:
            yield line


@contextlib.contextmanager
def filtered_stderr(level, found=None):
    """Send file descriptor 2 to a temporary file, then write back what ``kept_lines`` keeps (all if the body
    raised). ``found`` is a dict the body fills: ``found["gpus"] == 0`` drops the NO_GPU_LINES."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        succeeded = False
        try:
            yield
            succeeded = True
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            no_gpu = succeeded and found is not None and found.get("gpus") == 0
            sys.stderr.write("".join(kept_lines(text, level, no_gpu)) if succeeded else text)
            sys.stderr.flush()


@contextlib.contextmanager
def keras_left_unloaded():
    """While the body runs, importing EAGER_KERAS fails at once (None in sys.modules stops an import)."""
    if EAGER_KERAS in sys.modules:
        yield
        return
    sys.modules[EAGER_KERAS] = None
    try:
        yield
    finally:
        if EAGER_KERAS in sys.modules and sys.modules[EAGER_KERAS] is None:
            del sys.modules[EAGER_KERAS]


@contextlib.contextmanager
def no_gpu_notices():
    """While the body runs, TensorFlow's NO_GPU_LINES stay off stderr on a machine without a GPU (all of its
    output is kept with DCGAN_MNIST_VERBOSE=1)."""
    if verbose() or load_tensorflow().config.list_physical_devices("GPU"):
        yield
        return
    with filtered_stderr(min_log_level(), {"gpus": 0}):
        yield


def not_a_deprecation_notice(record):
    """logging filter: TensorFlow's util/deprecation.py logs its "X is deprecated" notices as warnings."""
    return not (record.module == "deprecation" and record.levelno == logging.WARNING)


def load_tensorflow():
    """The tensorflow module, imported on the first call as the module docstring describes."""
    global _tensorflow
    if _tensorflow is None:
        quiet = not verbose()
        level = min_log_level() if quiet else 0
        if quiet:
            logging.getLogger("tensorflow").addFilter(not_a_deprecation_notice)
        found = {}
        with filtered_stderr(level, found) if level > 0 else contextlib.nullcontext(), keras_left_unloaded():
            import tensorflow
            # Probing the devices now, while stderr is filtered, is what prints the CUDA driver's complaint
            # on a machine without a GPU (otherwise the first session prints it).
            found["gpus"] = len(tensorflow.config.list_physical_devices("GPU"))
        tensorflow.compat.v1.disable_v2_behavior()
        _tensorflow = tensorflow
    return _tensorflow


class Module:
    """Stands in for ``tensorflow`` (``path`` empty) or one of its submodules (``path`` like "compat.v1"):
    reading an attribute imports TensorFlow if it is not yet and reads the attribute from the real module."""

    def __init__(self, path=""):
        self._path = path

    def __getattr__(self, name):
        module = load_tensorflow()
        for part in self._path.split(".") if self._path else ():
            module = getattr(module, part)
        return getattr(module, name)

    def __repr__(self):
        return f"<tensorflow{'.' + self._path if self._path else ''}, imported on first use>"
