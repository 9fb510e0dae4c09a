"""files.py: every file a run or an ablation reads is checked field by field, and what is wrong is named, not guessed;
the commands that read them (plot, ablate) say so in one line. No TensorFlow here."""
import contextlib
import http.server
import json
import os
import socket
import threading

import pytest

from dcgan_mnist import files
from dcgan_mnist.cli import CommandError
from dcgan_mnist.load import FILES
from dcgan_mnist.tools import ablate, plot

GOOD_SCORES = {"iteration": 389, "epoch": 1, "generated": {"n": 1000, "judge_accuracy": 0.9, "frechet": 9.0},
               "real_train": {"frechet": 1.5}, "real_test": {"judge_accuracy": 0.99}}


def with_changed(record, dotted, value):
    """A copy of ``record`` whose field at ``dotted`` (a.b) is ``value``."""
    changed = json.loads(json.dumps(record))
    *parents, last = dotted.split(".")
    place = changed
    for name in parents:
        place = place[name]
    place[last] = value
    return changed


def plot_error(tmp_path, capsys, content):
    """plot's exit status and stderr on a run whose eval.jsonl holds ``content`` (bytes)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    (run_dir / "eval.jsonl").write_bytes(content)
    capsys.readouterr()
    status = plot.main([str(run_dir), "--out", str(tmp_path / "c.png")])
    return status, capsys.readouterr().err


@pytest.mark.parametrize("field, value, says", [
    ("real_test", None, "field 'real_test' must be a JSON object, got null"),
    ("real_train", [], "field 'real_train' must be a JSON object, got []"),
    ("generated.judge_accuracy", "0.9", "field 'generated.judge_accuracy' must be a number from 0 to 1 or null, "
                                        "got \"0.9\""),
    ("generated.judge_accuracy", 1.5, "must be a number from 0 to 1 or null, got 1.5"),
    ("generated.frechet", -2, "field 'generated.frechet' must be a finite number of 0 or more or null, got -2"),
    ("real_train.frechet", True, "field 'real_train.frechet' must be a finite number of 0 or more or null, got true"),
    ("real_test.judge_accuracy", {}, "field 'real_test.judge_accuracy' must be a number from 0 to 1 or null"),
    ("iteration", 389.7, "field 'iteration' must be an integer of 0 or more, got 389.7"),
    ("iteration", "389", "field 'iteration' must be an integer of 0 or more, got \"389\""),
    ("epoch", -1, "field 'epoch' must be an integer of 0 or more, got -1"),
    ("generated", None, "field 'generated' must be a JSON object, got null"),
])
def test_plot_names_the_line_and_the_field_that_is_wrong(tmp_path, capsys, field, value, says):
    lines = [GOOD_SCORES, with_changed(with_changed(GOOD_SCORES, "iteration", 779), field, value)]
    status, err = plot_error(tmp_path, capsys, "".join(json.dumps(line) + "\n" for line in lines).encode())
    assert status == 1 and "Traceback" not in err and len(err.splitlines()) == 1
    assert f"{tmp_path / 'run' / 'eval.jsonl'}, line 2, is not a score line" in err and says in err


@pytest.mark.parametrize("content, says", [
    (b'{"iteration": 3, "epoch": 1, "generated": {"judge_accuracy": NaN, "frechet": 9}}\n',
     "line 1, is not a score line of train.py --eval-every-epoch: field 'generated.judge_accuracy' must be a number "
     "from 0 to 1 or null, got NaN"),
    (b'{"iteration": 3, "epoch": 1, "generated": {"judge_accuracy": 0.5, "frechet": Infinity}}\n',
     "field 'generated.frechet' must be a finite number of 0 or more or null, got Infinity"),
    (b'{"iteration": 3, "epoch": 1, "generated": {"judge_accuracy": 0.5, "frechet": 9}}\n\xff\xfe{"iter\n',
     "line 2, is not a score line of train.py --eval-every-epoch: byte 1 (b'\\xff') is not UTF-8 text"),
    (b"[1, 2]\n", "line 1, is not a score line of train.py --eval-every-epoch: the record must be a JSON object"),
    (b"\n", "line 1, is not a score line of train.py --eval-every-epoch: not JSON (Expecting value at column 1)"),
])
def test_plot_refuses_a_line_that_is_not_strict_json_of_scores(tmp_path, capsys, content, says):
    status, err = plot_error(tmp_path, capsys, content)
    assert status == 1 and says in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_plot_still_takes_a_line_without_real_scores(tmp_path, capsys):
    line = {key: value for key, value in GOOD_SCORES.items() if not key.startswith("real")}
    status, err = plot_error(tmp_path, capsys, (json.dumps(line) + "\n").encode())
    assert status == 0, err


# ---- data.json ----

def fingerprint():
    return {name: f"{i:064x}" for i, name in enumerate(FILES)}


def write_data_record(run_dir, record):
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "data.json"), "w") as f:
        f.write(record if isinstance(record, str) else json.dumps(record))


def test_a_whole_data_record_is_read(tmp_path):
    write_data_record(tmp_path, {"directory": "/data", "sha256": fingerprint()})
    assert files.read_data_record(str(tmp_path), "evaluate") == {"directory": "/data", "sha256": fingerprint()}


@pytest.mark.parametrize("record, says", [
    ({"directory": "/data", "sha256": ["x"]}, "field 'sha256' must be a JSON object, got [\"x\"]"),
    ({"directory": "/data", "sha256": dict(fingerprint(), **{FILES[1]: "x"})},
     f"field 'sha256.{FILES[1]}' must be 64 hexadecimal digits (a SHA-256), got \"x\""),
    ({"directory": "/data", "sha256": {FILES[0]: fingerprint()[FILES[0]]}}, f"field 'sha256.{FILES[1]}' is missing"),
    ({"directory": 3, "sha256": fingerprint()}, "field 'directory' must be a text, got 3"),
    ({"sha256": fingerprint()}, "field 'directory' is missing"),
    ('{"directory": "/d", "sha', "not JSON"),
    ("null", "the record must be a JSON object, got null"),
])
def test_a_damaged_data_record_is_refused_with_the_way_on(tmp_path, record, says):
    write_data_record(tmp_path, record)
    with pytest.raises(CommandError) as refused:
        files.read_data_record(str(tmp_path), "evaluate")
    message = str(refused.value)
    assert message.startswith(f"{tmp_path / 'data.json'} is damaged (") and says in message
    assert "--accept-damaged-records" in message and "evaluate then goes on without checking the data" in message


def test_a_missing_data_record_is_refused_or_with_the_flag_said_and_skipped(tmp_path, capsys):
    with pytest.raises(CommandError, match=r"data\.json is missing: it records which data the run was trained on"):
        files.read_data_record(str(tmp_path), "--resume")
    (tmp_path / "data.json").write_bytes(b"\xff{}")
    assert files.read_data_record(str(tmp_path), "generate", accept_damaged=True, going_on="draws anyway") is None
    assert capsys.readouterr().err == (f"warning: {tmp_path / 'data.json'} is damaged (byte 1 (b'\\xff') is not UTF-8 "
                                       f"text); generate draws anyway (--accept-damaged-records)\n")


# ---- metrics.jsonl and eval.jsonl on resume ----

def metrics_line(iteration):
    return json.dumps({"iteration": iteration, "epoch": 1, "updated": "DG"[iteration % 2], "gen_loss": 0.5,
                       "discrim_loss": 1.0, "p_real": None, "p_gen": None, "seconds": 0.01}) + "\n"


def write_metrics(tmp_path, lines):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b"".join(line if isinstance(line, bytes) else line.encode() for line in lines))
    return str(path)


def test_resume_keeps_the_lines_before_the_checkpoint_and_drops_a_line_a_crash_cut_short(tmp_path, capsys):
    path = write_metrics(tmp_path, [metrics_line(i) for i in range(12)] + [metrics_line(12)[:30]])
    assert files.lines_before(path, 8) == "".join(metrics_line(i) for i in range(8))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("damage, says", [
    ('{"iteration": 5, "epo\n', "not JSON"),
    (metrics_line(5).replace('"G"', '"X"'), "field 'updated' must be one of D, G, got \"X\""),
    (metrics_line(5).replace('"seconds": 0.01', '"seconds": NaN'), "field 'seconds' must be a finite number of 0 or"),
    (metrics_line(5).replace('"gen_loss": 0.5', '"gen_loss": "0.5"'), "field 'gen_loss' must be a finite number"),
    (metrics_line(5).replace('"iteration": 5', '"iteration": 5.5'), "field 'iteration' must be an integer"),
    (b"\xc3\x28\n", "byte 1 (b'\\xc3') is not UTF-8 text"),
])
def test_resume_refuses_a_damaged_line_in_the_middle_and_says_how_to_go_on(tmp_path, capsys, damage, says):
    lines = [metrics_line(i) for i in range(12)]
    lines[5] = damage
    path = write_metrics(tmp_path, lines)
    with pytest.raises(CommandError) as refused:
        files.lines_before(path, 12)
    message = str(refused.value)
    assert message.startswith(f"{path}, line 6, is not a metrics line of train.py: ") and says in message
    assert "mend or remove the line, or add --accept-damaged-records to drop it" in message
    assert files.lines_before(path, 12, accept_damaged=True) == "".join(lines[:5] + lines[6:])
    assert open(path, "rb").read().count(b"\n") == 12  # refusing changed nothing
    assert f"warning: {path}, line 6, is not a metrics line" in capsys.readouterr().err


def test_a_missing_metrics_file_is_refused_on_resume_and_a_missing_eval_file_is_new(tmp_path, capsys):
    with pytest.raises(CommandError, match="metrics.jsonl is missing, with the records of the run's first 8 "):
        files.lines_before(str(tmp_path / "metrics.jsonl"), 8)
    assert files.lines_before(str(tmp_path / "metrics.jsonl"), 8, accept_damaged=True) == ""
    assert "a new metrics.jsonl starts at iteration 8" in capsys.readouterr().err
    assert files.lines_before(str(tmp_path / "eval.jsonl"), 8) is None


def test_eval_lines_are_checked_as_scores_on_resume_too(tmp_path):
    path = tmp_path / "eval.jsonl"
    path.write_text(json.dumps(GOOD_SCORES) + "\n" + json.dumps(with_changed(GOOD_SCORES, "real_test", None)) + "\n")
    with pytest.raises(CommandError, match=r"line 2, is not a score line .*field 'real_test' must be a JSON object"):
        files.lines_before(str(path), 1000)


# ---- ablation.json ----

def report(accuracy=0.9):
    nearest = [{"n": 20, "nnc": 0.5, "nnd": 7.0}]
    return {"generated": {"judge_accuracy": accuracy, "frechet": 9.0, "nearest_neighbour": nearest},
            "real_train": {"frechet": 1.0, "nearest_neighbour": nearest}, "real_test": {"judge_accuracy": 0.99}}


def ablation_record():
    return {"settings": {"samples": 20}, "variants": {"original": []},
            "runs": {"original/seed-0": {"variant": "original", "seed": 0, "run_dir": "runs/original/seed-0",
                                         "scores": {"10": report()}, "stopped": None, "step_seconds": 0.1}}}


def test_a_whole_ablation_record_is_read_and_none_is_none(tmp_path):
    assert files.read_ablation(str(tmp_path)) is None
    (tmp_path / "ablation.json").write_text(json.dumps(ablation_record()))
    assert files.read_ablation(str(tmp_path)) == ablation_record()


@pytest.mark.parametrize("field, value, says", [
    ("runs", [], "field 'runs' must be a JSON object, got []"),
    ("settings", None, "field 'settings' must be a JSON object, got null"),
    ("variants.original", "--loss", "field 'variants.original' must be the variant's train.py flags"),
    ("runs.original/seed-0.seed", -1, "field 'runs.original/seed-0.seed' must be an integer from 0"),
    ("runs.original/seed-0.run_dir", "/elsewhere", "must be a path inside the ablation's folder"),
    ("runs.original/seed-0.scores", {"ten": report()}, "'ten' is not a positive integer written as text"),
    ("runs.original/seed-0.scores", {"10": {}}, "field 'runs.original/seed-0.scores.10.generated' is missing"),
    ("runs.original/seed-0.stopped", {"status": "3"}, "field 'runs.original/seed-0.stopped.status' must be"),
    ("runs.original/seed-0.step_seconds", "fast", "field 'runs.original/seed-0.step_seconds' must be"),
])
def test_a_damaged_ablation_record_is_named_field_by_field(tmp_path, field, value, says):
    record = ablation_record()
    *parents, last = field.replace("original/seed-0", "RUN").split(".")
    place = record
    for name in parents:
        place = place["original/seed-0" if name == "RUN" else name]
    place[last] = value
    (tmp_path / "ablation.json").write_text(json.dumps(record))
    with pytest.raises(CommandError) as refused:
        files.read_ablation(str(tmp_path))
    assert str(refused.value).startswith(f"{tmp_path / 'ablation.json'} is damaged: ") and says in str(refused.value)


def test_ablate_on_a_damaged_record_says_so_in_one_line(tmp_path, capsys):
    (tmp_path / "ablation.json").write_text(json.dumps(dict(ablation_record(), runs=[])))
    assert ablate.main(["--out", str(tmp_path), "--dry-run"]) == 1
    err = capsys.readouterr().err
    assert err == (f"error: {tmp_path / 'ablation.json'} is damaged: field 'runs' must be a JSON object, got []; move "
                   f"it away to start the ablation again\n")


# ---- ablate --scheduler ----

def test_the_samples_of_a_score_have_a_limit_said_with_its_size(tmp_path, capsys):
    assert ablate.main(["--out", str(tmp_path), "--samples", "10000000", "--dry-run"]) == 1
    assert capsys.readouterr().err == ("error: --samples 10,000,000 would hold 94.1 GB of images while they are "
                                       "scored; the limit is 100,000\n")


def stop_accepting(listener):
    """Close a listening socket whose accept() another thread is blocked in: on Linux close() alone does not wake
    that thread (its join would wait out the timeout), shutdown() does, and accept() then raises OSError."""
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()


@pytest.fixture
def silent_listener():
    """A socket on 127.0.0.1 that accepts connections and never answers; closed afterwards."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    stop_accepting(listener)
    for connection in accepted:
        connection.close()
    thread.join(5)


