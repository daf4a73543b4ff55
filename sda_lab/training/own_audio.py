"""A folder of clips to a model (the CLI and notebook 06): split by file, mels, one run with
validation, and the paired augmentation comparison."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import torch

from ..data.augment import AugmentConfig
from ..data.split import check_training_clips, same_recordings, split_by_file
from ..model.vae import ConvVAE, VAEConfig
from ..representation.inverter import Inverter
from .audio_eval import evaluate_audio, judge
from .callbacks import Sinks
from .config import TrainConfig
from .diagnostics import verdict
from .history import History
from .loop import train_run
from .posterior import heard_reconstruction
from .recipes import OWN_AUDIO_RECIPE
from .resume import TrainingInterrupted

__all__ = ["ClipsRun", "clips_to_mels", "train_on_clips", "augmentation_effect"]


@dataclass
class ClipsRun:
    """What :func:`train_on_clips` made: the model, its history, and how the data was split.

    ``mels`` ``(N, 1, n_mels, T)`` holds every clip (training and validation), in the order of
    ``clips``; ``train_idx``/``val_idx`` index both.
    """

    model: ConvVAE
    history: History
    spectrogram: object  # AudioSpectrogram
    clips: object  # AudioClips
    mels: torch.Tensor
    train_idx: list[int]
    val_idx: list[int]
    val_files: list[str]
    model_config: VAEConfig
    train_config: TrainConfig

    @property
    def train_mels(self) -> torch.Tensor:
        return self.mels[self.train_idx]  # (N_train, 1, n_mels, T)

    @property
    def val_mels(self) -> torch.Tensor:
        return self.mels[self.val_idx]  # (N_val, 1, n_mels, T)

    def verdict(self) -> dict[str, object]:
        """The run's one verdict, ``{"fired", "kind", "why"}`` (:meth:`Alarm.report` of
        :func:`~sda_lab.training.diagnostics.verdict`)."""
        return verdict(self.history, config=self.train_config,
                       scale=getattr(self.spectrogram.config, "scale", None)).report()

    def evaluate_audio(self, inverter=None, max_files: int = 12, max_clips: int = 2,
                       progress: bool = False, round_trip_inverter=None):
        """What the run sounds like (:func:`~sda_lab.training.audio_eval.evaluate_audio`): the
        held-out files (the training files when nothing was held out) through the model, the
        mel round trip and the average sound, with ``inverter`` (default: the spectrogram's
        NNLS magnitude + PGHI, :class:`~sda_lab.representation.inverter.Inverter`) and
        ``round_trip_inverter`` for the mel round trip and the average sound (None:
        ``inverter``)."""
        on = "validation" if self.val_idx else "training"
        return evaluate_audio(self.model, self.spectrogram, self.clips.waveforms,
                              self.clips.files, self.val_idx or self.train_idx, self.train_mels,
                              inverter or Inverter(self.spectrogram), on=on,
                              max_files=max_files, max_clips=max_clips, progress=progress,
                              round_trip_inverter=round_trip_inverter,
                              train_config=self.train_config)

    def listen(self, indices: Sequence[int], inverter=None) -> dict[str, torch.Tensor]:
        """The clips at ``indices`` as heard three ways, each ``(k, 1, samples)`` on the CPU:
        ``"input"`` (the clip), ``"mel round trip"`` (its mel inverted) and ``"model"``
        (encoded, the posterior mean refined by the run's ``posterior_steps`` and decoded,
        :meth:`reconstruct`, inverted), with ``inverter`` (default: the
        spectrogram's NNLS magnitude + PGHI)."""
        inverter = inverter or Inverter(self.spectrogram)
        idx = list(indices)
        length = self.clips.waveforms.shape[-1]
        return {"input": self.clips.waveforms[idx],
                "mel round trip": inverter(self.mels[idx], length).cpu(),  # (k, 1, samples)
                "model": inverter(self.reconstruct(idx), length).cpu()}  # (k, 1, samples)

    def audio_verdict(self, evaluation) -> dict[str, str]:
        """The verdict from what the run sounds like (:func:`~sda_lab.training.audio_eval.judge`
        on :meth:`evaluate_audio`'s result): ``{"kind", "sentence", "meaning"}``."""
        return judge(evaluation, self.history.active_units[-1]).report()

    def reconstruct(self, indices: Sequence[int]) -> torch.Tensor:
        """What the run plays of the clips at ``indices``, ``(len(indices), 1, n_mels, T)`` on
        the CPU: the posterior mean (refined by the run's ``posterior_steps``,
        :func:`~sda_lab.training.posterior.heard_reconstruction`) decoded in eval mode."""
        return heard_reconstruction(self.model, self.mels[list(indices)], self.train_config,
                                    self.spectrogram.mel_magnitude)  # (k, 1, n_mels, T)


def clips_to_mels(spectrogram, waveforms: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """``(N, 1, samples)`` -> ``(N, 1, n_mels, T)`` in batches of ``batch`` clips."""
    return torch.cat([spectrogram.waveform_to_mel(waveforms[i:i + batch])
                      for i in range(0, waveforms.shape[0], batch)])  # (N, 1, n_mels, T)


def train_on_clips(clips, model_config: VAEConfig | None = None,
                   train_config: TrainConfig | None = None, val_fraction: float = 0.2,
                   val_files: Sequence[str] | None = None, seed: int = 0, spectrogram=None,
                   mels: torch.Tensor | None = None, sinks: Sinks | None = None,
                   progress: bool = True, resume=None) -> ClipsRun:
    """Split ``clips`` by file, build a VAE for their mel shape, and train it with validation
    (:func:`sda_lab.training.loop.train_run`).

    ``seed`` seeds the split, the initial weights and the data order (it overrides
    ``train_config.seed``). Defaults: :data:`~sda_lab.training.recipes.OWN_AUDIO_RECIPE`'s model,
    training and spectrogram; ``model_config``'s ``n_mels``/``n_frames``
    are set from the mels. ``mels`` may pass precomputed mels of every clip (same spectrogram).
    Waveform augmentation (``train_config.augment``) uses ``clips.waveforms``. ``sinks``: where
    the run writes (:class:`~sda_lab.training.callbacks.Sinks`; its ``progress`` is set from
    ``progress``, its ``extra`` gets ``val_files``). ``resume``: the last checkpoint of this
    run to go on from (:func:`~sda_lab.training.loop.train`).

    Raises
    ------
    ValueError
        Before any mel or epoch: from :func:`~sda_lab.data.split_by_file`, or fewer than
        2 training clips.
    TrainingInterrupted
        After a Ctrl-C, with ``.run``: the :class:`ClipsRun` so far.
    """
    rec_model, rec_train = OWN_AUDIO_RECIPE.configs()
    model_config = model_config or rec_model
    train_config = replace(train_config or rec_train, seed=seed)
    spec = spectrogram or OWN_AUDIO_RECIPE.audio_spectrogram()
    groups = None if val_files else same_recordings(clips)
    train_idx, val_idx, held_out = split_by_file(clips, val_fraction, seed, val_files, groups)
    check_training_clips(len(train_idx), held_out)
    if mels is None:
        mels = clips_to_mels(spec, clips.waveforms)  # (N, 1, n_mels, T)
    model_config = replace(model_config, n_mels=spec.config.n_mels, n_frames=mels.shape[-1])
    sinks = replace(sinks or Sinks(), progress=progress)
    sinks = replace(sinks, extra={"val_files": held_out, **sinks.extra})
    try:
        model, history = train_run(
            model_config, train_config, mels[train_idx], seed=seed,
            val_mels=mels[val_idx] if val_idx else None,
            waveforms=clips.waveforms[train_idx] if train_config.augment else None,
            spectrogram=spec, sinks=sinks, resume=resume)
    except TrainingInterrupted as exc:
        exc.run = ClipsRun(exc.model, exc.history, spec, clips, mels, train_idx, val_idx,
                           held_out, model_config, train_config)
        raise
    return ClipsRun(model, history, spec, clips, mels, train_idx, val_idx, held_out,
                    model_config, train_config)


def augmentation_effect(clips, seeds: Sequence[int] = (0, 1, 2), max_steps: int = 150,
                        augment: AugmentConfig | None = None, val_fraction: float = 0.2,
                        **train_overrides):
    """Validation recon with and without augmentation, paired by seed (same split, same
    initial weights, same data order): a pandas DataFrame, one row per seed and arm, with
    ``val_recon``, ``val_baseline``, ``val_ratio`` (recon / baseline), ``train_ratio``,
    ``alarm`` (fired) and ``verdict`` (its kind). Each run trains the own-audio recipe for
    ``max_steps`` optimiser steps."""
    import pandas as pd

    spec = OWN_AUDIO_RECIPE.audio_spectrogram()
    mels = clips_to_mels(spec, clips.waveforms)  # (N, 1, n_mels, T)
    rows = []
    for seed in seeds:
        for arm, aug in (("off", None), ("on", augment or AugmentConfig())):
            _, cfg = OWN_AUDIO_RECIPE.configs(epochs=None, max_steps=max_steps, augment=aug,
                                              **train_overrides)
            run = train_on_clips(clips, train_config=cfg, val_fraction=val_fraction, seed=seed,
                                 spectrogram=spec, progress=False, mels=mels)
            h = run.history
            rows.append({"seed": seed, "augment": arm, "val_files": len(run.val_files),
                         "val_recon": h.val_recon[-1] if h.val_recon else None,
                         "val_baseline": h.val_baseline,
                         "val_ratio": h.ratios().get("val"),
                         "train_ratio": h.ratios().get("train"),
                         "active_units": h.active_units[-1], "alarm": h.alarm is not None,
                         "verdict": h.alarm_kind, "seconds": sum(h.seconds)})
    return pd.DataFrame(rows)
