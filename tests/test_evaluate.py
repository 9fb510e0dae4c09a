"""Evaluation: nearest-neighbour scores, Frechet distance, the judge and its cache, the training hook
and the command, on constructed cases whose answers are known."""
import json
import os
import shutil
import types

import numpy as np
import pytest
from conftest import synthetic_digits
from scipy.spatial.distance import cdist

from dcgan_mnist import evaluation, metrics, sampler
from dcgan_mnist import judge as judge_module
from dcgan_mnist.cli import CommandError, dumps
from dcgan_mnist.graph import TrainingGraph
from dcgan_mnist.load import Splits, load_dataset
from dcgan_mnist.model import DCGAN, tf
from dcgan_mnist.records import Events, JsonLines
from dcgan_mnist.run import EVAL_FILE
from dcgan_mnist.tools import evaluate
from dcgan_mnist.train import main as train_main

# A judge recipe that learns the synthetic digits in seconds.
QUICK = dict(judge_module.TRAINING, steps=120, batch_size=32)


def brute_force_nearest(queries, references):
    distances = np.sqrt(((queries[:, None, :] - references[None, :, :]) ** 2).sum(-1))
    return distances.argmin(1), distances.min(1)


@pytest.fixture(scope="module")
def quick_judge(tmp_path_factory):
    train_x, train_y = synthetic_digits(600, seed=0)
    test_x, test_y = synthetic_digits(300, seed=5)
    root = str(tmp_path_factory.mktemp("judges"))
    judge = judge_module.load_or_train(root, "synthetic", train_x, train_y, test_x, test_y, training=QUICK)
    yield judge
    judge.close()


# ---- nearest neighbours ----

def cdist_nearest(queries, references):
    """What the nearest-neighbour search must agree with: scipy's exact distances and argmin's first minimum."""
    distances = cdist(queries, references)
    index = distances.argmin(axis=1)
    return index, distances[np.arange(len(queries)), index]


@pytest.mark.parametrize("distances_per_block", [1, 500 * 3 + 7, 10 ** 7])
def test_nearest_neighbours_agree_with_cdist_on_pixel_data(distances_per_block):
    rng = np.random.RandomState(1)
    queries, references = rng.randint(0, 256, size=(300, 784)) / 255., rng.randint(0, 256, size=(500, 784)) / 255.
    references[250:] = np.clip(references[:250] + rng.normal(0, 0.05, size=(250, 784)), 0, 1)  # close pairs
    queries[:50] = references[rng.randint(500, size=50)]  # queries that are references: distance 0
    index, distance = metrics.nearest_neighbours(queries, references, distances_per_block)
    expected_index, expected_distance = cdist_nearest(queries, references)
    np.testing.assert_array_equal(index, expected_index)
    np.testing.assert_allclose(distance, expected_distance, rtol=1e-12)
    assert np.all(distance[:50] == 0)


def test_nearest_neighbours_tell_apart_references_a_hair_apart():
    """Distances that differ by less than the matrix-product form's round-off are still ordered as cdist
    orders them."""
    rng = np.random.RandomState(3)
    near = rng.randint(0, 256, size=(200, 784)) / 255.
    queries = np.clip(near + rng.normal(0, 0.1, size=near.shape), 0, 1)
    hair = near.copy()
    hair[np.arange(200), rng.randint(784, size=200)] += rng.choice([-1e-12, 1e-12], size=200)
    references = np.concatenate([near, hair])
    index, distance = metrics.nearest_neighbours(queries, references)
    expected_index, expected_distance = cdist_nearest(queries, references)
    np.testing.assert_array_equal(index, expected_index)
    np.testing.assert_allclose(distance, expected_distance, rtol=1e-12)


