"""Experiments: a grid of training configurations x seeds, cached, run in parallel, as tables.

A claim about training ("free bits keep more information", "annealing delays the collapse") is
an effect over seeds, not one run's number: one run on one CPU is one draw, and another CPU's
vectorised kernels round differently enough for 24 epochs to end somewhere else. This module
runs every arm of an experiment over several seeds and returns tidy pandas tables (one row per
run and epoch, one row per run's final state) with the statistics to state an effect with its
uncertainty.

Three pieces:

- **What a run is** (:class:`DataSpec`, :class:`RunSpec`): model config, train config, data and
  seed, all plain dataclasses. Everything that determines a run's result, plus the sda-lab
  version, is hashed into its key.
- **A cache of finished runs** (:class:`ResultStore`): one small JSON file per run, named by its
  key, in ``data/cache/runs`` (``$SDA_LAB_CACHE/runs`` when set). Written atomically, so an
  interrupted sweep resumes where it stopped and re-running a notebook cell reuses finished
  runs. A failed run becomes a row with its error (``status == "failed"``), never a silent gap;
  it is retried on the next call.
- **An engine that runs them** (:func:`run_grid`): any ``concurrent.futures.Executor``-style
  object with ``submit`` (a ``ProcessPoolExecutor``, a Dask ``distributed.Client``, or
  ``"serial"`` for in-process). By default a Dask ``LocalCluster`` of 1-thread worker
  processes (:func:`dask_client`); ``SDA_LAB_DASK_ADDRESS=tcp://host:8786`` (or
  ``dask_client("tcp://host:8786")``) sends the same sweep to a cluster on several machines.

Why 1-thread worker processes: a small conv VAE on a 2-core CPU does not scale across threads
(each step's kernels are too small), so two runs side by side in two 1-thread processes finish
far sooner than the same two runs one after the other with 2 threads each; ``make bench``
measures it (``benchmarks/RESULTS.md``).

Statistics: percentile bootstrap intervals of the mean (Efron & Tibshirani 1993, via
``scipy.stats.bootstrap``) for each arm, and of the mean *paired* difference between two arms
(the same seed gives the same data order and, with the same model config, the same initial
weights in both arms).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import traceback
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .train import TrainConfig, default_cache_dir
from .vae import VAEConfig

RESULT_FORMAT = 1
EPOCH_METRICS = ("loss", "recon", "kl", "raw_kl", "kl_weight", "active_units", "seconds")


# -- what a run is --------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSpec:
    """The training data of a run, rebuilt identically in any process from these fields.

    ``source="default"`` is the embedded synthetic set (``clips_per_kind`` clips of each of the
    five kinds, synthesised from ``seed``); ``source="folder"`` loads ``folder`` with
    :func:`sda_lab.data.load_folder` (the folder's path is part of the key, not its contents:
    change the files, change ``tag``).
    """

    source: str = "default"
    clips_per_kind: int = 20
    seed: int = 0
    folder: str | None = None
    tag: str = ""
    # The representation: SpectrogramConfig.scale, "log1p" (the seed's) or "db".
    scale: str = "log1p"
    # Validation split BY FILE (sda_lab.train.split_by_file): this fraction of the files (of the
    # folder, or of the synthetic set's one-file-per-clip) is held out; 0 trains on everything.
    val_fraction: float = 0.0
    split_seed: int = 0  # which files are held out (same split in every run of a sweep)
    # At most this many clips (None: all), taken evenly spaced over the folder's clip order
    # before the split, so a tiny sweep still sees every file.
    max_clips: int | None = None

    def __post_init__(self) -> None:
        from .spectrogram import SCALES

        if self.source not in ("default", "folder"):
            raise ValueError(f"DataSpec.source must be 'default' or 'folder', got {self.source!r}")
        if self.source == "folder" and not self.folder:
            raise ValueError("DataSpec(source='folder') needs folder=<path to audio>")
        if self.clips_per_kind < 1:
            raise ValueError(f"clips_per_kind must be >= 1, got {self.clips_per_kind}")
        if self.scale not in SCALES:
            raise ValueError(f"DataSpec.scale must be one of {SCALES}, got {self.scale!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"DataSpec.val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.max_clips is not None and self.max_clips < 2:
            raise ValueError(f"DataSpec.max_clips must be >= 2 or None, got {self.max_clips}")


@lru_cache(maxsize=8)
def load_clip_mels(data: DataSpec):
    """``(mels, files)``: the normalised mels ``(N, 1, n_mels, T)`` of ``data`` in its scale and
    each clip's source file (after ``max_clips``), cached per process."""
    from .data import load_folder, make_default_dataset
    from .spectrogram import AudioSpectrogram, SpectrogramConfig

    if data.source == "default":
        clips = make_default_dataset(data.clips_per_kind, seed=data.seed)
    else:
        clips = load_folder(data.folder)
    files = list(clips.files)
    waves = clips.waveforms  # (N, 1, samples)
    if data.max_clips is not None and len(files) > data.max_clips:
        keep = np.unique(np.linspace(0, len(files) - 1, data.max_clips).round().astype(int))
        waves = waves[keep]  # (max_clips, 1, samples)
        files = [files[i] for i in keep]
    spec = AudioSpectrogram(SpectrogramConfig(scale=data.scale))
    return spec.waveform_to_mel(waves), files  # (N, 1, 128, T)


