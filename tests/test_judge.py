"""The judge's cache when it is damaged, and when training it is interrupted: a one-line error naming the
folder, what is wrong and the fix, never a traceback; and nothing half-made left behind."""
import json
import os
import re
import shutil
import signal
import time

import numpy as np
import pytest
from conftest import synthetic_digits

from dcgan_mnist import judge as judge_module
from dcgan_mnist.cli import CommandError

# Enough training to have weights worth restoring; what they score does not matter here.
TRAINING = dict(judge_module.TRAINING, steps=20, batch_size=16)
TRAIN = synthetic_digits(100, seed=0)
TEST = synthetic_digits(50, seed=1)
DATA = "judge.data-00000-of-00001"


def load(root):
    return judge_module.load_or_train(str(root), "synthetic", *TRAIN, *TEST, training=TRAINING)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The cache folder of a judge trained once for this module, and its probabilities for the test images."""
    judge = load(tmp_path_factory.mktemp("trained"))
    try:
        return judge.directory, judge.classify(TEST[0])[0]
    finally:
        judge.close()


@pytest.fixture
def cache(trained, tmp_path, monkeypatch):
    """A copy of the trained cache folder, for one test to damage; a judge trained instead of loaded fails."""
    directory = str(tmp_path / "judges" / os.path.basename(trained[0]))
    shutil.copytree(trained[0], directory)

    def no_training(*args, **kwargs):
        raise AssertionError("the cached judge should have been loaded, not trained again")
    monkeypatch.setattr(judge_module, "train_judge", no_training)
    return directory


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def truncate(path, keep):
    """Cut the file to ``keep`` (a fraction) of its size, as a copy onto a full disk or a crash would."""
    with open(path, "r+b") as f:
        f.truncate(int(os.path.getsize(path) * keep))


def flip_a_byte(path):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[len(data) // 2] ^= 0xFF
    write(path, bytes(data))


def info_without(*keys):
    def damage(directory):
        path = os.path.join(directory, judge_module.INFO_NAME)
        with open(path) as f:
            info = json.load(f)
        write(path, json.dumps({k: v for k, v in info.items() if k not in keys}).encode())
    return damage


def replace_by_a_file(directory):
    shutil.rmtree(directory)
    write(directory, b"")


def empty(directory):
    shutil.rmtree(directory)
    os.mkdir(directory)


# (damage done to the cache folder, what the message must say about it)
DAMAGES = {
    # (a) judge.json is not JSON
    "info-truncated": (lambda d: truncate(os.path.join(d, "judge.json"), 0.5),
                       r"has an unreadable judge\.json \(.*char \d+\)"),
    "info-empty": (lambda d: write(os.path.join(d, "judge.json"), b""),
                   r"has an unreadable judge\.json \(Expecting value: line 1 column 1 \(char 0\)\)"),
    "info-not-text": (lambda d: write(os.path.join(d, "judge.json"), b"\xff\xfe{}"),
                      r"has an unreadable judge\.json \(.*can't decode byte 0xff"),
    # (b) judge.json is JSON but not a judge's info
    "info-a-list": (lambda d: write(os.path.join(d, "judge.json"), b"[0.98, 100]"),
                    r"has a judge\.json that is not a JSON object"),
    "info-missing-keys": (info_without("test_accuracy", "recipe"), r"has a judge\.json without test_accuracy, recipe"),
    # (c) the checkpoint's index
    "index-missing": (lambda d: os.remove(os.path.join(d, "judge.index")),
                      r"has a damaged checkpoint \(judge\.index is missing\)"),
    "index-empty": (lambda d: truncate(os.path.join(d, "judge.index"), 0),
                    r"has a damaged checkpoint \(file is too short to be an sstable\)"),
    "index-truncated": (lambda d: truncate(os.path.join(d, "judge.index"), 0.5),
                        r"has a damaged checkpoint \(not an sstable \(bad magic number\)\)"),
    "index-corrupt": (lambda d: flip_a_byte(os.path.join(d, "judge.index")),
                      r"has a damaged checkpoint \(Unable to read file \(judge\.index\)\..*checksum mismatch\)"),
    # (d) the checkpoint's data
    "data-missing": (lambda d: os.remove(os.path.join(d, DATA)),
                     rf"has a damaged checkpoint \({DATA}; No such file or directory\)"),
    "data-empty": (lambda d: truncate(os.path.join(d, DATA), 0),
                   r"has a damaged checkpoint \(Read less bytes than requested\)"),
    "data-truncated": (lambda d: truncate(os.path.join(d, DATA), 0.99),
                       r"has a damaged checkpoint \(Read less bytes than requested\)"),
    "data-corrupt": (lambda d: flip_a_byte(os.path.join(d, DATA)),
                     r"has a damaged checkpoint \(TensorBundle at judge shard 0 .*Checksum does not match"),
    # (e) the folder itself
    "folder-empty": (empty, r"has no judge\.json"),
    "folder-is-a-file": (replace_by_a_file, r"is not a folder"),
}


@pytest.mark.parametrize("damage, says", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_damaged_cache_is_named_with_its_damage_and_the_fix_on_one_line(cache, damage, says):
    damage(cache)
    with pytest.raises(CommandError) as raised:
        load(os.path.dirname(cache))
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"judge cache {cache} ")
    assert re.search(says, message), message
    assert message.endswith("; delete the folder to retrain" if os.path.isdir(cache) else "; delete it to retrain")
    # Reported, not repaired: the folder is left as it was and nothing was staged beside it.
    assert os.path.lexists(cache)
    assert os.listdir(os.path.dirname(cache)) == [os.path.basename(cache)]


@pytest.mark.parametrize("state", [None, b"", b'model_checkpoint_path: "nothing"\n'], ids=["missing", "empty", "other"])
def test_the_checkpoint_state_file_is_not_needed(trained, cache, state):
    """The Saver restores from the checkpoint's prefix and never reads ``checkpoint`` (which, written in the
    staging folder, names a path gone since the rename), so any damage to it leaves the judge whole."""
    path = os.path.join(cache, "checkpoint")
    os.remove(path)
    if state is not None:
        write(path, state)
    judge = load(os.path.dirname(cache))
    try:
        np.testing.assert_array_equal(judge.classify(TEST[0])[0], trained[1])
    finally:
        judge.close()


def raise_system_exit(signum, frame):
    raise SystemExit(128 + signum)


@pytest.mark.parametrize("signum, handler, raised", [(signal.SIGINT, signal.default_int_handler, KeyboardInterrupt),
                                                     (signal.SIGTERM, raise_system_exit, SystemExit)],
                         ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("stage", ["fit", "train_judge"], ids=["while-fitting", "before-the-rename"])
def test_an_interrupted_training_leaves_nothing_behind(tmp_path, monkeypatch, signum, handler, raised, stage):
    real = getattr(judge_module, stage)

    def interrupted(*args, **kwargs):
        real(*args, **kwargs)  # so that, interrupted after train_judge, the staging folder holds a whole judge
        os.kill(os.getpid(), signum)
        time.sleep(30)  # the handler raises out of the sleep
        raise AssertionError("the signal handler did not raise")
    monkeypatch.setattr(judge_module, stage, interrupted)
    previous = signal.signal(signum, handler)
    try:
        with pytest.raises(raised):
            load(tmp_path)
    finally:
        signal.signal(signum, previous)
    assert os.listdir(tmp_path) == []
