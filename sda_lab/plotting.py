"""Plots, inline audio and small tables for the notebooks.

Figures are drawn small (``FIG_DPI``) and audio is embedded as 16-bit FLAC (lossless, about half
the size of WAV, played by every current browser), so committed notebooks stay a few MB. Every function returns what it made so a caller can save or test it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import io

import librosa.display
import matplotlib.pyplot as plt
import numpy as np
import soundfile as sf
import torch
from IPython.display import Audio, Markdown

from .spectrogram import SpectrogramConfig

FIG_DPI = 72  # small PNGs keep the committed notebooks light


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def flac_bytes(waveform: torch.Tensor | np.ndarray, sample_rate: int) -> bytes:
    """Encode one mono clip as 16-bit FLAC; values are clipped to [-1, 1]."""
    x = np.clip(_np(waveform).reshape(-1), -1.0, 1.0)
    buf = io.BytesIO()
    sf.write(buf, x, sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def audio_player(waveform: torch.Tensor | np.ndarray, sample_rate: int) -> Audio:
    """An inline player for one mono clip (any shape with one non-singleton axis).

    Not normalised, so a quiet reconstruction sounds quiet.
    """
    player = Audio(data=flac_bytes(waveform, sample_rate))
    player.mimetype = "audio/flac"  # IPython assumes WAV for raw bytes
    return player


def audio_row(waveforms: Sequence[torch.Tensor], captions: Sequence[str], sample_rate: int):
    """Several players side by side with captions, as one HTML block."""
    from IPython.display import HTML

    cells = "".join(
        f"<div style='margin-right:12px'><div style='font-size:12px'>{c}</div>"
        f"{audio_player(w, sample_rate)._repr_html_()}</div>"
        for w, c in zip(waveforms, captions)
    )
    return HTML(f"<div style='display:flex;flex-wrap:wrap'>{cells}</div>")


def show_mel(mel: torch.Tensor | np.ndarray, config: SpectrogramConfig, ax: plt.Axes | None = None,
             title: str | None = None, colorbar: bool = False, vmin: float = 0.0, vmax: float = 1.0):
    """Draw one normalised log-mel ``(n_mels, T)`` (or ``(1, 1, n_mels, T)``) with librosa."""
    m = _np(mel).reshape(config.n_mels, -1)  # (n_mels, T)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 2.5), dpi=FIG_DPI)
    img = librosa.display.specshow(
        m, sr=config.sample_rate, hop_length=config.hop_length, x_axis="time", y_axis="mel",
        fmin=config.f_min, fmax=config.f_max, htk=True, ax=ax, vmin=vmin, vmax=vmax,
        cmap="magma",
    )
    if title:
        ax.set_title(title, fontsize=9)
    if colorbar:
        plt.colorbar(img, ax=ax)
    return img


def plot_round_trips(originals: torch.Tensor, reconstructions: torch.Tensor,
                     mels_in: torch.Tensor, mels_out: torch.Tensor, labels: Sequence[str],
                     config: SpectrogramConfig) -> plt.Figure:
    """One row per clip: waveforms overlaid, input log-mel, log-mel of the reconstruction."""
    n = originals.shape[0]
    fig, axes = plt.subplots(n, 3, figsize=(11, 2.0 * n), dpi=FIG_DPI, squeeze=False)
    t = np.arange(originals.shape[-1]) / config.sample_rate
    for i in range(n):
        ax = axes[i, 0]
        ax.plot(t, _np(originals[i, 0]), lw=0.5, label="original")
        ax.plot(t[: reconstructions.shape[-1]], _np(reconstructions[i, 0]), lw=0.5, alpha=0.7,
                label="round trip")
        ax.set_ylim(-1, 1)
        ax.set_ylabel(labels[i])
        if i == 0:
            ax.legend(loc="upper right", fontsize=7)
        show_mel(mels_in[i], config, ax=axes[i, 1], title="log-mel in" if i == 0 else None)
        show_mel(mels_out[i], config, ax=axes[i, 2],
                 title="log-mel of the reconstruction" if i == 0 else None)
    for ax in axes[:-1].ravel():
        ax.set_xlabel("")
    fig.tight_layout()
    return fig


def plot_value_histogram(mels: torch.Tensor, bins: int = 60) -> plt.Figure:
    """Histogram of representation values, with the decoder's reachable range [0, 1] marked."""
    values = _np(mels).ravel()
    fig, ax = plt.subplots(figsize=(6, 2.5), dpi=FIG_DPI)
    ax.hist(values, bins=bins, range=(min(0.0, values.min()), max(1.0, values.max())), log=True)
    for edge in (0.0, 1.0):
        ax.axvline(edge, color="red", ls="--", lw=1)
    ax.set_xlabel("normalised log-mel value (decoder range in red)")
    ax.set_ylabel("count (log)")
    fig.tight_layout()
    return fig


def markdown_table(rows: Sequence[Mapping[str, object]], floatfmt: str = ".3f") -> Markdown:
    """Render a list of dicts (same keys) as a Markdown table."""
    if not rows:
        return Markdown("*(empty table)*")
    keys = list(rows[0])

    def fmt(v: object) -> str:
        return format(v, floatfmt) if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    return Markdown("\n".join(lines))
