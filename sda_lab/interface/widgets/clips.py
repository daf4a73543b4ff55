"""What an explorer explores: mels checked against the model, from a tensor, clips or a folder,
a run's own files, and the representation of a checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ...model.vae import ConvVAE
from ...representation.spectrogram import AudioSpectrogram

__all__ = ["check_explorer_mels", "clip_seconds", "mels_for", "run_clips"]


def check_explorer_mels(model: ConvVAE, mels: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``mels`` is ``(N >= 2, 1, n_mels, T)`` float32 for ``model``."""
    c = model.config
    expected = f"(N >= 2, 1, {c.n_mels}, {c.n_frames})"
    if not isinstance(mels, torch.Tensor):
        raise TypeError(f"mels must be a torch.Tensor {expected}, got {type(mels).__name__}")
    if mels.dim() != 4 or mels.shape[1] != 1:
        raise ValueError(f"mels must be {expected} for this model, got {tuple(mels.shape)}")
    if mels.shape[0] == 0:
        raise ValueError(f"mels are empty: expected {expected}, got {tuple(mels.shape)}")
    if mels.shape[0] < 2:
        raise ValueError(f"mels must be {expected}: the explorer needs at least two clips to "
                         f"rank dimensions and set ranges, got {mels.shape[0]}")
    model.encoder.check_input(mels)  # n_mels, frames, dtype, with the model's own message
    if not torch.isfinite(mels).all():
        raise ValueError("mels contain NaN or infinite values")


def clip_seconds(model: ConvVAE, spec: AudioSpectrogram) -> float:
    """Seconds of audio one of ``model``'s mels covers under ``spec``: 1 s when 1 s of audio
    gives the model's frame count (the default), else ``(n_frames - 1) * hop`` samples."""
    sr = spec.config.sample_rate
    if spec.get_mel_shape(sr)[1] == model.config.n_frames:
        return 1.0
    return (model.config.n_frames - 1) * spec.config.hop_length / sr


def mels_for(model: ConvVAE, spec: AudioSpectrogram, mels_or_folder=None,
             labels: Sequence[str] | None = None) -> tuple[torch.Tensor, list[str]]:
    """Mels ``(N, 1, n_mels, T)`` and labels for an explorer on ``model``.

    ``mels_or_folder`` is a mel tensor, a waveform tensor ``(N, 1, samples)``, an
    :class:`~sda_lab.data.AudioClips`, a folder of audio (read with
    :func:`~sda_lab.data.load_folder` into clips of the model's length; labels
    ``"sub/file.wav@2s"``) or None (the default data set, 4 clips of each kind).
    """
    from ...data.clips import AudioClips
    from ...data.config import DataConfig
    from ...data.load import load_folder
    from ...data.synth import make_default_dataset

    if mels_or_folder is None:
        clips = make_default_dataset(4, sample_rate=spec.config.sample_rate)
        n = int(round(clip_seconds(model, spec) * spec.config.sample_rate))
        waves = clips.waveforms[..., :n]  # (N, 1, <= n)
        waves = torch.nn.functional.pad(waves, (0, n - waves.shape[-1]))  # (N, 1, n)
        clips = AudioClips(waves, clips.labels, clips.sample_rate)
    elif isinstance(mels_or_folder, (str, Path)):
        clips = load_folder(mels_or_folder, DataConfig(sample_rate=spec.config.sample_rate,
                                                       clip_seconds=clip_seconds(model, spec)))
    elif isinstance(mels_or_folder, AudioClips):
        clips = mels_or_folder
    elif isinstance(mels_or_folder, torch.Tensor):
        x = mels_or_folder
        if x.dim() == 3:  # waveforms (N, 1, samples)
            x = spec.waveform_to_mel(x)  # (N, 1, n_mels, T)
        return x, list(labels) if labels is not None else [f"clip {i}" for i in range(len(x))]
    else:
        raise TypeError("mels_or_folder must be a mel or waveform tensor, AudioClips, a folder "
                        f"path or None, got {type(mels_or_folder).__name__}")
    return spec.waveform_to_mel(clips.waveforms), list(labels or clips.labels)  # (N, 1, M, T)


def run_clips(run, checkpoint, folder: Path):
    """The run's own files (``run``: a :class:`~sda_lab.training.rundir.RunDir`) in ``folder``,
    cut as the run cut them, as :class:`~sda_lab.data.AudioClips` of the checkpoint's clip
    length. Each difference between the folder and the run's record (files added, gone or
    changed: :func:`sda_lab.studies.run_files.run_files`) is one warning line.

    Raises
    ------
    FileNotFoundError
        None of the run's training files is in ``folder`` unchanged (one line).
    """
    import warnings

    from ...data.config import DataConfig
    from ...data.load import load_folder
    from ...studies.run_files import run_files

    record = run.record()
    spec = checkpoint.spectrogram()
    cut = {k: v for k, v in (record.get("data_config") or {}).items()
           if k in ("silence_db", "recursive", "short_files", "cut", "too_loud")}
    config = DataConfig(**cut, sample_rate=spec.config.sample_rate,
                        clip_seconds=clip_seconds(checkpoint.model, spec))
    only = None
    if record.get("train_files") is not None:
        files = run_files(record, folder)
        for note in files.notes:
            warnings.warn(note, stacklevel=3)
        only = files.train + files.val
    return load_folder(folder, config, only=only)
