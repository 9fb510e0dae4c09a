"""Time the real training loop: ``python -m dcgan_mnist bench [--mode faithful|compact] [--json] ...``.

The graph is built as train.py builds it, batches are prepared as train.py prepares them (uint8
pixels through PIXEL_TO_FLOAT, one-hot labels, uniform z) and every iteration is a call of
TrainingGraph.iterate, the one definition of an iteration. TensorFlow prepares a run the first time
it sees its set of fetches, so before the clock starts each kind of Session.run the timed iterations
will make is run --warmup times.

FLOPs are counted from the graph, not measured: for each kind of run, TensorFlow's profiler sums the
float operations it has statistics for over the ops that run executes (the fetches and everything
they depend on). That is 2 per multiply-add of every MatMul and convolution (forward, and both
backward kernels) plus one per element of the elementwise and reduction ops it knows (Add, Sub, Mul,
RealDiv, Square, Rsqrt, Mean...); activations (sigmoid, ReLU, abs), concatenations and the Adam
updates are not counted. The FLOPs per iteration are the average over the timed iterations' runs.

``--profile`` reads where the time goes from TensorFlow's own step stats (RunMetadata of runs traced with
FULL_TRACE): after the timed iterations, PROFILE_RUNS runs of each kind they made are traced (tracing slows a run,
so none of them is timed), each node's time is added to its op type, and each kind counts as often as the timed
iterations made it. The shares are of the ops' summed time, which is more than the wall time where ops overlap on
several cores.
"""
import collections
import math
import os
import platform
import re
import resource
import sys
import time

import numpy as np

from .. import cli, lazy_tf, load
from ..batches import batches_per_epoch, endless_batches, synthetic_data
from ..cli import POSITIVE_INT, CommandError, dumps, parser, run_command
from ..graph import build_training
from ..load import DataError, load_dataset
from ..model import _tf, tf
from ..precision import computes_in, threads_config, warn_without_native_bfloat16
from ..settings import (
    DEFAULT,
    RECIPES,
    SWITCHES,
    add_flags,
    describe_switches,
    model_flags,
    settings_from,
    switch_words,
)

# The original's training split: 50,000 of MNIST's 60,000 training images.
SYNTHETIC_IMAGES = 50000
# Significant digits of the timings: the table shows what repeated runs agree on, the JSON a little more.
TABLE_DIGITS = 3
JSON_DIGITS = 4
# --profile: runs traced of each kind of Session.run the timed iterations make, and the op types its table shows.
PROFILE_RUNS = 3
PROFILE_TOP = 10
# The op types --profile counts as element-wise: arithmetic one element at a time and the reductions over it, what the
# original writes batchnorm and leaky ReLU out of, with the ops of their gradients. Not in it: the activations that are
# one kernel each (Relu, LeakyRelu, Sigmoid and their gradients), the fused batch norm, Cast and the ops that only
# move data (ConcatV2, Reshape, Tile, BroadcastTo).
ELEMENT_WISE = frozenset({
    "Abs", "Add", "AddN", "AddV2", "Maximum", "Mean", "Minimum", "Mul", "Neg", "RealDiv", "Reciprocal", "Rsqrt",
    "RsqrtGrad", "Select", "SelectV2", "Sign", "Sqrt", "SqrtGrad", "Square", "SquaredDifference", "Sub", "Sum"})
# A node's timeline label is "NAME = OP(INPUTS)"; oneDNN's kernels are named after the op they replace
# (_MklNativeConv2D, _MklMatMul) and are counted as that op.
TIMELINE_OP = re.compile(r" = ([^(\s]+)\(")
ONEDNN_PREFIX = re.compile(r"^_Mkl(Native)?")


def float_operations():
    """Profiler options that count float operations and print nothing (built on use: they need TensorFlow)."""
    return tf.profiler.ProfileOptionBuilder(
        tf.profiler.ProfileOptionBuilder.float_operation()).with_empty_output().build()


