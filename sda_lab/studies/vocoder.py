"""A run's own vocoder, trained on the run's own files: :func:`train_run_vocoder`.

:func:`sda_lab.training.vocoder.train_vocoder` trains and judges a vocoder on a run's clips;
this module reads them back the way every other command does
(:func:`sda_lab.studies.generate.load_run`: the files recorded in ``metrics.json``, checked
against their fingerprints, split as the run split them) and hands them down.
"""

from __future__ import annotations

from pathlib import Path

from ..training.vocoder import VocoderData, VocoderResult, train_vocoder
from .generate import Run, load_run

__all__ = ["vocoder_data", "train_run_vocoder"]


def vocoder_data(run: Run) -> VocoderData:
    """A loaded run's VAE, spectrogram, clips, mels and split as :class:`VocoderData`."""
    return VocoderData(run.model, run.spec, run.clips.waveforms, run.clips.files, run.mels,
                       list(run.train_idx), list(run.val_idx))


def train_run_vocoder(run_dir: str | Path, config=None, *, run: Run | None = None,
                      **kwargs) -> VocoderResult:
    """:func:`~sda_lab.training.vocoder.train_vocoder` on the run folder ``run_dir``'s own
    clips (``run``: an already loaded :func:`load_run` of it, else loaded here). Keyword
    arguments go to ``train_vocoder`` (``budget_s``, ``clock``, ``max_steps``, ``generator``,
    ``resume``, ``progress``, ``max_files``).

    Raises
    ------
    FileNotFoundError, ValueError
        What :func:`load_run` raises (one line), then what ``train_vocoder`` raises.
    """
    run = run if run is not None else load_run(run_dir)
    return train_vocoder(run_dir, vocoder_data(run), config, **kwargs)
