"""Reading MNIST-format files: exact arrays, header checks with clear errors, the original's split,
and finding the data folder for each dataset."""
import gzip
import os

import numpy as np
import pytest
from conftest import FILES, idx_bytes, write_mnist

from dcgan_mnist import load
from dcgan_mnist.load import DataError


def flat(images):
    return images.reshape(len(images), 28 * 28)


def read_file(directory, name):
    with open(os.path.join(directory, name), "rb") as f:
        return f.read()


def replace_file(directory, name, data):
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def fail_if_called(*args, **kwargs):
    raise AssertionError(f"download_mnist must not be called here (called with {args})")


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("n_train, n_test", [(300, 100), (37, 11)])
def test_mnist_returns_the_written_arrays_as_uint8(tmp_path, gz, n_train, n_test):
    tr_x, tr_y, te_x, te_y = write_mnist(str(tmp_path), n_train, n_test, gz=gz)
    trX, teX, trY, teY = load.mnist(str(tmp_path))
    assert trX.shape == (n_train, 784) and teX.shape == (n_test, 784)
    assert trY.shape == (n_train,) and teY.shape == (n_test,)
    assert {a.dtype for a in (trX, teX, trY, teY)} == {np.dtype(np.uint8)}
    np.testing.assert_array_equal(trX, flat(tr_x))
    np.testing.assert_array_equal(teX, flat(te_x))
    np.testing.assert_array_equal(trY, tr_y)
    np.testing.assert_array_equal(teY, te_y)


def test_raw_file_is_preferred_over_gz_and_each_file_is_found_in_either_form(tmp_path):
    d = str(tmp_path)
    raw = write_mnist(d, 50, 20, gz=False, seed=0)
    gz = write_mnist(d, 50, 20, gz=True, seed=5)
    trX, teX, trY, teY = load.mnist(d)
    np.testing.assert_array_equal(trX, flat(raw[0]))
    np.testing.assert_array_equal(trY, raw[1])
    # Without the raw test files, those two come from the .gz copies.
    os.remove(os.path.join(d, FILES[2]))
    os.remove(os.path.join(d, FILES[3]))
    trX, teX, trY, teY = load.mnist(d)
    np.testing.assert_array_equal(trX, flat(raw[0]))
    np.testing.assert_array_equal(teX, flat(gz[2]))
    np.testing.assert_array_equal(teY, gz[3])


def test_mnist_without_argument_reads_the_module_data_dir(mnist_dir, monkeypatch):
    assert load.data_dir == "data/"
    monkeypatch.setattr(load, "data_dir", mnist_dir)
    assert [a.shape for a in load.mnist()] == [(300, 784), (100, 784), (300,), (100,)]


def test_split_is_exactly_one_shuffle_of_numpys_global_rng(tmp_path):
    d = str(tmp_path)
    tr_x, tr_y, te_x, te_y = write_mnist(d, 300, 100)
    np.random.seed(1234)
    trX, vaX, teX, trY, vaY, teY = load.mnist_with_valid_set(d, valid_size=60)
    draw_after_load = np.random.randint(1 << 30)

    np.random.seed(1234)
    inds = np.arange(300)
    np.random.shuffle(inds)
    assert draw_after_load == np.random.randint(1 << 30)  # the loader used the RNG for that shuffle only
    assert not np.array_equal(inds, np.arange(300))

    assert trX.shape == (240, 784) and vaX.shape == (60, 784) and teX.shape == (100, 784)
    assert trY.shape == (240,) and vaY.shape == (60,) and teY.shape == (100,)
    assert {a.dtype for a in (trX, vaX, teX, trY, vaY, teY)} == {np.dtype(np.uint8)}
    np.testing.assert_array_equal(trX, flat(tr_x)[inds[:240]])
    np.testing.assert_array_equal(vaX, flat(tr_x)[inds[240:]])
    np.testing.assert_array_equal(trY, tr_y[inds[:240]])
    np.testing.assert_array_equal(vaY, tr_y[inds[240:]])
    np.testing.assert_array_equal(teX, flat(te_x))
    np.testing.assert_array_equal(teY, te_y)


