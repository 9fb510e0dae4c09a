"""The scores of generated digits, each also measured on real images as the reference (docs/evaluation.md).

- NNC and NND, as Newmu's dcgan_code defines them: a 1-nearest-neighbour classifier made of the
  generated images (labelled with the digit they were conditioned on) classifies the validation
  images (NNC = its accuracy), and NND is the mean Euclidean distance, on pixels in [0, 1], from each
  validation image to its nearest generated image. Reference: training images in place of samples.
- Judge accuracy: how often a CNN trained on real digits names the digit a sample was conditioned on.
- Frechet distance between the judge's penultimate features of samples and of real test images.
  Reference: training images against the test images.
"""
import warnings

import numpy as np

from . import judge as judge_module
from .model import DIM_Y
from .sampler import draw_samples

SMALL_SET = 1000  # Newmu reports NNC and NND at 1k and 10k samples
# Distances held at once by the blockwise nearest-neighbour search: 8,000,000 float64s = 64 MB.
DISTANCES_PER_BLOCK = 8_000_000


def pixel_rows(images):
    """float64 rows of 784 in [0, 1], the space the nearest-neighbour distances are measured in."""
    return judge_module.unit_images(images).reshape(len(images), -1).astype(np.float64)


def nearest_neighbours(queries, references, distances_per_block=DISTANCES_PER_BLOCK):
    """For every query row, the index of its nearest reference row (the first of equally near ones, as
    argmin over scipy's cdist picks) and the Euclidean distance to it.

    Squared distances |q|^2 + |r|^2 - 2 q.r come from one float64 matrix product per block of queries, a
    block at a time so memory stays bounded. That is several times faster than cdist, but it rounds at the
    scale of |q|^2 + |r|^2 rather than of the distance, so it can misorder references whose distances differ
    by less than its round-off, and it cannot give an exact 0. Every reference that close to the nearest is
    therefore measured again from the differences, as cdist measures, and decides."""
    queries, references = np.asarray(queries, np.float64), np.asarray(references, np.float64)
    reference_norms = np.einsum("ij,ij->i", references, references)
    # A bound on the product form's round-off in comparing two squared distances, relative to |q|^2 + |r|^2:
    # each dot product of d terms may be off by about d units in the last place.
    slack = 4 * (queries.shape[1] + 1) * np.finfo(np.float64).eps
    block = max(1, distances_per_block // len(references))
    index = np.empty(len(queries), dtype=np.int64)
    distance = np.empty(len(queries))
    for start in range(0, len(queries), block):
        q = queries[start:start + block]
        # |q|^2 is the same along a row, so it is left out: it does not change which reference is nearest.
        partial = reference_norms - 2 * (q @ references.T)
        limit = partial.min(axis=1) + slack * (np.einsum("ij,ij->i", q, q) + reference_norms.max())
        rows, columns = np.nonzero(partial <= limit[:, None])
        exact = row_distances(q, rows, references, columns, distances_per_block)
        # Nearest first, then the lowest index; the first entry of each query row is its answer.
        order = np.lexsort((columns, exact, rows))
        first = order[np.r_[True, rows[order][1:] != rows[order][:-1]]]
        index[start:start + len(q)] = columns[first]
        distance[start:start + len(q)] = exact[first]
    return index, distance


def row_distances(a, a_rows, b, b_rows, values_per_block):
    """The Euclidean distance between a[a_rows[i]] and b[b_rows[i]] for every i, from their differences,
    holding at most about ``values_per_block`` differences at once."""
    out = np.empty(len(a_rows))
    step = max(1, values_per_block // a.shape[1])
    for i in range(0, len(a_rows), step):
        difference = a[a_rows[i:i + step]] - b[b_rows[i:i + step]]
        out[i:i + step] = np.sqrt(np.einsum("ij,ij->i", difference, difference))
    return out


def nnc_nnd(images, labels, valid_images, valid_labels):
    """(NNC, NND) of a labelled image set against the validation images."""
    index, distance = nearest_neighbours(pixel_rows(valid_images), pixel_rows(images))
    return float(np.mean(labels[index] == valid_labels)), float(distance.mean())


def images_also_in(images, others):
    """How many of ``images`` [N, ...] are, pixel for pixel, one of ``others``."""
    seen = {row.tobytes() for row in np.ascontiguousarray(others).reshape(len(others), -1)}
    return sum(row.tobytes() in seen for row in np.ascontiguousarray(images).reshape(len(images), -1))


def frechet_distance(features_a, features_b):
    """Frechet distance between Gaussians fitted to two feature sets [N, D]."""
    from scipy import linalg  # here, not at the top: importing it costs every command's --help half a second

    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        # A ReLU feature that is always 0 makes the product singular: sqrtm warns, yet its root is
        # accurate; when it is not finite, a tiny ridge on both covariances makes it so.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(root).all():
            ridge = 1e-6 * np.eye(len(cov_a))
            root = linalg.sqrtm((cov_a + ridge) @ (cov_b + ridge))
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root.real))


