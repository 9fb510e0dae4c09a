"""The run's files: where each is named, and the one checked reader of each kind that a run or an ablation reads.

    RUN_DIR/settings.json   every setting (``load_settings``; its fields are checked by ``Settings.from_file``)
    RUN_DIR/data.json       the data folder and the SHA-256 of each of its four files (``read_data_record``)
    RUN_DIR/metrics.jsonl   one line per iteration (``read_metrics``; cut back on resume by ``lines_before``)
    RUN_DIR/eval.jsonl      the --eval-every-epoch scores (``read_scores``; cut back on resume by ``lines_before``)
    RUN_DIR/best.json       which checkpoint is the run's best-scored (checkpoints.read_best)
    RUN_DIR/.writer.lock    locked by the one process training the run (run.Writer)
    RUN_DIR/checkpoints/    ckpt-N and best-N (checkpoints.py); RUN_DIR/abandoned/ what --fork moved aside
    OUT/ablation.json       an ablation's settings, variants and scores (``read_ablation``)

A reader checks every field its callers use (its type, its range, whether it may be null) and refuses what is
wrong with one CommandError naming the file, the line and the field, rather than guess or drop it. A record that
is missing or damaged where a run goes on from it (``--resume``, ``evaluate``, ``generate``) is refused with the
way to go on: put it back, or accept the loss with ``--accept-damaged-records``, which says what it dropped or
wrote anew. One damage is normal and needs no word: the last line of a JSON-lines file without its newline, the
line a crash cut short, which a resume drops. Nothing here imports TensorFlow.
"""
import collections
import json
import os
import re
import sys

from .cli import NON_NEGATIVE_INT, SEED, SWITCH, TEXT, CommandError, Kind, choice
from .graph import PRINTED
from .load import FILES
from .settings import Settings

SETTINGS_FILE = "settings.json"
DATA_FILE = "data.json"
METRICS_FILE = "metrics.jsonl"
EVAL_FILE = "eval.jsonl"
ABLATION_FILE = "ablation.json"
BEST_FILE = "best.json"
LOCK_FILE = ".writer.lock"
CHECKPOINT_SUBDIR = "checkpoints"
ABANDONED_SUBDIR = "abandoned"
ACCEPT_DAMAGED = "--accept-damaged-records"

NUMBER = Kind("a finite number", float)
NON_NEGATIVE = Kind("a finite number of 0 or more", float, lambda v: v >= 0)
FRACTION = Kind("a number from 0 to 1", float, lambda v: 0 <= v <= 1)
SHA256 = Kind("64 hexadecimal digits (a SHA-256)", str, lambda v: re.fullmatch(r"[0-9a-f]{64}", v) is not None)
ITERATIONS = Kind("a positive integer written as text (iterations)", str, lambda v: re.fullmatch(r"[1-9]\d*", v)
                  is not None)


class FieldError(ValueError):
    """What is wrong with one field of a record; the reader adds the file and the line."""


def shown(value):
    """``value`` as the file holds it, shortened: a NaN shows as NaN and a text in quotes."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Fields:
    """A JSON object of a file, taken field by field. ``at`` is its dotted place in the record ('' at the top)."""

    def __init__(self, values, at=""):
        if not isinstance(values, dict):
            raise FieldError(f"{f'field {at!r}' if at else 'the record'} must be a JSON object, got {shown(values)}")
        self.values, self.at = values, at

    def name(self, field):
        return f"{self.at}.{field}" if self.at else field

    def has(self, field):
        return field in self.values

    def value(self, field, kind, null=False, optional=False):
        """The field's value, which must be ``kind`` (or None when ``null``); an ``optional`` field may be absent
        (None)."""
        if field not in self.values:
            if optional:
                return None
            raise FieldError(f"field {self.name(field)!r} is missing")
        value = self.values[field]
        if value is None and null:
            return None
        if not kind.valid(value):
            raise FieldError(f"field {self.name(field)!r} must be {kind.wanted}{' or null' if null else ''}, got "
                             f"{shown(value)}")
        return value

    def object(self, field, optional=False):
        """The field's JSON object as Fields (None when ``optional`` and absent)."""
        if field not in self.values and optional:
            return None
        if field not in self.values:
            raise FieldError(f"field {self.name(field)!r} is missing")
        return Fields(self.values[field], self.name(field))

    def objects(self, field, optional=False):
        """The field's JSON array of objects, each as Fields."""
        if field not in self.values and optional:
            return []
        if field not in self.values:
            raise FieldError(f"field {self.name(field)!r} is missing")
        items = self.values[field]
        if not isinstance(items, list):
            raise FieldError(f"field {self.name(field)!r} must be a JSON array, got {shown(items)}")
        return [Fields(item, f"{self.name(field)}[{i}]") for i, item in enumerate(items)]

    def entries(self):
        """(key, Fields) of each member of this object, whose values are objects."""
        return [(key, Fields(value, self.name(key))) for key, value in self.values.items()]


def read_bytes(path, what):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise
    except OSError as e:
        raise CommandError(f"could not read {path} ({what}): {e.strerror or e}") from None


