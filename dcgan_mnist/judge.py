"""The judge: a small CNN that names the digit in an image, for scoring what the generator draws.

It is trained once per data set, on the whole training file (the test file is never seen), and
cached with its test accuracy in ``<root>/<dataset>-<hash>``, where the hash covers the training and
test data and the recipe below, so other data or another recipe never reuses a stale judge. The
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

# The recipe. Every value goes into the cache hash, so changing one retrains the judge.
RECIPE = {
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

    def __init__(self, recipe):
        init = tf.glorot_uniform_initializer()

        def weight(name, shape):
            return tf.get_variable(name, shape, tf.float32, initializer=init)

        def bias(name, size):
            return tf.get_variable(name, [size], tf.float32, initializer=tf.zeros_initializer())

        (k1, c1), (k2, c2), width = recipe["conv1"], recipe["conv2"], recipe["features"]
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
        self.train_op = tf.train.AdamOptimizer(recipe["learning_rate"]).minimize(self.loss)


class Judge:
    """A judge in its own graph and session. ``info`` is its judge.json (test accuracy and more)."""

    def __init__(self, directory, recipe, info, threads=0, restore=True):
        self.directory = directory
        self.info = info
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.set_random_seed(recipe["seed"])
            self.net = JudgeNet(recipe)
            self.saver = tf.train.Saver(var_list=self.net.weights)
            config = tf.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads)
            self.session = tf.Session(config=config)
            if restore:
                self.saver.restore(self.session, os.path.join(directory, CHECKPOINT_NAME))
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


def fit(judge, images, labels, recipe):
    """Adam on shuffled mini-batches for recipe['steps'] steps; numpy's global RNG is left alone."""
    rng = np.random.RandomState(recipe["seed"])
    batch_size = min(recipe["batch_size"], len(images))
    order = np.array([], dtype=np.int64)
    net = judge.net
    for _ in range(recipe["steps"]):
        if len(order) < batch_size:
            order = np.concatenate([order, rng.permutation(len(images))])
        rows, order = order[:batch_size], order[batch_size:]
        judge.session.run(net.train_op, feed_dict={net.images: unit_images(images[rows]), net.labels: labels[rows]})


def data_hash(recipe, *arrays):
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode())
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def train_judge(directory, train_x, train_y, test_x, test_y, recipe, threads=0):
    """Train a judge, measure it on the test data and save both into ``directory`` (which must not exist)."""
    started = time.time()
    judge = Judge(directory, recipe, info=None, threads=threads, restore=False)
    fit(judge, train_x, train_y, recipe)
    judge.info = {"test_accuracy": judge.accuracy(test_x, test_y), "train_images": len(train_x),
                  "test_images": len(test_x), "seconds": round(time.time() - started, 1), "recipe": recipe}
    os.makedirs(directory)
    judge.saver.save(judge.session, os.path.join(directory, CHECKPOINT_NAME), write_meta_graph=False)
    with open(os.path.join(directory, INFO_NAME), "w") as f:
        json.dump(judge.info, f, indent=2)
        f.write("\n")
    return judge


def cached(directory, recipe, threads):
    info_path = os.path.join(directory, INFO_NAME)
    if not os.path.exists(info_path):
        raise CommandError(f"judge cache {directory} has no {INFO_NAME}; delete the folder to retrain")
    with open(info_path) as f:
        return Judge(directory, recipe, json.load(f), threads=threads)


def load_or_train(root, name, train_x, train_y, test_x, test_y, recipe=RECIPE, threads=0):
    """The cached judge for this data, trained (and cached) first if there is none.

    ``name`` (e.g. the data set's name) starts the cache folder's name. A judge is trained in a
    temporary folder and renamed into place when complete, so a crash never leaves half a judge and
    two processes training at once both end up scoring with the one renamed first."""
    directory = os.path.join(root, f"{name}-{data_hash(recipe, train_x, train_y, test_x, test_y)}")
    info_path = os.path.join(directory, INFO_NAME)
    if os.path.isdir(directory):
        return cached(directory, recipe, threads)
    try:
        os.makedirs(root, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".training-", dir=root)
    except OSError as e:
        raise CommandError(f"judge directory {root!r} is not writable: {e.strerror or e}") from None
    print(f"judge: training on {len(train_x)} images ({recipe['steps']} steps), once; cached in {directory}",
          file=sys.stderr, flush=True)
    try:
        judge = train_judge(os.path.join(staging, "judge"), train_x, train_y, test_x, test_y, recipe, threads)
        try:
            os.rename(judge.directory, directory)
            judge.directory = directory
        except OSError:
            if not os.path.exists(info_path):  # not a lost race with another process: a real failure
                raise
            # Score with the judge that won, as every later run will: with other thread counts the two
            # trainings need not agree to the last bit.
            judge.close()
            judge = cached(directory, recipe, threads)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(f"judge: test accuracy {judge.info['test_accuracy']:.4f} on {len(test_x)} images "
          f"({judge.info['seconds']} s)", file=sys.stderr, flush=True)
    return judge
