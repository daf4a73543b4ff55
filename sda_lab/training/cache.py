"""The default model the explorer opens on: loaded from the cache, or trained once and cached.

Two kernels asking at once do not both train: the first takes an exclusive lock on a lock file
beside the model (``fcntl.flock``), the second waits for it and then loads the finished file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from ..core._io import check_writable_dir
from ..core.settings import cache_dir
from ..representation.spectrogram import SpectrogramConfig
from . import recipes
from .callbacks import Sinks
from .checkpoint import CHECKPOINT_FORMAT, Checkpoint, best_path_for, load_checkpoint
from .config import TrainConfig
from .loop import train_run

__all__ = ["default_cache_dir", "default_model_path", "load_or_train_default"]

# TrainConfig's fields when default models were first cached; see default_model_path.
_FIRST_TRAIN_FIELDS = frozenset({
    "epochs", "batch_size", "lr", "weight_decay", "grad_clip", "kl_schedule", "warmup_fraction",
    "n_cycles", "cycle_ratio", "kl_weight", "free_bits", "free_bits_mode", "seed", "device"})


def default_cache_dir() -> Path:
    """The cache folder, :func:`sda_lab.core.settings.cache_dir` (``$SDA_LAB_CACHE``, else
    ``data/cache`` of a source checkout, else ``~/.cache/sda-lab``)."""
    return cache_dir()


def default_model_path(config: TrainConfig | None = None) -> Path:
    """Where the default model trained with ``config`` (default: the recipe's) is cached: a
    name carrying a hash of the training and model configs, so another config is another file.
    Fields added to :class:`TrainConfig` after the first release are left out of the hash while
    at their defaults, so models cached before they existed are still found; the recipe's
    spectrogram config is hashed when it is not the reference one."""
    config = config or recipes.DEFAULT_RECIPE.train
    defaults = asdict(TrainConfig())
    keyed = {k: v for k, v in asdict(config).items()
             if k in _FIRST_TRAIN_FIELDS or v != defaults[k]}
    parts = [keyed, asdict(recipes.DEFAULT_RECIPE.model), recipes.DEFAULT_CLIPS_PER_KIND,
             CHECKPOINT_FORMAT]
    spec = asdict(recipes.DEFAULT_RECIPE.spectrogram)
    if spec != asdict(SpectrogramConfig()):  # another representation is another model
        parts.append(spec)
    key = hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:10]
    return default_cache_dir() / f"default_vae_{key}.pt"


@contextmanager
def _exclusive(lock_path: Path):
    """Hold an exclusive ``flock`` on ``lock_path`` (created if missing) while inside; another
    process (or thread, through its own open file) waits at the ``with``. The lock file is left
    in place: removing it would let a third process lock a new file while the second holds the
    old one."""
    with open(lock_path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def load_or_train_default(path: str | Path | None = None, progress: bool = True,
                          config: TrainConfig | None = None) -> Checkpoint:
    """The VAE trained on the default data (:data:`sda_lab.training.recipes.DEFAULT_RECIPE`):
    loaded from the cache, or trained, cached and loaded.

    ``path`` defaults to :func:`default_model_path` of ``config``. Training runs under a lock
    beside the file (``<name>.lock``): a second caller waits, then loads what the first
    trained. The model is trained under a temporary name and renamed when complete, so an
    interrupted run never leaves a half-trained file under the name that is loaded. Times are
    in ``benchmarks/RESULTS.md``.

    Raises
    ------
    sda_lab.core._io.WriteError
        Before training, if the cache folder cannot be written.
    """
    from ..data.synth import make_default_dataset

    config = config or recipes.DEFAULT_RECIPE.train
    path = Path(path) if path is not None else default_model_path(config)
    if path.is_file():
        return load_checkpoint(path)
    check_writable_dir(path.parent, "the default model's cache folder (SDA_LAB_CACHE)")
    with _exclusive(path.with_name(f"{path.name}.lock")):
        if path.is_file():  # another process trained it while we waited
            return load_checkpoint(path)
        clips = make_default_dataset(recipes.DEFAULT_CLIPS_PER_KIND)
        spec = recipes.DEFAULT_RECIPE.audio_spectrogram()
        mels = spec.waveform_to_mel(clips.waveforms)  # (300, 1, 128, 94)
        partial = path.with_name(f".{path.stem}.{os.getpid()}.partial.pt")
        try:
            train_run(recipes.DEFAULT_RECIPE.model, config, mels, spectrogram=spec,
                      sinks=Sinks(checkpoint=partial, progress=progress))
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
            best_path_for(partial).unlink(missing_ok=True)
    return load_checkpoint(path)
