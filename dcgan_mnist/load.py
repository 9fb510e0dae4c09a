"""MNIST-format data: the original load.py's functions, plus header checks, .gz files and a verified download.

The four IDX files are read as raw or gzip-compressed, their headers are checked, and images come back
as uint8 rows of 784 (the training loop divides each batch by 255, so the values it sees are the
original's). ``mnist_with_valid_set`` makes the original's single ``np.random.shuffle`` draw.

Downloads give up on a mirror after DOWNLOAD_TIMEOUT (60) seconds without data, connecting or mid-file,
or when a file has not fully arrived DOWNLOAD_DEADLINE (600) seconds after its request, and go on to the next;
the environment variables DCGAN_MNIST_DOWNLOAD_TIMEOUT and DCGAN_MNIST_DOWNLOAD_DEADLINE set other limits in
seconds. The download's staging folder is removed however it ends, SIGTERM included.
"""
import argparse
import contextlib
import gzip
import hashlib
import http.client
import os
import struct
import tempfile
import time
import urllib.request
import zlib
from typing import NamedTuple

import numpy as np

from .cli import POSITIVE_FLOAT, sigterm_unwinds

data_dir = 'data/'

FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')
IMAGE_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABEL_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
IMAGE_SIDE = 28

# Public mirrors of the files from yann.lecun.com, tried in this order.
MIRRORS = (
    'https://ossci-datasets.s3.amazonaws.com/mnist/',
    'https://storage.googleapis.com/cvdf-datasets/mnist/',
)
# Seconds a download may go without receiving data before the mirror counts as failed.
DOWNLOAD_TIMEOUT = 60
TIMEOUT_VARIABLE = 'DCGAN_MNIST_DOWNLOAD_TIMEOUT'
# Seconds one file may take to arrive from one mirror: a mirror that trickles data never trips DOWNLOAD_TIMEOUT.
# The largest file (9.9 MB) needs about 17 kB/s to make it.
DOWNLOAD_DEADLINE = 600
DEADLINE_VARIABLE = 'DCGAN_MNIST_DOWNLOAD_DEADLINE'
# Bytes asked of the connection per read; a read returns what has arrived, up to this.
CHUNK_SIZE = 1 << 16
# SHA-256 of the .gz files as first published on yann.lecun.com (the values MNIST downloaders pin).
MNIST_SHA256 = {
    'train-images-idx3-ubyte.gz': '440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609',
    'train-labels-idx1-ubyte.gz': '3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c',
    't10k-images-idx3-ubyte.gz': '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6',
    't10k-labels-idx1-ubyte.gz': 'f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6',
}
# The data sets --dataset names: MNIST itself, and Fashion-MNIST in the same IDX format.
DATASETS = ('mnist', 'fashion-mnist')
# Where Debian's dataset-fashion-mnist package puts the four .gz files (flat, MNIST's file names).
FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist'


class DataError(Exception):
    """A data file or data setting is missing or wrong; the message names it and says what is wrong."""


def chosen_dir(data_dir):
    """``data_dir``, or the module's ``data_dir`` (the original's only setting) when it is None."""
    return globals()['data_dir'] if data_dir is None else data_dir


def find_file(directory, name):
    """Path of ``name`` in ``directory``, raw preferred over ``name.gz``; None when neither exists."""
    for path in (os.path.join(directory, name), os.path.join(directory, name + '.gz')):
        if os.path.exists(path):
            return path
    return None


def missing_files(directory):
    """The names of the four files that exist in neither form in ``directory``."""
    return [name for name in FILES if find_file(directory, name) is None]


def read_bytes(path):
    """The file's bytes, decompressed when the name ends in .gz."""
    try:
        with (gzip.open(path, 'rb') if path.endswith('.gz') else open(path, 'rb')) as f:
            return f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt gzip data (damaged or cut short): {e}") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None


def parse_header(path, data, magic, ndim, what):
    """Check the IDX magic number and return the ``ndim`` dimensions the header declares."""
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{path}: truncated: {len(data)} bytes, shorter than the {header_size}-byte IDX header")
    found = struct.unpack('>I', data[:4])[0]
    if found != magic:
        hint = " (the data is gzip-compressed: give the file a .gz name)" if data[:2] == b'\x1f\x8b' else ""
        raise DataError(f"{path}: not an IDX {what} file: magic number {found}, expected {magic}{hint}")
    return struct.unpack('>' + 'I' * ndim, data[4:header_size]), header_size


