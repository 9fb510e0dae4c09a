"""`python -m dcgan_mnist ablate`: train the original, each fix alone and the repaired recipe, and score them.

    python -m dcgan_mnist ablate --out ablation --data-dir DIR --valid-size 2000 --seeds 0,1,2,3,4 \
        --iterations 3000 --eval-every 500 --jobs 2

Every (variant, seed) is an ordinary run directory, OUT/runs/VARIANT/seed-S, trained in chunks of --eval-every
iterations (train.py's exact resume makes the chunks one run); after each chunk its checkpoint is scored as
`evaluate` scores it (a run trained with --g-average twice: with the average and with G's latest weights).

The work is done by Dask: each chunk of training and each score is a task, run by a worker process that calls the
library (``train``, ``evaluate_run``) directly. --jobs N starts a local cluster of N single-threaded workers, each
of whose TensorFlow sessions gets its share of the cores; --scheduler ADDRESS uses a running Dask scheduler and
its workers instead, which must see --out (and the data and the judge) at the same paths. A run's chunks and
scores follow one another, the next chunk once the last score is stored; different runs are independent, so
N workers train N runs at a time. What a run's tasks print goes into RUN_DIR/tasks.log (each warning also onto the
console, once), and after each score the client writes the run's eval.jsonl, in the format of train.py
--eval-every-epoch, so that `plot` draws the runs. The client (this process) writes everything else in OUT but the
run directories:

    ablation.json              every score, by run and iteration (what a second invocation skips)
    ablation.md                median and worst seed of each variant at each number of iterations
    tensorboard/VARIANT/seed-S the scores as TensorBoard scalars: `tensorboard --logdir OUT` overlays the variants
    grids.png                  each variant's final per-digit grid, one column per variant, one row per seed

Before training it times the model on every worker and prints the plan, the time it should take and the disk
it needs (--dry-run stops there); while training it prints one line per task as it ends, with the work left and an
ETA (on a terminal, a bar of the tasks done under them), and at the end the time taken beside the estimate.

Stopped at any point (Ctrl-C, a killed client or worker), it continues where it stopped when run again with the
same flags: stored scores are kept and runs resume from their latest checkpoint. A task whose worker died is
given to another worker by Dask; one that failed is tried again (RETRIES).
"""
import argparse
import asyncio
import contextlib
import fcntl
import hashlib
import os
import socket
import sys

from .. import cli, files, run
from .. import judge as judge_module
from ..ablation.plan import (
    DEFAULT_VARIANTS,
    FIXED,
    SHARED_SETTINGS,
    VARIANTS,
    Pace,
    Work,
    budgets,
    run_name,
    size,
    variant_flags,
)
from ..ablation.report import final_grids, grid_picture, scores_of, table
from ..ablation.tasks import (
    RunSpec,
    find_data,
    iterations_done,
    metrics,
    prepare_judge,
    probe,
    score_chunk,
    train_chunk,
)
from ..cli import POSITIVE_INT, CommandError, duration
from ..load import DataError, mnist, resolve_data_dir
from ..metrics import flat_scores
from ..records import Events
from ..settings import (
    SEED,
    Evaluation,
    add_flags,
    check_samples,
    flag,
)
from ..util import ensure_dir

RECORD_FILE = files.ABLATION_FILE
TABLE_FILE = "ablation.md"
GRIDS_FILE = "grids.png"
# Tries of a task after the first that raised (a worker that died is Dask's own matter: it gives the task to
# another worker, up to distributed.scheduler.allowed-failures times).
RETRIES = 2
# How --scheduler may be written: tcp://HOST:PORT (the default when no scheme is given) or tls://HOST:PORT.
SCHEDULER_SCHEMES = ("tcp", "tls")


def variant_list(text):
    names = [name.strip() for name in text.split(",")]
    if any(name not in VARIANTS for name in names) or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"expected distinct names from {', '.join(VARIANTS)} separated by commas, "
                                         f"got {text!r}")
    return names


def seed_list(text):
    try:
        seeds = [int(seed) for seed in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds) or not all(map(SEED.valid, seeds)):
        raise argparse.ArgumentTypeError(f"expected distinct seeds ({SEED.wanted}) separated by commas, got {text!r}")
    return seeds


