"""Inline audio players (16-bit FLAC: lossless, about half a WAV, played by every current
browser; encoded by :func:`sda_lab.core._io.audio_bytes`, as every WAV the package writes) and
small markdown tables, for the notebooks."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from IPython.display import Audio, Markdown

from ...core._io import audio_bytes
from ._style import _np


def flac_bytes(waveform: torch.Tensor | np.ndarray, sample_rate: int) -> bytes:
    """Encode one mono clip as 16-bit FLAC, limited as a written WAV is
    (:func:`sda_lab.core._io.limit_peaks`: only around samples that would clip, never up)."""
    return audio_bytes(_np(waveform), sample_rate, "FLAC", "PCM_16")[0]


def audio_player(waveform: torch.Tensor | np.ndarray, sample_rate: int) -> Audio:
    """An inline player for one mono clip (any shape with one non-singleton axis).

    Not normalised, so a quiet reconstruction sounds quiet.
    """
    player = Audio(data=flac_bytes(waveform, sample_rate))
    player.mimetype = "audio/flac"  # IPython assumes WAV for raw bytes
    return player


def audio_html(waveform: torch.Tensor | np.ndarray, sample_rate: int) -> str:
    """One ``<audio>`` element with the clip inline, its length shown before it is played
    (``preload="metadata"``: browsers otherwise show 0:00 / 0:00 until a click)."""
    data = base64.b64encode(flac_bytes(waveform, sample_rate)).decode("ascii")
    return (f'<audio controls preload="metadata" src="data:audio/flac;base64,{data}" '
            f'type="audio/flac">your browser cannot play FLAC</audio>')


def audio_row(waveforms: Sequence[torch.Tensor], captions: Sequence[str], sample_rate: int):
    """Several players side by side with captions, as one HTML block."""
    from IPython.display import HTML

    cells = "".join(
        f"<div style='margin-right:12px'><div style='font-size:12px'>{html.escape(str(c))}</div>"
        f"{audio_html(w, sample_rate)}</div>"
        for w, c in zip(waveforms, captions)
    )
    return HTML(f"<div style='display:flex;flex-wrap:wrap'>{cells}</div>")


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