def test_default_valid_size_holds_out_the_last_10000(tmp_path):
    d = str(tmp_path)
    write_mnist(d, 10050, 10)
    split = load.mnist_with_valid_set(d)
    assert [a.shape for a in split] == [(50, 784), (10000, 784), (10, 784), (50,), (10000,), (10,)]


def test_valid_size_zero_keeps_every_training_image(mnist_dir):
    split = load.mnist_with_valid_set(mnist_dir, valid_size=0)
    assert [a.shape for a in split] == [(300, 784), (0, 784), (100, 784), (300,), (0,), (100,)]


@pytest.mark.parametrize("valid_size", [300, 301, -1])
def test_valid_size_out_of_range_names_the_option_and_the_count(mnist_dir, valid_size):
    with pytest.raises(DataError) as e:
        load.mnist_with_valid_set(mnist_dir, valid_size=valid_size)
    assert f"--valid-size {valid_size}" in str(e.value)
    assert "300 training images" in str(e.value)


TRAIN_IMAGES, TRAIN_LABELS = FILES[0], FILES[1]
GOOD_IMAGES = np.zeros((300, 28, 28), np.uint8)


def labels_with_a_ten():
    labels = np.zeros(300, np.uint8)
    labels[7] = 10
    return idx_bytes(labels)


