"""An ablation's tasks, run by the Dask workers: a chunk of a run's training (train.py's ``train``, resumed chunk after
chunk), a score of its checkpoint (``evaluate_run``), and the probe that times both; each prints into the run's
TASK_LOG, so that the client's console shows one line per task."""
import contextlib
import dataclasses
import io
import os
import statistics
import sys
import time

import numpy as np

from .. import checkpoints, files, run
from .. import judge as judge_module
from ..batches import endless_batches, synthetic_data
from ..cli import CommandError
from ..evaluation import evaluate_run, judge_for
from ..graph import build_training
from ..load import DataError, resolve_data_dir
from ..metrics import nearest_neighbours
from ..model import DIM_Y, tf
from ..settings import Evaluation, Settings, resolve_switches
from ..train import EXIT_NOT_FINITE, resume_settings, train
from ..util import OneHot
from .plan import run_name

# The cost probe: timed iterations after one untimed D and G step, and the nearest-neighbour search it times.
PROBE_ITERATIONS = 4


PROBE_QUERIES, PROBE_REFERENCES = 500, 1000


# Adam steps of the judge the probe times (after two untimed ones), when the judge is not cached yet.
PROBE_JUDGE_STEPS = 20


# What a run's tasks print (its compact lines, train.py's resume and done messages, the scores' warnings): into
# RUN_DIR/TASK_LOG, so that the console shows one line per task; each warning is also shown once on the console.
TASK_LOG = "tasks.log"


WRITER_POLL_SECONDS = 2


def newest_checkpoint(run_dir):
    """The run's newest complete checkpoint, or None. Not the ``checkpoint`` index's choice: a worker killed between
    pruning the older checkpoint and rewriting the index leaves the index naming one that is gone."""
    complete = checkpoints.complete_checkpoints(run_dir)
    return complete[-1] if complete else None


def iterations_done(run_dir):
    """Iterations of the run's newest checkpoint (0 when it has none)."""
    newest = newest_checkpoint(run_dir)
    return 0 if newest is None else checkpoints.iteration_of(newest)


def metrics(run_dir):
    """The run's metrics.jsonl records, one per iteration done."""
    return files.read_metrics(run_dir)


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One (variant, seed) as its tasks need it: its absolute run directory and the settings its first chunk
    starts it with (later chunks resume it with its own settings.json)."""
    variant: str
    seed: int
    run_dir: str
    settings: dict = dataclasses.field(hash=False)

    @property
    def name(self):
        return run_name(self.variant, self.seed)

    @property
    def averaged(self):
        return resolve_switches(self.settings)["g_average"] > 0


def find_data(dataset, data_dir):
    """The absolute folder of the data set's files, downloaded first when MNIST's are missing (once, before any
    run starts, so that no two workers download into one folder)."""
    try:
        return os.path.abspath(resolve_data_dir(dataset, data_dir))
    except DataError as e:
        raise CommandError(str(e)) from None


def prepare_judge(dataset, data_dir, judge_dir, threads):
    """Train the judge once, before the first score, so that the workers do not each train one."""
    judge_for(dataset, data_dir, judge_dir, threads).close()


def wait_for_other_writer(run_dir):
    """A task that lost its client (a killed or stopped ablation on a --scheduler) goes on training its run: the
    run is that process's until it has finished."""
    pid = run.writer_pid(run_dir)
    if pid is not None:
        print(f"ablate: {run_dir} is being trained by process {pid}, from an earlier ablation; waiting for it",
              file=sys.stderr, flush=True)
    while run.writer_pid(run_dir) is not None:
        time.sleep(WRITER_POLL_SECONDS)