def decoded(raw):
    """``raw`` bytes as text; FieldError naming the first byte that is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FieldError(f"byte {e.start + 1} ({raw[e.start:e.start + 1]!r}) is not UTF-8 text") from None


def parsed(text):
    """The JSON value of ``text``; FieldError saying where it stops being JSON."""
    try:
        return json.loads(text)
    except ValueError as e:
        where = f" at column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
        raise FieldError(f"not JSON ({getattr(e, 'msg', e)}{where})") from None


# ---- settings.json ----

def load_settings(run_dir, flag):
    """The run's Settings, every field checked (``Settings.from_file``)."""
    path = os.path.join(run_dir, SETTINGS_FILE)
    if not os.path.isfile(path):
        raise CommandError(f"{flag} {run_dir!r}: no {SETTINGS_FILE} there; expected a run directory written by "
                           f"train.py")
    return Settings.from_file(path)


# ---- data.json ----

def read_data_record(run_dir, flag, accept_damaged=False, going_on="goes on without checking the data"):
    """data.json's {"directory": ..., "sha256": {file name: SHA-256}}. Missing (also in a run written before data.json
    existed) or damaged it is refused, saying how to go on; with ``accept_damaged`` it is None, and a warning says
    what ``flag`` does instead (``going_on``)."""
    path = os.path.join(run_dir, DATA_FILE)
    try:
        return data_record(parsed(decoded(read_bytes(path, "the run's data fingerprint"))))
    except FileNotFoundError:
        problem = "is missing"
    except FieldError as e:
        problem = f"is damaged ({e})"
    if accept_damaged:
        print(f"warning: {path} {problem}; {flag} {going_on} ({ACCEPT_DAMAGED})", file=sys.stderr)
        return None
    raise CommandError(f"{path} {problem}: it records which data the run was trained on. Put it back (from a copy "
                       f"of the run), or add {ACCEPT_DAMAGED}: {flag} then {going_on}")


def data_record(values):
    fields = Fields(values)
    fingerprint = fields.object("sha256")
    return {"directory": fields.value("directory", TEXT),
            "sha256": {name: fingerprint.value(name, SHA256) for name in FILES}}


# ---- metrics.jsonl and eval.jsonl ----

Line = collections.namedtuple("Line", "number text record problem cut_short")


def metrics_line(fields):
    """A metrics.jsonl line of train.py (records.Metrics)."""
    fields.value("iteration", NON_NEGATIVE_INT)
    fields.value("epoch", NON_NEGATIVE_INT)
    fields.value("updated", choice("D", "G"))
    for name in PRINTED:
        fields.value(name, NUMBER, null=True)
    for name in ("augment_p", "augment_r"):  # --augment adaptive's
        fields.value(name, NUMBER, null=True, optional=True)
    fields.value("finite", SWITCH, optional=True)
    fields.value("seconds", NON_NEGATIVE)
    return fields.values


def scores(fields, report):
    """The scores of evaluation.score: of the generated images and, for reference, of real ones (a non-finite score
    is null). ``report``: a report of ablation.json, whose table reads all of them; an eval.jsonl line needs only
    the generated images' scores, and plot reads its real ones when they are there."""
    generated = fields.object("generated")
    generated.value("judge_accuracy", FRACTION, null=True)
    generated.value("judge_confidence", FRACTION, null=True, optional=True)
    generated.value("frechet", NON_NEGATIVE, null=True)
    nearest_neighbours(generated, report)
    real_train = fields.object("real_train", optional=not report)
    if real_train is not None:
        real_train.value("frechet", NON_NEGATIVE, null=True, optional=not report)
        nearest_neighbours(real_train, report)
    real_test = fields.object("real_test", optional=not report)
    if real_test is not None:
        real_test.value("judge_accuracy", FRACTION, null=True, optional=not report)
    return fields.values


def nearest_neighbours(fields, required):
    entries = fields.objects("nearest_neighbour", optional=not required)
    if required and not entries:
        raise FieldError(f"field {fields.name('nearest_neighbour')!r} is empty; it holds NNC and NND")
    for entry in entries:
        entry.value("n", NON_NEGATIVE_INT)
        entry.value("nnc", FRACTION, null=True)
        entry.value("nnd", NON_NEGATIVE, null=True)


def score_line(fields):
    """An eval.jsonl line of train.py --eval-every-epoch (evaluation.TrainingScorer)."""
    fields.value("iteration", NON_NEGATIVE_INT)
    fields.value("epoch", NON_NEGATIVE_INT)
    return scores(fields, report=False)


LINE_KINDS = {  # file name: (what a line of it is, its check)
    METRICS_FILE: ("a metrics line of train.py", metrics_line),
    EVAL_FILE: ("a score line of train.py --eval-every-epoch", score_line),
}


def read_lines(path):
    """Every line of the JSON-lines file ``path`` as a Line: its number, its text and its checked record, or the
    problem that makes it not a line of its kind; ``cut_short`` marks a last line without its newline."""
    check = LINE_KINDS[os.path.basename(path)][1]
    texts = read_bytes(path, "a record of the run").split(b"\n")
    whole = texts[-1] == b""
    if whole:
        texts.pop()
    lines = []
    for number, raw in enumerate(texts, 1):
        text = record = problem = None
        try:
            text = decoded(raw)
            record = check(Fields(parsed(text)))
        except FieldError as e:
            problem = str(e)
        lines.append(Line(number, text, record, problem, not whole and number == len(texts)))
    return lines


