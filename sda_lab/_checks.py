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