@contextlib.contextmanager
def into_task_log(spec, said):
    """Send what the task prints into the run's TASK_LOG, and its warning lines into the list ``said`` as well. A
    worker runs one task at a time (a thread each), so redirecting sys.stdout and sys.stderr is the task's alone."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            yield
    finally:
        text = captured.getvalue()
        said += [line for line in text.splitlines() if line.startswith("warning:")]
        os.makedirs(spec.run_dir, exist_ok=True)
        with open(os.path.join(spec.run_dir, TASK_LOG), "a") as log:
            log.write(text)


def train_chunk(spec, budget, data_dir):
    """Train the run to iteration ``budget`` from wherever its run directory is: a fresh run when it has no
    checkpoint (also over what a killed attempt left), else a resume of its newest one. Returns what was done:
    {"trained": iterations, "seconds", "step_seconds"}, or {"stopped": {"status", "iteration"}} when a loss went
    non-finite. Each result also lists the warnings the task printed ("warnings")."""
    said = []
    with into_task_log(spec, said):
        result = train_chunk_quietly(spec, budget, data_dir)
    return {**result, "warnings": said}


def train_chunk_quietly(spec, budget, data_dir):
    wait_for_other_writer(spec.run_dir)
    done = iterations_done(spec.run_dir)
    if done > budget:
        raise CommandError(f"{spec.run_dir} is at iteration {done}, past {budget}, which has no stored score and no "
                           f"checkpoint any more; use another --out")
    started = time.perf_counter()
    if done < budget:
        if done:
            status = train(*resume_settings(newest_checkpoint(spec.run_dir), {"max_iterations": budget}))
        else:
            status = train(Settings(**resolve_switches({**spec.settings, "data_dir": data_dir,
                                                        "max_iterations": budget})))
        if status == EXIT_NOT_FINITE:  # the run cannot go on; the ablation can
            return {"stopped": {"status": status, "iteration": metrics(spec.run_dir)[-1]["iteration"]}}
        if status:
            raise CommandError(f"training {spec.run_dir} to iteration {budget} ended with status {status}: its "
                               f"messages are in {os.path.join(spec.run_dir, TASK_LOG)}")
        if iterations_done(spec.run_dir) != budget:
            raise CommandError(f"{spec.run_dir} ends at iteration {iterations_done(spec.run_dir)}, its last epoch, "
                               f"before {budget}: lower --iterations")
    return {"trained": budget - done, "seconds": time.perf_counter() - started,
            "step_seconds": statistics.median(record["seconds"] for record in metrics(spec.run_dir))}


def score_chunk(spec, budget, samples, judge_dir, chunk, judge_ready):
    """The ``evaluate`` reports of the run's checkpoint at ``budget`` (None when ``chunk`` stopped the run):
    {"report", "latest_weights" (a run trained with --g-average is also scored with G's latest weights, to see
    what the average changes; else None), "weights_scored", "seconds"}. Scored with the run's own thread count, so
    that its numbers do not depend on the --jobs of the ablation that scores it."""
    if "stopped" in chunk:
        return None
    said = []
    with into_task_log(spec, said):
        result = score_chunk_quietly(spec, budget, samples, judge_dir)
    return {**result, "warnings": said}


def score_chunk_quietly(spec, budget, samples, judge_dir):
    started = time.perf_counter()
    settings = files.load_settings(spec.run_dir, "--out")
    choices = [False, True] if settings.g_average > 0 else [False]
    checkpoint = os.path.join(checkpoints.checkpoint_dir(spec.run_dir), f"{checkpoints.PREFIX}-{budget}")
    reports = evaluate_run(checkpoint, Evaluation(samples=samples, judge_dir=judge_dir, threads=settings.threads),
                           choices)
    return {"report": reports[0], "latest_weights": reports[1] if len(reports) > 1 else None,
            "weights_scored": len(reports), "seconds": time.perf_counter() - started}


def probe(values):
    """This worker's pace on a run of the settings ``values``, timed on synthetic batches in the training graph
    train.py builds: seconds per training iteration, to build the graph and start its session, per sampled image
    (drawn in batches of visualize_dim, as scores draw them) and per (query, reference) pair of the
    nearest-neighbour search and per Adam step of training the judge; and the bytes of a checkpoint without the
    averages of G's weights and of those averages: its variables, which are the weights, Adam's two moments of each,
    the averages and the loop's state (but for the data order, 8 bytes per training image, which a run of the real
    data adds). Every chunk of training is a new session, whose first D and G steps TensorFlow prepares on their first
    run: those two steps are timed on their own."""
    s = Settings(**resolve_switches(values))
    rng = np.random.RandomState(0)
    with tf.Graph().as_default():
        started = time.perf_counter()
        training = build_training(s)
        model = training.model
        checkpoints.TrainState(0, s.visualize_dim, s.dim_z, DIM_Y)
        session = tf.Session(config=training.session_config)
        try:
            session.run(tf.global_variables_initializer())
            build_seconds = time.perf_counter() - started
            feed = endless_batches(*synthetic_data(4 * s.batch_size, rng), s.batch_size, s.dim_z)
            for iteration in range(PROBE_ITERATIONS + 2):
                if iteration == 2:  # after one D and one G step, whose first runs TensorFlow prepares
                    first_steps_seconds = time.perf_counter() - started - build_seconds
                    started = time.perf_counter()
                training.iterate(session, iteration, *next(feed), k=s.k, after_update=False)
            iteration_seconds = (time.perf_counter() - started) / PROBE_ITERATIONS
            z = rng.uniform(-1, 1, size=(s.visualize_dim, s.dim_z))
            y = OneHot(rng.randint(DIM_Y, size=s.visualize_dim), DIM_Y)
            training.sample(session, z, y)
            started = time.perf_counter()
            training.sample(session, z, y)
            image_seconds = (time.perf_counter() - started) / s.visualize_dim
        finally:
            session.close()
        total_bytes = sum(v.shape.num_elements() * v.dtype.size for v in tf.global_variables())
        average_bytes = sum(w.shape.num_elements() * w.dtype.size for w in model.gen_weights)
    started = time.perf_counter()
    nearest_neighbours(rng.rand(PROBE_QUERIES, 784), rng.rand(PROBE_REFERENCES, 784))
    pair_seconds = (time.perf_counter() - started) / (PROBE_QUERIES * PROBE_REFERENCES)
    judge = judge_module.Judge(None, judge_module.TRAINING, info=None, threads=s.threads, restore=False)
    try:
        images, labels = rng.randint(256, size=(256, 784)).astype(np.uint8), rng.randint(DIM_Y, size=256)
        judge_module.fit(judge, images, labels, {**judge_module.TRAINING, "steps": 2})
        started = time.perf_counter()
        judge_module.fit(judge, images, labels, {**judge_module.TRAINING, "steps": PROBE_JUDGE_STEPS})
        judge_step_seconds = (time.perf_counter() - started) / PROBE_JUDGE_STEPS
    finally:
        judge.close()
    return {"iteration_seconds": iteration_seconds, "build_seconds": build_seconds,
            "first_steps_seconds": first_steps_seconds, "image_seconds": image_seconds,
            "pair_seconds": pair_seconds, "judge_step_seconds": judge_step_seconds, "average_bytes": average_bytes,
            "checkpoint_bytes": total_bytes - (average_bytes if s.g_average > 0 else 0)}
