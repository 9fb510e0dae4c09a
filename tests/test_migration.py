"""migrate-check: the TF2 twin (dcgan_mnist/twin.py) against the TF1 graph, rung by rung, and the runnable
snippets of docs/migration.md.

TensorFlow 1 and 2 behaviour cannot share a process, and this one may already have switched to TF1 (other test
files use dcgan_mnist.model.tf). So everything runs in two child processes, once for the whole file, side by side:
a TF1 one (``tf1_side``) writes the TF1 reference of each of REFERENCES (``migrate.tf1_side``; the original's
after training a tiny run with train.py, for rung 7) and names each on its stdout when it is written; two TF2
ones (``tf2_side``, one for each of PARTS, so that the two cores share the work) take those names on their stdin:
one runs the document's snippets and ``migrate.main`` on each reference, the other the wrong twins against them.
Each writes what they gave to a results file; the tests read them.
"""
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import types

import pytest
from conftest import ROOT, TINY_MODEL, tiny_args

from dcgan_mnist import migration_tf1
from dcgan_mnist.cli import CommandError
from dcgan_mnist.settings import Settings
from dcgan_mnist.tools import migrate

TESTS = os.path.dirname(os.path.abspath(__file__))
DOC = os.path.join(ROOT, "docs", "migration.md")
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```$", re.M | re.S)
TRAINED = 4  # iterations of the tiny run before its checkpoint
PARTS = ("checked", "wrong")  # the work of the two TF2 processes
# migrate-check's flags of each reference, in the order the TF1 process writes them; the original's takes its
# settings from the tiny run (batch 6, TINY_MODEL), whose checkpoint rung 7 continues.
REFERENCES = {
    "repaired": ["--batch-size", "6", *TINY_MODEL, "--recipe", "repaired", "--iterations", "20"],
    "original": ["--iterations", "20", "--continue", "4"],
}
PRINTED = "gen_loss|discrim_loss|p_real|p_gen"  # which of them differs first depends on the clip
# One edit of twin.py each: the rung that must catch it, the row it must name first, and the reference it is
# checked against.
WRONG = {
    "swapped concat": ([("tf.concat([Z, Y], axis=1)", "tf.concat([Y, Z], axis=1)")], 3, r"G\(z, y\) \(eager\)",
                       "repaired"),
    "no gradient through the batch mean": (
        [("    mean = tf.reduce_mean(X, axes)\n", "    mean = tf.stop_gradient(tf.reduce_mean(X, axes))\n")], 4,
        r"d_cost by discrim_W1 \(eager\)", "repaired"),
    "Keras's epsilon": ([("BETA1, BETA2, EPSILON = 0.5, 0.999, 1e-8", "BETA1, BETA2, EPSILON = 0.5, 0.999, 1e-7")],
                        5, "D step: discrim_W1", "repaired"),
    "m forgotten between steps": ([("m.assign_add((g - m) * (one - self.beta1))", "m.assign(g * (one - self.beta1))")],
                                  6, PRINTED, "repaired"),
    "data order not restored": ([('"order": state["order"]}', '"order": None}')], 7, PRINTED, "original"),
}


def python_blocks(text):
    """(code, the ```text block that follows it) of every ```python block of docs/migration.md."""
    blocks = FENCE.findall(text)
    return [(code, blocks[i + 1][1]) for i, (info, code) in enumerate(blocks)
            if info == "python" and i + 1 < len(blocks) and blocks[i + 1][0] == "text"]


def wrong_twin(edits):
    """dcgan_mnist.twin with each (old, new) edit made once, as a module of its own."""
    from dcgan_mnist import twin
    with open(twin.__file__) as f:
        source = f.read()
    for old, new in edits:
        assert source.count(old) == 1, f"twin.py must contain {old!r} exactly once"
        source = source.replace(old, new)
    module = types.ModuleType("dcgan_mnist.wrong_twin")
    module.__package__ = "dcgan_mnist"
    exec(compile(source, twin.__file__, "exec"), module.__dict__)
    return module


def tf1_side(directory):
    """The TF1 process: each reference of REFERENCES, its name on stdout once written; the tiny run before the
    original's."""
    from conftest import write_mnist

    from dcgan_mnist import train
    for name in REFERENCES:
        if name == "original":
            write_mnist(os.path.join(directory, "data"))
            args = tiny_args(os.path.join(directory, "data"), directory, "run", "--batch-size", "6",
                             "--max-iterations", str(TRAINED), "--seed", "3")
            with contextlib.redirect_stdout(sys.stderr):
                assert train.main(args) == 0
        request = migrate.request(migrate.build_parser().parse_args(checked_flags(directory, name)))
        migrate.write_request(os.path.join(directory, name), request)
        migration_tf1.tf1_side(os.path.join(directory, name, "request.json"))
        print(name, flush=True)


def checked_flags(directory, name):
    run = ["--checkpoint", os.path.join(directory, "run")] if name == "original" else []
    return REFERENCES[name] + run + ["--reference", os.path.join(directory, name)]


def tf2_side(directory, part):
    """A TF2 process: for part "checked", the document's snippets (while the TF1 process writes its first
    reference), then migrate-check on each reference named on stdin (reused, so TF1 does not run again); for part
    "wrong", the wrong twins against each. What they gave goes to results-PART.json."""
    twin = migrate.import_twin()
    results = {"checked": {}, "snippets": []} if part == "checked" else {"wrong": {}}
    if part == "checked":
        with open(DOC) as f:
            for code, _ in python_blocks(f.read()):
                out = io.StringIO()
                with contextlib.redirect_stdout(out):
                    exec(compile(code, DOC, "exec"), {"__name__": "__snippet__"})
                results["snippets"].append(out.getvalue())
        twin.without_grappler()  # as the last snippet leaves it, and as migrate-check sets it anyway
    for line in sys.stdin:
        name = line.strip()
        if part == "checked":
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                status = migrate.main(checked_flags(directory, name) + ["--json"])
            results["checked"][name] = {"status": status, "report": json.loads(out.getvalue())}
            continue
        meta, arrays = migrate.read_reference(os.path.join(directory, name))
        for wrong, (edits, rung, _, reference) in WRONG.items():
            if reference == name:
                results["wrong"][wrong] = migrate.ladder(meta, arrays, wrong_twin(edits), last_rung=rung)
    with open(os.path.join(directory, f"results-{part}.json"), "w") as f:
        f.write(migrate.dumps(results))


def child(side, directory, log, *arguments, **pipes):
    call = ", ".join(repr(a) for a in (directory, *arguments))
    code = f"import sys; sys.path.insert(0, {TESTS!r}); import test_migration; test_migration.{side}({call})"
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, text=True, stderr=log, **pipes)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    directory = str(tmp_path_factory.mktemp("migration"))
    logs = {side: open(os.path.join(directory, f"{side}.log"), "w+") for side in ("tf1",) + PARTS}
    with contextlib.ExitStack() as stack:
        for log in logs.values():
            stack.enter_context(log)
        processes = {part: child("tf2_side", directory, logs[part], part, stdin=subprocess.PIPE) for part in PARTS}
        processes["tf1"] = child("tf1_side", directory, logs["tf1"], stdout=subprocess.PIPE)
        for name in processes["tf1"].stdout:  # each reference goes to the TF2 processes as soon as it is written
            for part in PARTS:
                processes[part].stdin.write(name)
                processes[part].stdin.flush()
        for part in PARTS:
            processes[part].stdin.close()
        for side, process in processes.items():
            if process.wait(timeout=300) != 0:
                logs[side].seek(0)
                pytest.fail(f"the {side} process failed:\n{logs[side].read()[-4000:]}")
    found = {}
    for part in PARTS:
        with open(os.path.join(directory, f"results-{part}.json")) as f:
            found.update(json.load(f))
    return found


def rung_of(report, number):
    return next(r for r in report["rungs"] if r["rung"] == number)


def rows_of(report, number):
    return {r["name"]: r for r in report["rows"] if r["rung"] == number}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_the_twin_passes_every_rung_bit_for_bit(results, name):
    checked = results["checked"][name]
    report = checked["report"]
    assert checked["status"] == 0 and report["match"], report["first_divergence"]
    assert [r["rung"] for r in report["rungs"] if r["rows"]] == ([1, 2, 3, 4, 5, 6, 7] if name == "original"
                                                                 else [1, 2, 3, 4, 5, 6])
    for rung in report["rungs"]:
        if rung["rows"]:
            assert rung["ok"] and rung["exact"], rung
            assert rung["max_abs"] in (None, 0.0) and rung["max_rel"] in (None, 0.0)
    assert report["settings"]["recipe"] == name


def test_rung_1_counts_the_variables_each_call_makes(results):
    rows = rows_of(results["checked"]["original"]["report"], 1)
    assert rows["trainable variables of the model"]["ours"] == "8"
    for call in ("generate", "discriminate", "sampler", "D step", "G step"):
        assert rows[f"{call}: new variables, 1st and 2nd call"]["ours"] == "0, 0"


def test_rung_2_names_every_variable_of_the_tf1_checkpoint(results):
    rows = rows_of(results["checked"]["original"]["report"], 2)
    assert rows["variables"]["original"] == rows["variables"]["ours"] == "28 (8 trainable)"
    assert rows["gen_W1"]["ours"] == "18x16"  # [dim_z 8 + 10 labels, dim_W1 16]
    assert rows["discrim_W3"]["ours"] == "402x16"  # [dim_W2 8 * 7 * 7 + 10, dim_W1 16]
    assert rows["discrim_W1/Adam_1"]["ours"] == "5x5x11x4, not trainable"
    assert rows["beta2_power_1"]["ours"] == "scalar, not trainable"
    averages = rows_of(results["checked"]["repaired"]["report"], 2)
    assert averages["gen_W4/ExponentialMovingAverage"]["ours"] == "5x5x1x14, not trainable"


def test_rungs_3_and_4_run_eagerly_and_as_a_tf_function(results):
    report = results["checked"]["original"]["report"]
    for rung, names in ((3, migrate.FORWARD), (4, ["d_cost by discrim_W1", "g_cost by gen_W4"])):
        rows = rows_of(report, rung)
        for name in names:
            for mode in migrate.MODES:
                assert rows[f"{name} ({mode})"]["max_abs"] == 0


def test_rung_5_compares_updates_moments_and_beta_powers(results):
    rows = rows_of(results["checked"]["original"]["report"], 5)
    for name in ("D step: discrim_W3", "D step: discrim_W3/Adam", "D step: discrim_W3/Adam_1", "D step: beta1_power",
                 "D step: beta2_power", "G step: gen_W2/Adam_1", "G step: beta2_power_1", "D step: discrim_loss",
                 "D step: the 14 other variables"):
        assert rows[name]["max_abs"] == 0 and rows[name]["ok"], name
    averages = rows_of(results["checked"]["repaired"]["report"], 5)
    assert averages["G step: gen_W1/ExponentialMovingAverage"]["max_abs"] == 0


def test_rung_6_is_twenty_iterations_in_lockstep(results):
    rows = rows_of(results["checked"]["original"]["report"], 6)
    assert rows["iterations"]["ours"] == "20" and rows["updated net"]["ours"] == "DG" * 10
    assert all(rows[name]["original"] == "20" and rows[name]["max_abs"] == 0 for name in migrate.PRINTED)
    assert rows["final discrim_W1/Adam"]["max_abs"] == 0


def test_rung_7_continues_a_train_py_checkpoint_in_tf2(results):
    report = results["checked"]["original"]["report"]
    assert report["checkpoint"].endswith(os.path.join("run", "checkpoints", f"ckpt-{TRAINED}"))
    rows = rows_of(report, 7)
    assert rows["loop position"]["ours"] == f"iteration {TRAINED}"
    assert rows["the 28 variables loaded by name"]["max_abs"] == 0
    assert rows["iterations"]["original"] == rows["iterations"]["ours"] == "4"
    assert rows["updated net"]["ours"] == "DGDG"  # iterations 4-7: D at even ones
    assert rows["numpy's random state after"]["max_abs"] == 0
    assert rows["final gen_W2"]["max_abs"] == 0 and rows["final beta1_power_1"]["max_abs"] == 0


@pytest.mark.parametrize("name", sorted(WRONG))
def test_a_wrong_twin_fails_the_rung_that_catches_it(results, name):
    _, rung, first, _ = WRONG[name]
    report = results["wrong"][name]
    assert not report["match"]
    divergence = report["first_divergence"]
    assert divergence["rung"] == rung and re.fullmatch(first, divergence["name"]), divergence
    assert all(r["ok"] for r in report["rungs"] if r["rung"] < rung), report["rungs"]
    # Each is a real change, not round-off: far over the 1e-6 a near miss would show.
    assert rung_of(report, rung)["max_rel"] > 1e-6


def test_keras_epsilon_leaves_the_moments_alone(results):
    rows = rows_of(results["wrong"]["Keras's epsilon"], 5)
    assert rows["D step: discrim_W1/Adam"]["ok"] and rows["D step: discrim_W1/Adam_1"]["ok"]
    assert not rows["D step: discrim_W1"]["ok"]


def test_a_lockstep_divergence_names_its_first_iteration(results):
    report = results["wrong"]["m forgotten between steps"]
    assert report["first_divergence"]["iteration"] == 2  # the second D step is the first that reads m
    assert rung_of(report, 5)["exact"]
    continued = results["wrong"]["data order not restored"]
    assert continued["first_divergence"]["iteration"] == TRAINED  # the first iteration after the checkpoint


def test_text_report_states_each_rung_and_its_tolerance(results):
    text = migrate.text_report(results["checked"]["original"]["report"])
    for number, title in migrate.RUNGS.items():
        assert f"\nrung {number} {title}\n" in text
    assert re.search(r"rung 5 one Adam step +max abs +0, max rel +0; tolerance exact: exact", text)
    assert text.endswith("result: MATCH; bit-identical rungs: 1, 2, 3, 4, 5, 6, 7")
    wrong = migrate.text_report(results["wrong"]["Keras's epsilon"])
    assert "rung 5 one Adam step" in wrong and "FAIL" in wrong
    assert re.search(r"result: DIFFERENT, first divergence: rung 5 \(one Adam step\), D step: discrim_W1: max abs "
                     r"\S+, max rel \S+$", wrong)


def test_the_documents_snippets_print_what_it_shows(results):
    with open(DOC) as f:
        blocks = python_blocks(f.read())
    assert len(blocks) == len(results["snippets"]) >= 2
    for (code, shown), printed in zip(blocks, results["snippets"]):
        # How many elements a rewrite changes depends on the CPU (the document says so); that it changes some or
        # none does not.
        assert some_of(printed) == some_of(shown), f"the snippet\n{code}\nnow prints\n{printed}"


def some_of(text):
    return re.sub(r"\b[1-9]\d* of 1000\b", "some of 1000", text)


def test_the_tf2_side_refuses_a_process_in_tf1_behaviour():
    tf1_behaviour = types.SimpleNamespace(executing_eagerly=lambda: False)
    with pytest.raises(CommandError, match="kept apart by process"):
        migrate.check_tf2(tf1_behaviour)


def test_help_answers_without_importing_tensorflow():
    code = ("import contextlib, io, sys\nfrom dcgan_mnist.tools import migrate\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    try:\n        migrate.main(['--help'])\n    except SystemExit:\n        pass\n"
            "assert out.getvalue().startswith('usage: python -m dcgan_mnist migrate-check'), out.getvalue()\n"
            "assert 'tensorflow' not in sys.modules\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_speed_table_shows_both_loops_and_their_ratio():
    medians = {"tf1": {"ms_d_step": 1000.0, "ms_g_step": 900.0}, "tf2": {"ms_d_step": 950.0, "ms_g_step": 990.0}}
    text = migrate.speed_text({"batch_size": 128, "widths": {"dim_z": 100, "dim_W1": 1024, "dim_W2": 128,
                                                             "dim_W3": 64},
                               "rounds": 3, "iterations": 10, "grappler": False, "tensorflow": "2.21.0",
                               "medians": medians, "tf2_over_tf1": {"ms_d_step": 0.95, "ms_g_step": 1.1}})
    assert "3 rounds of 10 iterations each" in text and "twin with Grappler off" in text
    assert re.search(r"TF1 graph \(bench, faithful\) +1000\.0 +900\.0", text)
    assert re.search(r"TF2 / TF1, median of rounds +0\.95 +1\.10", text)


def test_the_twin_is_tf2_code_importing_nothing_that_switches_to_tf1():
    with open(os.path.join(ROOT, "dcgan_mnist", "twin.py")) as f:
        source = f.read()
    assert "compat" not in source
    # The loop's numpy core and the switches' names, whose modules only touch TensorFlow on first use (lazy_tf).
    assert re.findall(r"^(?:from|import) (\S+)", source, re.M) == ["numpy", "tensorflow", ".batches", ".model"]
    code = ("import tensorflow as tf; from dcgan_mnist import twin; "
            "list(twin.train(twin.Trainer(twin.DCGAN(dim_z=4, dim_W1=8, dim_W2=4, dim_W3=2)), "
            "__import__('numpy').zeros((12, 784), 'uint8'), __import__('numpy').arange(12) % 10, 4, 1)); "
            "print(tf.executing_eagerly())")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.stdout.strip() == "True", done.stderr


@pytest.mark.parametrize("flags, message", [(["--precision", "bf16"], "--precision fp32 only"),
                                            (["--augment", "translate"], "--augment none only")])
def test_the_twin_refuses_what_it_does_not_compute(flags, message):
    with pytest.raises(CommandError, match=message):
        migrate.command(flags)


@pytest.mark.parametrize("trained, message", [
    ({"precision": "bf16"}, "--precision bf16; .* --precision fp32 only"),
    ({"augment": "translate"}, "--augment translate; .* --augment none only")])
@pytest.mark.parametrize("given", ["the run directory", "one of its checkpoints"])
def test_the_twin_refuses_a_checkpoint_trained_with_what_it_does_not_compute(tmp_path, trained, message, given):
    """A run's own settings decide, not the flags: refused before the TF1 side is started."""
    run_dir = tmp_path / "a run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "settings.json").write_text(Settings(recipe="repaired", **trained).to_json())
    for suffix in (".index", ".data-00000-of-00001"):
        (run_dir / "checkpoints" / f"ckpt-40{suffix}").write_text("")
    checkpoint = str(run_dir if given == "the run directory" else run_dir / "checkpoints" / "ckpt-40")
    with pytest.raises(CommandError, match=f"^--checkpoint {re.escape(checkpoint)} was trained with {message}$"):
        migrate.command(["--checkpoint", checkpoint, "--reference", str(tmp_path / "reference")])
    assert not (tmp_path / "reference").exists()
