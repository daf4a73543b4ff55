"""How to lay out parallel training runs on this machine: worker processes x threads.

Trains the same ``n_runs`` short runs (the notebooks' setting, 1 s clips of the default data)
in each layout and reports wall time and runs per minute:

- sequential in this process with ``torch.get_num_threads()`` threads (the plain loop),
- a Dask LocalCluster with ``cores`` workers of 1 thread each (sda-lab's default),
- a Dask LocalCluster with 1 worker of ``cores`` threads.

Run alone on a quiet machine: ``python -m benchmarks.bench_sweep`` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import tempfile
import time

import torch

from sda_lab.studies.experiments import (DataSpec, dask_client, execute_run, grid, run_grid,
                                         usable_cpus)
from sda_lab.training.config import TrainConfig


def _specs(n_runs: int, epochs: int, clips_per_kind: int):
    cfg = TrainConfig(epochs=epochs, lr=2e-3, kl_schedule="constant")
    return grid({"bench": cfg}, list(range(n_runs)), DataSpec(clips_per_kind=clips_per_kind))


def run(n_runs: int = 4, epochs: int = 10, clips_per_kind: int = 16) -> str:
    cores = usable_cpus()  # the CPUs this process may use (affinity mask), as dask_client
    specs = _specs(n_runs, epochs, clips_per_kind)
    rows = []
    threads = torch.get_num_threads()
    t0 = time.perf_counter()
    for s in specs:
        execute_run(s, threads=cores)
    rows.append((f"sequential, 1 process x {cores} threads", time.perf_counter() - t0))
    torch.set_num_threads(threads)
    for workers, per in ((cores, 1), (1, cores)):
        client = dask_client(n_workers=workers, threads_per_worker=per)
        try:
            client.submit(lambda: 0).result()  # workers up before the clock starts
            t0 = time.perf_counter()
            run_grid(specs, executor=client, store=tempfile.mkdtemp(), progress=False)
            rows.append((f"Dask LocalCluster, {workers} processes x {per} thread(s)",
                         time.perf_counter() - t0))
        finally:
            client.close()
            client.cluster.close()
    base = rows[0][1]
    lines = [f"## Parallel training runs: processes x threads ({n_runs} runs of {epochs} epochs "
             f"on {5 * clips_per_kind} clips, {cores} cores)", "",
             "| layout | wall s | runs/min | speed-up vs sequential |", "|---|---|---|---|"]
    lines += [f"| {name} | {t:.1f} | {60 * n_runs / t:.1f} | {base / t:.2f}x |" for name, t in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run())