def not_a_line(path, line, remedy=""):
    what = LINE_KINDS[os.path.basename(path)][0]
    return CommandError(f"{path}, line {line.number}, is not {what}: {line.problem}{remedy}")


def read_records(path, missing):
    """The checked records of the JSON-lines file ``path``, every line whole; ``missing`` is the error's text when
    there is no file."""
    try:
        lines = read_lines(path)
    except FileNotFoundError:
        raise CommandError(missing) from None
    for line in lines:
        if line.problem:
            raise not_a_line(path, line, "; mend or remove that line")
    return [line.record for line in lines]


def read_metrics(run_dir):
    """metrics.jsonl's records, one per iteration done."""
    path = os.path.join(run_dir, METRICS_FILE)
    return read_records(path, f"{path} is missing: it is written from a run's first iteration")


def read_scores(run_dir):
    """eval.jsonl's records (train.py --eval-every-epoch), in the order written."""
    path = os.path.join(run_dir, EVAL_FILE)
    reason = "is not a folder" if not os.path.isdir(run_dir) else f"has no {EVAL_FILE}"
    return read_records(path, f"{run_dir} {reason}: plot needs a run trained with --eval-every-epoch")


def lines_before(path, iteration, accept_damaged=False):
    """--resume at ``iteration``: the text of the JSON-lines file ``path`` cut back to its lines of earlier
    iterations, to write in its place; None when there is no file (an eval.jsonl of a run that scores from now on).
    A damaged line, or a missing metrics.jsonl, is refused unless ``accept_damaged`` (then a warning says what is
    lost); the line a crash cut short at the end is dropped without a word."""
    try:
        lines = read_lines(path)
    except FileNotFoundError:
        if os.path.basename(path) != METRICS_FILE or iteration == 0:
            return None
        refuse_or_warn(f"{path} is missing, with the records of the run's first {iteration} iterations",
                       "put it back (from a copy of the run)", "go on without them",
                       f"a new {METRICS_FILE} starts at iteration {iteration}", accept_damaged)
        return ""
    kept = []
    for line in lines:
        if line.problem and line.cut_short:
            continue
        if line.problem:
            refuse_or_warn(str(not_a_line(path, line)), "--resume keeps every line before its checkpoint, so it does "
                           "not drop this one: mend or remove the line", "drop it", "the line is dropped",
                           accept_damaged)
        elif line.record["iteration"] < iteration:
            kept.append(line.text + "\n")
    return "".join(kept)


def refuse_or_warn(problem, remedy, accept, accepted, accept_damaged):
    """A record --resume cannot keep: refused, saying how to go on, or (``accept_damaged``) a warning."""
    if not accept_damaged:
        raise CommandError(f"{problem}; {remedy}, or add {ACCEPT_DAMAGED} to {accept}")
    print(f"warning: {problem}; {accepted} ({ACCEPT_DAMAGED})", file=sys.stderr)


# ---- ablation.json ----

def read_ablation(out):
    """ablation.json of the ablation in ``out``: its fixed settings, each variant's train.py flags and every run's
    scores; None when there is none yet."""
    path = os.path.join(out, ABLATION_FILE)
    try:
        return ablation(Fields(parsed(decoded(read_bytes(path, "the ablation's scores")))))
    except FileNotFoundError:
        return None
    except FieldError as e:
        raise CommandError(f"{path} is damaged: {e}; move it away to start the ablation again") from None


def ablation(fields):
    fields.object("settings")
    for variant, flags in fields.object("variants").values.items():
        if not isinstance(flags, list) or not all(isinstance(word, str) for word in flags):
            raise FieldError(f"field 'variants.{variant}' must be the variant's train.py flags (a list of texts), got "
                             f"{shown(flags)}")
    for _, entry in fields.object("runs").entries():
        entry.value("variant", TEXT)
        entry.value("seed", SEED)
        entry.value("run_dir", Kind("a path inside the ablation's folder", str,
                                    lambda v: v and not os.path.isabs(v) and ".." not in v.split(os.sep)))
        for key in ("scores", "latest_weights_scores"):
            by_budget = entry.object(key, optional=key != "scores")
            for budget, report in by_budget.entries() if by_budget else ():
                if not ITERATIONS.valid(budget):
                    raise FieldError(f"field {by_budget.name(budget)!r}: {budget!r} is not {ITERATIONS.wanted}")
                scores(report, report=True)
        if entry.values.get("stopped") is not None:
            stopped = entry.object("stopped")
            stopped.value("status", NON_NEGATIVE_INT)
            stopped.value("iteration", NON_NEGATIVE_INT)
        elif not entry.has("stopped"):
            raise FieldError(f"field {entry.name('stopped')!r} is missing")
        entry.value("step_seconds", NON_NEGATIVE, null=True)
    return fields.values