def check_length(path, data, header_size, expected, declared):
    """The data after the header must be exactly as long as the header says."""
    found = len(data) - header_size
    if found < expected:
        raise DataError(f"{path}: truncated: header says {declared} ({expected} bytes) but the file has {found}")
    if found > expected:
        raise DataError(f"{path}: {found - expected} unexpected bytes after the {declared} ({expected} bytes) "
                        f"the header declares")


def read_images(path):
    """uint8 images [N, 784] from an IDX image file, N taken from its header."""
    data = read_bytes(path)
    (count, rows, cols), header_size = parse_header(path, data, IMAGE_MAGIC, 3, 'image')
    if (rows, cols) != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(f"{path}: images are {rows}x{cols}, this model needs {IMAGE_SIDE}x{IMAGE_SIDE}")
    pixels = rows * cols
    check_length(path, data, header_size, count * pixels, f"{count} images of {rows}x{cols}")
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(count, pixels)


def read_labels(path):
    """uint8 labels [N] in 0-9 from an IDX label file, N taken from its header."""
    data = read_bytes(path)
    (count,), header_size = parse_header(path, data, LABEL_MAGIC, 1, 'label')
    check_length(path, data, header_size, count, f"{count} labels")
    labels = np.frombuffer(data, dtype=np.uint8, offset=header_size)
    bad = np.flatnonzero(labels > 9)
    if len(bad):
        raise DataError(f"{path}: label {labels[bad[0]]} at position {bad[0]} is not a digit 0-9 "
                        f"({len(bad)} such labels)")
    return labels


def read_pair(directory, images_name, labels_name):
    """Images and labels of one split, checked to be the same length."""
    paths = []
    for name in (images_name, labels_name):
        path = find_file(directory, name)
        if path is None:
            raise DataError(f"{name} not found in {directory} (looked for {name} and {name}.gz)")
        paths.append(path)
    images, labels = read_images(paths[0]), read_labels(paths[1])
    if len(images) != len(labels):
        raise DataError(f"{paths[0]} has {len(images)} images but {paths[1]} has {len(labels)} labels")
    return images, labels


def mnist(data_dir=None):
    """``trX, teX, trY, teY`` from the four files in ``data_dir`` (None: the module's ``data_dir``)."""
    directory = chosen_dir(data_dir)
    trX, trY = read_pair(directory, FILES[0], FILES[1])
    teX, teY = read_pair(directory, FILES[2], FILES[3])
    return trX, teX, trY, teY


class Splits(NamedTuple):
    """The data of a run, in the original's order (it unpacks as ``trX, vaX, teX, trY, vaY, teY``)."""
    trX: np.ndarray
    vaX: np.ndarray
    teX: np.ndarray
    trY: np.ndarray
    vaY: np.ndarray
    teY: np.ndarray


def mnist_with_valid_set(data_dir=None, valid_size=10000):
    """``Splits``: the training rows in one random order (the original's single ``np.random.shuffle`` draw), the
    last ``valid_size`` of them held out for validation."""
    trX, teX, trY, teY = mnist(data_dir)
    if not 0 <= valid_size < len(trX):
        raise DataError(f"--valid-size {valid_size} must be at least 0 and less than the {len(trX)} training "
                        f"images in {chosen_dir(data_dir)}")
    train_inds = np.arange(len(trX))
    np.random.shuffle(train_inds)
    trX = trX[train_inds]
    trY = trY[train_inds]
    n_train = len(trX) - valid_size
    return Splits(trX[:n_train], trX[n_train:], teX, trY[:n_train], trY[n_train:], teY)


def seeded_split(seed, data_dir, valid_size):
    """numpy's global generator seeded with a run's ``seed``, then the run's ``Splits`` drawn from it: the split is
    the original's first random draw, so a run's seed draws its split again (None: a fresh split). Every command
    that trains or scores a run seeds numpy here."""
    np.random.seed(seed)
    return mnist_with_valid_set(data_dir, valid_size)


