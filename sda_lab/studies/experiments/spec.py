"""What a run is: its data (:class:`DataSpec`), its configs and seed (:class:`RunSpec`), its key.

Everything that determines a run's result, plus the sda-lab version, is hashed into its key
(:func:`run_key`), so a cached run is found again by any process that builds the same spec.
:func:`grid` builds arms x seeds and refuses up front what can never run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache

import numpy as np

from ...core import __version__
from ...model.vae import VAEConfig
from ...training.config import TrainConfig

RESULT_FORMAT = 2
MIN_TRAIN_CLIPS = 2  # the active-units count needs (N >= 2, latent_dim) posterior means

__all__ = ["RESULT_FORMAT", "MIN_TRAIN_CLIPS", "DataSpec", "RunSpec", "load_clip_mels",
           "load_split", "run_key", "grid", "check_runnable", "seeds_from"]


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
    # The representation: SpectrogramConfig.scale, "log1p" (the reference plan's) or "db".
    scale: str = "log1p"
    # Validation split BY FILE (sda_lab.data.split_by_file): this fraction of the files (of the
    # folder, or of the synthetic set's one-file-per-clip) is held out; 0 trains on everything.
    val_fraction: float = 0.0
    split_seed: int = 0  # which files are held out (same split in every run of a sweep)
    # At most this many clips (None: all), taken evenly spaced over the folder's clip order
    # before the split, so a tiny sweep still sees every file.
    max_clips: int | None = None

    def __post_init__(self) -> None:
        from ...representation.spectrogram import SCALES

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
    """``(mels, files, groups)``: the normalised mels ``(N, 1, n_mels, T)`` of ``data`` in its
    scale, each clip's source file (after ``max_clips``) and a folder's files that are one
    recording up to gain (:func:`sda_lab.data.split.same_recordings`; empty for the synthetic
    set, whose clips are synthesised apart), cached per process."""
    from ...data.load import load_folder
    from ...data.split import same_recordings
    from ...data.synth import make_default_dataset
    from ...representation.spectrogram import AudioSpectrogram, SpectrogramConfig

    if data.source == "default":
        clips, groups = make_default_dataset(data.clips_per_kind, seed=data.seed), {}
    else:
        clips = load_folder(data.folder)
        groups = same_recordings(clips)
    files = list(clips.files)
    waves = clips.waveforms  # (N, 1, samples)
    if data.max_clips is not None and len(files) > data.max_clips:
        keep = np.unique(np.linspace(0, len(files) - 1, data.max_clips).round().astype(int))
        waves = waves[keep]  # (max_clips, 1, samples)
        files = [files[i] for i in keep]
    spec = AudioSpectrogram(SpectrogramConfig(scale=data.scale))
    return spec.waveform_to_mel(waves), files, groups  # (N, 1, 128, T)


def _split_indices(data: DataSpec, files: Sequence[str], groups: Mapping[str, str]
                   ) -> tuple[list[int], list[int] | None]:
    from ...data.split import split_by_file

    if data.val_fraction == 0:
        return list(range(len(files))), None
    train_idx, val_idx, _ = split_by_file(list(files), data.val_fraction, data.split_seed,
                                          groups=groups)
    return train_idx, val_idx


def load_split(data: DataSpec):
    """``(train_mels, val_mels)`` of ``data``, split by file with ``data.val_fraction`` and
    ``data.split_seed`` (:func:`sda_lab.data.split_by_file`; a folder's files that are one
    recording up to gain are held out together); ``val_mels`` is None without a
    split. Shapes ``(N_train, 1, n_mels, T)``, ``(N_val, 1, n_mels, T)``.

    Raises
    ------
    ValueError
        From :func:`~sda_lab.data.split_by_file` (e.g. a folder with a single file).
    """
    mels, files, groups = load_clip_mels(data)
    train_idx, val_idx = _split_indices(data, files, groups)
    if val_idx is None:
        return mels, None
    return mels[train_idx], mels[val_idx]  # (N_train, 1, M, T), (N_val, 1, M, T)


def _training_clips(data: DataSpec) -> int:
    """How many clips ``data`` leaves for training, without synthesising the default set."""
    if data.source == "default":
        from ...data.synth import KINDS

        n = len(KINDS) * data.clips_per_kind  # one pseudo-file per clip
        if data.max_clips is not None:
            n = min(n, data.max_clips)
        files, groups = [str(i) for i in range(n)], {}
    else:
        _, files, groups = load_clip_mels(data)  # the folder is read once per process (cached)
    return len(_split_indices(data, files, groups)[0])


def check_runnable(train: TrainConfig, data: DataSpec, arm: str = "") -> None:
    """Raise ``ValueError`` (one line) for a run :func:`run_grid` can never honour: waveform
    augmentation (runs train on cached mels, not waveforms), or data that leaves fewer than
    :data:`MIN_TRAIN_CLIPS` training clips after ``max_clips`` and the validation split.
    Mel-domain augmentation (SpecAugment masks, mel shift) runs on the precomputed mels."""
    where = f"arm {arm!r}: " if arm else ""
    if train.augment is not None and train.augment.on_waveform:
        raise ValueError(f"{where}TrainConfig.augment's waveform parts (gain_db, max_shift_s, "
                         "speed, mixup) are not supported by the experiments runner (its runs "
                         "train on precomputed mels); set them to 0 "
                         "(sda_lab.data.augment.NO_WAVEFORM) for mel-domain augmentation only, or "
                         "use sda_lab.training.own_audio.train_on_clips")
    n_train = _training_clips(data)
    if n_train < MIN_TRAIN_CLIPS:
        raise ValueError(f"{where}DataSpec leaves {n_train} training clip(s), expected at least "
                         f"{MIN_TRAIN_CLIPS} (source={data.source!r}, clips_per_kind="
                         f"{data.clips_per_kind}, max_clips={data.max_clips}, val_fraction="
                         f"{data.val_fraction}); use more clips or a smaller val_fraction")


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

    Raises
    ------
    ValueError
        No arm or no seed, or an arm that can never run (:func:`check_runnable`).
    TypeError
        An arm that is not a TrainConfig.
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
        check_runnable(train_cfg, data, name)
        specs += [RunSpec(name, s, train_cfg, model_cfg, data) for s in seeds]
    return specs


def seeds_from(base: int, n: int = 5) -> list[int]:
    """``n`` run seeds for a base seed, disjoint between base seeds: ``1000*base + 0..n-1``."""
    if n < 1:
        raise ValueError(f"need at least one seed, got n={n}")
    return [1000 * base + i for i in range(n)]
