"""Which checkpoint opens a run folder, and the content fingerprint of a file: one rule each,
shared by the layer that writes runs (:mod:`sda_lab.training.rundir`), the one that hears them
(:meth:`sda_lab.representation.inverter.Inverter.for_run`) and the one that reads audio folders
(:func:`sda_lab.data.folders.file_fingerprints`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["RUN_CHECKPOINTS", "find_checkpoint", "file_sha256"]

RUN_CHECKPOINTS = ("best.pt", "checkpoint.pt")  # what a run is opened with, in this order


def find_checkpoint(folder: str | Path) -> Path | None:
    """The checkpoint a run folder is opened with: the first of :data:`RUN_CHECKPOINTS` it
    holds as a file; None when it holds neither."""
    folder = Path(folder)
    return next((folder / n for n in RUN_CHECKPOINTS if (folder / n).is_file()), None)


def file_sha256(path: str | Path) -> tuple[int, str]:
    """``(size in bytes, SHA-256 hex digest)`` of a file's content, read in 1 MiB blocks.

    Raises
    ------
    OSError
        The file cannot be read.
    """
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()
