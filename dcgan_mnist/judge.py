"""The judge: a small CNN that names the digit in an image, for scoring what the generator draws.

It is trained once per data set, on the whole training file (the test file is never seen), and
cached with its test accuracy in ``<root>/<dataset>-<hash>``, where the hash covers the training and
test data and its training settings (TRAINING), so other data or other settings never reuse a stale judge. The
default root is ``$XDG_CACHE_HOME/dcgan-mnist/judge`` (``~/.cache/...`` when that is unset).
"""
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from .cli import CommandError
from .model import tf
from .precision import threads_config

# How the judge is trained. Every value goes into the cache hash, so changing one retrains the judge.
TRAINING = {
    "conv1": [5, 16],      # kernel size, channels (28x28, then 2x2 max-pool to 14x14)
    "conv2": [5, 32],      # kernel size, channels (14x14, then 2x2 max-pool to 7x7)
    "features": 128,       # width of the penultimate layer (the Frechet distance's features)
    "steps": 3000,         # Adam steps; about 3 passes over 60,000 images
    "batch_size": 64,
    "learning_rate": 0.001,
    "seed": 0,
}
CHECKPOINT_NAME = "judge"
INFO_NAME = "judge.json"
# judge.json keeps the training settings under "recipe", their name when the first judges were cached.
INFO_KEYS = ("test_accuracy", "train_images", "test_images", "seconds", "recipe")
# Images per session run when classifying; bounds memory, not results.
CLASSIFY_BATCH = 500


def default_root():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "dcgan-mnist", "judge")


def unit_images(images):
    """Images as float32 [N, 28, 28, 1] in [0, 1]; uint8 input is divided by 255."""
    images = np.asarray(images)
    scale = 255. if images.dtype == np.uint8 else 1.
    return (images.astype(np.float32) / scale).reshape(-1, 28, 28, 1)


class JudgeNet:
    """Two conv + max-pool layers, a ReLU feature layer and a softmax over the ten classes."""

    def __init__(self, training):
        init = tf.glorot_uniform_initializer()

        def weight(name, shape):
            return tf.get_variable(name, shape, tf.float32, initializer=init)

        def bias(name, size):
            return tf.get_variable(name, [size], tf.float32, initializer=tf.zeros_initializer())

        (k1, c1), (k2, c2), width = training["conv1"], training["conv2"], training["features"]
        self.images = tf.placeholder(tf.float32, [None, 28, 28, 1], name="images")
        self.labels = tf.placeholder(tf.int64, [None], name="labels")
        with tf.variable_scope("judge"):
            self.weights = [weight("conv1_W", [k1, k1, 1, c1]), bias("conv1_b", c1),
                            weight("conv2_W", [k2, k2, c1, c2]), bias("conv2_b", c2),
                            weight("features_W", [7 * 7 * c2, width]), bias("features_b", width),
                            weight("logits_W", [width, 10]), bias("logits_b", 10)]
        W1, b1, W2, b2, W3, b3, W4, b4 = self.weights
        h = self.images
        for W, b in ((W1, b1), (W2, b2)):
            h = tf.nn.relu(tf.nn.conv2d(h, W, strides=[1, 1, 1, 1], padding="SAME") + b)
            h = tf.nn.max_pool2d(h, ksize=2, strides=2, padding="SAME")
        self.features = tf.nn.relu(tf.matmul(tf.reshape(h, [-1, 7 * 7 * c2]), W3) + b3)
        logits = tf.matmul(self.features, W4) + b4
        self.probabilities = tf.nn.softmax(logits)
        self.loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=self.labels,
                                                                                  logits=logits))
        self.train_op = tf.train.AdamOptimizer(training["learning_rate"]).minimize(self.loss)


class Judge:
    """A judge in its own graph and session. ``info`` is its judge.json (test accuracy and more)."""

    def __init__(self, directory, training, info, threads=0, restore=True):
        self.directory = directory
        self.info = info
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.set_random_seed(training["seed"])
            self.net = JudgeNet(training)
            self.saver = tf.train.Saver(var_list=self.net.weights)
            self.session = tf.Session(config=threads_config(threads))
            if restore:
                try:
                    self.saver.restore(self.session, os.path.join(directory, CHECKPOINT_NAME))
                except (ValueError, tf.errors.OpError) as e:
                    self.session.close()
                    raise damaged(directory, f"has a damaged checkpoint ({restore_failure(e, directory)})") from None
            else:
                self.session.run(tf.global_variables_initializer())

    def classify(self, images):
        """(probabilities [N, 10], penultimate features [N, features]) for images in [0, 1] or uint8."""
        images = unit_images(images)
        outputs = [self.session.run([self.net.probabilities, self.net.features],
                                    feed_dict={self.net.images: images[i:i + CLASSIFY_BATCH]})
                   for i in range(0, len(images), CLASSIFY_BATCH)]
        return np.concatenate([p for p, _ in outputs]), np.concatenate([f for _, f in outputs])

    def accuracy(self, images, labels):
        probabilities, _ = self.classify(images)
        return float(np.mean(probabilities.argmax(1) == labels))

    def close(self):
        self.session.close()


