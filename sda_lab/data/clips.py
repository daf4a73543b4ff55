"""A set of equal-length mono clips with a label and a source file per clip
(:class:`AudioClips`): what :func:`~sda_lab.data.load.load_folder` and
:func:`~sda_lab.data.synth.make_default_dataset` return.

Shapes: clips ``(N, 1, samples)`` float32 in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import torch

__all__ = ["AudioClips"]


@dataclass(repr=False)
class AudioClips:
    """A set of equal-length mono clips with a label and a source file per clip.

    Attributes
    ----------
    waveforms : Tensor
        ``(N, 1, samples)`` float32 in [-1, 1].
    labels : list[str]
        Kind of each clip (default set) or ``"file.wav@start_s"`` (user folders).
    sample_rate : int
        Hz.
    skipped : list[str]
        Files that could not be used, or clips dropped as silent, each with the reason.
    files : list[str]
        Source of each clip: the file's path relative to the folder (user folders) or one
        pseudo-file per clip (``"pluck_003"``, default set), so a split by file keeps every
        clip of one recording on one side. Left empty by a caller, it becomes one pseudo-file
        per clip (``"clip_00000"``, ...).
    report : pandas.DataFrame or None
        From :func:`~sda_lab.data.load.load_folder`: one row per file found, see
        :data:`~sda_lab.data.load.REPORT_COLUMNS`.

    Raises
    ------
    ValueError
        If ``waveforms`` is not ``(N, 1, samples)`` or ``labels``/``files`` do not have N entries.
    """

    waveforms: torch.Tensor
    labels: list[str]
    sample_rate: int
    skipped: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    report: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        if self.waveforms.ndim != 3 or self.waveforms.shape[1] != 1:
            raise ValueError("AudioClips.waveforms must be (N, 1, samples), got shape "
                             f"{tuple(self.waveforms.shape)}")
        n = self.waveforms.shape[0]
        if not self.files:
            self.files = [f"clip_{i:05d}" for i in range(n)]
        for name in ("labels", "files"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"AudioClips.{name} must have one entry per clip ({n}), "
                                 f"got {len(getattr(self, name))}")

    def __len__(self) -> int:
        return self.waveforms.shape[0]

    def __repr__(self) -> str:
        n, samples = self.waveforms.shape[0], self.waveforms.shape[-1]
        return (f"AudioClips({n} clips of {samples} samples at {self.sample_rate} Hz from "
                f"{len(set(self.files))} files, {len(self.skipped)} skipped entries)")

    def by_label(self, label: str) -> torch.Tensor:
        """All clips whose label is ``label``: ``(n, 1, samples)``."""
        idx = [i for i, lab in enumerate(self.labels) if lab == label]
        return self.waveforms[idx]  # (n, 1, samples)

    def first_of_each(self) -> tuple[torch.Tensor, list[str]]:
        """One clip per distinct label, in first-seen order: ``(K, 1, samples)`` and labels."""
        seen: dict[str, int] = {}
        for i, lab in enumerate(self.labels):
            seen.setdefault(lab, i)
        return self.waveforms[list(seen.values())], list(seen)  # (K, 1, samples)

    def select(self, indices) -> "AudioClips":
        """The clips at ``indices`` (a sequence of ints), with their labels and files.

        ``skipped``, ``report`` and ``sample_rate`` are kept, since they describe the source.
        """
        idx = [int(i) for i in indices]
        return AudioClips(self.waveforms[idx],  # (len(idx), 1, samples)
                          [self.labels[i] for i in idx], self.sample_rate, list(self.skipped),
                          [self.files[i] for i in idx], self.report)

    def summary(self) -> str:
        """One paragraph for a person: files found/used/skipped, clips, total duration."""
        n, secs = len(self), self.waveforms.shape[-1] / self.sample_rate
        clips = (f"{n} clip{'s' * (n != 1)} of {secs:g} s at {self.sample_rate / 1000:g} kHz "
                 f"({n * secs:.4g} s in total)")
        if self.report is None:
            return f"{clips} from {len(set(self.files))} sources."
        rep = self.report
        used = rep[rep["status"] == "ok"]
        skipped = rep[rep["status"] != "ok"]
        text = (f"Found {len(rep)} file{'s' * (len(rep) != 1)}: {len(used)} used, "
                f"{len(skipped)} skipped. {clips}, cut from {used['duration_s'].sum():.4g} s "
                "of audio")
        silent = int(rep["silent_clips"].sum())
        padded = int(rep["padded_clips"].sum())
        text += (f"; {padded} clip{'s' * (padded != 1)} padded with silence, {silent} dropped "
                 "as silent.")
        if len(skipped):
            reasons = skipped["reason"].str.split(" [(:]", regex=True).str[0].value_counts()
            text += " Skipped: " + ", ".join(f"{c} {r}" for r, c in reasons.items()) + "."
            text += " See .report for every file."
        return text
