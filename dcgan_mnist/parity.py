"""What compare and migrate-check share: how two computations of one thing are told apart (rows, tolerances,
the largest differences) and printed (one aligned table), and the random inputs both feed."""
import numpy as np

from .batches import IMAGE_SHAPE
from .model import DIM_Y
from .util import OneHot

# Largest difference allowed relative to the larger max |value| of the two tensors: about 80 float32 ulps
# for one pass. Identical ops give identical numbers, so the lockstep one is tight on purpose, not a bound
# on how round-off grows (Adam can turn a tiny difference in a near-zero gradient into an update of up to
# the learning rate): measure before loosening it.
ONE_PASS_RTOL = 1e-5
LOCKSTEP_RTOL = 1e-4

def fmt_shape(shape):
    return "x".join("?" if d is None else str(d) for d in shape) or "scalar"


def row(section, name, original, ours):
    """One comparison: what each side has (None: nothing), ok when that agrees; ``measure`` adds how far
    the values are apart, lockstep the first iteration over tolerance."""
    return {"section": section, "name": name, "original": original, "ours": ours,
            "ok": ours is not None and ours == original, "max_abs": None, "max_rel": None, "iteration": None}


def measure(r, ours, original, rtol):
    """Marks ``r`` with max |ours - original| and that relative to the larger max |value| of the two
    (elementwise ratios explode at the zeros of ReLU and the clip); returns which elements are over
    ``rtol`` (NaN always is)."""
    a, b = np.asarray(ours, np.float64), np.asarray(original, np.float64)
    diff = np.abs(a - b)
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0))
    relative = diff / scale if scale > 0 else diff
    over = ~(relative <= rtol)
    r.update(max_abs=float(diff.max(initial=0.0)), max_rel=float(relative.max(initial=0.0)),
             ok=r["ok"] and not over.any())
    return over


def draw_inputs(rng, batch_size, dim_z):
    """One batch as train.py feeds it (images float64 in [0,1], one-hot labels, float32 uniform Z)."""
    Xs = rng.rand(batch_size, *IMAGE_SHAPE)
    Ys = OneHot(rng.randint(DIM_Y, size=batch_size), DIM_Y)
    Zs = rng.uniform(-1, 1, size=[batch_size, dim_z]).astype(np.float32)
    return Xs, Ys, Zs


def difference(x):
    """A largest difference as the tables print it."""
    return "-" if x is None else "0" if x == 0 else f"{x:.2e}"


def aligned_rows(sides, rows):
    """The table of ``rows`` (``row``'s dicts) with the two ``sides`` named in its header: the header line and
    one line per row ending in its verdict, the columns aligned."""
    table = [("", *sides, "max abs", "max rel", "from iteration")]
    table += [(r["name"], r["original"] or "-", r["ours"] or "-", difference(r["max_abs"]), difference(r["max_rel"]),
               "-" if r["iteration"] is None else str(r["iteration"])) for r in rows]
    widths = [max(len(cells[i]) for cells in table) for i in range(len(table[0]))]
    aligned = ["  " + "  ".join([c[0].ljust(widths[0])] + [x.rjust(w) for x, w in zip(c[1:], widths[1:])])
               for c in table]
    return aligned[0], [line + ("  ok" if r["ok"] else "  DIFF") for line, r in zip(aligned[1:], rows)]
