"""Keep what you hear: an explorer state, an interpolation or a traversal (the decoded grid of
single dimensions moved, :func:`traversal`) written as WAV files (32-bit float, through
:func:`sda_lab.core._io.write_wav`: peaks limited only where they would clip) with the figure beside
them (PNG), each file written atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from ...core._io import atomic_write, check_writable_dir, write_wav
from ...model.vae import ConvVAE
from ...representation.inverter import Inverter
from ...representation.spectrogram import AudioSpectrogram
from ...studies.descriptors import invert
from .images import figure_png
from .latent_map import PCA2, map_groups

__all__ = ["explorer_figure", "export_explorer", "export_interpolation",
           "traversal", "export_traversal"]


def _wav(path: Path, wave: torch.Tensor, sample_rate: int) -> Path:
    """:func:`sda_lab.core._io.write_wav` as 32-bit float; returns ``path``."""
    write_wav(path, wave, sample_rate, subtype="FLOAT")
    return path


def _write_png(path: Path, fig: Figure) -> Path:
    data = figure_png(fig)
    if hasattr(fig, "number"):  # a pyplot figure: do not keep it open
        import matplotlib.pyplot as plt

        plt.close(fig)
    return atomic_write(path, lambda f: f.write(data))


@torch.no_grad()
def _invert(model: ConvVAE, spec: AudioSpectrogram, zs: torch.Tensor, seed: int,
            inverter: Inverter | None = None) -> torch.Tensor:
    """Latents ``(B, D)`` -> full-inversion waveforms ``(B, 1, samples)``, seeded: through
    ``inverter`` (the renderer's) where set, as the explorer plays."""
    device = next(model.parameters()).device
    mels = model.decode(zs.to(device)).cpu()  # (B, 1, n_mels, T)
    return invert(spec, mels, seed=seed, inverter=inverter)  # (B, 1, samples)


def explorer_figure(explorer, title: str) -> Figure:
    """The explorer's current mel, waveform and latent map as one matplotlib figure."""
    ex = explorer
    fig = Figure(figsize=(11, 3.2), dpi=72)
    gs = fig.add_gridspec(2, 2, width_ratios=(1.3, 1), height_ratios=(2, 1),
                          left=0.06, right=0.98, bottom=0.14, top=0.9, wspace=0.2, hspace=0.5)
    ax = fig.add_subplot(gs[0, 0])
    ax.imshow(ex.mel[0, 0].numpy(), origin="lower", aspect="auto", cmap="magma",
              vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(f"decoded mel: {title}", fontsize=9)
    ax.set_ylabel("mel band", fontsize=8)
    ax.tick_params(labelsize=7)
    ax = fig.add_subplot(gs[1, 0])
    w = ex.renderer.last_wave.reshape(-1).numpy()
    ax.plot(np.arange(len(w)) / ex.spec.config.sample_rate, w, lw=0.3)
    ax.set_ylim(-1, 1)
    ax.set_xlabel("seconds", fontsize=8)
    ax.tick_params(labelsize=7)
    ax = fig.add_subplot(gs[:, 1])
    if ex.map is not None:
        pca, groups, colour = ex.map.pca, ex.map.point_groups, ex.map.colour
    else:
        from .latent_map import PALETTE

        pca, groups = PCA2.fit(ex.mu), map_groups(ex.labels)
        colour = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(dict.fromkeys(groups))}
    xy = pca.project(ex.mu).numpy()  # (N, 2)
    for i, g in enumerate(dict.fromkeys(groups)):
        idx = [k for k, h in enumerate(groups) if h == g]
        ax.scatter(xy[idx, 0], xy[idx, 1], s=14, color=colour[g], label=g if i < 10 else None)
    cx, cy = pca.project(ex.z).tolist()
    ax.scatter([cx], [cy], marker="x", s=80, color="#d62728", linewidths=2, label="current")
    explained = pca.explained
    ax.set_xlabel(f"PC1 ({100 * explained[0]:.0f} % of variance)", fontsize=8)
    ax.set_ylabel(f"PC2 ({100 * explained[1]:.0f} %)", fontsize=8)
    ax.set_title("latent map: posterior means", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="best", ncols=2)
    return fig


def export_explorer(explorer, folder: str | Path, name: str = "explorer") -> dict[str, Path]:
    """Write a :class:`~sda_lab.interface.widgets.LatentExplorer`'s current state into ``folder``:
    ``NAME.wav`` (the current latent through the full inversion, the explorer's seed) and
    ``NAME.png`` (its :meth:`~sda_lab.interface.widgets.LatentExplorer.snapshot`).

    Returns ``{"wav": path, "png": path}``. Raises :class:`sda_lab.core._io.WriteError` (one line)
    when ``folder`` cannot be written, before anything is rendered.
    """
    folder = check_writable_dir(folder, "folder")
    ex = explorer
    ex.wait()
    z, sound = ex.z, ex.renderer.sound
    if sound.z is not None and torch.equal(sound.z, z) and not sound.preview:
        wave = ex.renderer.last_wave  # what the player holds now
    else:
        wave = _invert(ex.model, ex.spec, z[None], ex.renderer.seed, ex.renderer.inverter)
    wav = _wav(folder / f"{name}.wav", wave, ex.spec.config.sample_rate)
    png = _write_png(folder / f"{name}.png", ex.snapshot())
    return {"wav": wav, "png": png}


def export_interpolation(interp, folder: str | Path, steps: int = 5,
                         name: str = "interpolation") -> dict[str, list[Path] | Path]:
    """Write ``steps`` evenly spaced points ``t`` in [0, 1] of an
    :class:`~sda_lab.interface.widgets.InterpolationExplorer`'s line as ``NAME_t0.25.wav`` ... and
    their decoded mels as ``NAME.png``. Returns ``{"wav": [paths], "png": path}``."""
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (both ends of the line), got {steps}")
    folder = check_writable_dir(folder, "folder")
    ts = torch.linspace(0, 1, steps).tolist()
    zs = torch.stack([interp.latent(t) for t in ts])  # (steps, D)
    waves = _invert(interp.model, interp.spec, zs, interp.renderer.seed,
                    interp.renderer.inverter)  # (steps, 1, samples)
    sr = interp.spec.config.sample_rate
    wavs = [_wav(folder / f"{name}_t{t:.2f}.wav", w, sr) for t, w in zip(ts, waves)]
    from ..plotting import plot_mels

    with torch.no_grad():
        mels = interp.model.decode(zs.to(next(interp.model.parameters()).device)).cpu()
    a, b = interp.labels[interp.a.value], interp.labels[interp.b.value]
    fig = plot_mels(list(mels), [f"t = {t:.2f}" for t in ts], interp.spec.config)
    fig.suptitle(f"from {a} to {b}", fontsize=9)
    return {"wav": wavs, "png": _write_png(folder / f"{name}.png", fig)}


@torch.no_grad()
def traversal(model: ConvVAE, z: torch.Tensor, dims: Sequence[int], offsets: Sequence[float],
              scale: torch.Tensor) -> torch.Tensor:
    """Decode ``z`` ``(D,)`` with each of ``dims`` moved by ``offsets`` (in units of
    ``scale[d]``). Returns ``(len(dims), len(offsets), 1, n_mels, T)``."""
    model.eval()
    device = next(model.parameters()).device
    zs = z.repeat(len(dims), len(offsets), 1)  # (n_dims, n_offsets, D)
    for i, d in enumerate(dims):
        for j, o in enumerate(offsets):
            zs[i, j, d] = z[d] + o * scale[d]
    mels = model.decode(zs.flatten(0, 1).to(device)).cpu()  # (n_dims * n_offsets, 1, M, T)
    return mels.view(len(dims), len(offsets), *mels.shape[1:])


def export_traversal(model: ConvVAE, spec: AudioSpectrogram, z: torch.Tensor,
                     dims: Sequence[int], offsets: Sequence[float], scale: torch.Tensor,
                     folder: str | Path, name: str = "traversal",
                     seed: int = 0, inverter: Inverter | None = None
                     ) -> dict[str, list[Path] | Path]:
    """Write the :func:`traversal` of ``z`` ``(D,)`` as one WAV per dimension and offset
    (``NAME_z3_+2sd.wav``) and the grid of mels as ``NAME.png``; ``inverter``: the
    :class:`~sda_lab.representation.inverter.Inverter` to render through (an explorer's
    ``renderer.inverter``), else the spectrogram's own inversion
    (:func:`sda_lab.studies.descriptors.invert`, which raises its ``ValueError``).
    Returns ``{"wav": [paths], "png": path}``."""
    folder = check_writable_dir(folder, "folder")
    grid = traversal(model, z, dims, offsets, scale)  # (n_dims, n_offsets, 1, n_mels, T)
    mels = grid.flatten(0, 1)  # (n_dims * n_offsets, 1, n_mels, T)
    waves = invert(spec, mels, seed=seed, inverter=inverter)  # (n_dims * n_offsets, 1, samples)
    names = [f"z{d}_{o:+g}sd" for d in dims for o in offsets]
    wavs = [_wav(folder / f"{name}_{k}.wav", w, spec.config.sample_rate)
            for k, w in zip(names, waves)]
    from ..plotting import plot_mels

    fig = plot_mels(list(mels), names, spec.config, ncols=len(offsets))
    return {"wav": wavs, "png": _write_png(folder / f"{name}.png", fig)}