def test_nearest_neighbours_pick_the_first_of_equally_near_references():
    rng = np.random.RandomState(2)
    base = rng.randint(0, 256, size=(40, 784)) / 255.
    # Each row of base appears three times, at scattered places, so every query has exact ties.
    references = base[rng.permutation(np.repeat(np.arange(40), 3))]
    queries = np.concatenate([np.clip(base + rng.normal(0, 0.1, size=base.shape), 0, 1), base])
    for distances_per_block in (7, 10 ** 6):
        index, distance = metrics.nearest_neighbours(queries, references, distances_per_block)
        expected_index, expected_distance = cdist_nearest(queries, references)
        np.testing.assert_array_equal(index, expected_index)
        np.testing.assert_allclose(distance, expected_distance, rtol=1e-12)
    # Equal references are equally near, and the first of them is the answer.
    first_copy = {tuple(row): i for i, row in reversed(list(enumerate(references)))}
    assert [first_copy[tuple(references[i])] for i in index] == list(index)


@pytest.mark.parametrize("distances_per_block", [1, 23 * 4 + 5, 10 ** 6])
def test_blockwise_nearest_neighbours_equal_brute_force(distances_per_block):
    rng = np.random.RandomState(0)
    queries, references = rng.rand(37, 20), rng.rand(23, 20)
    index, distance = metrics.nearest_neighbours(queries, references, distances_per_block)
    expected_index, expected_distance = brute_force_nearest(queries, references)
    np.testing.assert_array_equal(index, expected_index)
    np.testing.assert_allclose(distance, expected_distance, rtol=1e-12)
    assert index.shape == (37,) and distance.shape == (37,)


def test_samples_equal_to_the_validation_images_give_nnd_zero_and_perfect_nnc():
    valid_x, valid_y = synthetic_digits(200, seed=1)
    nnc, nnd = metrics.nnc_nnd(valid_x, valid_y, valid_x, valid_y)
    # Each validation image is its own nearest neighbour, so the real 1-NN accuracy here is 1.
    assert nnd == 0.0
    assert nnc == 1.0


def test_real_training_images_give_the_brute_force_1nn_accuracy():
    train_x, train_y = synthetic_digits(300, seed=2)
    valid_x, valid_y = synthetic_digits(150, seed=3)
    # Mislabel a third of the training images, so the 1-NN classifier errs and the comparison means something.
    rng = np.random.RandomState(4)
    wrong = rng.rand(300) < 1 / 3
    train_y = np.where(wrong, rng.randint(10, size=300), train_y)
    nnc, nnd = metrics.nnc_nnd(train_x, train_y, valid_x, valid_y)
    index, distance = brute_force_nearest(valid_x.reshape(150, -1) / 255., train_x.reshape(300, -1) / 255.)
    assert 0.5 < nnc < 0.9
    assert nnc == pytest.approx(np.mean(train_y[index] == valid_y), abs=1e-12)
    assert nnd == pytest.approx(distance.mean(), rel=1e-6)


def test_shuffled_labels_give_chance_nnc():
    images, labels = synthetic_digits(1000, seed=6)
    valid_x, valid_y = synthetic_digits(600, seed=7)
    right, _ = metrics.nnc_nnd(images, labels, valid_x, valid_y)
    shuffled, _ = metrics.nnc_nnd(images, np.random.RandomState(0).permutation(labels), valid_x, valid_y)
    assert right > 0.95
    assert abs(shuffled - 0.1) < 0.05


# ---- Frechet distance ----

def test_frechet_distance_of_a_set_with_itself_is_zero_and_a_shift_adds_its_square():
    features = np.random.RandomState(0).normal(size=(500, 8)) @ np.random.RandomState(1).normal(size=(8, 8))
    assert abs(metrics.frechet_distance(features, features)) < 1e-8
    distances = []
    for size in (0.1, 1.0, 3.0):
        shift = size * np.arange(1, 9) / 8
        distances.append(metrics.frechet_distance(features, features + shift))
        # Same covariance, so the distance is exactly the squared shift of the mean.
        assert distances[-1] == pytest.approx(np.sum(shift ** 2), rel=1e-6)
    assert distances == sorted(distances)