# (file to damage, new content from the good bytes, words the error must contain)
BAD_FILES = {
    "wrong magic": (TRAIN_IMAGES, lambda good: idx_bytes(np.zeros(300 * 784, np.uint8)),
                    ["not an IDX image file", "magic number 2049, expected 2051"]),
    "32x32 images": (TRAIN_IMAGES, lambda good: idx_bytes(np.zeros((300, 32, 32), np.uint8)),
                     ["images are 32x32", "28x28"]),
    "truncated data": (TRAIN_IMAGES, lambda good: good[:-100],
                       ["truncated: header says 300 images of 28x28 (235200 bytes) but the file has 235100"]),
    "truncated header": (TRAIN_LABELS, lambda good: good[:6], ["truncated", "8-byte IDX header"]),
    "trailing bytes": (TRAIN_IMAGES, lambda good: good + b"\0" * 5, ["5 unexpected bytes", "300 images"]),
    "labels truncated": (TRAIN_LABELS, lambda good: good[:-1],
                         ["truncated: header says 300 labels (300 bytes) but the file has 299"]),
    "label 10": (TRAIN_LABELS, lambda good: labels_with_a_ten(), ["label 10 at position 7", "0-9"]),
    "images under a label name": (TRAIN_LABELS, lambda good: idx_bytes(GOOD_IMAGES),
                                  ["not an IDX label file", "magic number 2051, expected 2049"]),
    "gzip data under a raw name": (TRAIN_IMAGES, lambda good: gzip.compress(good), ["give the file a .gz name"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_raises_data_error_naming_the_file(mnist_dir, case):
    name, damage, words = BAD_FILES[case]
    replace_file(mnist_dir, name, damage(read_file(mnist_dir, name)))
    with pytest.raises(DataError) as e:
        load.mnist(mnist_dir)
    message = str(e.value)
    assert message.startswith(os.path.join(mnist_dir, name) + ":")
    for word in words:
        assert word in message


def test_image_and_label_count_mismatch_names_both_files(mnist_dir):
    replace_file(mnist_dir, FILES[3], idx_bytes(np.zeros(99, np.uint8)))
    with pytest.raises(DataError) as e:
        load.mnist(mnist_dir)
    images, labels = os.path.join(mnist_dir, FILES[2]), os.path.join(mnist_dir, FILES[3])
    assert str(e.value) == f"{images} has 100 images but {labels} has 99 labels"


def test_missing_file_names_the_file_and_the_folder(mnist_dir):
    os.remove(os.path.join(mnist_dir, TRAIN_LABELS))
    with pytest.raises(DataError) as e:
        load.mnist(mnist_dir)
    assert f"{TRAIN_LABELS} not found in {mnist_dir}" in str(e.value)


@pytest.mark.parametrize("damage", ["flipped bytes", "cut short"])
def test_corrupt_gzip_raises_data_error_naming_the_file(tmp_path, damage):
    d = str(tmp_path)
    write_mnist(d, 300, 100, gz=True)
    name = TRAIN_IMAGES + ".gz"
    data = bytearray(read_file(d, name))
    if damage == "flipped bytes":
        middle = len(data) // 2
        data[middle:middle + 8] = bytes(b ^ 0xFF for b in data[middle:middle + 8])
    else:
        data = data[:len(data) // 2]
    replace_file(d, name, bytes(data))
    with pytest.raises(DataError) as e:
        load.mnist(d)
    assert str(e.value).startswith(os.path.join(d, name) + ": corrupt gzip data")


def test_mnist_folder_with_all_files_is_used_without_downloading(mnist_dir, monkeypatch):
    monkeypatch.setattr(load, "download_mnist", fail_if_called)
    assert load.resolve_data_dir("mnist", mnist_dir) == mnist_dir


def test_mnist_folder_with_some_files_names_the_missing_ones_and_does_not_download(mnist_dir, monkeypatch):
    monkeypatch.setattr(load, "download_mnist", fail_if_called)
    os.remove(os.path.join(mnist_dir, FILES[1]))
    os.remove(os.path.join(mnist_dir, FILES[3]))
    with pytest.raises(DataError) as e:
        load.resolve_data_dir("mnist", mnist_dir)
    assert f"not {FILES[1]}, {FILES[3]}" in str(e.value)
    assert mnist_dir in str(e.value)


def test_empty_mnist_folder_with_download_off_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(load, "download_mnist", fail_if_called)
    with pytest.raises(DataError) as e:
        load.resolve_data_dir("mnist", str(tmp_path), download=False)
    assert f"no MNIST files in {tmp_path}" in str(e.value)


def test_fashion_mnist_uses_debians_folder_unless_given_one(tmp_path, monkeypatch):
    monkeypatch.setattr(load, "download_mnist", fail_if_called)
    debian, mnist_default, given, empty = (str(tmp_path / n) for n in ("debian", "data", "given", "empty"))
    write_mnist(debian, 30, 10, gz=True, seed=1)
    write_mnist(mnist_default, 30, 10, seed=2)
    write_mnist(given, 30, 10, seed=3)
    os.makedirs(empty)
    monkeypatch.setattr(load, "FASHION_MNIST_DIR", debian)
    monkeypatch.setattr(load, "data_dir", mnist_default)
    # The MNIST default folder is never taken for Fashion-MNIST.
    assert load.resolve_data_dir("fashion-mnist", None) == debian
    assert load.resolve_data_dir("fashion-mnist", given) == given
    assert load.resolve_data_dir("fashion-mnist", empty) == debian


def test_missing_fashion_mnist_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(load, "download_mnist", fail_if_called)
    monkeypatch.setattr(load, "FASHION_MNIST_DIR", str(tmp_path / "not-installed"))
    with pytest.raises(DataError) as e:
        load.resolve_data_dir("fashion-mnist", str(tmp_path))
    assert "apt-get install dataset-fashion-mnist" in str(e.value)
    assert str(tmp_path / "not-installed") in str(e.value)


def test_unknown_dataset_is_named(tmp_path):
    with pytest.raises(DataError) as e:
        load.resolve_data_dir("cifar10", str(tmp_path))
    assert "'cifar10'" in str(e.value)


def test_load_dataset_is_resolve_then_split(mnist_dir, monkeypatch):
    monkeypatch.setattr(load, "download_mnist", fail_if_called)
    np.random.seed(7)
    got = load.load_dataset("mnist", mnist_dir, valid_size=100)
    np.random.seed(7)
    expected = load.mnist_with_valid_set(mnist_dir, valid_size=100)
    assert len(got) == 6
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    assert got[0].shape == (200, 784) and got[1].shape == (100, 784)


@pytest.mark.skipif(not os.path.isdir(load.FASHION_MNIST_DIR), reason="Debian's dataset-fashion-mnist not installed")
def test_debians_fashion_mnist_package_loads():
    trX, teX, trY, teY = load.mnist(load.resolve_data_dir("fashion-mnist", None))
    assert trX.shape == (60000, 784) and teX.shape == (10000, 784)
    assert trY.shape == (60000,) and teY.shape == (10000,)
    assert np.array_equal(np.unique(trY), np.arange(10))
