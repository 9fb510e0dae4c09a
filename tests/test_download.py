"""The MNIST download, against a local HTTP server on 127.0.0.1 and file:// URLs (never the network)."""
import functools
import hashlib
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import FILES, ROOT, write_mnist

from dcgan_mnist import cli, load
from dcgan_mnist.load import DataError

GZ_NAMES = sorted(name + ".gz" for name in FILES)
# Set when the server stops, so that stalled connections end.
RELEASE = threading.Event()
# Seconds between the bytes of a trickling mirror: far less than any timeout, far too slow to finish a file.
TRICKLE_INTERVAL = 0.2


class MirrorHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files from a folder. Under /cut/ it promises the whole file but sends only half; under /stall/
    it sends half and then nothing more; under /silent/ it accepts the request and never answers; under
    /trickle/ (and any folder in it, so that there can be several such mirrors) it sends the right file
    one byte every TRICKLE_INTERVAL seconds."""

    def do_GET(self):
        kind, _, name = self.path[1:].partition("/")
        if kind == "silent":
            RELEASE.wait(60)
            return
        if kind not in ("cut", "stall", "trickle"):
            return super().do_GET()
        data = Path(self.directory, "good", os.path.basename(name)).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if kind == "trickle":
            return self.trickle(data)
        self.wfile.write(data[:len(data) // 2])
        self.wfile.flush()
        if kind == "stall":
            RELEASE.wait(60)
        self.close_connection = True

    def trickle(self, data):
        try:
            for i in range(len(data)):
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                if RELEASE.wait(TRICKLE_INTERVAL):
                    return
        except OSError:
            pass  # the client gave up and closed the connection: what these tests expect of it

    def log_message(self, *args):
        pass


def sha256_of(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """A local HTTP server with a good mirror (good/), one serving a wrong train-labels file (bad/),
    and an empty one (empty/). Yields its base URL, root folder, the SHA-256 of each file in good/
    and the arrays written there."""
    root = tmp_path_factory.mktemp("www")
    arrays = write_mnist(str(root / "good"), 40, 10, gz=True)
    shutil.copytree(root / "good", root / "bad")
    write_mnist(str(root / "other"), 40, 10, gz=True, seed=9)
    shutil.copy(root / "other" / (FILES[1] + ".gz"), root / "bad" / (FILES[1] + ".gz"))
    (root / "empty").mkdir()
    hashes = {name: sha256_of(root / "good" / name) for name in GZ_NAMES}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(MirrorHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    RELEASE.clear()
    yield types.SimpleNamespace(base=f"http://127.0.0.1:{server.server_port}/", root=root, hashes=hashes,
                                arrays=arrays)
    RELEASE.set()
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def default_sigterm():
    """SIGTERM with its default action for the test, whatever the test runner had installed."""
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def assert_good_download(target, mirror):
    assert sorted(os.listdir(target)) == GZ_NAMES  # no temporary folder or partial file left over
    for name in GZ_NAMES:
        assert sha256_of(os.path.join(target, name)) == mirror.hashes[name]
    tr_x, tr_y, te_x, te_y = mirror.arrays
    trX, teX, trY, teY = load.mnist(str(target))
    np.testing.assert_array_equal(trX, tr_x.reshape(40, 784))
    np.testing.assert_array_equal(teX, te_x.reshape(10, 784))
    np.testing.assert_array_equal(trY, tr_y)
    np.testing.assert_array_equal(teY, te_y)


def test_download_into_a_relative_folder_lands_verified_files(mirror, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    load.download_mnist("data/", mirrors=[mirror.base + "good/"], hashes=mirror.hashes)
    assert_good_download(tmp_path / "data", mirror)


def test_file_urls_work_as_mirrors(mirror, tmp_path):
    file_url = (mirror.root / "good").as_uri() + "/"
    load.download_mnist(str(tmp_path / "data"), mirrors=[file_url], hashes=mirror.hashes)
    assert_good_download(tmp_path / "data", mirror)


def test_checksum_mismatch_leaves_no_file_behind(mirror, tmp_path):
    target = tmp_path / "data"
    with pytest.raises(DataError) as e:
        load.download_mnist(str(target), mirrors=[mirror.base + "bad/"], hashes=mirror.hashes)
    assert f"{mirror.base}bad/{FILES[1]}.gz" in str(e.value)
    assert "hash does not match" in str(e.value)
    # train-images was good but is not kept on its own: the set lands whole or not at all.
    assert not os.path.exists(target)  # nothing left: the folder the download made goes too


def test_cut_short_transfer_leaves_no_file_behind(mirror, tmp_path):
    target = tmp_path / "data"
    with pytest.raises(DataError) as e:
        load.download_mnist(str(target), mirrors=[mirror.base + "cut/"], hashes=mirror.hashes)
    assert f"{mirror.base}cut/{FILES[0]}.gz: cut short: received " in str(e.value)
    assert not os.path.exists(target)  # nothing left: the folder the download made goes too


def test_failing_mirrors_are_skipped_for_the_next_one(mirror, tmp_path, closed_port_url):
    mirrors = [closed_port_url] + [mirror.base + name for name in ("empty/", "cut/", "bad/", "good/")]
    load.download_mnist(str(tmp_path / "data"), mirrors=mirrors, hashes=mirror.hashes)
    assert_good_download(tmp_path / "data", mirror)


def test_a_rejected_file_is_not_offered_to_the_next_mirror_as_a_local_copy(mirror, tmp_path, capsys):
    load.download_mnist(str(tmp_path / "data"), mirrors=[mirror.base + "bad/", mirror.base + "good/"],
                        hashes=mirror.hashes)
    out = capsys.readouterr().out
    assert f"Downloading data from {mirror.base}good/{FILES[1]}.gz" in out
    assert "local file was found" not in out
    assert_good_download(tmp_path / "data", mirror)


def test_all_mirrors_down_says_which_files_to_put_where(mirror, tmp_path, closed_port_url):
    target = str(tmp_path / "data")
    with pytest.raises(DataError) as e:
        load.download_mnist(target, mirrors=[closed_port_url, mirror.base + "empty/"], hashes=mirror.hashes)
    message = str(e.value)
    assert f"could not download MNIST into {target}" in message
    assert f"{closed_port_url}{FILES[0]}.gz" in message and f"{mirror.base}empty/{FILES[0]}.gz" in message
    assert f"Put the four MNIST files {', '.join(FILES)} in {target}" in message
    assert "raw or gzip-compressed (.gz)" in message
    assert not os.path.exists(target)  # nothing left: the folder the download made goes too


def test_a_mirror_that_stalls_mid_file_times_out_and_the_next_is_tried(mirror, tmp_path):
    name = GZ_NAMES[0]
    stalled = f"{mirror.base}stall/{name}"
    path, failures = load.fetch_verified(name, str(tmp_path), [mirror.base + "stall/", mirror.base + "good/"],
                                         mirror.hashes[name], timeout=1)
    assert failures == [f"{stalled}: timed out: no data for 1 s (set {load.TIMEOUT_VARIABLE} to wait longer)"]
    assert sha256_of(path) == mirror.hashes[name]
    assert socket.getdefaulttimeout() is None  # the limit is lifted again once the download is over


def test_a_mirror_that_never_answers_times_out_with_a_message_naming_the_limit(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv(load.TIMEOUT_VARIABLE, "1")
    target = str(tmp_path / "data")
    with pytest.raises(DataError) as e:
        load.download_mnist(target, mirrors=[mirror.base + "silent/"], hashes=mirror.hashes)
    message = str(e.value)
    assert (f"{mirror.base}silent/{FILES[0]}.gz: timed out: no data for 1 s (set {load.TIMEOUT_VARIABLE} to wait "
            f"longer)") in message
    assert f"Put the four MNIST files {', '.join(FILES)} in {target}" in message
    assert not os.path.exists(target)  # nothing left: the folder the download made goes too


def deadline_failure(url, seconds):
    return (f"{url}: deadline passed: not complete within {seconds:g} s (set {load.DEADLINE_VARIABLE} to allow "
            f"longer)")


def test_a_trickling_mirror_is_given_up_at_the_deadline_and_the_next_is_tried(mirror, tmp_path):
    name = GZ_NAMES[0]
    trickling = mirror.base + "trickle/"
    start = time.monotonic()
    path, failures = load.fetch_verified(name, str(tmp_path), [trickling, mirror.base + "good/"],
                                         mirror.hashes[name], timeout=5, deadline=1)
    assert time.monotonic() - start < 3  # the deadline, one more byte of trickle and the good download
    assert failures == [deadline_failure(trickling + name, 1)]
    assert sha256_of(path) == mirror.hashes[name]
    assert os.listdir(tmp_path) == [name]


def test_when_every_mirror_trickles_the_error_names_the_file_and_the_deadline(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv(load.DEADLINE_VARIABLE, "1")
    mirrors = [mirror.base + "trickle/a/", mirror.base + "trickle/b/"]
    target = str(tmp_path / "data")
    start = time.monotonic()
    with pytest.raises(DataError) as e:
        load.download_mnist(target, mirrors=mirrors, hashes=mirror.hashes)
    assert time.monotonic() - start < 4
    message = str(e.value)
    assert message.startswith(f"could not download MNIST into {target}:\n")
    for url in mirrors:
        assert deadline_failure(f"{url}{FILES[0]}.gz", 1) in message
    assert f"Put the four MNIST files {', '.join(FILES)} in {target}" in message
    assert not os.path.exists(target)  # nothing left: the folder the download made goes too


def test_sigterm_during_a_download_removes_the_staging_folder_and_exits_without_a_traceback(mirror, tmp_path):
    target = tmp_path / "data"
    script = ("import json, sys\n"
              "from dcgan_mnist import load\n"
              "load.download_mnist(sys.argv[1], mirrors=[sys.argv[2]], hashes=json.loads(sys.argv[3]))\n")
    command = [sys.executable, "-c", script, str(target), mirror.base + "trickle/", json.dumps(mirror.hashes)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        give_up_at = time.monotonic() + 10
        # A file being written in the staging folder: the download is under way.
        while not list(target.glob(".download-*/*.gz")):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < give_up_at, "the download never started"
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == cli.EXIT_SIGTERM
    assert "Traceback" not in stderr
    assert not os.path.exists(target)  # nothing left: the folder the download made goes too


def test_ctrl_c_during_a_download_removes_the_staging_folder(tmp_path, monkeypatch, default_sigterm):
    def interrupted(name, staging, *args):
        Path(staging, name).write_bytes(b"part of a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(load, "fetch_verified", interrupted)
    target = tmp_path / "data"
    with pytest.raises(KeyboardInterrupt):
        load.download_mnist(str(target), mirrors=[], hashes=load.MNIST_SHA256)
    assert not os.path.exists(target)  # nothing left: the folder the download made goes too
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored


def test_sigterm_is_turned_into_an_exit_only_while_it_has_its_default_action(tmp_path, monkeypatch, default_sigterm):
    seen = []

    def record_handler(name, staging, *args):
        seen.append(signal.getsignal(signal.SIGTERM))
        return None, ["no mirror"]

    def own_handler(signum, frame):
        pass

    monkeypatch.setattr(load, "fetch_verified", record_handler)
    for target in (tmp_path / "default", tmp_path / "own"):
        with pytest.raises(DataError):
            load.download_mnist(str(target), mirrors=[], hashes=load.MNIST_SHA256)
        signal.signal(signal.SIGTERM, own_handler)
    assert seen == [cli.raise_system_exit, own_handler]
    assert signal.getsignal(signal.SIGTERM) is own_handler  # left as the program set it


@pytest.mark.parametrize("value, seconds", [(None, 600), ("", 600), ("1.5", 1.5), ("3600", 3600)])
def test_download_deadline_is_10_minutes_unless_the_variable_says_otherwise(monkeypatch, value, seconds):
    if value is None:
        monkeypatch.delenv(load.DEADLINE_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(load.DEADLINE_VARIABLE, value)
    assert load.download_deadline() == seconds


@pytest.mark.parametrize("value", ["0", "-5", "later"])
def test_a_bad_download_deadline_is_an_error_naming_the_variable(monkeypatch, tmp_path, value):
    monkeypatch.setenv(load.DEADLINE_VARIABLE, value)
    with pytest.raises(DataError, match=f"^{load.DEADLINE_VARIABLE} .*expected a positive number, got '{value}'"):
        load.download_mnist(str(tmp_path / "data"), mirrors=[], hashes={})
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("value, seconds", [(None, 60), ("", 60), ("2.5", 2.5), ("300", 300)])
def test_download_timeout_is_60_seconds_unless_the_variable_says_otherwise(monkeypatch, value, seconds):
    if value is None:
        monkeypatch.delenv(load.TIMEOUT_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(load.TIMEOUT_VARIABLE, value)
    assert load.download_timeout() == seconds


@pytest.mark.parametrize("value", ["0", "-5", "soon", "inf"])
def test_a_bad_download_timeout_is_an_error_naming_the_variable(monkeypatch, tmp_path, value):
    monkeypatch.setenv(load.TIMEOUT_VARIABLE, value)
    with pytest.raises(DataError, match=f"^{load.TIMEOUT_VARIABLE} .*expected a positive number, got '{value}'"):
        load.download_mnist(str(tmp_path / "data"), mirrors=[], hashes={})
    assert not (tmp_path / "data").exists()


def test_unwritable_target_is_a_data_error(tmp_path, mirror):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_bytes(b"")
    with pytest.raises(DataError) as e:
        load.download_mnist(str(not_a_folder), mirrors=[mirror.base + "good/"], hashes=mirror.hashes)
    assert str(e.value).startswith(f"{not_a_folder}: cannot download into it")


def test_load_dataset_downloads_mnist_into_an_empty_folder_and_names_a_missing_one(mirror, tmp_path, monkeypatch):
    local_download = functools.partial(load.download_mnist, mirrors=[mirror.base + "good/"], hashes=mirror.hashes)
    monkeypatch.setattr(load, "download_mnist", local_download)
    target = str(tmp_path / "new" / "data")
    # A folder named that is not there is a mistyped --data-dir more often than a place to download into (issue 40).
    with pytest.raises(DataError, match=f"the folder {target} does not exist"):
        load.load_dataset("mnist", target, valid_size=15)
    assert not os.path.exists(target)
    os.makedirs(target)
    split = load.load_dataset("mnist", target, valid_size=15)
    assert [a.shape for a in split] == [(25, 784), (15, 784), (10, 784), (25,), (15,), (10,)]
    assert sorted(os.listdir(target)) == GZ_NAMES


def test_fashion_mnist_is_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.setattr(load, "FASHION_MNIST_DIR", str(tmp_path / "absent"))
    monkeypatch.setattr(load, "download_mnist", lambda *a, **k: pytest.fail("downloaded Fashion-MNIST"))
    with pytest.raises(DataError):
        load.load_dataset("fashion-mnist", str(tmp_path / "data"))
    assert not (tmp_path / "data").exists()


def test_published_checksums_cover_the_four_files():
    assert sorted(load.MNIST_SHA256) == GZ_NAMES
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in load.MNIST_SHA256.values())
    assert all(m.startswith("https://") and m.endswith("/") for m in load.MIRRORS)
