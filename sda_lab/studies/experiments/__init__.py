"""Experiments: a grid of training configurations x seeds, cached, run in parallel, as tables.

A claim about training ("free bits keep more information", "annealing delays the collapse") is
an effect over seeds, not one run's number: one run on one CPU is one draw, and another CPU's
vectorised kernels round differently enough for 24 epochs to end somewhere else. This package
runs every arm of an experiment over several seeds and returns tidy pandas tables (one row per
run and epoch, one row per run's final state) with the statistics to state an effect with its
uncertainty. In pipeline order:

- :mod:`~sda_lab.studies.experiments.spec`: what a run is (:class:`DataSpec`, :class:`RunSpec`,
  :func:`grid`), hashed into its key.
- :mod:`~sda_lab.studies.experiments.store`: the cache of finished runs (:class:`ResultStore`), one
  JSON file per run in ``$SDA_LAB_CACHE/runs``.
- :mod:`~sda_lab.studies.experiments.runner`: training runs on an executor (:func:`run_grid`,
  :func:`dask_client`), each stored the moment it finishes.
- :mod:`~sda_lab.studies.experiments.results`: tables, bootstrap intervals, paired verdicts
  (:class:`Results`); its figures are drawn by :mod:`sda_lab.interface.plotting`.
"""

from ...core.settings import base_seed
from .results import Effect, Results, bootstrap_ci
from .runner import (
    DEFAULT_THREADS_PER_WORKER, MAX_LOCAL_WORKERS, SerialExecutor, dask_client, execute_run,
    run_grid, train_run, usable_cpus, worker_environ,
)
from .spec import (
    MIN_TRAIN_CLIPS, RESULT_FORMAT, DataSpec, RunSpec, check_runnable, grid, load_clip_mels,
    load_split, run_key, seeds_from,
)
from .store import ResultStore

__all__ = [
    "DataSpec", "RunSpec", "grid", "check_runnable", "run_key", "seeds_from", "load_clip_mels",
    "load_split", "RESULT_FORMAT", "MIN_TRAIN_CLIPS", "ResultStore", "execute_run", "train_run",
    "SerialExecutor", "dask_client", "usable_cpus", "worker_environ", "run_grid",
    "MAX_LOCAL_WORKERS", "DEFAULT_THREADS_PER_WORKER", "Results", "Effect", "bootstrap_ci",
    "base_seed",
]
