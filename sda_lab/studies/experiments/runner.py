"""Running a sweep: train one run (:func:`execute_run`), on any executor (:func:`run_grid`).

An executor is anything with ``submit(fn, *args)`` returning a future with ``result()``: a Dask
``distributed.Client``, a ``concurrent.futures.ProcessPoolExecutor``, or ``"serial"`` (this
process, one run after the other). By default a Dask ``LocalCluster`` of 1-thread worker
processes, one per CPU this process may use (:func:`dask_client`); ``SDA_LAB_DASK_ADDRESS``
sends the same sweep to a cluster on several machines.

Why 1-thread worker processes: a small conv VAE on a 2-core CPU does not scale across threads
(each step's kernels are too small), so two runs side by side in two 1-thread processes finish
sooner than the same two runs one after the other with 2 threads each; ``make bench``
measures it (``benchmarks/RESULTS.md``, section "sweep layout").

Nothing finished is lost: every run is stored the moment it finishes, in every executor; the
store is proven writable before any training; Ctrl-C (``KeyboardInterrupt``) stops at once,
cancels the runs not yet started, keeps what finished, and is raised again.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

from ...core.progress import progress_bar
from ...core.settings import dask_address
from .results import Results
from .spec import MIN_TRAIN_CLIPS, RunSpec, load_split
from .store import ResultStore

__all__ = ["train_run", "execute_run", "SerialExecutor", "MAX_LOCAL_WORKERS",
           "DEFAULT_THREADS_PER_WORKER", "usable_cpus", "dask_client", "worker_environ",
           "run_grid"]

MAX_LOCAL_WORKERS = 8  # a LocalCluster's default size is min(usable CPUs, this)
DEFAULT_THREADS_PER_WORKER = 1  # measured: see the module docstring and benchmarks/RESULTS.md


# -- one run --------------------------------------------------------------------------------


def train_run(spec: RunSpec, val: bool = True):
    """Train ``spec`` in this process, on the CPU: ``(model, history, val_mels)``.

    The experiments package's one way to train (:func:`execute_run` for a sweep,
    :func:`sda_lab.studies.rate_distortion.heldout_reconstructions` for listening): ``spec``'s data
    (:func:`~sda_lab.studies.experiments.spec.load_split`) handed to
    :func:`sda_lab.training.loop.train_run` with its model and train configs and its seed.
    ``val=False`` trains without validation; the held-out mels ``(N_val, 1, n_mels, T)`` (or
    ``None``) are returned either way.

    Raises
    ------
    ValueError
        Fewer than :data:`~sda_lab.studies.experiments.spec.MIN_TRAIN_CLIPS` training clips; and
        whatever loading the data or training raises.
    """
    from ...training import loop as T

    mels, val_mels = load_split(spec.data)  # (N, 1, 128, T), (N_val, 1, 128, T) or None
    if mels.shape[0] < MIN_TRAIN_CLIPS:
        raise ValueError(f"{spec.data.source} data leaves {mels.shape[0]} training clip(s), "
                         f"expected at least {MIN_TRAIN_CLIPS}")
    model, history = T.train_run(spec.model, replace(spec.train, device="cpu"), mels,
                                 seed=spec.seed, sinks=T.Sinks(progress=False),
                                 val_mels=val_mels if val else None)
    return model, history, val_mels


def execute_run(spec: RunSpec, threads: int | None = 1) -> dict:
    """Train one run and return its record (a JSON-able dict); never raises an ``Exception``.

    Runs in whichever process the executor chose. ``threads`` sets torch's intra-op threads
    for the run (``None`` leaves them). A failure returns ``status="failed"`` with the error;
    ``KeyboardInterrupt`` is not a failure and propagates.
    """
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    record: dict = {"key": spec.key, "arm": spec.arm, "seed": spec.seed,
                    "determinants": spec.determinants(), "host": os.uname().nodename,
                    "pid": os.getpid(), "threads": torch.get_num_threads()}
    t0 = time.perf_counter()
    try:
        _, history, _ = train_run(spec)  # training warns nothing: its verdict is in history
        h = asdict(history)
        n = len(h["epoch"])
        record["epochs"] = {k: v for k, v in h.items() if isinstance(v, list) and len(v) == n}
        record["kl_per_dim"] = h.get("kl_per_dim", [])
        record["scalars"] = {k: h.get(k) for k in ("train_baseline", "val_baseline", "n_train",
                                                   "n_val", "stop_reason", "alarm_kind",
                                                   "verdict")}
        record["status"] = "ok"
        record["error"] = ""
    except Exception as exc:  # recorded, not raised: one bad run must not sink a sweep
        record["status"] = "failed"
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc(limit=5)
    record["wall_s"] = time.perf_counter() - t0
    return record


# -- executors ------------------------------------------------------------------------------


class SerialExecutor:
    """The smallest ``Executor``: a call runs in this process when its result is asked for.

    Nothing runs at ``submit``, so :func:`run_grid` stores each run before the next one starts
    and an interrupt leaves the runs not yet asked for untrained.
    """

    class _Lazy:
        def __init__(self, fn, args, kwargs) -> None:
            self._call = (fn, args, kwargs)
            self.cancelled = False

        def result(self, timeout=None):
            if self.cancelled:
                raise RuntimeError("this run was cancelled before it started")
            fn, args, kwargs = self._call
            return fn(*args, **kwargs)

        def cancel(self) -> bool:
            self.cancelled = True
            return True

    def submit(self, fn, *args, **kwargs):
        return self._Lazy(fn, args, kwargs)


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask where the OS has one
    (``os.sched_getaffinity``: containers, ``taskset``, batch schedulers), else
    ``os.cpu_count()``."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def dask_client(address: str | None = None, n_workers: int | None = None,
                threads_per_worker: int = DEFAULT_THREADS_PER_WORKER):
    """A Dask ``distributed.Client``: to ``address`` (or ``$SDA_LAB_DASK_ADDRESS``) when given,
    else to a new ``LocalCluster`` of ``n_workers`` processes with ``threads_per_worker`` each.

    The local default is one 1-thread worker per CPU this process may use
    (:func:`usable_cpus`), at most :data:`MAX_LOCAL_WORKERS`. On several machines: ``dask
    scheduler`` on one, ``dask worker tcp://HOST:8786`` on each, then
    ``dask_client("tcp://HOST:8786")``. Close it when done (``client.close();
    client.cluster.close()`` for a local one, or use it in a ``with``).

    Raises
    ------
    sda_lab.core.settings.SettingError
        ``$SDA_LAB_DASK_ADDRESS`` is not a scheduler address (checked before connecting).
    """
    import dask
    from distributed import Client, LocalCluster

    address = address or dask_address()
    if address:
        return Client(address)
    n_workers = n_workers or min(usable_cpus(), MAX_LOCAL_WORKERS)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environ()}):
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                               processes=True, dashboard_address=":0", silence_logs=40)
    return Client(cluster)


def worker_environ() -> dict:
    """Dask's environment for new worker processes, less ``MALLOC_TRIM_THRESHOLD_``.

    Dask sets glibc's trim threshold to 64 KiB in its workers to return memory to the system
    sooner. Setting it also switches off glibc's adaptive mmap threshold, so every tensor above
    128 KiB is mmap-ed and unmapped again on each step, which made training much slower here
    (``python -m benchmarks.run --only sweep``; numbers in ``benchmarks/RESULTS.md``). On a
    cluster started by hand, unset it the same way (see docs/design.md).
    """
    import dask
    import distributed  # noqa: F401  (registers distributed's config defaults)

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    return env


def _is_dask(executor) -> bool:
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - distributed is a dependency
        return False
    return isinstance(executor, Client)


def _threads_for(executor) -> int | None:
    """Torch threads per run: the Dask workers' own thread count, else 1 for process pools."""
    if _is_dask(executor):
        info = executor.scheduler_info()["workers"]
        return min(w.get("nthreads", 1) for w in info.values()) if info else 1
    return None if isinstance(executor, SerialExecutor) else 1


