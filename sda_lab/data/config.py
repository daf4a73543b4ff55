"""How a folder becomes clips: :class:`DataConfig`, read by :func:`sda_lab.data.load_folder` and
recorded with a run (``metrics.json``'s ``data_config``) so the run's clips can be cut again."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["DataConfig", "SHORT_FILES", "CUTS", "TOO_LOUD"]

SHORT_FILES = ("pad", "skip")
CUTS = ("grid", "onset")
TOO_LOUD = ("normalize", "clip")


def _choice(name: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")


@dataclass(frozen=True)
class DataConfig:
    """How :func:`~sda_lab.data.load_folder` reads and cuts a folder.

    ``sample_rate``: Hz of the clips (files are resampled to it). ``clip_seconds``: length of
    every clip. ``silence_db``: dBFS below which a clip (its loudest 20 ms frame, RMS) is silent
    and dropped. ``recursive``: subfolders too. ``short_files``: a file shorter than a clip is
    padded with silence (``"pad"``) or skipped (``"skip"``). ``cut``: clips on a grid from the
    file's start (``"grid"``) or at onsets (``"onset"``). ``too_loud``: a file peaking above full
    scale is peak-normalised (``"normalize"``) or clipped (``"clip"``).

    Raises
    ------
    ValueError
        On an unknown option, a ``sample_rate`` that is not a positive int, or a
        ``clip_seconds`` that gives no sample; one line naming the field.
    """

    sample_rate: int = 48_000
    clip_seconds: float = 1.0
    silence_db: float = -50.0
    recursive: bool = True
    short_files: str = "pad"
    cut: str = "grid"
    too_loud: str = "normalize"

    def __post_init__(self) -> None:
        _choice("short_files", self.short_files, SHORT_FILES)
        _choice("cut", self.cut, CUTS)
        _choice("too_loud", self.too_loud, TOO_LOUD)
        if not (isinstance(self.sample_rate, (int, np.integer))
                and not isinstance(self.sample_rate, bool) and self.sample_rate > 0):
            raise ValueError(f"sample_rate must be a positive int (Hz), got {self.sample_rate!r}")
        if not (isinstance(self.clip_seconds, (int, float)) and math.isfinite(self.clip_seconds)
                and self.clip_samples >= 1):
            raise ValueError(f"clip_seconds must be positive, got {self.clip_seconds!r}")
        if not (isinstance(self.silence_db, (int, float)) and not math.isnan(self.silence_db)):
            raise ValueError(f"silence_db must be a number (dBFS), got {self.silence_db!r}")

    @property
    def clip_samples(self) -> int:
        """Samples in one clip: ``round(clip_seconds * sample_rate)``."""
        return int(round(self.clip_seconds * self.sample_rate))