def test_frechet_distance_of_a_scaled_set_is_the_trace_of_its_covariance():
    features = np.random.RandomState(2).normal(size=(400, 5)) * np.arange(1, 6)
    # The means are m and 2m; cov(2X) = 4C, so the distance is |m|^2 + tr(C) + tr(4C) - 2 tr(sqrt(4C^2)).
    expected = np.sum(features.mean(0) ** 2) + np.trace(np.cov(features, rowvar=False))
    assert metrics.frechet_distance(features, 2 * features) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_with_a_dead_feature_stays_exact():
    features = np.random.RandomState(3).normal(size=(300, 6))
    features[:, 2] = 0  # a ReLU unit that never fires: singular covariances
    shift = np.array([1., 0, 0, 2, 0, 0])
    assert metrics.frechet_distance(features, features + shift) == pytest.approx(5.0, rel=1e-6)


# ---- the judge ----

def test_judge_learns_a_small_learnable_set(quick_judge):
    test_x, test_y = synthetic_digits(300, seed=5)
    assert quick_judge.info["test_accuracy"] >= 0.95
    assert quick_judge.accuracy(test_x, test_y) == quick_judge.info["test_accuracy"]
    fresh_x, fresh_y = synthetic_digits(200, seed=9)
    assert quick_judge.accuracy(fresh_x, fresh_y) >= 0.95
    probabilities, features = quick_judge.classify(fresh_x)
    assert probabilities.shape == (200, 10)
    assert features.shape == (200, judge_module.TRAINING["features"])
    np.testing.assert_allclose(probabilities.sum(1), 1, rtol=1e-5)


def test_judge_takes_uint8_and_unit_float_images_alike(quick_judge):
    images, _ = synthetic_digits(20, seed=10)
    from_bytes, _ = quick_judge.classify(images)
    from_floats, _ = quick_judge.classify(images.reshape(20, 28, 28, 1) / 255.)
    np.testing.assert_allclose(from_bytes, from_floats, atol=1e-6)


def test_judge_is_cached_and_reused_without_training(quick_judge, monkeypatch):
    root = os.path.dirname(quick_judge.directory)
    with open(os.path.join(quick_judge.directory, judge_module.INFO_NAME)) as f:
        assert json.load(f)["test_accuracy"] == quick_judge.info["test_accuracy"]

    def no_training(*args, **kwargs):
        raise AssertionError("the cached judge should have been reused")
    monkeypatch.setattr(judge_module, "train_judge", no_training)
    train_x, train_y = synthetic_digits(600, seed=0)
    test_x, test_y = synthetic_digits(300, seed=5)
    again = judge_module.load_or_train(root, "synthetic", train_x, train_y, test_x, test_y, training=QUICK)
    try:
        assert again.directory == quick_judge.directory
        np.testing.assert_array_equal(again.classify(test_x[:50])[0], quick_judge.classify(test_x[:50])[0])
    finally:
        again.close()
    # Other training data is another judge.
    with pytest.raises(AssertionError, match="reused"):
        judge_module.load_or_train(root, "synthetic", train_x[1:], train_y[1:], test_x, test_y, training=QUICK)
    assert not [name for name in os.listdir(root) if name.startswith(".training-")]


def test_a_judge_that_loses_the_race_to_the_cache_scores_with_the_winner(tmp_path, monkeypatch):
    train_x, train_y = synthetic_digits(300, seed=0)
    test_x, test_y = synthetic_digits(100, seed=5)
    # The other process's judge: trained on shuffled labels, so it names the test digits differently.
    other = judge_module.load_or_train(str(tmp_path / "other"), "synthetic", train_x, np.roll(train_y, 1),
                                       test_x, test_y, training=QUICK)
    assert other.accuracy(test_x, test_y) < 0.5
    root = str(tmp_path / "judges")
    real_train_judge = judge_module.train_judge

    def finish_second(directory, *args, **kwargs):
        judge = real_train_judge(directory, *args, **kwargs)
        winner = os.path.join(root, "synthetic-" + judge_module.data_hash(QUICK, train_x, train_y, test_x, test_y))
        shutil.copytree(other.directory, winner)  # the other process renames its judge into place first
        return judge
    monkeypatch.setattr(judge_module, "train_judge", finish_second)
    judge = judge_module.load_or_train(root, "synthetic", train_x, train_y, test_x, test_y, training=QUICK)
    try:
        assert judge.info == other.info
        np.testing.assert_array_equal(judge.classify(test_x)[0], other.classify(test_x)[0])
        assert os.listdir(root) == [os.path.basename(judge.directory)]
    finally:
        judge.close()
        other.close()