def seconds_from_environment(variable, default, meaning):
    """``default``, or the seconds in the environment variable ``variable`` when it is set."""
    text = os.environ.get(variable)
    if not text:
        return default
    try:
        return POSITIVE_FLOAT.parse(text)
    except argparse.ArgumentTypeError as e:
        raise DataError(f"{variable} ({meaning}): {e}") from None


def download_timeout():
    """DOWNLOAD_TIMEOUT, or the seconds in the environment variable TIMEOUT_VARIABLE when it is set."""
    return seconds_from_environment(TIMEOUT_VARIABLE, DOWNLOAD_TIMEOUT, "download timeout in seconds")


def download_deadline():
    """DOWNLOAD_DEADLINE, or the seconds in the environment variable DEADLINE_VARIABLE when it is set."""
    return seconds_from_environment(DEADLINE_VARIABLE, DOWNLOAD_DEADLINE, "seconds allowed for each file")


def timed_out(error):
    """Whether ``error`` is a socket timeout, bare or as the reason of a urllib URLError."""
    return isinstance(error, TimeoutError) or isinstance(getattr(error, 'reason', None), TimeoutError)


def fetch(url, path, read_timeout, give_up_at):
    """Write what ``url`` serves to ``path`` and return its SHA-256 hex digest. Raises TimeoutError when a read
    waits ``read_timeout`` seconds or the ``time.monotonic()`` clock passes ``give_up_at``, ConnectionError when
    the transfer ends before the announced length."""
    digest = hashlib.sha256()
    received = 0
    with urllib.request.urlopen(url, timeout=read_timeout) as response, open(path, 'wb') as out:
        declared = response.headers.get('Content-Length')
        # read1 returns whatever one read of the connection brings, so the clock is looked at as each piece
        # arrives; read() would wait for a whole chunk, which a trickling mirror takes hours to fill.
        while chunk := response.read1(CHUNK_SIZE):
            if time.monotonic() > give_up_at:
                raise TimeoutError
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
    if declared is not None and declared.isdigit() and received < int(declared):
        raise ConnectionError(f"cut short: received {received} of the {declared} bytes announced")
    return digest.hexdigest()


def fetch_verified(name, staging, mirrors, sha256, timeout, deadline=DOWNLOAD_DEADLINE):
    """Download ``name`` into ``staging`` from the first mirror that serves it with the right SHA-256, no pause
    longer than ``timeout`` seconds and in all within ``deadline`` seconds of asking. Returns ``(path, failures)``;
    path is None when no mirror worked, and failures says why each failed."""
    path = os.path.join(staging, name)
    failures = []
    for mirror in mirrors:
        url = mirror + name
        print(f"Downloading data from {url}", flush=True)
        give_up_at = time.monotonic() + deadline
        try:
            # The deadline is checked as data arrives; capping the socket limit by it too keeps a connect or a
            # stalled read from overrunning a deadline shorter than the timeout by more than the deadline itself.
            digest = fetch(url, path, min(timeout, deadline), give_up_at)
        except (OSError, http.client.HTTPException) as e:
            if not timed_out(e):
                failure = e
            elif time.monotonic() >= give_up_at:
                failure = (f"deadline passed: not complete within {deadline:g} s (set {DEADLINE_VARIABLE} to allow "
                           f"longer)")
            else:
                failure = f"timed out: no data for {timeout:g} s (set {TIMEOUT_VARIABLE} to wait longer)"
        else:
            if digest == sha256:
                return path, failures
            failure = f"SHA-256 hash does not match: got {digest}, expected {sha256}"
        failures.append(f"{url}: {failure}")
        # The next mirror starts clean, and nothing rejected stays in the staging folder.
        if os.path.exists(path):
            os.remove(path)
    return None, failures


