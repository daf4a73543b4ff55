"""pytest for the whole repository (``make test``).

Only the product's notebooks are collected (:func:`tools.nbstamp.notebook_paths`: the numbered
ones git tracks), not a scratch notebook a user saved in ``notebooks/``. Under pytest-xdist each
worker takes one core: one intra-op thread, and the notebook kernels it starts inherit
``OMP_NUM_THREADS=1``.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tools"))
import nbstamp  # noqa: E402

PRODUCT_NOTEBOOKS = frozenset(p.resolve() for p in nbstamp.notebook_paths())

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def pytest_ignore_collect(collection_path, config):
    """Skip any ``.ipynb`` that is not one of the product's notebooks."""
    if collection_path.suffix == ".ipynb" and collection_path.resolve() not in PRODUCT_NOTEBOOKS:
        return True
    return None