def test_judge_cache_without_its_info_file_is_reported(tmp_path):
    train_x, train_y = synthetic_digits(50, seed=0)
    name = "broken-" + judge_module.data_hash(QUICK, train_x, train_y, train_x, train_y)
    os.makedirs(tmp_path / name)
    with pytest.raises(CommandError, match="judge cache .*broken-.* has no judge.json"):
        judge_module.load_or_train(str(tmp_path), "broken", train_x, train_y, train_x, train_y, training=QUICK)


def test_unwritable_judge_directory_is_named(tmp_path):
    (tmp_path / "a-file").write_text("")
    root = str(tmp_path / "a-file" / "judges")
    train_x, train_y = synthetic_digits(50, seed=0)
    with pytest.raises(CommandError, match="judge directory .*a-file/judges.* is not writable"):
        judge_module.load_or_train(root, "x", train_x, train_y, train_x, train_y, training=QUICK)


# ---- drawing samples and scoring them ----

def label_painter(batches):
    """A stand-in generator: each image is filled with its digit / 9, so labels can be read back."""
    def sample(z, y):
        batches.append((z.shape, y.argmax(1)))
        assert np.all(np.abs(z) <= 1)
        return np.ones([len(y), 28, 28, 1]) * (y.argmax(1) / 9.)[:, None, None, None]
    return sample


def test_draw_samples_uses_full_mixed_batches_and_every_digit_equally():
    batches = []
    images, labels = sampler.draw_samples(label_painter(batches), 1000, 196, 7, np.random.RandomState(0))
    assert images.shape == (1000, 28, 28, 1)
    assert labels.shape == (1000,)
    assert [shape for shape, _ in batches] == [(196, 7)] * 6
    for _, batch_labels in batches:  # each batch mixes the ten digits as evenly as its size allows
        counts = np.bincount(batch_labels, minlength=10)
        assert counts.max() - counts.min() <= 1, counts
    np.testing.assert_allclose(images[:, 0, 0, 0] * 9, labels)
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), [100] * 10)
    assert not np.array_equal(labels[:100], np.arange(100) % 10)  # in random order


def digit_pool(seed=11):
    """A generator that draws real (synthetic) digits of the class asked for, or of ``mislabel[class]``."""
    images, labels = synthetic_digits(3000, seed=seed)
    by_class = [images[labels == c] for c in range(10)]

    def make(mislabel=np.arange(10)):
        rng = np.random.RandomState(0)

        def sample(z, y):
            wanted = mislabel[y.argmax(1)]
            return np.stack([by_class[c][rng.randint(len(by_class[c]))] for c in wanted]).reshape(-1, 28, 28, 1) / 255.
        return sample
    return make


def score_data():
    tr_x, tr_y = synthetic_digits(500, seed=12)
    va_x, va_y = synthetic_digits(200, seed=13)
    te_x, te_y = synthetic_digits(300, seed=14)
    return Splits(tr_x, va_x, te_x, tr_y, va_y, te_y)


def test_score_a_generator_that_draws_real_digits_matches_the_real_reference(quick_judge):
    scores = metrics.score(digit_pool()(), 400, 50, 5, score_data(), quick_judge, np.random.RandomState(0))
    generated, real_train, real_test = scores["generated"], scores["real_train"], scores["real_test"]
    assert [e["n"] for e in generated["nearest_neighbour"]] == [400]
    assert [e["n"] for e in real_train["nearest_neighbour"]] == [400]
    assert generated["nearest_neighbour"][0]["nnc"] > 0.95
    assert real_train["nearest_neighbour"][0]["nnc"] > 0.95
    assert generated["judge_accuracy"] > 0.95
    assert real_test["judge_accuracy"] == quick_judge.info["test_accuracy"]
    assert len(generated["judge_accuracy_per_digit"]) == 10
    assert generated["frechet"] < 5 * real_train["frechet"] + 1