def _as_completed(futures: dict, executor):
    """Futures as they finish (in submission order for the serial executor)."""
    if _is_dask(executor):
        from distributed import as_completed

        for fut in as_completed(list(futures)):
            yield fut, futures[fut]
    elif isinstance(executor, SerialExecutor):
        yield from futures.items()
    else:
        from concurrent.futures import as_completed

        for fut in as_completed(futures):
            yield fut, futures[fut]


def _failed_record(spec: RunSpec, exc: BaseException) -> dict:
    return {"key": spec.key, "arm": spec.arm, "seed": spec.seed, "status": "failed",
            "error": f"{type(exc).__name__}: {exc}", "wall_s": float("nan"),
            "determinants": spec.determinants()}


def run_grid(specs: Sequence[RunSpec], executor=None, store: ResultStore | str | Path | None = None,
             progress: bool = True) -> Results:
    """Run every spec not already in the cache, in parallel, and return all results.

    Parameters
    ----------
    specs : sequence of RunSpec
        From :func:`~sda_lab.studies.experiments.grid`.
    executor : Executor-like, "serial", "dask" or None
        Anything with ``submit(fn, *args)`` returning a future with ``result()``: a Dask
        ``distributed.Client``, a ``concurrent.futures.ProcessPoolExecutor``, ... ``None`` or
        ``"dask"`` starts a :func:`dask_client` for this call only, and only if some run is not
        cached (closed afterwards); ``"serial"`` trains in this process, one run at a time.
    store : ResultStore or folder, optional
        The cache; default ``data/cache/runs`` (``$SDA_LAB_CACHE/runs``).
    progress : bool
        A progress bar over runs (:func:`~sda_lab.core.progress.progress_bar`).

    Returns
    -------
    Results
        Every run, cached or new, failed ones included (``status == "failed"``, ``error``).

    Raises
    ------
    ValueError
        ``specs`` is empty.
    sda_lab.core.settings.SettingError, sda_lab.core._io.WriteError
        The store cannot be written (checked before any training), or a bad
        ``SDA_LAB_DASK_ADDRESS``.
    KeyboardInterrupt
        Ctrl-C: raised again after every finished run is stored and the rest cancelled.
    """
    if not specs:
        raise ValueError("no runs to do: specs is empty")
    store = store if isinstance(store, ResultStore) else ResultStore(store)
    records: dict[str, dict] = {}
    todo: dict[str, RunSpec] = {}
    for spec in specs:
        if spec.key in records or spec.key in todo:
            continue
        cached = store.get(spec.key)
        if cached is not None and cached.get("status") == "ok":
            records[spec.key] = {**cached, "arm": spec.arm, "cached": True}
        else:
            todo[spec.key] = spec
    if todo:
        store.check_writable()
        _run_todo(list(todo.values()), executor, store, records, progress,
                  n_cached=len(specs) - len(todo))
    return Results([records[s.key] | {"arm": s.arm} for s in specs])