def download_mnist(directory, mirrors=MIRRORS, hashes=MNIST_SHA256):
    """Download the four .gz files into ``directory``, each checked against ``hashes`` (name.gz -> SHA-256).
    Files are fetched into a temporary folder inside ``directory`` and get their final names only
    when all four are verified, so no partial or bad file is ever left under a name the loader reads.
    The temporary folder is removed on every exit: success, error, Ctrl-C or SIGTERM."""
    timeout = download_timeout()
    deadline = download_deadline()
    created = not os.path.isdir(directory)
    with sigterm_unwinds():
        try:
            os.makedirs(directory, exist_ok=True)
            staging_dir = tempfile.TemporaryDirectory(prefix='.download-', dir=directory)
        except OSError as e:
            raise DataError(f"{directory}: cannot download into it: {e.strerror or e}") from None
        try:
            with staging_dir as staging:
                fetch_all(directory, staging, mirrors, hashes, timeout, deadline)
        except BaseException:
            if created:  # a download that failed leaves no empty folder behind
                with contextlib.suppress(OSError):
                    os.rmdir(directory)
            raise


def fetch_all(directory, staging, mirrors, hashes, timeout, deadline):
    """The four files into ``staging``, then all at once into ``directory``."""
    fetched = []
    for name in FILES:
        path, failures = fetch_verified(name + '.gz', staging, mirrors, hashes[name + '.gz'], timeout,
                                        deadline)
        if path is None:
            tried = "\n  ".join(failures) or "(no mirrors given)"
            raise DataError(f"could not download MNIST into {directory}:\n  {tried}\n"
                            f"Put the four MNIST files {', '.join(FILES)} in {directory} yourself; "
                            f"each may be raw or gzip-compressed (.gz).")
        fetched.append(path)
    for path in fetched:
        os.replace(path, os.path.join(directory, os.path.basename(path)))


def incomplete_error(directory, missing):
    present = [name for name in FILES if name not in missing]
    return DataError(f"{directory} has {', '.join(present)} but not {', '.join(missing)} "
                     f"(raw or .gz); add the missing files, or empty the folder to download all four")


def resolve_data_dir(dataset='mnist', data_dir=None, download=True):
    """The folder holding the four files of ``dataset``.

    mnist: ``data_dir`` (None: the module's ``data_dir``), downloaded into when it has none of the files.
    fashion-mnist: ``data_dir`` when given and holding the files, else Debian's dataset-fashion-mnist
    folder. Without an explicit ``data_dir`` the MNIST folder is never used, so digits downloaded there
    are not mistaken for Fashion-MNIST. Fashion-MNIST is never downloaded."""
    if data_dir is not None and not os.path.isdir(data_dir):
        # A folder the user named and mistyped is not a place to download into; only the default data/ is made.
        raise DataError(f"the folder {data_dir} does not exist (--data-dir): create it and put the four files "
                        f"{', '.join(FILES)} (raw or .gz) there, or leave --data-dir out to use (and download "
                        f"MNIST into) {globals()['data_dir']}")
    if dataset == 'mnist':
        directory = chosen_dir(data_dir)
        missing = missing_files(directory)
        if missing and len(missing) < len(FILES):
            raise incomplete_error(directory, missing)
        if missing and not download:
            raise DataError(f"no MNIST files in {directory} and downloading is off: put {', '.join(FILES)} "
                            f"there (raw or .gz)")
        if missing:
            download_mnist(directory)
        return directory
    if dataset == 'fashion-mnist':
        candidates = [FASHION_MNIST_DIR] if data_dir is None else [data_dir, FASHION_MNIST_DIR]
        for directory in candidates:
            missing = missing_files(directory)
            if not missing:
                return directory
            if len(missing) < len(FILES):
                raise incomplete_error(directory, missing)
        raise DataError(f"Fashion-MNIST not found in {' or '.join(candidates)}: install Debian's package "
                        f"(apt-get install dataset-fashion-mnist) or put its four files {', '.join(FILES)} "
                        f"(raw or .gz) in a folder and pass it as --data-dir")
    raise DataError(f"unknown dataset {dataset!r}: expected 'mnist' or 'fashion-mnist'")


def load_dataset(dataset='mnist', data_dir=None, valid_size=10000, download=True):
    """Find (and for MNIST, download if needed) the data, then split it like ``mnist_with_valid_set``."""
    return mnist_with_valid_set(resolve_data_dir(dataset, data_dir, download), valid_size)