def build_parser():
    p = parser("python -m dcgan_mnist bench",
               "Time the real training loop (TrainingGraph.iterate on batches prepared as train.py prepares them) "
               "after a warm-up, and print iterations/second, ms per D and G step, FLOPs per iteration counted "
               "from the graph, achieved GFLOP/s and peak resident memory.")
    p.add_argument("--mode", choices=["faithful", "compact"], default="faithful",
                   help="faithful: every iteration computes the post-update numbers the original prints; compact: "
                        "only every --log-every iterations (as train.py --log compact)")
    p.add_argument("--iterations", type=POSITIVE_INT.parse, default=50, help="timed iterations")
    p.add_argument("--warmup", type=POSITIVE_INT.parse, default=2,
                   help="untimed runs of each kind of Session.run the timed iterations make")
    model_flags(p)
    add_flags(p, ["log_every", "data_dir", "valid_size", "threads", "seed"],
              log_every={"help": "compact mode: iterations between evaluated (logged) iterations"},
              data_dir={"help": "time on the MNIST-format files in this folder (default: data/, as train.py, "
                                "when it holds MNIST; else synthetic data)"},
              valid_size={"help": "with --data-dir: training images held out, as train.py does"},
              seed={"default": 0, "help": "seeds the weights, the data order and z"})
    p.add_argument("--synthetic", action="store_true",
                   help=f"time on synthetic uint8 data ({SYNTHETIC_IMAGES} images, the original's training split) "
                        f"instead of the data a run would use")
    p.add_argument("--against", choices=list(RECIPES), default=None,
                   help="also time this recipe (in fp32), side by side in the same process: the same batches and "
                        "initial weights, the two taking turns every iteration; adds the ratios of the first to it")
    p.add_argument("--against-mode", choices=["faithful", "compact"], default=None,
                   help="the mode of the --against side (default: --mode); faithful times the original's loop")
    p.add_argument("--profile", action="store_true",
                   help=f"also trace {PROFILE_RUNS} runs of each kind the timed iterations make, after them (a traced "
                        "run is slower, so they are not timed), and print where the time goes by TensorFlow's own "
                        "step stats: the op types by share of the ops' time, weighted as the timed iterations ran "
                        "each kind, the share of Cast ops and of element-wise ones (bench.ELEMENT_WISE); for each "
                        "side with --against")
    p.add_argument("--peak", action="store_true",
                   help="also measure this machine's plain matmul throughput in fp32 and bf16 (GFLOP/s), and what "
                        "fraction of it the loop reaches")
    cli.add_json_flag(p, "the result")
    return p


def executed_ops(fetches):
    """Names of the ops a Session.run of ``fetches`` executes: the fetches and everything they depend on."""
    seen, stack = set(), [f if isinstance(f, tf.Operation) else f.op for f in fetches]
    while stack:
        op = stack.pop()
        if op.name not in seen:
            seen.add(op.name)
            stack.extend(t.op for t in op.inputs)
            stack.extend(op.control_inputs)
    return seen


def count_flops(fetches):
    """Float operations of one Session.run of ``fetches``, from the ops' static shapes."""
    names = executed_ops(fetches)
    graph_def = fetches[0].graph.as_graph_def()
    executed = [n for n in graph_def.node if n.name in names]
    del graph_def.node[:]
    graph_def.node.extend(executed)
    with tf.Graph().as_default() as subgraph:
        tf.import_graph_def(graph_def, name="")
        return tf.profiler.profile(subgraph, options=float_operations()).total_float_ops


def op_micros(step_stats):
    """Microseconds by op type of one traced run's ``step_stats``: each node's all_end_rel_micros (from its start to
    its outputs), on every device. The per-stream records of a GPU trace, which repeat its kernels, are left out."""
    micros = collections.Counter()
    for device in step_stats.dev_stats:
        if "/stream:" in device.device:
            continue
        for node in device.node_stats:
            found = TIMELINE_OP.search(node.timeline_label)
            micros[ONEDNN_PREFIX.sub("", found.group(1)) if found else "(no label)"] += node.all_end_rel_micros
    return micros


def peak_rss_mb():
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def device_description():
    gpus = _tf.config.list_physical_devices("GPU")
    if gpus:
        return "GPU: " + ", ".join(g.name for g in gpus)
    return f"CPU: {cpu_name()}, {os.cpu_count()} logical cores"