def scheduler_address(text):
    """--scheduler's ADDRESS, refused unless it has one of SCHEDULER_SCHEMES (or none: tcp)."""
    scheme, separator, _ = text.rpartition("://")
    if separator and scheme not in SCHEDULER_SCHEMES:
        raise argparse.ArgumentTypeError(f"{text!r} has the scheme {scheme!r}; a Dask scheduler's address is "
                                         f"tcp://HOST:PORT or tls://HOST:PORT")
    return text


def build_parser():
    p = cli.parser("python -m dcgan_mnist ablate",
                   "Train every variant (the original, each fix alone, the repaired recipe) for each seed, score "
                   "each every --eval-every iterations, and write the scores as JSON, a markdown table, "
                   "TensorBoard scalars and one PNG of the final grids. The chunks of training and the scores are "
                   "Dask tasks, --jobs at a time on this machine or on the workers of a --scheduler. It prints "
                   "the plan, its estimated time and disk first. Run it again to continue an interrupted "
                   "ablation. Details: docs/repaired.md.")
    p.add_argument("--out", required=True, metavar="DIR", help="folder of the ablation's runs and results")
    p.add_argument("--variants", type=variant_list, default=DEFAULT_VARIANTS,
                   help=f"which variants, in this order, from {', '.join(VARIANTS)} (default: "
                        f"{','.join(DEFAULT_VARIANTS)})")
    p.add_argument("--seeds", type=seed_list, default=[0, 1, 2, 3, 4],
                   help="seeds of each variant, separated by commas (default: 0,1,2,3,4)")
    p.add_argument("--iterations", type=POSITIVE_INT.parse, default=3000, help="iterations of every run")
    p.add_argument("--eval-every", type=POSITIVE_INT.parse, default=500,
                   help="iterations between scores (the last score is at --iterations)")
    add_flags(p, ["samples"], source=Evaluation, samples={"help": "generated images per score (evaluate's --samples)"})
    engine = p.add_mutually_exclusive_group()
    engine.add_argument("--jobs", type=POSITIVE_INT.parse, default=1,
                        help="worker processes on this machine, each training or scoring one run at a time")
    engine.add_argument("--scheduler", metavar="ADDRESS", type=scheduler_address,
                        help="use the workers of this running Dask scheduler (tcp://HOST:PORT; started with `dask "
                             "scheduler`, workers with `dask worker ADDRESS --nthreads 1`) instead of --jobs. The "
                             "workers write the run directories into --out and read --data-dir and --judge-dir, so "
                             "these must be on a file system every worker sees at the same path")
    p.add_argument("--connect-timeout", type=cli.POSITIVE_FLOAT.parse, default=10.0, metavar="SECONDS",
                   help="with --scheduler: how long the scheduler has to answer; one that does not, or that is not a "
                        "Dask scheduler, stops the ablation with an error naming its address")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan, its estimated time and disk, and stop before training")
    add_flags(p, SHARED_SETTINGS,
              valid_size={"help": "train.py's --valid-size (the validation images NNC and NND are measured on)"},
              threads={"default": None,
                       "help": "TensorFlow threads of each task (default: the cores divided by --jobs; with "
                               "--scheduler, TensorFlow decides). A run keeps the threads it started with"})
    return p


def parse_args(argv):
    args = build_parser().parse_args(argv)
    check_samples(args.samples)
    # Workers may run in other folders (--scheduler): every path they are given is absolute.
    args.out = os.path.abspath(args.out)
    for name in ("data_dir", "judge_dir"):
        if getattr(args, name) is not None:
            setattr(args, name, os.path.abspath(getattr(args, name)))
    return args


