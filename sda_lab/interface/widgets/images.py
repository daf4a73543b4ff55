"""PNG pictures for the explorers: a mel with axes (matplotlib), and the fast axis-free mel and
waveform images the live lanes redraw (PIL, a few ms each)."""

from __future__ import annotations

import io

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from PIL import Image

__all__ = ["figure_png", "mel_png", "mel_image_png", "waveform_image_png"]


def figure_png(fig: Figure, dpi: int = 72) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def mel_png(mel: torch.Tensor, width: int = 4, height: int = 2.4) -> bytes:
    """A normalised mel ``(..., n_mels, T)`` as a PNG with axes (magma, low frequencies at the
    bottom), ``width`` x ``height`` inches at 72 dpi. The live explorer uses
    :func:`mel_image_png`, which is much faster."""
    m = mel.detach().float().cpu().reshape(mel.shape[-2], mel.shape[-1]).numpy()
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0.1, 0.2, 0.87, 0.76))
    ax.imshow(m, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xlabel("frame", fontsize=8)
    ax.set_ylabel("mel band", fontsize=8)
    ax.tick_params(labelsize=7)
    return figure_png(fig)


def _rgb_png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def mel_image_png(mel: torch.Tensor, width: int = 400, height: int = 200) -> bytes:
    """A normalised mel ``(..., n_mels, T)`` as a ``width`` x ``height`` pixel PNG without axes
    (magma over [0, 1], low frequencies at the bottom), for live redraws."""
    m = mel.detach().float().cpu().reshape(mel.shape[-2], mel.shape[-1]).clamp(0, 1).numpy()
    rgb = colormaps["magma"](m[::-1], bytes=True)[..., :3]  # (n_mels, T, 3), high bands on top
    img = Image.fromarray(np.ascontiguousarray(rgb)).resize((width, height), Image.NEAREST)
    return _rgb_png(np.asarray(img))


def waveform_image_png(wave: torch.Tensor, width: int = 400, height: int = 90) -> bytes:
    """A waveform ``(..., samples)`` in [-1, 1] as a min/max envelope, ``width`` x ``height``
    pixels, no axes (one column per ``samples / width`` samples)."""
    x = wave.detach().float().cpu().reshape(-1).clamp(-1, 1).numpy()
    n = (len(x) // width) * width
    cols = x[:n].reshape(width, -1) if n else np.zeros((width, 1), np.float32)  # (width, k)
    top = ((1 - cols.max(1)) / 2 * (height - 1)).round()  # (width,) pixel row of the maximum
    bottom = ((1 - cols.min(1)) / 2 * (height - 1)).round()  # (width,)
    rows = np.arange(height)[:, None]  # (height, 1)
    ink = (rows >= top[None, :]) & (rows <= bottom[None, :])  # (height, width)
    rgb = np.full((height, width, 3), 255, np.uint8)
    rgb[height // 2] = (200, 200, 200)
    rgb[ink] = (31, 119, 180)
    return _rgb_png(rgb)