def load_mels(data: DataSpec):
    """The normalised mels of ``data`` (every clip, training and validation):
    ``(N, 1, n_mels, T)``, cached per process."""
    return load_clip_mels(data)[0]


def load_split(data: DataSpec):
    """``(train_mels, val_mels)`` of ``data``, split by file with ``data.val_fraction`` and
    ``data.split_seed`` (:func:`sda_lab.train.split_by_file`); ``val_mels`` is None without a
    split. Shapes ``(N_train, 1, n_mels, T)``, ``(N_val, 1, n_mels, T)``.

    Raises
    ------
    ValueError
        From :func:`~sda_lab.train.split_by_file` (e.g. a folder with a single file).
    """
    from .train import split_by_file

    mels, files = load_clip_mels(data)
    if data.val_fraction == 0:
        return mels, None
    train_idx, val_idx, _ = split_by_file(files, data.val_fraction, data.split_seed)
    return mels[train_idx], mels[val_idx]  # (N_train, 1, M, T), (N_val, 1, M, T)


@dataclass(frozen=True)
class RunSpec:
    """One training run: an arm's name, its configs, its data and its seed.

    ``seed`` overrides ``train.seed`` (data order) and seeds the model's initial weights.
    """

    arm: str
    seed: int
    train: TrainConfig
    model: VAEConfig = field(default_factory=VAEConfig)
    data: DataSpec = field(default_factory=DataSpec)

    def determinants(self) -> dict:
        """Everything that determines the result (the arm's name does not)."""
        return {
            "format": RESULT_FORMAT,
            "sda_lab": __version__,
            "seed": self.seed,
            "model": asdict(self.model),
            "train": {**asdict(replace(self.train, seed=self.seed)), "device": None},
            "data": asdict(self.data),
        }

    @property
    def key(self) -> str:
        """A hash of the determinants, where each config contributes only the fields that
        differ from its defaults: adding a field (with a default that keeps today's behaviour)
        to a config does not orphan the runs already cached."""
        return run_key(self.determinants())


def _plain(x):
    """JSON's view of ``x`` (tuples become lists), so stored and fresh values compare equal."""
    return json.loads(json.dumps(x, default=str))


_DEFAULTS = _plain({"model": asdict(VAEConfig()),
                    "train": {**asdict(TrainConfig()), "device": None},
                    "data": asdict(DataSpec())})


