"""sda-lab: a workbench for small-dataset audio VAEs.

The package in pipeline order, each layer importing only the layers below it (the
import-linter contract in ``pyproject.toml``, checked by ``tests/test_layers.py``):

- :mod:`sda_lab.interface`: widgets, plotting, the command line (``python -m sda_lab``), export
- :mod:`sda_lab.studies`: experiments over seeds, rate-distortion, dimensions, descriptors,
  prior, generation, evaluation of every inversion path, profiling
- :mod:`sda_lab.training`: config, loop, callbacks, history, diagnostics, checkpoints, recipes,
  the default model's cache, own audio
- :mod:`sda_lab.model`: the VAE and its loss
- :mod:`sda_lab.data`: clips, your own folder, the embedded default set, the split by file,
  augmentation
- :mod:`sda_lab.representation`: waveform <-> log-mel, inversion, phase, the learned inverse
  mel, metrics
- :mod:`sda_lab.core`: settings, atomic writes, input checks, seeding and devices

The names below are importable from ``sda_lab`` directly. The explorers, which need ipywidgets,
are in :mod:`sda_lab.interface.widgets`.

``python -m sda_lab`` sets ``OMP_WAIT_POLICY=PASSIVE`` unless it is set, before torch loads its
OpenMP runtime: idle OpenMP threads then sleep instead of spinning, which on a machine with other
work kept the commands several times faster. Importing the package as a library changes nothing.
"""

import os
import sys

if sys.argv[:1] == ["-m"]:  # the package being imported by `python -m` (sys.argv[0] is "-m")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _interrupted_while_starting() -> None:
    """Ctrl-C while ``python -m sda_lab`` imports: one line and exit status 130, not a
    traceback; a library user's import re-raises ``KeyboardInterrupt``."""
    argv = sys.orig_argv
    if "-m" in argv and argv[argv.index("-m") + 1:][:1] == ["sda_lab"]:
        print("sda-lab: interrupted before any work started", file=sys.stderr)
        raise SystemExit(130) from None
    raise KeyboardInterrupt


try:  # torch and the rest load here: seconds, in which Ctrl-C must not end in a traceback
    from .core import __version__
    from .data import AudioClips, DataConfig, load_folder, make_default_dataset, split_by_file
    from .model.losses import active_units, compute_kl_divergence, get_kl_weight, vae_loss
    from .model.vae import ConvDecoder, ConvEncoder, ConvVAE, VAEConfig
    from .representation.inversion import griffin_lim, mel_to_linear
    from .representation.metrics import log_spectral_distance, mel_consistency, spectral_convergence
    from .representation.spectrogram import AudioSpectrogram, SpectrogramConfig
    from .studies.experiments import DataSpec, grid, run_grid
    from .training.cache import load_or_train_default
    from .training.checkpoint import load_checkpoint, save_checkpoint
    from .training.config import TrainConfig
    from .training.diagnostics import Alarm
    from .training.loop import train_run
    from .training.own_audio import train_on_clips
    from .training.recipes import DEFAULT_RECIPE, OWN_AUDIO_RECIPE, Recipe
except KeyboardInterrupt:
    _interrupted_while_starting()

__all__ = [
    "__version__", "SpectrogramConfig", "AudioSpectrogram", "mel_to_linear", "griffin_lim",
    "spectral_convergence", "log_spectral_distance", "mel_consistency", "make_default_dataset",
    "load_folder", "DataConfig", "AudioClips", "split_by_file", "VAEConfig", "ConvEncoder", "ConvDecoder",
    "ConvVAE", "vae_loss", "get_kl_weight", "compute_kl_divergence", "active_units",
    "TrainConfig", "train_run", "Alarm", "save_checkpoint", "load_checkpoint", "Recipe",
    "DEFAULT_RECIPE", "OWN_AUDIO_RECIPE", "load_or_train_default", "train_on_clips", "grid",
    "run_grid", "DataSpec",
]
