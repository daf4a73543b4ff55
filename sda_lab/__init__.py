"""sda-lab: a workbench for small-dataset audio VAEs.

The package in pipeline order (one idea per module):

- representation: :mod:`~sda_lab.representation.spectrogram` (waveform <-> normalised log-mel),
  :mod:`~sda_lab.representation.inversion` (mel -> linear -> waveform), :mod:`~sda_lab.representation.phase` (PGHI, fast
  Griffin-Lim), :mod:`~sda_lab.representation.harmonic` (a pitch-aware mel -> linear start),
  :mod:`~sda_lab.representation.inverse_mel` (a learned inverse mel), :mod:`~sda_lab.representation.metrics`,
  :mod:`~sda_lab.studies.evaluate`
- data: :mod:`~sda_lab.data.synth` (the embedded default set), :mod:`~sda_lab.data.load` (your own
  folder), :mod:`~sda_lab.data.folders`, :mod:`~sda_lab.data.augment`
- model and loss: :mod:`~sda_lab.model.vae`, :mod:`~sda_lab.model.losses`
- training: :mod:`~sda_lab.training.loop`, :mod:`~sda_lab.training.callbacks`, :mod:`~sda_lab.training.history`,
  :mod:`~sda_lab.training.diagnostics`, :mod:`~sda_lab.training.checkpoint`, :mod:`~sda_lab.training.recipes`,
  :mod:`~sda_lab.training.cache`, :mod:`~sda_lab.training.own_audio`
- studies: :mod:`~sda_lab.studies.experiments`, :mod:`~sda_lab.studies.rate_distortion`,
  :mod:`~sda_lab.studies.dimensions`, :mod:`~sda_lab.studies.descriptors`, :mod:`~sda_lab.studies.prior`,
  :mod:`~sda_lab.studies.generate`
- interface: :mod:`~sda_lab.interface.widgets`, :mod:`~sda_lab.interface.plotting`, :mod:`~sda_lab.interface.cli` and
  :mod:`~sda_lab.interface.commands`, :mod:`~sda_lab.interface.export`

The names below are importable from ``sda_lab`` directly; each is loaded on first use, so
``import sda_lab`` stays cheap.
"""

from __future__ import annotations

import importlib

from .core import __version__

_PUBLIC = {
    "SpectrogramConfig": "representation.spectrogram", "AudioSpectrogram": "representation.spectrogram",
    "mel_to_linear": "representation.inversion", "griffin_lim": "representation.inversion",
    "spectral_convergence": "representation.metrics", "log_spectral_distance": "representation.metrics",
    "mel_consistency": "representation.metrics",
    "make_default_dataset": "data", "load_folder": "data", "AudioClips": "data",
    "VAEConfig": "model.vae", "ConvEncoder": "model.vae", "ConvDecoder": "model.vae", "ConvVAE": "model.vae",
    "vae_loss": "model.losses", "get_kl_weight": "model.losses", "compute_kl_divergence": "model.losses",
    "active_units": "model.losses",
    "TrainConfig": "training.config", "train_run": "training.loop",
    "split_by_file": "data", "Alarm": "training.diagnostics",
    "save_checkpoint": "training.checkpoint", "load_checkpoint": "training.checkpoint",
    "Recipe": "training.recipes", "DEFAULT_RECIPE": "training.recipes", "OWN_AUDIO_RECIPE": "training.recipes",
    "load_or_train_default": "training.cache", "train_on_clips": "training.own_audio",
    "grid": "studies.experiments", "run_grid": "studies.experiments", "DataSpec": "studies.experiments",
    "LatentExplorer": "interface.widgets", "InterpolationExplorer": "interface.widgets",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'sda_lab' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