def run_key(determinants: dict) -> str:
    """The cache key of a run from :meth:`RunSpec.determinants` (see :attr:`RunSpec.key`)."""
    slim = {k: ({f: v for f, v in val.items() if _DEFAULTS[k].get(f, object()) != v}
                if k in _DEFAULTS else val)
            for k, val in _plain(determinants).items()}
    blob = json.dumps(slim, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:16]


def grid(arms: Mapping[str, TrainConfig | tuple[TrainConfig, VAEConfig]], seeds: Iterable[int],
         data: DataSpec | None = None) -> list[RunSpec]:
    """Every arm x every seed, as :class:`RunSpec` s (arm-major order).

    ``arms`` maps a name to a :class:`TrainConfig`, or to ``(TrainConfig, VAEConfig)``.
    """
    data = data or DataSpec()
    seeds = list(seeds)
    if not arms or not seeds:
        raise ValueError(f"need at least one arm and one seed, got {len(arms)} arms, "
                         f"{len(seeds)} seeds")
    specs = []
    for name, cfg in arms.items():
        train_cfg, model_cfg = cfg if isinstance(cfg, tuple) else (cfg, VAEConfig())
        if not isinstance(train_cfg, TrainConfig):
            raise TypeError(f"arm {name!r}: expected a TrainConfig, got {type(train_cfg).__name__}")
        specs += [RunSpec(name, s, train_cfg, model_cfg, data) for s in seeds]
    return specs


# -- running one ----------------------------------------------------------------------------


def execute_run(spec: RunSpec, threads: int | None = 1) -> dict:
    """Train one run and return its record (a JSON-able dict); never raises.

    Runs in whichever process the executor chose. ``threads`` sets torch's intra-op threads
    for the run (``None`` leaves them). A failure returns ``status="failed"`` with the error.
    """
    import torch

    from .train import train
    from .utils import seed_everything
    from .vae import ConvVAE

    if threads is not None:
        torch.set_num_threads(threads)
    record: dict = {"key": spec.key, "arm": spec.arm, "seed": spec.seed,
                    "determinants": spec.determinants(), "host": os.uname().nodename,
                    "pid": os.getpid(),
                    "threads": torch.get_num_threads()}
    t0 = time.perf_counter()
    try:
        mels, val_mels = load_split(spec.data)  # (N, 1, 128, T), (N_val, 1, 128, T) or None
        seed_everything(spec.seed)
        model = ConvVAE.from_config(spec.model)
        with warnings.catch_warnings(record=True) as caught:  # kept in the record, not printed
            warnings.simplefilter("always")
            history = train(model, mels, replace(spec.train, seed=spec.seed, device="cpu"),
                            progress=False, val_mels=val_mels)
        record["warnings"] = list(dict.fromkeys(str(w.message) for w in caught))
        h = asdict(history)
        n = len(h["epoch"])
        record["epochs"] = {k: v for k, v in h.items() if isinstance(v, list) and len(v) == n}
        record["kl_per_dim"] = h.get("kl_per_dim", [])
        record["scalars"] = {k: h.get(k) for k in ("train_baseline", "val_baseline", "n_train",
                                                   "n_val", "stop_reason")}
        record["status"] = "ok"
        record["error"] = ""
    except Exception as exc:  # recorded, not raised: one bad run must not sink a sweep
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc(limit=5)
    record["wall_s"] = time.perf_counter() - t0
    return record


# -- the cache ------------------------------------------------------------------------------


class ResultStore:
    """One JSON file per finished run, ``<folder>/<key>.json``, written atomically.

    Only successful runs are kept; a failed run is returned to the caller as a row with its
    error and retried next time.
    """

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_cache_dir() / "runs"

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> dict | None:
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            return json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            return None  # unreadable: run it again (and overwrite)

    def put(self, record: dict) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".run.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(record, f)
            os.replace(tmp, self.path(record["key"]))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.path(record["key"])