@pytest.fixture
def http_server():
    """A tiny HTTP server on 127.0.0.1 (not Dask); stopped afterwards."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def babbler():
    """A server on 127.0.0.1 that greets every connection with a line of text, as SSH or SMTP do; closed after."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                connection = listener.accept()[0]
            except OSError:
                return
            connection.sendall(b"SSH-2.0-OpenSSH_9.6 not dask at all\r\n" * 4)
            connection.close()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    stop_accepting(listener)
    thread.join(5)


def scheduler_error(tmp_path, capsys, address):
    capsys.readouterr()
    status = ablate.main(["--out", str(tmp_path / "out"), "--scheduler", address, "--connect-timeout", "1",
                          "--dry-run"])
    err = capsys.readouterr().err
    assert status == 1 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and address in errors[0]
    return errors[0]


def test_a_scheduler_that_never_answers_is_an_error_after_the_timeout(tmp_path, capsys, silent_listener):
    assert scheduler_error(tmp_path, capsys, silent_listener) == (
        f"error: --scheduler {silent_listener} did not answer as a Dask scheduler within 1 s (--connect-timeout): "
        f"something took the connection, but it is not a Dask scheduler, or not one that answers")


def test_an_http_server_is_not_a_scheduler(tmp_path, capsys, http_server):
    assert "is not a Dask scheduler" in scheduler_error(tmp_path, capsys, http_server)


def test_a_server_that_talks_first_is_not_a_scheduler(tmp_path, capsys, babbler):
    assert "is not a Dask scheduler" in scheduler_error(tmp_path, capsys, babbler)


def test_nothing_listening_and_a_missing_port_are_named(tmp_path, capsys):
    free = socket.create_server(("127.0.0.1", 0))
    address = f"tcp://127.0.0.1:{free.getsockname()[1]}"
    free.close()
    assert "nothing answers there (Connection refused)" in scheduler_error(tmp_path, capsys, address)
    assert "is not an address HOST:PORT (missing port number" in scheduler_error(tmp_path, capsys, "tcp://127.0.0.1")


@pytest.mark.parametrize("address", ["nonsense://127.0.0.1:8786", "http://127.0.0.1:8786", "inproc://x"])
def test_an_unknown_scheme_is_a_usage_error(tmp_path, capsys, address):
    with pytest.raises(SystemExit) as stopped:
        ablate.main(["--out", str(tmp_path), "--scheduler", address])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "Traceback" not in err
    assert f"argument --scheduler: {address!r} has the scheme" in err and "tcp://HOST:PORT or tls://HOST:PORT" in err