class Timed:
    """One recipe's model and training graph in a graph and session of its own, with the FLOPs of each kind of
    Session.run the timed iterations make and the seconds each of its steps took."""

    def __init__(self, settings, evaluated, kinds):
        self.recipe, self.precision, self.graph = settings.recipe, settings.precision, tf.Graph()
        self.evaluated, self.kinds = evaluated, kinds
        with self.graph.as_default():
            self.training = build_training(settings)
            self.model = self.training.model
            self.flops = {kind: count_flops(self.training.fetches(*kind)) for kind in set(kinds)}
            self.session = tf.Session(config=self.training.session_config)
            self.session.run(tf.global_variables_initializer())
        self.step_seconds = {"D": [], "G": []}

    def iterate(self, iteration, batch, evaluate, timed=True, run_metadata=None):
        started = time.perf_counter()
        out = self.training.iterate(self.session, iteration, *batch, k=DEFAULT.k, after_update=evaluate,
                                    run_metadata=run_metadata)
        if timed:
            self.step_seconds[out["updated"]].append(time.perf_counter() - started)

    def profile(self, feed):
        """--profile: op time by op type of PROFILE_RUNS traced runs of each kind the timed iterations made, on
        batches from ``feed``, each kind weighted by its share of those iterations; the op types most first."""
        per_iteration = collections.Counter()
        with lazy_tf.no_gpu_notices():
            for kind in sorted(set(self.kinds)):
                updated, evaluate = kind
                weight = self.kinds.count(kind) / len(self.kinds) / PROFILE_RUNS
                for _ in range(PROFILE_RUNS):
                    metadata = tf.RunMetadata()
                    self.iterate(0 if updated == "D" else 1, next(feed), evaluate, timed=False,
                                 run_metadata=metadata)
                    for op, micros in op_micros(metadata.step_stats).items():
                        per_iteration[op] += micros * weight
        total = sum(per_iteration.values())
        shares = {op: micros / total for op, micros in per_iteration.most_common()}
        return {"traced_runs": PROFILE_RUNS * len(set(self.kinds)),
                "op_ms_per_iteration": significant(total / 1000, JSON_DIGITS),
                "cast_share": significant(shares.get("Cast", 0.0), JSON_DIGITS),
                "element_wise_share": significant(sum(shares[op] for op in ELEMENT_WISE & set(shares)), JSON_DIGITS),
                "op_types": {op: significant(share, JSON_DIGITS) for op, share in shares.items()}}

    def result(self, args, seconds):
        """The report of this recipe, ``seconds`` being the time its timed iterations took."""
        flops = sorted(self.flops.items())
        gflop_per_it = sum(self.flops[kind] for kind in self.kinds) / len(self.kinds) / 1e9
        it_per_s = args.iterations / seconds

        def median_ms(values):
            return significant(float(np.median(values)) * 1000, JSON_DIGITS) if values else None

        return {
            "recipe": self.recipe, **{name: getattr(self.model, name) for name in SWITCHES},
            "precision": self.precision,
            "mode": "faithful" if all(evaluate for _, evaluate in self.kinds) else "compact",
            "it_per_s": significant(it_per_s, JSON_DIGITS),
            "ms_d_step": median_ms(self.step_seconds["D"]), "ms_g_step": median_ms(self.step_seconds["G"]),
            "d_steps": len(self.step_seconds["D"]), "g_steps": len(self.step_seconds["G"]),
            "gflop_per_it": significant(gflop_per_it, JSON_DIGITS),
            "gflop_per_run": {f"{updated} {'update+evaluation' if evaluate else 'update'}":
                              significant(n / 1e9, JSON_DIGITS) for (updated, evaluate), n in flops},
            "gflops": significant(gflop_per_it * it_per_s, JSON_DIGITS),
        }


PEAK_SIDE = 2048  # the matmul of the --peak probe: [2048, 2048] x [2048, 2048], 17.2 GFLOP
PEAK_REPEATS = 5


def matmul_peak(threads):
    """GFLOP/s of one large matmul in fp32 and in bf16 (median of PEAK_REPEATS after a warm-up): what this machine's
    arithmetic reaches at best, with the kernels TensorFlow picks."""
    found = {}
    for precision, dtype in (("fp32", tf.float32), ("bf16", tf.bfloat16)):
        with tf.Graph().as_default():
            rng = np.random.RandomState(0)
            a, b = (tf.Variable(tf.cast(rng.rand(PEAK_SIDE, PEAK_SIDE).astype(np.float32), dtype)) for _ in "ab")
            product = tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32))
            with tf.Session(config=threads_config(threads)) as sess:
                sess.run(tf.global_variables_initializer())
                sess.run(product)
                seconds = []
                for _ in range(PEAK_REPEATS):
                    started = time.perf_counter()
                    sess.run(product)
                    seconds.append(time.perf_counter() - started)
        found[f"{precision}_gflops"] = significant(2 * PEAK_SIDE ** 3 / float(np.median(seconds)) / 1e9, JSON_DIGITS)
    return found