def _run_todo(todo, executor, store, records, progress, n_cached: int) -> None:
    own_client = None
    if executor is None or executor == "dask":
        executor = own_client = dask_client()
    elif executor == "serial":
        executor = SerialExecutor()
    futures: dict = {}
    bar = progress_bar(total=len(todo), desc=f"runs ({n_cached} cached)", unit="run",
               disable=not progress)
    try:
        threads = _threads_for(executor)
        futures = {executor.submit(execute_run, spec, threads): spec for spec in todo}
        for fut, spec in _as_completed(futures, executor):
            try:
                rec = fut.result()
            except Exception as exc:  # the worker itself died
                rec = _failed_record(spec, exc)
            if rec["status"] == "ok":
                store.put(rec)  # the moment it finishes: nothing finished is lost
            records[spec.key] = {**rec, "arm": spec.arm, "cached": False}
            bar.update(1)
    except BaseException:  # Ctrl-C or a store that broke: start nothing more
        for fut in futures:  # a finished one is already stored; cancel is a no-op on it
            try:
                fut.cancel()
            except Exception:  # noqa: BLE001 - a future of an executor already gone
                pass
        raise
    finally:
        bar.close()
        if own_client is not None:
            cluster = getattr(own_client, "cluster", None)
            own_client.close()
            if cluster is not None:
                cluster.close()