# -- executors ------------------------------------------------------------------------------


class SerialExecutor:
    """The smallest ``Executor``: runs each call in this process at ``submit`` time."""

    class _Done:
        def __init__(self, value=None, error: BaseException | None = None) -> None:
            self._value, self._error = value, error

        def result(self, timeout=None):
            if self._error is not None:
                raise self._error
            return self._value

    def submit(self, fn, *args, **kwargs):
        try:
            return self._Done(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed back like a real future
            return self._Done(error=exc)


DEFAULT_WORKERS = 2  # one per core on the 2-core machines this is built on
DEFAULT_THREADS_PER_WORKER = 1  # measured: see the module docstring and benchmarks/RESULTS.md


def dask_client(address: str | None = None, n_workers: int | None = None,
                threads_per_worker: int = DEFAULT_THREADS_PER_WORKER):
    """A Dask ``distributed.Client``: to ``address`` (or ``$SDA_LAB_DASK_ADDRESS``) when given,
    else to a new ``LocalCluster`` of ``n_workers`` processes with ``threads_per_worker`` each.

    The local default is one 1-thread worker per core (at most :data:`DEFAULT_WORKERS` ...
    ``os.cpu_count()``). On several machines: ``dask scheduler`` on one, ``dask worker
    tcp://HOST:8786`` on each, then ``dask_client("tcp://HOST:8786")``. Close it when done
    (``client.close(); client.cluster.close()`` for a local one, or use it in a ``with``).
    """
    import dask
    from distributed import Client, LocalCluster

    address = address or os.environ.get("SDA_LAB_DASK_ADDRESS") or None
    if address:
        return Client(address)
    n_workers = n_workers or max(1, min(os.cpu_count() or 1, 8))
    with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environ()}):
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                               processes=True, dashboard_address=":0", silence_logs=40)
    return Client(cluster)


def worker_environ() -> dict:
    """Dask's environment for new worker processes, less ``MALLOC_TRIM_THRESHOLD_``.

    Dask sets glibc's trim threshold to 64 KiB in its workers to return memory to the system
    sooner. Setting it also switches off glibc's adaptive mmap threshold, so every tensor above
    128 KiB is mmap-ed and unmapped again on each step: measured here, 4 training runs took
    51 s on 2 one-thread workers with it and 28 s without it (``python -m benchmarks.run
    --only sweep``). On a cluster started by hand, unset it the same way (see the README).
    """
    import dask
    import distributed  # noqa: F401  (registers distributed's config defaults)

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    return env


def _threads_for(executor) -> int | None:
    """Torch threads per run: the Dask workers' own thread count, else 1 for process pools."""
    try:
        from distributed import Client

        if isinstance(executor, Client):
            info = executor.scheduler_info()["workers"]
            return min(w.get("nthreads", 1) for w in info.values()) if info else 1
    except ImportError:  # pragma: no cover - distributed is a dependency
        pass
    return None if isinstance(executor, SerialExecutor) else 1


