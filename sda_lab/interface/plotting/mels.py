"""Figures of spectrograms: one mel, a grid of mels, round trips, value histograms, feature maps,
and a folder's durations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import librosa.display
import matplotlib.pyplot as plt
import numpy as np
import torch

from ...representation.spectrogram import SpectrogramConfig
from ._style import FIG_DPI, _np


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
            ax.legend(loc="upper right", fontsize=8)
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


def plot_value_histograms(mels: Mapping[str, torch.Tensor], bins: int = 50) -> plt.Figure:
    """One histogram panel per named batch of normalised mels (e.g. scale x data set), all on
    the decoder's range [0, 1], each titled with its standard deviation and share under 0.05."""
    n = len(mels)
    ncols = min(n, 2)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 2.2 * nrows), dpi=FIG_DPI,
                             squeeze=False, sharex=True)
    for ax, (name, m) in zip(axes.ravel(), mels.items()):
        values = _np(m).ravel()
        ax.hist(values, bins=bins, range=(0.0, 1.0), log=True)
        ax.set_title(f"{name}: std {values.std():.3f}, {np.mean(values < 0.05):.0%} under 0.05",
                     fontsize=9)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("normalised mel value")
    for ax in axes[:, 0]:
        ax.set_ylabel("count (log)")
    fig.tight_layout()
    return fig


def plot_mels(mels: Sequence[torch.Tensor], titles: Sequence[str], config: SpectrogramConfig,
              ncols: int | None = None, vmin: float = 0.0, vmax: float = 1.0) -> plt.Figure:
    """A row (or grid) of normalised log-mel images with titles, colours from ``vmin`` to
    ``vmax`` (pass a lower ``vmax`` to see quiet recordings)."""
    n = len(mels)
    ncols = ncols or n
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.3 * nrows), dpi=FIG_DPI,
                             squeeze=False)
    for ax, m, t in zip(axes.ravel(), mels, titles):
        show_mel(m, config, ax=ax, title=t, vmin=vmin, vmax=vmax)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_feature_maps(maps: Sequence[torch.Tensor], per_layer: int = 4) -> plt.Figure:
    """The first ``per_layer`` channels of each encoder block's output, one row per block."""
    fig, axes = plt.subplots(len(maps), per_layer, figsize=(2.2 * per_layer, 1.7 * len(maps)),
                             dpi=FIG_DPI, squeeze=False)
    for r, fmap in enumerate(maps):
        for c in range(per_layer):
            ax = axes[r, c]
            ax.imshow(_np(fmap[0, c]), origin="lower", aspect="auto", cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"block {r + 1}\n{tuple(fmap.shape[1:])}", fontsize=8)
    fig.tight_layout()
    return fig


def plot_durations(report, clip_seconds: float = 1.0) -> plt.Figure:
    """Duration of every file in a :func:`sda_lab.data.load_folder` report (horizontal bars,
    grey for skipped files), with the clip length marked; seconds on a log axis."""
    rows = report.sort_values("duration_s", na_position="first")
    fig, ax = plt.subplots(figsize=(6.5, 0.25 * len(rows) + 0.9), dpi=FIG_DPI)
    used = (rows["status"] == "ok").to_numpy()
    durations = rows["duration_s"].fillna(0).to_numpy(dtype=float)
    ax.barh(rows["file"], np.maximum(durations, 1e-3), color=np.where(used, "C0", "0.7"))
    ax.axvline(clip_seconds, color="red", ls="--", lw=1, label=f"clip length {clip_seconds:g} s")
    ax.set_xscale("log")
    ax.set_xlabel("duration (s); grey: skipped")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
