"""Seeding, device choice and the OpenMP thread policy, shared by the trainer, the widgets and
the notebooks."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int = 0) -> None:
    """Seed Python's, NumPy's and PyTorch's generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(prefer: str | None = None) -> torch.device:
    """``prefer`` if given, else CUDA, then Apple's MPS, then the CPU."""
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


# -- threads beside other kernels ------------------------------------------------------------

def set_thread_policy(wait_policy: str = "PASSIVE") -> dict[str, object]:
    """Make OpenMP's idle threads sleep instead of spinning, for processes started from here.

    JupyterLab users run several kernels on a few cores. With OpenMP's default (spinning) wait
    policy, an idle torch thread keeps its core busy for a while after each parallel region, and
    two such processes slow each other down several-fold; ``OMP_WAIT_POLICY=PASSIVE`` removes
    most of that at a small cost when alone (``benchmarks/bench_explorer.py`` measures it).

    OpenMP reads the variable once, when torch is loaded, so this sets it (unless the user
    already did) for every *child* process (Dask workers, training CLIs, kernels), and it takes
    effect in the current process only if torch was not imported yet. ``make lab`` sets it for
    every kernel; nothing in sda-lab calls this on import (an explicit call, e.g. at the top of a
    notebook started outside ``make lab``). Returns ``{"OMP_WAIT_POLICY": value, "torch_threads": n}``.
    """
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", wait_policy)
    return {"OMP_WAIT_POLICY": os.environ["OMP_WAIT_POLICY"],
            "torch_threads": torch.get_num_threads()}