def run_grid(specs: Sequence[RunSpec], executor=None, store: ResultStore | str | Path | None = None,
             progress: bool = True) -> "Results":
    """Run every spec not already in the cache, in parallel, and return all results.

    Parameters
    ----------
    specs : sequence of RunSpec
        From :func:`grid`.
    executor : Executor-like, "serial", "dask" or None
        Anything with ``submit(fn, *args)`` returning a future with ``result()``: a Dask
        ``distributed.Client``, a ``concurrent.futures.ProcessPoolExecutor``, ... ``None`` or
        ``"dask"`` starts a :func:`dask_client` for this call only, and only if some run is not
        cached (closed afterwards); ``"serial"`` trains in this process.
    store : ResultStore or folder, optional
        The cache; default ``data/cache/runs`` (``$SDA_LAB_CACHE/runs``).
    progress : bool
        A tqdm bar over runs.

    Returns
    -------
    Results
        Every run, cached or new, failed ones included (``status == "failed"``, ``error``).
    """
    from tqdm.auto import tqdm

    if not specs:
        raise ValueError("no runs to do: specs is empty")
    store = store if isinstance(store, ResultStore) else ResultStore(store)
    records: dict[str, dict] = {}
    todo: list[RunSpec] = []
    for spec in specs:
        if spec.key in records:
            continue
        cached = store.get(spec.key)
        if cached is not None and cached.get("status") == "ok":
            records[spec.key] = {**cached, "arm": spec.arm, "cached": True}
        elif spec.key not in {s.key for s in todo}:
            todo.append(spec)
    own_client = None
    if todo:
        if executor is None or executor == "dask":
            executor = own_client = dask_client()
        elif executor == "serial":
            executor = SerialExecutor()
        threads = _threads_for(executor)
        futures = {executor.submit(execute_run, spec, threads): spec for spec in todo}
        bar = tqdm(total=len(todo), desc=f"runs ({len(specs) - len(todo)} cached)", unit="run",
                   disable=not progress)
        try:
            for fut, spec in _as_completed(futures, executor):
                try:
                    rec = fut.result()
                except Exception as exc:  # the worker itself died
                    rec = {"key": spec.key, "arm": spec.arm, "seed": spec.seed, "status": "failed",
                           "error": f"{type(exc).__name__}: {exc}", "wall_s": float("nan"),
                           "determinants": spec.determinants()}
                if rec["status"] == "ok":
                    store.put(rec)
                records[spec.key] = {**rec, "arm": spec.arm, "cached": False}
                bar.update(1)
        finally:
            bar.close()
            if own_client is not None:
                cluster = getattr(own_client, "cluster", None)
                own_client.close()
                if cluster is not None:
                    cluster.close()
    ordered = [records[s.key] | {"arm": s.arm} for s in specs]
    return Results(ordered)


def _as_completed(futures: dict, executor):
    """Futures as they finish, for Dask and concurrent.futures alike."""
    try:
        from distributed import Client
        from distributed import as_completed as dask_as_completed

        if isinstance(executor, Client):
            for fut in dask_as_completed(list(futures)):
                yield fut, futures[fut]
            return
    except ImportError:  # pragma: no cover
        pass
    if isinstance(executor, SerialExecutor):
        yield from futures.items()
        return
    from concurrent.futures import as_completed

    for fut in as_completed(futures):
        yield fut, futures[fut]


# -- results ----------------------------------------------------------------------------------