def test_score_a_generator_that_ignores_its_label_is_at_chance(quick_judge):
    wrong_digit = np.roll(np.arange(10), 1)
    good = metrics.score(digit_pool()(), 400, 50, 5, score_data(), quick_judge, np.random.RandomState(0))
    bad = metrics.score(digit_pool()(wrong_digit), 400, 50, 5, score_data(), quick_judge,
                         np.random.RandomState(0))
    assert bad["generated"]["nearest_neighbour"][0]["nnc"] < 0.05
    assert bad["generated"]["judge_accuracy"] < 0.05
    assert all(v < 0.2 for v in bad["generated"]["judge_accuracy_per_digit"])
    # Right digits under the wrong labels: the same pictures, so the same distances and features.
    assert bad["generated"]["nearest_neighbour"][0]["nnd"] == pytest.approx(
        good["generated"]["nearest_neighbour"][0]["nnd"], rel=0.1)


def test_reference_uses_all_training_images_when_there_are_fewer_than_samples(quick_judge):
    data = score_data()
    scores = metrics.score(digit_pool()(), 1200, 200, 5, data, quick_judge, np.random.RandomState(0))
    assert [e["n"] for e in scores["generated"]["nearest_neighbour"]] == [1000, 1200]
    assert [e["n"] for e in scores["real_train"]["nearest_neighbour"]] == [500]
    assert scores["real_train"]["n"] == 500


# ---- the training hook ----

def test_training_scorer_writes_reuses_the_real_side_and_leaves_numpy_rng_alone(mnist_dir, tmp_path, quick_judges):
    s = types.SimpleNamespace(dataset="mnist", data_dir=mnist_dir, judge_dir=quick_judges, threads=0,
                              visualize_dim=16, dim_z=8)
    np.random.seed(5)
    data = load_dataset("mnist", mnist_dir, 60, download=False)
    trX, vaX, teX, trY, vaY, teY = data
    run_dir = str(tmp_path / "run")
    os.makedirs(run_dir)
    with tf.Graph().as_default():
        model = DCGAN(batch_size=16, dim_z=8, dim_W1=32, dim_W2=16, dim_W3=8)
        graph = TrainingGraph(model, 0.0002, 16, "fp32")
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            log, events = JsonLines(os.path.join(run_dir, EVAL_FILE)), Events(run_dir, sess.graph)
            state = np.random.get_state()
            scorer = evaluation.TrainingScorer(s, data)
            scorer(sess, graph, 1, 15, log, events)
            after = np.random.get_state()
            scorer(sess, graph, 2, 30, log, events)  # the real side reused: the same as computed afresh
            fresh = metrics.score(lambda z, y: graph.sample(sess, z, y), evaluation.SAMPLES_DURING_TRAINING, 16, 8,
                                   data, scorer.judge,
                                   np.random.RandomState(evaluation.EVAL_SEED))
            scorer.close()
            log.close()
            events.close()
    assert all(np.array_equal(a, b) for a, b in zip(state, after))
    with open(os.path.join(run_dir, EVAL_FILE)) as f:
        record, second = [json.loads(line) for line in f]
    assert (record["iteration"], record["epoch"]) == (14, 1)
    assert (second["iteration"], second["epoch"]) == (29, 2)
    assert {key: second[key] for key in fresh} == json.loads(dumps(fresh))
    assert [e["n"] for e in record["generated"]["nearest_neighbour"]] == [1000]
    assert [e["n"] for e in record["real_train"]["nearest_neighbour"]] == [len(trX)]
    tags = {}
    for path in os.listdir(run_dir):
        if path.startswith("events"):
            for event in tf.train.summary_iterator(os.path.join(run_dir, path)):
                for value in event.summary.value:
                    tags.setdefault(value.tag, (event.step, value.simple_value))  # the first epoch
    nnc = record["generated"]["nearest_neighbour"][0]["nnc"]
    assert tags["eval/generated/nnc_1000"] == (14, pytest.approx(nnc))
    assert tags["eval/generated/frechet"][1] == pytest.approx(record["generated"]["frechet"])
    assert "eval/real_test/judge_accuracy_digit_9" in tags