def restore_failure(error, directory):
    """Why the Saver could not restore, in one line: TensorFlow's messages run over many lines, with the graph
    node and where it was built around the one line that says what is wrong with which file."""
    if isinstance(error, ValueError):  # the Saver checks only that the index exists before reading
        return f"{CHECKPOINT_NAME}.index is missing"
    lines = [line.strip() for line in error.message.splitlines()]
    reason = next((line for line in reversed(lines) if line and not line.startswith("[[")), type(error).__name__)
    return reason.replace(directory + os.sep, "")


def damaged(directory, what):
    return CommandError(f"judge cache {directory} {what}; delete the folder to retrain")


def fit(judge, images, labels, training):
    """Adam on shuffled mini-batches for training['steps'] steps; numpy's global RNG is left alone."""
    rng = np.random.RandomState(training["seed"])
    batch_size = min(training["batch_size"], len(images))
    order = np.array([], dtype=np.int64)
    net = judge.net
    for _ in range(training["steps"]):
        if len(order) < batch_size:
            order = np.concatenate([order, rng.permutation(len(images))])
        rows, order = order[:batch_size], order[batch_size:]
        judge.session.run(net.train_op, feed_dict={net.images: unit_images(images[rows]), net.labels: labels[rows]})


def data_hash(training, *arrays):
    digest = hashlib.sha256(json.dumps(training, sort_keys=True).encode())
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def train_judge(directory, train_x, train_y, test_x, test_y, training, threads=0):
    """Train a judge, measure it on the test data and save both into ``directory`` (which must not exist)."""
    started = time.time()
    judge = Judge(directory, training, info=None, threads=threads, restore=False)
    fit(judge, train_x, train_y, training)
    judge.info = {"test_accuracy": judge.accuracy(test_x, test_y), "train_images": len(train_x),
                  "test_images": len(test_x), "seconds": round(time.time() - started, 1), "recipe": training}
    os.makedirs(directory)
    judge.saver.save(judge.session, os.path.join(directory, CHECKPOINT_NAME), write_meta_graph=False)
    with open(os.path.join(directory, INFO_NAME), "w") as f:
        json.dump(judge.info, f, indent=2)
        f.write("\n")
    return judge


def cached(directory, training, threads):
    """The judge cached in ``directory``, or a one-line CommandError naming the folder and what is wrong with it."""
    if not os.path.isdir(directory):
        raise CommandError(f"judge cache {directory} is not a folder; delete it to retrain")
    info_path = os.path.join(directory, INFO_NAME)
    if not os.path.exists(info_path):
        raise damaged(directory, f"has no {INFO_NAME}")
    try:
        with open(info_path) as f:
            info = json.load(f)
    except (OSError, ValueError) as e:  # ValueError: not JSON, or not UTF-8
        raise damaged(directory, f"has an unreadable {INFO_NAME} ({e})") from None
    if not isinstance(info, dict):
        raise damaged(directory, f"has a {INFO_NAME} that is not a JSON object")
    missing = [key for key in INFO_KEYS if key not in info]
    if missing:
        raise damaged(directory, f"has a {INFO_NAME} without {', '.join(missing)}")
    return Judge(directory, training, info, threads=threads)


def cache_dir(root, name, train_x, train_y, test_x, test_y, training=TRAINING):
    """The folder under ``root`` of the judge of this data and training."""
    return os.path.join(root, f"{name}-{data_hash(training, train_x, train_y, test_x, test_y)}")


def load_or_train(root, name, train_x, train_y, test_x, test_y, training=TRAINING, threads=0):
    """The cached judge for this data, trained (and cached) first if there is none.

    ``name`` (e.g. the data set's name) starts the cache folder's name. A judge is trained in a
    temporary folder and renamed into place when complete, so a crash never leaves half a judge and
    two processes training at once both end up scoring with the one renamed first. An interrupt (Ctrl-C, or a
    signal handler's SystemExit) while training removes the temporary folder.

    Since the cache folder only ever appears whole, a damaged one (judge.json unreadable, not an object or
    missing keys; the checkpoint's index or data missing or truncated; a file or an empty folder in its place)
    was changed by something else: a crash before the files reached the disk, a full disk while copying the
    cache, a hand edit. That is reported as a one-line CommandError naming the folder, the damage and the fix
    (delete it to retrain), and not repaired here: another process may be restoring from that folder at the
    moment, a file in its place is not ours to delete, and a silent retraining would hide a failing disk. The
    ``checkpoint`` state file is never read (the Saver restores from the prefix), so damage to it is harmless."""
    directory = cache_dir(root, name, train_x, train_y, test_x, test_y, training)
    if os.path.lexists(directory):
        return cached(directory, training, threads)
    try:
        os.makedirs(root, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".training-", dir=root)
    except OSError as e:
        raise CommandError(f"judge directory {root!r} is not writable: {e.strerror or e}") from None
    try:
        print(f"judge: training on {len(train_x)} images ({training['steps']} steps), once; cached in {directory}",
              file=sys.stderr, flush=True)
        judge = train_judge(os.path.join(staging, "judge"), train_x, train_y, test_x, test_y, training, threads)
        try:
            os.rename(judge.directory, directory)
            judge.directory = directory
        except OSError:
            if not os.path.lexists(directory):  # not a lost race with another process: a real failure
                raise
            # Score with the judge that won, as every later run will: with other thread counts the two
            # trainings need not agree to the last bit.
            judge.close()
            judge = cached(directory, training, threads)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"judge: test accuracy {judge.info['test_accuracy']:.4f} on {len(test_x)} images "
          f"({judge.info['seconds']} s)", file=sys.stderr, flush=True)
    return judge