def judge_scores(probabilities, labels):
    """How often the judge names the label, overall and per digit, and its mean confidence in what it names."""
    correct = probabilities.argmax(axis=1) == labels
    return {"judge_accuracy": float(correct.mean()),
            "judge_accuracy_per_digit": [float(correct[labels == d].mean()) if np.any(labels == d) else None
                                         for d in range(DIM_Y)],
            "judge_confidence": float(probabilities.max(axis=1).mean())}


def set_sizes(n):
    """The set sizes NNC and NND are reported at: 1000 and n."""
    return sorted({min(SMALL_SET, n), n})


def nearest_neighbour_scores(images, labels, valid, sizes):
    """NNC and NND of the first n images for each n in ``sizes``; none without validation images."""
    if len(valid[0]) == 0:
        return []
    return [dict(zip(("n", "nnc", "nnd"), (n, *nnc_nnd(images[:n], labels[:n], *valid)))) for n in sizes]


def real_references(data, judge, real_rows):
    """The real images' side of ``score``: the test images' judge features, and the scores of the training images
    ``real_rows`` and of the test images. ``data`` is the run's ``Splits``."""
    trX, vaX, teX, trY, vaY, teY = data
    test_probabilities, test_features = judge.classify(teX)
    _, real_features = judge.classify(trX[real_rows])
    real_train = {"n": len(real_rows),
                  "nearest_neighbour": nearest_neighbour_scores(trX[real_rows], trY[real_rows], (vaX, vaY),
                                                                set_sizes(len(real_rows))),
                  "frechet": frechet_distance(real_features, test_features)}
    return {"test_features": test_features, "real_train": real_train,
            "real_test": {"n": len(teX), **judge_scores(test_probabilities, teY)}}


def score(sample, n, chunk, dim_z, data, judge, rng, references=None):
    """Every score of ``n`` generated images and of the real references. ``sample(z, y)`` draws
    ``chunk`` images; ``data`` is the run's ``Splits``; only ``rng`` is drawn from. ``references``, a
    dict kept between calls with the same data, judge, n and rng seed, keeps the real side (which is then the
    same) so that it is computed once."""
    trX, vaX, teX, trY, vaY, teY = data
    images, labels = draw_samples(sample, n, chunk, dim_z, rng)
    real_rows = rng.permutation(len(trX))[:n]
    if references is None:
        references = {}
    if not references:
        references.update(real_references(data, judge, real_rows))
    probabilities, features = judge.classify(images)
    generated = {"n": n, "nearest_neighbour": nearest_neighbour_scores(images, labels, (vaX, vaY), set_sizes(n)),
                 **judge_scores(probabilities, labels),
                 "frechet": frechet_distance(features, references["test_features"])}
    return {"generated": generated, "real_train": references["real_train"], "real_test": references["real_test"]}


def flat_scores(scores, prefix="eval"):
    """{'eval/generated/nnc_1000': ..., ...}: the numbers of ``score``'s result as one flat dict."""
    flat = {}
    for group, values in scores.items():
        for entry in values.get("nearest_neighbour", []):
            flat[f"{prefix}/{group}/nnc_{entry['n']}"] = entry["nnc"]
            flat[f"{prefix}/{group}/nnd_{entry['n']}"] = entry["nnd"]
        for name in ("judge_accuracy", "judge_confidence", "frechet"):
            if name in values:
                flat[f"{prefix}/{group}/{name}"] = values[name]
        for digit, value in enumerate(values.get("judge_accuracy_per_digit", [])):
            flat[f"{prefix}/{group}/judge_accuracy_digit_{digit}"] = value
    return flat
