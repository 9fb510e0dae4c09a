"""Scoring a trained run: ``evaluate_run`` (the evaluate command, ablate) and ``TrainingScorer`` (train.py
--eval-every-epoch). The scores themselves are in metrics.py."""
import os
import sys

import numpy as np

from . import judge as judge_module
from . import run
from .cli import CommandError
from .load import DataError, mnist, resolve_data_dir, seeded_split
from .metrics import flat_scores, images_also_in, score
from .sampler import TrainedGenerator
from .settings import Evaluation

SAMPLES_DURING_TRAINING = 1000
EVAL_SEED = Evaluation().seed  # the default seed of the evaluation's own draws, and the one used during training


def judge_for(dataset, data_dir, judge_dir=None, threads=0):
    """The judge of a data set: trained on its whole training file and tested on its test file."""
    trX, teX, trY, teY = mnist(resolve_data_dir(dataset, data_dir, download=False))
    return judge_module.load_or_train(judge_dir or judge_module.default_root(), dataset, trX, trY, teX, teY,
                                      threads=threads)


class TrainingScorer:
    """train.py --eval-every-epoch: scores the live generator, appends the scores to eval.jsonl and TensorBoard
    under the last iteration done and returns them. Draws only from its own fixed-seed RNG (the same z and labels
    every epoch), so the training's random numbers are untouched; the judge is loaded and the real images scored once
    per run."""

    def __init__(self, settings, data):
        self.settings, self.data = settings, data
        self.judge = judge_for(settings.dataset, settings.data_dir, settings.judge_dir, settings.threads)
        self.references = {}

    def __call__(self, sess, training, epoch, iterations, log, events):
        """Score after ``iterations`` iterations, the last of which is in ``epoch`` (counting from 1, as the compact
        line and metrics.jsonl count)."""
        s = self.settings
        scores = score(lambda z, y: training.sample(sess, z, y), SAMPLES_DURING_TRAINING, s.visualize_dim, s.dim_z,
                       self.data, self.judge, np.random.RandomState(EVAL_SEED), self.references)
        last = iterations - 1
        log.write({"iteration": last, "epoch": epoch, **scores})
        events.scalars(last, flat_scores(scores))
        events.flush()
        generated = scores["generated"]
        nn = "".join(f" | NNC@{e['n']} {e['nnc']:.4f} | NND@{e['n']} {e['nnd']:.3f}"
                     for e in generated["nearest_neighbour"])
        print(f"eval after epoch {epoch} (iteration {last}){nn} | judge accuracy {generated['judge_accuracy']:.4f} "
              f"| Frechet {generated['frechet']:.3f}", flush=True)
        return scores

    def close(self):
        self.judge.close()


def load_run_split(settings, options, run_dir):
    """The run's ``Splits`` (its data set, folder and validation size unless ``options`` overrides them), and what
    they are. The split is numpy's first random draw after seeding, so a seeded run's split is drawn again exactly;
    an unseeded run's cannot be, and a fresh random split is used."""
    dataset = options.dataset or settings.dataset
    data_dir = options.data_dir if options.data_dir is not None else settings.data_dir
    valid_size = options.valid_size if options.valid_size is not None else settings.valid_size
    same_split = settings.seed is not None and dataset == settings.dataset and valid_size == settings.valid_size
    try:
        directory = resolve_data_dir(dataset, data_dir, download=False)
        if dataset == settings.dataset:  # whatever the split, the images are the run's
            run.check_data(run_dir, directory, "evaluate", accept_damaged=options.accept_damaged_records)
        data = seeded_split(settings.seed, directory, valid_size)
    except DataError as e:
        raise CommandError(str(e)) from None
    if not same_split:
        why = "was not seeded" if settings.seed is None else "is scored with another data set or --valid-size"
        print(f"warning: the run {why}, so this is not its train/validation split: the validation images may "
              f"include images the generator trained on, which flatters NNC and NND", file=sys.stderr)
    if len(data.vaX) == 0:
        raise CommandError("the run has no validation images (valid_size 0) for NNC and NND; pass --valid-size N")
    # The judge trains on the whole training file (training + validation split): a test image that is also there
    # makes its test accuracy a training accuracy.
    seen = images_also_in(data.teX, np.concatenate([data.trX, data.vaX]))
    if seen:
        print(f"warning: {seen} of the {len(data.teX)} test images in {directory} are also in its training file, so "
              f"the judge's test accuracy is measured on images it was trained on", file=sys.stderr)
    return data, {"dataset": dataset, "data_dir": directory, "valid_size": valid_size, "run_seed": settings.seed,
                  "run_split": same_split, "train_images": len(data.trX), "validation_images": len(data.vaX),
                  "test_images": len(data.teX), "test_images_in_training_file": seen}


def warn_if_too_few_for_frechet(samples):
    features = judge_module.TRAINING["features"]
    if samples <= features:
        print(f"warning: {samples} samples are too few for a Frechet distance of the judge's {features} features "
              f"(their covariance needs more than {features}); it is reported, but unreliable", file=sys.stderr)


def evaluate_run(checkpoint, options=Evaluation(), latest_choices=None):
    """The scores of the run directory or checkpoint ``checkpoint``: one report per choice of G's weights in
    ``latest_choices`` (True: G's latest weights; default: ``options.latest_weights`` alone), all on the same z and
    labels; the data, the judge and the real images' scores are loaded and computed once."""
    reports, references, judge = [], {}, None
    try:
        for latest in [options.latest_weights] if latest_choices is None else latest_choices:
            generator = TrainedGenerator(checkpoint, threads=options.threads, latest=latest)
            try:
                settings = generator.settings
                if judge is None:
                    warn_if_too_few_for_frechet(options.samples)
                    data, data_info = load_run_split(settings, options, generator.run.run_dir)
                    judge = judge_for(data_info["dataset"], data_info["data_dir"], options.judge_dir, options.threads)
                scores = score(generator.sample, options.samples, settings.visualize_dim, settings.dim_z, data,
                               judge, np.random.RandomState(options.seed), references)
            finally:
                generator.close()
            reports.append({
                "run_dir": generator.run.run_dir, "checkpoint": os.path.basename(generator.checkpoint),
                "iterations": generator.run.iteration, "recipe": settings.recipe, **settings.switches(),
                "weights": generator.weights, "data": data_info, "samples": options.samples,
                "samples_per_batch": settings.visualize_dim, "seed": options.seed,
                "judge": {"directory": judge.directory, **{k: judge.info[k] for k in
                                                           ("test_accuracy", "train_images", "test_images")}},
                **scores})
    finally:
        if judge is not None:
            judge.close()
    return reports