def bench(args):
    np.random.seed(args.seed)
    # The data a run would use: --data-dir, else data/ when it holds MNIST; synthetic when asked or there is none.
    default_has_mnist = args.data_dir is None and not load.missing_files(load.data_dir)
    if args.synthetic or not (args.data_dir or default_has_mnist):
        trX, trY = synthetic_data(SYNTHETIC_IMAGES, np.random)
        why = "--synthetic" if args.synthetic else f"{load.data_dir} holds no MNIST; --data-dir DIR times real data"
        data = f"synthetic data ({SYNTHETIC_IMAGES} images; {why})"
    else:
        try:
            trX, _, _, trY, _, _ = load_dataset("mnist", args.data_dir, args.valid_size, download=False)
        except DataError as e:
            raise CommandError(f"--data-dir: {e}") from None
        data = f"MNIST in {args.data_dir or load.data_dir} ({len(trY)} training images)"
    if batches_per_epoch(len(trY), args.batch_size) == 0:
        raise CommandError(f"{len(trY)} training images make no full batch of --batch-size {args.batch_size}")

    def schedule(mode):
        """Which iterations compute the printed numbers (train.py's rule), and the kind of each timed run."""
        def evaluated(i):
            return mode == "faithful" or i % args.log_every == 0
        return evaluated, [("G" if np.mod(i, DEFAULT.k) != 0 else "D", evaluated(i)) for i in range(args.iterations)]

    settings = settings_from(args)
    warn_without_native_bfloat16(settings.precision)
    recipes = [Timed(settings, *schedule(args.mode))]
    if args.against is not None:
        recipes.append(Timed(settings.replace(recipe=args.against, **RECIPES[args.against], precision="fp32"),
                             *schedule(args.against_mode or args.mode)))
    feed = endless_batches(trX, trY, args.batch_size, args.dim_z)

    for recipe in recipes:
        for updated, evaluate in sorted(set(recipe.kinds)):
            for _ in range(args.warmup):
                recipe.iterate(0 if updated == "D" else 1, next(feed), evaluate, timed=False)

    started = time.perf_counter()
    for i in range(args.iterations):
        batch = next(feed)
        for recipe in recipes[::1 if i % 2 == 0 else -1]:  # taking turns, so neither always runs first
            recipe.iterate(i, batch, recipe.evaluated(i))
    elapsed = time.perf_counter() - started
    # Measured before the traced runs, whose traces are held in memory.
    peak = {"peak_rss_mb": significant(peak_rss_mb(), JSON_DIGITS)}
    profiles = [recipe.profile(feed) for recipe in recipes] if args.profile else None
    for recipe in recipes:
        recipe.session.close()

    common = {
        "mode": args.mode, "log_every": args.log_every if args.mode == "compact" else None,
        "batch_size": args.batch_size, "iterations": args.iterations, "warmup": args.warmup, "data": data,
        "device": device_description(), "threads": args.threads, "tensorflow": _tf.__version__,
    }
    if len(recipes) == 1:
        results = [recipes[0].result(args, elapsed)]
    else:  # side by side, a recipe's time is the sum of its own steps
        results = [r.result(args, sum(map(sum, r.step_seconds.values()))) for r in recipes]
    for result in results:
        result["computed_in"] = computes_in(result["precision"])
    for result, profile in zip(results, profiles or []):
        result["profile"] = profile
    if args.peak:
        peak["machine"] = matmul_peak(args.threads)
        for result in results:
            result["of_peak"] = significant(result["gflops"] / peak["machine"][f"{result['computed_in']}_gflops"],
                                            JSON_DIGITS)
    if len(recipes) == 1:
        return {**common, **results[0], **peak}
    first, second = results
    return {**common, "recipes": [first, second], **peak,
            "ratios": {key: significant(first[key] / second[key], JSON_DIGITS)
                       for key in ("it_per_s", "ms_d_step", "ms_g_step") if first[key] and second[key]}}


def significant(value, digits):
    """``value`` rounded to ``digits`` significant digits: more would only look precise (timings vary from run to
    run, and the FLOP counts are averages over the timed iterations)."""
    return float(f"{value:.{digits}g}")