def bootstrap_ci(values: Sequence[float], confidence: float = 0.95, n_resamples: int = 9999,
                 seed: int = 0) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap interval of the mean: ``(mean, low, high)``.

    With one value the interval is that value; NaNs are dropped. Source: Efron & Tibshirani
    (1993); computed by ``scipy.stats.bootstrap`` (percentile method, seeded).
    """
    from scipy.stats import bootstrap

    x = np.asarray([v for v in values if v == v], dtype=float)  # drop NaN
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    if x.size == 1 or np.all(x == x[0]):
        return float(x.mean()), float(x[0]), float(x[0])
    res = bootstrap((x,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                    method="percentile", random_state=np.random.default_rng(seed))
    return float(x.mean()), float(res.confidence_interval.low), float(res.confidence_interval.high)


@dataclass
class Effect:
    """A paired comparison of one metric between two arms over the same seeds."""

    metric: str
    a: str
    b: str
    diffs: list[float]  # a - b, one per seed
    mean: float
    low: float
    high: float

    @property
    def n(self) -> int:
        return len(self.diffs)

    @property
    def a_wins(self) -> int:
        """Seeds where ``a`` is above ``b``."""
        return sum(d > 0 for d in self.diffs)

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def holds(self, direction: str = ">") -> bool:
        """``a > b`` (or ``<``) in every seed, or with a 95% interval on that side of 0."""
        if direction == ">":
            return self.a_wins == self.n or self.low > 0
        return sum(d < 0 for d in self.diffs) == self.n or self.high < 0

    def __str__(self) -> str:
        return (f"{self.metric}: {self.a} - {self.b} = {self.mean:.3g} "
                f"[95% CI {self.low:.3g}, {self.high:.3g}], {self.a} higher in "
                f"{self.a_wins}/{self.n} seeds")


class Results:
    """The records of a sweep, as pandas tables.

    Attributes
    ----------
    records : list[dict]
        One per run, as stored (``arm``, ``seed``, ``status``, ``error``, ``epochs``, ...).
    """

    def __init__(self, records: list[dict]) -> None:
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    @property
    def arms(self) -> list[str]:
        return list(dict.fromkeys(r["arm"] for r in self.records))

    @property
    def failed(self) -> pd.DataFrame:
        """Runs that raised, with their error."""
        rows = [{"arm": r["arm"], "seed": r["seed"], "error": r.get("error", "")}
                for r in self.records if r.get("status") != "ok"]
        return pd.DataFrame(rows, columns=["arm", "seed", "error"])

    def epochs(self) -> pd.DataFrame:
        """One row per run and epoch: arm, seed, epoch and every per-epoch metric."""
        frames = []
        for r in self.records:
            if r.get("status") != "ok":
                continue
            df = pd.DataFrame(r["epochs"])
            df.insert(0, "seed", r["seed"])
            df.insert(0, "arm", r["arm"])
            frames.append(df)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def finals(self, kl_threshold: float = 0.1) -> pd.DataFrame:
        """One row per run: final recon, raw KL, active units, dims above ``kl_threshold`` nats,
        raw KL of epoch 0, wall time, status and error, and the configuration fields."""
        rows = []
        for r in self.records:
            det = r.get("determinants", {})
            row = {"arm": r["arm"], "seed": r["seed"], "status": r.get("status"),
                   "error": r.get("error", ""), "wall_s": r.get("wall_s"),
                   "cached": r.get("cached", False)}
            if r.get("status") == "ok":
                e = r["epochs"]
                row.update({
                    "epochs": len(e["epoch"]),
                    "recon": e["recon"][-1],
                    "raw_kl": e["raw_kl"][-1],
                    "raw_kl_epoch0": e["raw_kl"][0],
                    "raw_kl_peak": max(e["raw_kl"][1:] or e["raw_kl"]),
                    "active_units": e["active_units"][-1],
                    "informative_dims": int(sum(k > kl_threshold for k in r["kl_per_dim"])),
                })
                for k in ("train_recon", "val_recon", "train_baseline", "val_baseline"):
                    v = e.get(k)
                    if isinstance(v, list) and v and v[-1] is not None:
                        row[k] = v[-1]
                for k, v in r.get("scalars", {}).items():  # baselines, clip counts
                    if v is not None:
                        row[k] = v
                if "train_recon" in row and row.get("train_baseline"):
                    row["train_ratio"] = row["train_recon"] / row["train_baseline"]
                if "val_recon" in row and row.get("val_baseline"):
                    row["val_ratio"] = row["val_recon"] / row["val_baseline"]
            for k, v in det.get("train", {}).items():
                row[f"train.{k}"] = v
            for k, v in det.get("model", {}).items():
                row[f"model.{k}"] = v
            for k, v in det.get("data", {}).items():
                row[f"data.{k}"] = v
            rows.append(row)
        return pd.DataFrame(rows)

    def per_seed(self, metric: str) -> pd.DataFrame:
        """``metric``'s final value, seeds as rows and arms as columns."""
        f = self.finals()
        f = f[f["status"] == "ok"]
        return f.pivot(index="seed", columns="arm", values=metric)[self.arms]

    def summary(self, metrics: Sequence[str] = ("recon", "raw_kl", "active_units",
                                                  "informative_dims"),
                digits: int = 3) -> pd.DataFrame:
        """Per arm: runs, and each metric's mean with its 95% bootstrap interval as text."""
        f = self.finals()
        ok = f[f["status"] == "ok"]
        rows = []
        for arm in self.arms:
            sub = ok[ok["arm"] == arm]
            row: dict[str, object] = {"arm": arm, "runs": len(sub),
                                      "failed": int(((f["arm"] == arm) & (f["status"] != "ok")).sum())}
            for m in metrics:
                mean, lo, hi = bootstrap_ci(sub[m].tolist())
                row[m] = f"{mean:.{digits}g} [{lo:.{digits}g}, {hi:.{digits}g}]"
            rows.append(row)
        return pd.DataFrame(rows).set_index("arm")

    def effect(self, metric: str, a: str, b: str, factor: float = 1.0) -> Effect:
        """Paired difference ``a - factor * b`` of a final metric over the seeds both arms
        share (``factor=1.5`` tests "a is more than 1.5 times b")."""
        table = self.per_seed(metric)
        if a not in table or b not in table:
            raise KeyError(f"arms must be among {self.arms}, got {a!r} and {b!r}")
        pair = table[[a, b]].dropna()
        diffs = (pair[a] - factor * pair[b]).astype(float).tolist()
        mean, lo, hi = bootstrap_ci(diffs)
        name = b if factor == 1.0 else f"{factor:g} x {b}"
        return Effect(metric, a, name, diffs, mean, lo, hi)

    def claims(self, claims: Sequence[tuple]) -> pd.DataFrame:
        """A verdict per claim ``(metric, a, ">" or "<", b[, factor])``: "a > factor * b".

        Columns: the claim, the mean paired difference with its 95% bootstrap interval, in how
        many seeds it holds, and ``holds`` (every seed, or an interval that excludes 0 on the
        claimed side: see :meth:`Effect.holds`).
        """
        rows = []
        for c in claims:
            metric, a, op, b = c[:4]
            factor = c[4] if len(c) > 4 else 1.0
            if op not in (">", "<"):
                raise ValueError(f"a claim's direction is '>' or '<', got {op!r}")
            eff = self.effect(metric, a, b, factor)
            wins = eff.a_wins if op == ">" else sum(d < 0 for d in eff.diffs)
            rows.append({"claim": f"{metric}: {a} {op} {eff.b}",
                         "mean difference [95% CI]": f"{eff.mean:.3g} [{eff.low:.3g}, {eff.high:.3g}]",
                         "seeds where it holds": f"{wins}/{eff.n}", "holds": eff.holds(op)})
        return pd.DataFrame(rows).set_index("claim")

    def plot(self, metrics: Sequence[str] = ("recon", "raw_kl", "kl_weight", "active_units"),
             log: Sequence[str] = ("recon", "raw_kl"), band: str = "minmax"):
        """Each metric against epoch: the mean over seeds per arm, with a band (``"minmax"``
        over seeds, or ``"ci"``: 95% bootstrap interval of the mean)."""
        import matplotlib.pyplot as plt

        from .plotting import FIG_DPI

        df = self.epochs()
        fig, axes = plt.subplots(1, len(metrics), figsize=(3.5 * len(metrics), 2.8), dpi=FIG_DPI,
                                 squeeze=False)
        for i, arm in enumerate(self.arms):
            sub = df[df["arm"] == arm]
            n_seeds = sub["seed"].nunique()
            for ax, m in zip(axes[0], metrics):
                g = sub.groupby("epoch")[m]
                mean = g.mean()
                if band == "ci":
                    ci = g.apply(lambda s: bootstrap_ci(s.tolist(), n_resamples=999)[1:])
                    lo = [c[0] for c in ci]
                    hi = [c[1] for c in ci]
                else:
                    lo, hi = g.min(), g.max()
                ax.plot(mean.index, mean.values, color=f"C{i}", label=f"{arm} ({n_seeds} seeds)")
                ax.fill_between(mean.index, lo, hi, color=f"C{i}", alpha=0.2, lw=0)
        for ax, m in zip(axes[0], metrics):
            ax.set_title(m.replace("_", " "))
            ax.set_xlabel("epoch")
            if m in log:
                ax.set_yscale("log")
        axes[0, 0].legend(fontsize=7)
        fig.suptitle(f"mean over seeds, band: {'min-max' if band == 'minmax' else '95% CI'}",
                     fontsize=9)
        fig.tight_layout()
        return fig

    def plot_finals(self, metrics: Sequence[str] = ("recon", "raw_kl", "active_units",
                                                     "informative_dims")):
        """Each run's final value as a dot per seed, per arm, with the mean and 95% interval."""
        import matplotlib.pyplot as plt

        from .plotting import FIG_DPI

        f = self.finals()
        f = f[f["status"] == "ok"]
        fig, axes = plt.subplots(1, len(metrics), figsize=(3.3 * len(metrics), 2.8), dpi=FIG_DPI,
                                 squeeze=False)
        for ax, m in zip(axes[0], metrics):
            for i, arm in enumerate(self.arms):
                vals = f.loc[f["arm"] == arm, m].astype(float).tolist()
                mean, lo, hi = bootstrap_ci(vals)
                ax.scatter([i] * len(vals), vals, color=f"C{i}", s=14, alpha=0.7)
                ax.errorbar([i + 0.2], [mean], yerr=[[mean - lo], [hi - mean]], fmt="o",
                            color="k", ms=4, capsize=3)
            ax.set_xticks(range(len(self.arms)), self.arms, rotation=20, fontsize=7)
            ax.set_title(m.replace("_", " "), fontsize=9)
        fig.tight_layout()
        return fig

    def plot_kl_per_dim(self, free_bits: float | None = None):
        """Final KL per latent dimension, sorted largest first: a panel per arm, a line per
        seed, with the free-bits floor drawn when given."""
        import matplotlib.pyplot as plt

        from .plotting import FIG_DPI

        arms = self.arms
        fig, axes = plt.subplots(1, len(arms), figsize=(4.2 * len(arms), 2.6), dpi=FIG_DPI,
                                 sharey=True, squeeze=False)
        for ax, arm in zip(axes[0], arms):
            for r in self.records:
                if r["arm"] == arm and r.get("status") == "ok":
                    kl = np.sort(np.asarray(r["kl_per_dim"]))[::-1]
                    ax.plot(np.arange(len(kl)), kl, lw=1, alpha=0.8)
            if free_bits:
                ax.axhline(free_bits, color="red", ls="--", lw=1, label=f"free bits {free_bits}")
                ax.legend(fontsize=7)
            ax.set_yscale("log")
            ax.set_title(arm, fontsize=9)
            ax.set_xlabel("latent dimension (sorted)")
        axes[0, 0].set_ylabel("final KL (nats)")
        fig.tight_layout()
        return fig


def base_seed(default: int = 0) -> int:
    """The notebooks' base seed: ``$SDA_LAB_SEED`` (an integer), else ``default``."""
    raw = os.environ.get("SDA_LAB_SEED", "")
    if not raw.strip():
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"SDA_LAB_SEED must be an integer, got {raw!r}") from None


def seeds_from(base: int, n: int = 5) -> list[int]:
    """``n`` run seeds for a base seed, disjoint between base seeds: ``1000*base + 0..n-1``."""
    if n < 1:
        raise ValueError(f"need at least one seed, got n={n}")
    return [1000 * base + i for i in range(n)]


__all__ = [
    "DataSpec", "RunSpec", "grid", "execute_run", "ResultStore", "SerialExecutor", "dask_client",
    "run_grid", "Results", "Effect", "bootstrap_ci", "base_seed", "seeds_from", "load_mels",
    "load_clip_mels", "load_split",
]