def task_threads(args):
    """TensorFlow threads per task: --threads, or each local worker's share of this machine's cores; 0 (TensorFlow
    decides) on a scheduler's workers, whose machines this process does not know."""
    if args.threads is not None:
        return args.threads
    return 0 if args.scheduler else max(1, (os.cpu_count() or 1) // args.jobs)


def write_eval_log(run_dir, scores):
    """RUN_DIR/eval.jsonl, as train.py --eval-every-epoch writes it, of the run's ``scores`` ({budget: report}), so
    that ``plot`` draws an ablation's runs: each line is the scores after ``budget`` iterations, under the last of
    them and its epoch (counting from 1) from metrics.jsonl. Written whole from ablation.json's scores each time."""
    epochs = {record["iteration"]: record["epoch"] for record in metrics(run_dir)}
    lines = [cli.dumps({"iteration": int(budget) - 1, "epoch": epochs[int(budget) - 1], **scores_of(report)})
             for budget, report in sorted(scores.items(), key=lambda item: int(item[0]))]
    run.write_atomically(os.path.join(run_dir, files.EVAL_FILE), "".join(line + "\n" for line in lines))


# ---- the client ----

class Record:
    """ablation.json: the fixed settings, each variant's flags and every run's scores, written whole after each
    change (a crash never leaves half a file), by this process alone."""

    def __init__(self, out, args):
        self.path = os.path.join(out, RECORD_FILE)
        fixed = {name: getattr(args, name) for name in FIXED}
        self.data = files.read_ablation(out) or {"settings": fixed, "variants": {}, "runs": {}}
        stored = self.data["settings"]
        changed = [f"{flag(name)} {stored.get(name)!r} (now {value!r})"
                   for name, value in fixed.items() if stored.get(name) != value]
        if changed:
            raise CommandError(f"{out} holds an ablation run with {', '.join(changed)}; its scores are only "
                               f"comparable with the same flags: repeat them or use another --out")
        self.data["variants"].update({name: variant_flags(name) for name in args.variants})

    def entry(self, variant, seed):
        return self.data["runs"].setdefault(run_name(variant, seed), {
            "variant": variant, "seed": seed, "run_dir": os.path.join("runs", variant, f"seed-{seed}"),
            "scores": {}, "stopped": None, "step_seconds": None})

    def save(self):
        run.write_atomically(self.path, cli.dumps(self.data, indent=1, sort_keys=True) + "\n")


@contextlib.contextmanager
def sole_client(out):
    """Hold --out for this process: ablation.json has one writer, so a second ablation into the same folder is
    refused. The operating system's lock on the folder goes with the process, also on kill -9."""
    folder = os.open(out, os.O_RDONLY)
    try:
        try:
            fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CommandError(f"another ablate is writing into {out}; wait for it or stop it (to use more cores, "
                               f"give it --jobs)") from None
        yield
    finally:
        os.close(folder)


def say(text):
    print(f"ablate: {text}", file=sys.stderr, flush=True)


class Progress:
    """The console while the tasks run: one line per task as it ends and each warning of the tasks once; on a
    terminal, a bar of the tasks done under the lines."""

    def __init__(self, tasks):
        self.tasks, self.done, self.warned = tasks, 0, set()
        self.bar = sys.stderr.isatty()

    def task(self, text):
        self.done += 1
        self.say(text)

    def warn(self, warnings):
        for warning in warnings:
            if warning not in self.warned:
                self.warned.add(warning)
                self.say(warning[len("warning: "):] if warning.startswith("warning: ") else warning, "warning")

    def say(self, text, kind="ablate"):
        if self.bar:
            sys.stderr.write("\r\x1b[K")  # the bar's line, cleared for the text
        print(f"{kind}: {text}", file=sys.stderr, flush=True)
        if self.bar:
            filled = round(30 * self.done / max(1, self.tasks))
            sys.stderr.write(f"[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.tasks} tasks")
            sys.stderr.flush()

    def close(self):
        if self.bar:
            sys.stderr.write("\n")


@contextlib.contextmanager
def engine(args, threads):
    """A Dask client: of a local cluster of --jobs single-threaded worker processes on the loopback interface, or
    of the --scheduler's workers."""
    import distributed  # here, not at the top: importing it costs every --help a second

    tensorflow_threads = f"TensorFlow threads {threads or 'as TensorFlow decides'}"
    if args.scheduler is None:
        with distributed.LocalCluster(n_workers=args.jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            say(f"{args.jobs} local worker process{'es' if args.jobs > 1 else ''}, {tensorflow_threads}")
            yield client
        return
    check_scheduler(args.scheduler, args.connect_timeout)
    try:
        client = distributed.Client(args.scheduler, timeout=args.connect_timeout)
    except OSError as e:
        raise CommandError(f"--scheduler {args.scheduler}: {e}") from None
    with client:
        if not client.nthreads():
            say(f"waiting for a worker to join {args.scheduler}")
            client.wait_for_workers(1)
        say(f"{cli.counted(len(client.nthreads()), 'worker')} of {args.scheduler}, "
            f"{cli.counted(sum(client.nthreads().values()), 'thread')} in all, {tensorflow_threads}")
        yield client


def check_scheduler(address, timeout):
    """Refuse ``address`` unless a Dask scheduler answers there within ``timeout`` seconds. distributed's own
    Client waits for a peer's first answer without a limit, and reads whatever a peer that is not Dask sends as
    its frames (an HTTP server's answer as a length of exabytes)."""
    import distributed

    try:
        host, port = distributed.comm.parse_host_port(distributed.comm.parse_address(address)[1])
    except ValueError as e:
        raise CommandError(f"--scheduler {address!r} is not an address HOST:PORT ({e})") from None
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except socket.gaierror as e:
        raise CommandError(f"--scheduler {address}: no host {host!r} ({e.strerror})") from None
    except TimeoutError:
        raise CommandError(f"--scheduler {address} did not answer within {timeout:g} s (--connect-timeout)") from None
    except OSError as e:
        raise CommandError(f"--scheduler {address}: nothing answers there ({e.strerror}); is its `dask scheduler` "
                           f"running?") from None

    async def identity():
        comm = await distributed.comm.connect(address, timeout=timeout,
                                              **distributed.Security().get_connection_args("client"))
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    try:
        answer = asyncio.run(asyncio.wait_for(identity(), timeout))
    except TimeoutError:
        raise CommandError(f"--scheduler {address} did not answer as a Dask scheduler within {timeout:g} s "
                           f"(--connect-timeout): something took the connection, but it is not a Dask scheduler, or "
                           f"not one that answers") from None
    except Exception as e:  # what a peer that is not Dask makes distributed's reader raise: any error at all
        raise CommandError(f"--scheduler {address} is not a Dask scheduler: its answer is not Dask's "
                           f"({type(e).__name__})") from None
    kind = answer.get("type") if isinstance(answer, dict) else None
    if kind != "Scheduler":
        raise CommandError(f"--scheduler {address} is not a Dask scheduler"
                           + (f" but a Dask {kind}" if isinstance(kind, str) else ""))


class Ablation:
    def __init__(self, args):
        self.args = args
        self.out = args.out
        self.budgets = budgets(args.iterations, args.eval_every)
        self.record = Record(args.out, args)
        self.threads = task_threads(args)
        self.runs = [self.spec(variant, seed) for variant in args.variants for seed in args.seeds]
        # Task names are Dask's keys: two ablations on one scheduler must not share them.
        self.tag = hashlib.sha256(self.out.encode()).hexdigest()[:8]
        self.events = {}

    def spec(self, variant, seed):
        shared = {name: getattr(self.args, name) for name in SHARED_SETTINGS}
        run_dir = os.path.join(self.out, self.record.entry(variant, seed)["run_dir"])
        return RunSpec(variant, seed, run_dir, {
            **shared, **VARIANTS[variant], "threads": self.threads, "seed": seed, "run_dir": run_dir,
            "vis_dir": os.path.join(self.out, "vis", variant, f"seed-{seed}"),
            "log": "compact", "checkpoint_every": self.args.eval_every, "keep_checkpoints": 1})

    def unscored(self, spec):
        entry = self.record.entry(spec.variant, spec.seed)
        return [] if entry["stopped"] is not None else [b for b in self.budgets if str(b) not in entry["scores"]]

    def work_of(self, spec):
        left = self.unscored(spec)
        done = iterations_done(spec.run_dir)
        return Work(iterations=max(0, left[-1] - done) if left else 0, chunks=sum(b > done for b in left),
                    scores=len(left), weights=2 if spec.averaged else 1)

    def run(self):
        a = self.args
        for spec in self.runs:
            stopped = self.record.entry(spec.variant, spec.seed)["stopped"]
            if stopped is not None:
                say(f"{spec.name} stopped at iteration {stopped['iteration']} (status {stopped['status']}); not "
                    f"continued")
        self.work = {spec.name: self.work_of(spec) for spec in self.runs}
        left = self.work.values()
        say(f"{cli.counted(len(a.variants), 'variant')} x {cli.counted(len(a.seeds), 'seed')} = "
            f"{cli.counted(len(self.runs), 'run')} of {a.iterations} "
            f"iterations, scored at {', '.join(map(str, self.budgets))} with {a.samples} samples (runs with "
            f"--g-average twice: also with G's latest weights); left: {sum(w.iterations for w in left)} iterations "
            f"in {sum(w.chunks for w in left)} chunks and {sum(w.scores for w in left)} scores, in {self.out}")
        if not any(w.scores for w in left):
            say("nothing left to train or score")
            if a.dry_run:
                return 0
        else:
            with engine(a, self.threads) as client:
                pace = self.estimate(client)
                if a.dry_run:
                    say("dry run: nothing trained")
                    return 0
                self.ablate(client, pace)
            say(pace.summary())
        self.write_grids()
        scored = [spec for spec in self.runs if self.record.entry(spec.variant, spec.seed)["scores"]]
        for spec in scored:  # also the runs an ablation of a version without eval.jsonl scored
            write_eval_log(spec.run_dir, self.record.entry(spec.variant, spec.seed)["scores"])
        tensorboard = cli.shell_command(cli.installed_command("tensorboard"), "--logdir", self.out)
        plot = cli.shell_command(*cli.program("plot"), *(spec.run_dir for spec in scored), "--out",
                                 os.path.join(self.out, "curves.png"))
        say(f"done: {os.path.join(self.out, TABLE_FILE)}, {os.path.join(self.out, GRIDS_FILE)}\n"
            f"  curves:      {plot}\n  TensorBoard: {tensorboard}")
        return 0

    def estimate(self, client):
        """Time the model on every worker at once (so each is timed as busy as it will be) and say what the work
        left costs in time and disk."""
        a = self.args
        first = self.runs[0]
        probes = client.gather([client.submit(probe, first.settings, workers=[worker], allow_other_workers=False,
                                              pure=False, key=f"probe-{worker}-{self.tag}")
                                for worker in client.nthreads()])
        pace = Pace(probes, a.samples, a.valid_size, workers=sum(client.nthreads().values()),
                    judge_steps=0 if self.judge_cached() else judge_module.TRAINING["steps"])
        left = self.work.values()
        pace.estimated = pace.wall(left)
        judge = f", {duration(pace.judge)} to train the judge (once)" if pace.judge else ""
        say(f"timed on {cli.counted(len(probes), 'worker')}: {pace.iteration:.3f} s per iteration, {pace.build:.1f} s "
            f"to build a run's graph ({pace.chunk:.1f} s with its first steps), about "
            f"{pace.per_score + pace.per_weights:.0f} s per score{judge}; estimated {duration(pace.training(left))} of "
            f"training and {duration(pace.scoring(left))} of scoring: {pace.eta(left)} on "
            f"{cli.counted(pace.workers, 'worker thread')}")
        checkpoint, average = probes[0]["checkpoint_bytes"], probes[0]["average_bytes"]
        averaged = sum(spec.averaged for spec in self.runs)
        sizes = [f"{len(self.runs) - averaged} x {size(checkpoint)}"] * (averaged < len(self.runs)) + \
            [f"{averaged} x {size(checkpoint + average)} with the average of G's weights"] * (averaged > 0)
        say(f"disk: one checkpoint per run, {' and '.join(sizes)}: "
            f"{size(len(self.runs) * checkpoint + averaged * average)} in {os.path.join(self.out, 'runs')}, "
            f"besides the runs' logs and grids")
        return pace

    def judge_cached(self):
        """Whether the judge of the ablation's data is trained already (data still to download has none)."""
        a = self.args
        try:
            arrays = mnist(resolve_data_dir(a.dataset, a.data_dir, download=False))
        except DataError:
            return False
        trX, teX, trY, teY = arrays
        return os.path.isdir(judge_module.cache_dir(a.judge_dir or judge_module.default_root(), a.dataset,
                                                    trX, trY, teX, teY))

    def ablate(self, client, pace):
        """Submit every run's next chunk and its score; as each task ends, store what it gave and submit the run's
        next chunk. A chunk starts only once the score before it is stored: it replaces the run's one checkpoint,
        which a lost score could not be made from again."""
        import distributed  # as in engine

        a = self.args
        self.client, self.pace, self.tasks, self.pending = client, pace, distributed.as_completed(), {}
        self.progress = Progress(sum(w.chunks + w.scores for w in self.work.values()))
        self.data = client.submit(find_data, a.dataset, a.data_dir, key=f"data-{self.tag}", retries=RETRIES)
        self.judge = client.submit(prepare_judge, a.dataset, self.data, a.judge_dir, self.threads,
                                   key=f"judge-{self.tag}", retries=RETRIES)
        for spec in self.runs:
            self.submit_next(spec)
        try:
            for future in self.tasks:
                spec, budget, kind = self.pending.pop(future)
                try:
                    result = future.result()
                except CommandError as e:
                    raise CommandError(f"{kind} of {spec.name} at {budget}: {e}") from None
                except distributed.KilledWorker as e:
                    raise CommandError(f"{kind} of {spec.name} at {budget}: every worker that ran it died ({e}); "
                                       f"see the workers' logs") from None
                if kind == "training":
                    self.trained(spec, budget, result)
                elif result is not None:
                    self.scored(spec, budget, result)
        finally:
            self.progress.close()
            for events in self.events.values():
                events.close()

    def submit_next(self, spec):
        """Submit the run's chunk to its first unscored budget, and the score after it."""
        left = self.unscored(spec)
        if not left:
            return
        budget, a = left[0], self.args
        name = f"{spec.name}-{budget}-{self.tag}"
        chunk = self.client.submit(train_chunk, spec, budget, self.data, key=f"train-{name}", retries=RETRIES)
        # A score goes before the chunks of other runs that wait for a worker: its run's next chunk waits for it.
        score = self.client.submit(score_chunk, spec, budget, a.samples, a.judge_dir, chunk, self.judge,
                                   key=f"score-{name}", retries=RETRIES, priority=1)
        for future, kind in ((chunk, "training"), (score, "scoring")):
            self.pending[future] = spec, budget, kind
            self.tasks.add(future)

    def trained(self, spec, budget, result):
        entry, work = self.record.entry(spec.variant, spec.seed), self.work[spec.name]
        self.progress.warn(result["warnings"])
        if "stopped" in result:
            entry["stopped"] = result["stopped"]
            self.record.save()
            self.write_table()
            self.progress.tasks -= work.chunks + work.scores - 1  # this run's other tasks will not come
            self.work[spec.name] = Work(0, 0, 0, work.weights)
            self.progress.task(f"{spec.name} stopped at iteration {result['stopped']['iteration']}: a loss went "
                               f"non-finite; the other runs go on")
            return
        entry["step_seconds"] = result["step_seconds"]
        self.pace.trained_chunk(result)
        work.iterations -= result["trained"]
        work.chunks -= result["trained"] > 0
        if not result["trained"]:
            self.progress.done += 1  # the run was there already: nothing to say
        else:
            self.progress.task(f"{spec.name}: trained to {budget} ({result['trained']} iterations, "
                               f"{duration(result['seconds'])}); ETA {self.pace.eta(self.work.values())}")

    def scored(self, spec, budget, result):
        entry, work = self.record.entry(spec.variant, spec.seed), self.work[spec.name]
        self.progress.warn(result["warnings"])
        report = result["report"]
        entry["scores"][str(budget)] = report
        if result["latest_weights"] is not None:
            entry.setdefault("latest_weights_scores", {})[str(budget)] = result["latest_weights"]
        self.record.save()
        write_eval_log(spec.run_dir, entry["scores"])
        self.submit_next(spec)
        if spec.name not in self.events:
            self.events[spec.name] = Events(os.path.join(self.out, "tensorboard", spec.variant,
                                                         f"seed-{spec.seed}"), None)
        self.events[spec.name].scalars(budget, flat_scores(scores_of(report)))
        self.events[spec.name].flush()
        self.write_table()
        self.pace.scored(result)
        work.scores -= 1
        left = self.work.values()
        generated = report["generated"]
        self.progress.task(f"{spec.name} at {budget}: judge accuracy {generated['judge_accuracy']:.3f}, Frechet "
                           f"{generated['frechet']:.1f}, NND {generated['nearest_neighbour'][-1]['nnd']:.2f}; left: "
                           f"{sum(w.iterations for w in left)} iterations to train, {sum(w.scores for w in left)} to "
                           f"score, ETA {self.pace.eta(left)}")

    def write_table(self):
        run.write_atomically(os.path.join(self.out, TABLE_FILE), table(self.record.data))

    def write_grids(self):
        """One panel per run that has reached --iterations and its score there."""
        finished = {}
        for spec in self.runs:
            report = self.record.entry(spec.variant, spec.seed)["scores"].get(str(self.args.iterations))
            if report is not None and iterations_done(spec.run_dir) == self.args.iterations:
                finished[spec.variant, spec.seed] = spec.run_dir, report
        panels = final_grids(finished, self.args.iterations, self.args.dim_z)
        picture = grid_picture(self.args.variants, self.args.seeds, panels, self.args.iterations)
        picture.save(os.path.join(self.out, GRIDS_FILE))


def ablate_command(argv):
    args = parse_args(argv)
    ensure_dir(args.out, "--out folder")
    try:
        with sole_client(args.out):
            return Ablation(args).run()
    except KeyboardInterrupt:
        say("interrupted; run the same command again to continue")
        return 130


def main(argv=None):
    return cli.run_command(ablate_command, argv)