# ---- the command ----

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaluate-run")
    data_dir = str(tmp / "data")
    from conftest import write_mnist
    write_mnist(data_dir)
    run_dir = str(tmp / "run")
    train_main(["--data-dir", data_dir, "--batch-size", "16", "--dim-z", "8", "--dim-W1", "32", "--dim-W2", "16",
                "--dim-W3", "8", "--visualize-dim", "16", "--valid-size", "80", "--max-iterations", "4",
                "--seed", "3", "--log", "compact", "--no-download", "--run-dir", run_dir, "--vis-dir",
                str(tmp / "vis")])
    return run_dir, data_dir


def test_command_prints_json_scores_of_the_runs_split(tiny_run, capsys, quick_judges):
    run_dir, data_dir = tiny_run
    assert evaluate.main(["--checkpoint", run_dir, "--samples", "40", "--json", "--judge-dir", quick_judges]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["iterations"] == 4 and report["checkpoint"] == "ckpt-4"
    assert report["data"]["run_split"] is True
    assert (report["data"]["train_images"], report["data"]["validation_images"],
            report["data"]["test_images"]) == (220, 80, 100)
    assert report["judge"]["train_images"] == 300 and report["judge"]["test_images"] == 100
    assert [e["n"] for e in report["generated"]["nearest_neighbour"]] == [40]
    # The split is the one train.py drew: seed numpy with the run's seed, then load.
    np.random.seed(3)
    trX, vaX, teX, trY, vaY, teY = load_dataset("mnist", data_dir, 80, download=False)
    rows = np.random.RandomState(0)
    sampler.draw_samples(lambda z, y: np.zeros([len(y), 28, 28, 1]), 40, 16, 8, rows)
    real = rows.permutation(len(trX))[:40]
    nnc, nnd = metrics.nnc_nnd(trX[real], trY[real], vaX, vaY)
    assert report["real_train"]["nearest_neighbour"] == [{"n": 40, "nnc": nnc, "nnd": nnd}]


def test_command_prints_a_table_and_warns_about_overridden_split(tiny_run, capsys, quick_judges):
    run_dir, _ = tiny_run
    assert evaluate.main(["--checkpoint", run_dir, "--samples", "300", "--valid-size", "50",
                          "--judge-dir", quick_judges]) == 0
    captured = capsys.readouterr()
    assert "not its train/validation split" in captured.err
    assert "NOT the run's split" in captured.out
    assert "* all 250 training images: there are fewer than 300" in captured.out
    for row in ("NNC, 300 images (higher is better)", "NND, 300 images (lower is better)",
                "Frechet distance (lower is better)", "judge accuracy ", "judge confidence", "judge accuracy by digit"):
        assert row in captured.out


@pytest.mark.parametrize("args, message", [
    (["--samples", "1"], "--samples: expected 2 or more (a Frechet distance needs two samples), got '1'"),
    (["--samples", "x"], "--samples: expected 2 or more (a Frechet distance needs two samples), got 'x'"),
    (["--valid-size", "0"], "--valid-size: expected a positive integer, got '0'"),
    (["--threads", "-1"], "--threads: expected an integer of 0 or more, got '-1'"),
])
def test_command_rejects_bad_flags(tiny_run, args, message, capsys):
    with pytest.raises(SystemExit):
        evaluate.main(["--checkpoint", tiny_run[0]] + args)
    assert message in capsys.readouterr().err


def test_command_names_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert evaluate.main(["--checkpoint", str(tmp_path)]) == 1
    assert "no settings.json" in capsys.readouterr().err