def shown(value):
    """A number of the table, to TABLE_DIGITS significant digits, trailing zeros kept (a ratio of 2.00 is not one
    of 2) and without an exponent."""
    value = significant(value, TABLE_DIGITS)
    decimals = TABLE_DIGITS - 1 - math.floor(math.log10(abs(value))) if value else TABLE_DIGITS - 1
    return f"{value:.{max(0, decimals)}f}"


def side_names(recipes, mode):
    """Short names of the timed sides: the recipe, and what else tells it apart from the other side."""
    same_recipe = len({x["recipe"] for x in recipes}) == 1
    differing = [n for n in SWITCHES if same_recipe and len({x[n] for x in recipes}) > 1]
    return [x["recipe"] + "".join(" " + switch_words(n, x[n]) for n in differing) + arithmetic(x, mode)
            for x in recipes]


def arithmetic(x, mode):
    """' in bf16', ' in faithful mode': how a side's loop differs from the default fp32 loop of the table's mode."""
    return ("" if x["precision"] == "fp32" else f" in {x['precision']}") + ("" if x["mode"] == mode else
                                                                            f" in {x['mode']} mode")


def print_table(r):
    mode = "faithful mode" if r["mode"] == "faithful" else f"compact mode, evaluated every {r['log_every']}"
    recipes = r.get("recipes", [r])
    names = " against ".join(describe_switches(x) + arithmetic(x, r["mode"]) for x in recipes)
    print(f"bench: {mode}, {names}, batch {r['batch_size']}, {r['iterations']} timed iterations "
          f"after warm-up, {r['data']}; {r['device']}, TensorFlow {r['tensorflow']}")
    sides = side_names(recipes, r["mode"])
    for x, side in zip(recipes, sides):
        if len(recipes) > 1:
            print(f"recipe {side}, its steps only:")
        print(f"  iterations/second     {shown(x['it_per_s'])}")
        for name, ms, n in (("D", x["ms_d_step"], x["d_steps"]), ("G", x["ms_g_step"], x["g_steps"])):
            print(f"  ms per {name} step         " + ("-" if ms is None else f"{shown(ms)}  (median of {n})"))
        runs = ", ".join(f"{name} {shown(g)}" for name, g in x["gflop_per_run"].items())
        print(f"  GFLOP per iteration   {shown(x['gflop_per_it'])}  (per run: {runs}; counted from the graph)")
        of_peak = f"  ({100 * x['of_peak']:.0f}% of this machine's {x['computed_in']} matmul)" if "of_peak" in x else ""
        print(f"  achieved GFLOP/s      {shown(x['gflops'])}{of_peak}")
        if "profile" in x:
            print_profile(x["profile"])
    print(f"  peak resident memory  {r['peak_rss_mb']:.0f} MB")
    if "machine" in r:
        machine = r["machine"]
        print(f"  this machine's matmul [{PEAK_SIDE}x{PEAK_SIDE}]^2: fp32 {shown(machine['fp32_gflops'])} GFLOP/s, "
              f"bf16 {shown(machine['bf16_gflops'])} GFLOP/s")
    if len(recipes) > 1:
        print(" / ".join(sides) + ": " + ", ".join(
            f"{label} {shown(r['ratios'][key])}" for key, label in (("it_per_s", "iterations/second"),
                                                                   ("ms_d_step", "ms per D step"),
                                                                   ("ms_g_step", "ms per G step"))
            if key in r["ratios"]))


def print_profile(p):
    print(f"  op time per iteration {shown(p['op_ms_per_iteration'])} ms  (TensorFlow's step stats of "
          f"{p['traced_runs']} traced runs after the timed ones; ops that overlap on several cores each count)")
    for op, share in list(p["op_types"].items())[:PROFILE_TOP]:
        print(f"    {op:<26}{100 * share:5.1f}%")
    print(f"  Cast ops              {100 * p['cast_share']:.1f}% of the op time")
    print(f"  element-wise ops      {100 * p['element_wise_share']:.1f}% of the op time  (bench.ELEMENT_WISE)")


def command(argv):
    args = build_parser().parse_args(argv)
    result = bench(args)
    if args.json:
        print(dumps(result))
    else:
        print_table(result)
    return 0


def main(argv=None):
    return run_command(command, argv)
