"""Input validation shared by every public entry point.

One place decides what a valid waveform, spectrogram or latent is, and every error says what
was expected and what came (librosa's ``util.valid_audio`` is the model for this).
"""

from __future__ import annotations

import torch

_FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def _check_tensor(x: object, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in _FLOAT_DTYPES:
        raise ValueError(
            f"{name} must have a floating dtype (float32 expected), got {x.dtype}; "
            "convert integer PCM with x.float() / 32768 for int16"
        )
    return x


def _check_finite(x: torch.Tensor, name: str) -> None:
    if not torch.isfinite(x).all():
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(torch.isinf(x).sum())
        raise ValueError(f"{name} contains non-finite values ({n_nan} NaN, {n_inf} Inf)")


def check_waveform(waveform: object, min_samples: int, name: str = "waveform") -> torch.Tensor:
    """Validate a batch of mono waveforms of shape (B, 1, samples).

    Raises
    ------
    TypeError
        If ``waveform`` is not a tensor.
    ValueError
        On wrong rank, more than one channel, an integer dtype, NaN/Inf, an empty batch, or
        fewer than ``min_samples`` samples (one FFT window).
    """
    x = _check_tensor(waveform, name)
    if x.dim() != 3:
        raise ValueError(
            f"{name} must have shape (batch, 1, samples), got {tuple(x.shape)} "
            f"(rank {x.dim()}); for a single clip use x.view(1, 1, -1)"
        )
    if x.shape[1] != 1:
        raise ValueError(
            f"{name} must be mono, shape (batch, 1, samples), got {x.shape[1]} channels; "
            "mix down first with x.mean(dim=1, keepdim=True)"
        )
    if x.shape[0] == 0 or x.shape[2] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)}")
    if x.shape[2] < min_samples:
        raise ValueError(
            f"{name} has {x.shape[2]} samples, fewer than one FFT window ({min_samples})"
        )
    _check_finite(x, name)
    return x


def check_mel(mel: object, n_mels: int, name: str = "mel") -> torch.Tensor:
    """Validate a batch of normalised log-mel spectrograms of shape (B, 1, n_mels, T)."""
    x = _check_tensor(mel, name)
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(
            f"{name} must have shape (batch, 1, {n_mels}, frames), got {tuple(x.shape)}"
        )
    if x.shape[2] != n_mels:
        raise ValueError(f"{name} must have {n_mels} mel bands, got {x.shape[2]}")
    if x.shape[0] == 0 or x.shape[3] == 0:
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)}")
    _check_finite(x, name)
    return x


def check_latent(z: object, latent_dim: int, name: str = "latent") -> torch.Tensor:
    """Validate a batch of latent vectors of shape (B, latent_dim)."""
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(z).__name__}")
    if z.dim() != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"{name} must have shape (batch, {latent_dim}), got {tuple(z.shape)}")
    _check_tensor(z, name)
    _check_finite(z, name)
    return z


def check_frames(frames: int, length: int | None, n_fft: int, hop_length: int) -> None:
    """Validate a mel's frame count, and a wanted output ``length``, for Griffin-Lim.

    Griffin-Lim's STFT pads ``n_fft // 2`` samples by reflection on each side, which needs more
    than ``n_fft // 2`` samples; ``T`` frames hold ``(T - 1) * hop_length``. So at least
    ``n_fft // (2 * hop_length) + 2`` frames (4 for n_fft 2048, hop 512). A centred STFT gives
    ``T`` frames for ``(T - 1) * hop_length`` to ``T * hop_length - 1`` samples.

    Raises
    ------
    ValueError
        On too few frames, a non-positive ``length``, or one that does not fit ``frames``.
    """
    min_frames = n_fft // (2 * hop_length) + 2
    if frames < min_frames:
        raise ValueError(
            f"mel has {frames} frame(s); Griffin-Lim needs at least {min_frames} "
            f"(n_fft // (2 * hop_length) + 2 for n_fft={n_fft}, hop_length={hop_length}), "
            f"i.e. {(min_frames - 1) * hop_length} samples or more"
        )
    if length is not None:
        if length < 1:
            raise ValueError(f"length must be a positive number of samples, got {length}")
        lo, hi = (frames - 1) * hop_length, frames * hop_length - 1
        if not lo <= length <= hi:
            raise ValueError(
                f"length {length} does not fit a mel of {frames} frames: a centred STFT "
                f"with hop_length {hop_length} gives {frames} frames for {lo} to {hi} samples"
            )


def check_nonempty(x: object, name: str) -> torch.Tensor:
    """Validate a tensor of any shape that holds at least one value."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.numel() == 0:
        raise ValueError(f"{name} needs at least one value, got an empty tensor of shape "
                         f"{tuple(x.shape)}")
    return x
