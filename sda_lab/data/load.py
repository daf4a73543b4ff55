"""The user's own folder of audio (:func:`load_folder`) as
:class:`~sda_lab.data.clips.AudioClips`.

:func:`load_folder` reads whatever libsndfile reads, cuts it into clips, and reports on every
file it found (``AudioClips.report``). Which files a folder holds (links, hidden files,
documents, folders that cannot be listed) is :mod:`sda_lab.data.folders`, which also names the
bundled recordings in ``data/examples/``. Long files are read in blocks and clips collected in one
buffer (:mod:`sda_lab.data._audio_read`), so memory grows with the clips kept, not with copies of
the files (``python -m benchmarks.bench_memory``; measurements in ``benchmarks/RESULTS.md``).

Shapes: clips ``(N, 1, samples)`` float32 in [-1, 1].
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ._audio_read import (AUDIO_EXTENSIONS, ClipBuffer, open_error, rate_problem, read_mono,
                          resample)
from .clips import AudioClips
from .config import CUTS, SHORT_FILES, TOO_LOUD, DataConfig
from .folders import display_name, walk


#: Columns of :attr:`AudioClips.report`, one row per file found by :func:`load_folder` (and one
#: per folder that could not be listed, its name ending in "/"). ``peak_dbfs`` is the file's own
#: peak over all channels (before any change), ``clips`` the clips kept, ``silent_clips`` those
#: dropped as silent, ``padded_clips`` the kept clips padded with silence, ``seconds_unused``
#: the seconds of the file (after resampling) that are in no kept clip (before the first onset,
#: a dropped tail, silent clips); ``reason`` says why a skipped file was skipped (empty when
#: ``status`` is "ok") and ``note`` what was changed in a used file (peak-normalised, tail
#: dropped, found through a symlinked folder, ...).
REPORT_COLUMNS = ("file", "format", "subtype", "sample_rate", "channels", "duration_s",
                  "peak_dbfs", "clips", "status", "reason", "silent_clips", "padded_clips",
                  "seconds_unused", "note")
TAIL_KEEP = 0.5  # a last partial clip at least half a clip long is padded and kept
FULL_CLIP_TOLERANCE = 0.01  # a file at most 1% short of a clip is a whole clip, never "short"
SILENCE_FRAME_SECONDS = 0.02  # a clip is silent when its loudest 20 ms frame is below silence_db


class NoUsableAudioError(ValueError):
    """:func:`load_folder` found no usable clip; ``report`` holds the per-file report."""

    def __init__(self, message: str, report: pd.DataFrame) -> None:
        super().__init__(message)
        self.report = report


def _add_note(row: dict, text: str) -> None:
    """Append ``text`` to the report row's ``note`` ("; " between notes)."""
    row["note"] = "; ".join(filter(None, [row["note"], text]))


def _folder_row(name: str, reason: str) -> dict:
    """A report row for a folder :func:`~sda_lab.data.folders.walk` could not read (``name``
    ends in ``/``) or a symlink it could not follow."""
    row = dict.fromkeys(REPORT_COLUMNS)
    row.update(file=name, format="folder" if name.endswith("/") else "symlink", clips=0,
               silent_clips=0, padded_clips=0,
               status="skipped", reason=reason, note="")
    return row


def _loudest_frame_rms(x: torch.Tensor, frame: int) -> float:
    """RMS of the loudest non-overlapping ``frame``-sample frame of ``x`` ``(samples,)``."""
    n = x.shape[0] // frame * frame
    frames = x[:n].view(-1, frame) if n else x[None]  # (frames, frame)
    return float(frames.pow(2).mean(dim=1).sqrt().max())


def _onset_starts(mono: torch.Tensor, sample_rate: int, clip_len: int,
                  threshold: float) -> list[int]:
    """Clip starts at onsets (librosa, backtracked), skipping onsets inside the previous clip.

    A file that is already sounding before the first onset librosa reports (a hit at 0 s has
    no rising edge to detect) starts its first clip at 0, so that hit is kept."""
    import librosa  # imported here: it takes a second and only cut="onset" needs it

    onsets = [int(o) for o in librosa.onset.onset_detect(y=mono.numpy(), sr=sample_rate,
                                                         backtrack=True, units="samples")]
    frame = max(1, int(SILENCE_FRAME_SECONDS * sample_rate))
    lead = mono[:onsets[0]] if onsets else mono[:0]
    if onsets and onsets[0] > 0 and lead.shape[0] >= frame and \
            _loudest_frame_rms(lead, frame) >= threshold:
        onsets.insert(0, 0)
    starts: list[int] = []
    for o in onsets:
        if not starts or o >= starts[-1] + clip_len:
            starts.append(o)
    return starts


def _load_file(path: Path, name: str, sample_rate: int, clip_len: int, threshold: float,
               short_files: str, cut: str, too_loud: str, silence_db: float,
               buffer: ClipBuffer):
    """Read, check and cut one file, appending its clips to ``buffer``.

    Returns (report row, clip starts in s, warnings, skipped entries)."""
    row = dict.fromkeys(REPORT_COLUMNS)
    row.update(file=name, clips=0, silent_clips=0, padded_clips=0, status="skipped", reason="",
               note="", format=path.suffix.lower().lstrip(".") or "")
    starts_s: list[float] = []
    warns: list[str] = []
    skipped: list[str] = []

    def skip(reason: str, warn: bool = False):
        row["reason"] = reason
        skipped.append(f"{name}: {reason}")
        if warn:
            warns.append(f"skipping {name}: {reason}")
        return row, starts_s, warns, skipped

    try:
        if path.stat().st_size == 0:
            return skip("empty (0 bytes)", warn=path.suffix.lower() in AUDIO_EXTENSIONS)
        os.close(os.open(path, os.O_RDONLY))  # a permission problem in the OS's words
        read = read_mono(path)
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, ...
        return skip(*open_error(exc, path))
    sr = read.sample_rate
    row.update(format=read.format, subtype=read.subtype, sample_rate=sr, channels=read.channels,
               duration_s=read.mono.shape[0] / sr)  # what was read: a truncated file reads short
    if read.mono.shape[0] == 0:
        return skip("empty (no samples)")
    bad_rate = rate_problem(sr)
    if bad_rate:
        return skip(bad_rate, warn=True)
    if read.header_note:
        _add_note(row, read.header_note)
        warns.append(f"{name}: {read.header_note}")
    if read.n_bad:
        return skip(f"NaN/Inf samples ({read.n_bad} of {read.n_values})", warn=True)
    peak = read.peak
    row["peak_dbfs"] = 20 * np.log10(peak) if peak > 0 else -np.inf

    mono, read.mono = read.mono, None  # (frames,) float32, owned: changed in place, freed early
    if peak > 1.0:
        level = f"{peak:.3g} ({row['peak_dbfs']:+.1f} dBFS)"
        if too_loud == "normalize":
            mono /= peak  # now peaking at <= 1.0
            _add_note(row, f"peak-normalised from {level}")
            warns.append(f"{name} peaks at {level}, above full scale: peak-normalised to 1.0")
        else:
            np.clip(mono, -1.0, 1.0, out=mono)
            _add_note(row, f"clipped at full scale (peak was {level})")
            warns.append(f"{name} peaks at {level}, above full scale: clipped to [-1, 1]")
    if sr != sample_rate:
        mono = resample(mono, sr, sample_rate)  # (ceil(frames * sample_rate / sr),)
        over = float(np.abs(mono).max())
        if over > 1.0:  # resampling can overshoot a full-scale file by a little
            if too_loud == "normalize":
                mono /= over
            else:
                np.clip(mono, -1.0, 1.0, out=mono)
    x = torch.from_numpy(mono)  # (n,), shares mono's memory

    n = x.shape[0]
    if n < (1 - FULL_CLIP_TOLERANCE) * clip_len:  # a short file
        if short_files == "skip":
            return skip(f"shorter than a clip ({n / sample_rate:.3g} s < "
                        f"{clip_len / sample_rate:g} s; short_files='pad' keeps it)")
        starts = [0]
    elif cut == "onset":
        starts = _onset_starts(x, sample_rate, clip_len, threshold)
        if not starts:
            starts = list(range(0, n, clip_len))
            _add_note(row, "no onset found: grid cuts")
        elif starts[0] > 0:
            _add_note(row, f"first {starts[0] / sample_rate:.3g} s before the first onset unused")
    else:
        starts = list(range(0, n, clip_len))
    if n >= (1 - FULL_CLIP_TOLERANCE) * clip_len:
        tail = n - starts[-1]
        if tail < TAIL_KEEP * clip_len:  # a short last piece of a long file is dropped
            starts = starts[:-1]
            _add_note(row, f"last {tail / sample_rate:.3g} s dropped")
    used = 0
    if not starts:  # cut="onset": the only onset leaves less than half a clip after it
        row["seconds_unused"] = n / sample_rate
        return skip(f"no clip: the only onset leaves under {TAIL_KEEP:g} of a clip")
    frame = max(1, int(SILENCE_FRAME_SECONDS * sample_rate))
    for start in starts:
        piece = x[start:start + clip_len]  # (<= clip_len,)
        label_s = round(start / sample_rate, 3)
        if _loudest_frame_rms(piece, frame) < threshold:
            row["silent_clips"] += 1
            skipped.append(f"{name}@{label_s:g}s: silent (< {silence_db:g} dBFS)")
            continue
        if piece.shape[0] < clip_len:
            row["padded_clips"] += 1
        buffer.append(piece.numpy())  # zero-padded to clip_len
        used += piece.shape[0]
        starts_s.append(label_s)
    row["clips"] = len(starts_s)
    row["seconds_unused"] = (n - used) / sample_rate
    if not starts_s:
        row["reason"] = f"silent (below {silence_db:g} dBFS)"
        skipped.append(f"{name}: {row['reason']}")
        return row, starts_s, warns, skipped
    row["status"] = "ok"
    return row, starts_s, warns, skipped


def load_folder(path: str | Path, config: DataConfig | None = None, *,
                only: Collection[str] | None = None) -> AudioClips:
    """Read every audio file under ``path`` into mono clips of ``config.clip_seconds``
    (:class:`~sda_lab.data.config.DataConfig`; default ``DataConfig()``: 1 s at 48 kHz).

    Which files are audio is decided by libsndfile (``soundfile``) trying to open each one, not
    by a list of extensions: WAV (int, float, WAVEX, upper-case ``.WAV``), FLAC, Ogg Vorbis and
    Opus, AIFF, MP3 (libsndfile >= 1.1), CAF, W64, ... whatever ``soundfile.available_formats()``
    lists. Each file is mixed down to mono and resampled to ``config.sample_rate`` with
    ``torchaudio.functional.resample`` (``soxr`` where the rates' ratio does not reduce to
    small terms, :func:`sda_lab.data._audio_read.resample`; a rate under 1000 Hz is skipped),
    then cut:

    - ``cut="grid"``: non-overlapping clips from the start of the file. The last partial piece
      is padded with silence and kept when it is at least half a clip (``TAIL_KEEP``), else
      dropped (noted in the report).
    - ``cut="onset"``: a clip starts at each onset found by ``librosa.onset.onset_detect``
      (``backtrack=True``, so at the energy minimum just before the attack); an onset inside the
      previous clip starts none, so clips never overlap. A file already sounding at 0 s (a hit
      with no rising edge to detect) starts a clip at 0; audio before the first onset is
      otherwise unused (``seconds_unused``). The last clip follows the half-a-clip rule. A file
      with no onset is cut on the grid.
    - A file shorter than one clip (a drum one-shot) is padded with silence to the clip length
      (``short_files="pad"``, default) or skipped (``short_files="skip"``). A file at most 1%
      short of a clip (44,099 samples at 44.1 kHz for 1 s) counts as a whole clip.
    - A clip whose loudest 20 ms frame has an RMS below ``silence_db`` dBFS is silent and
      dropped (counted per file in the report).
    - A file peaking above full scale (a float WAV at 3.0) is peak-normalised to 1.0
      (``too_loud="normalize"``) or clipped to [-1, 1] (``too_loud="clip"``), with a warning
      naming the file and its peak, so clips stay in [-1, 1] and their mels in [0, 1].
    - A file that cannot be used is skipped with the reason: permission denied, unreadable
      (libsndfile's message, with a warning if its extension announces audio), not audio
      (quietly: images, archives), empty, NaN/Inf samples (warning), silent, shorter than a
      clip (``short_files="skip"``). A truncated file yields the samples that are there.
    - Left out silently (not in the report): hidden files (``.DS_Store``), hidden folders
      (``.git``) and documents (``README``, ``*.md``, ``*.txt``: :func:`is_ignored`).
    - Symlinked folders are followed, each real folder once (a link back up is a report row,
      "a loop"); files found through one say so in ``note``. A folder that cannot be listed is
      a report row (its name ending in ``/``, e.g. "permission denied") with a warning.
    - File names need not be UTF-8: a Latin-1 name is read, and shown with ``\\xe9`` escapes.
    - Memory: files are read in blocks and resampled in blocks; clips go into one buffer.

    Parameters
    ----------
    path : folder of audio (str or Path); subfolders too when ``config.recursive``.
    config : how to read and cut (sample rate, clip length, silence, short files, cuts, files
        above full scale); the options named above are its fields.
    only : if given, read only the files of these names (as ``AudioClips.files`` names them);
        the others are left out silently (a run reading back its own files).

    Returns
    -------
    AudioClips
        ``waveforms`` ``(N, 1, round(clip_seconds * sample_rate))`` float32 in [-1, 1];
        ``labels`` ``"file@start_s"``; ``files`` the source file of each clip (relative to
        ``path``); ``report`` one row per file found (:data:`REPORT_COLUMNS`); ``skipped``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist; ``NotADirectoryError`` if it is a file.
    TypeError
        If ``config`` is not a :class:`~sda_lab.data.config.DataConfig` (bad values raise
        ``ValueError`` when the config is built).
    NoUsableAudioError
        (a ``ValueError``) if no usable clip was found: the message lists every file found and
        why it was skipped; ``.report`` holds the report.
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"audio folder not found: {root} (expected a directory)")
    if not root.is_dir():
        raise NotADirectoryError(f"expected a folder of audio files, got a file: {root}")
    config = DataConfig() if config is None else config
    if not isinstance(config, DataConfig):
        raise TypeError(f"config must be a DataConfig, got {type(config).__name__}; e.g. "
                        "load_folder(path, DataConfig(sample_rate=22050))")
    c = config
    sample_rate, clip_len, silence_db = c.sample_rate, c.clip_samples, c.silence_db
    threshold = 10 ** (silence_db / 20)

    found, unread = walk(root, c.recursive)
    if only is not None:
        keep = set(only)
        found = [t for t in found if display_name(t[1]) in keep]
    folder_rows = [_folder_row(folder, reason) for folder, reason in unread]
    rows, labels, files, skipped = [], [], [], []
    buffer = ClipBuffer(clip_len)
    for f, rel, via in found:
        name = display_name(rel)
        row, starts, warns, skip = _load_file(f, name, sample_rate, clip_len, threshold,
                                              c.short_files, c.cut, c.too_loud, silence_db,
                                              buffer)
        if via:
            _add_note(row, via)
        for w in warns:
            warnings.warn(w, stacklevel=2)
        rows.append(row)
        skipped += skip
        labels += [f"{name}@{s:g}s" for s in starts]
        files += [name] * len(starts)
    for row in folder_rows:
        skipped.append(f"{row['file']}: {row['reason']}")
        warnings.warn(f"not reading {row['file']}: {row['reason']}", stacklevel=2)
    rows += folder_rows
    report = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    for col in ("sample_rate", "channels", "clips", "silent_clips", "padded_clips"):
        report[col] = report[col].astype("Int64")
    for col in ("duration_s", "peak_dbfs", "seconds_unused"):
        report[col] = report[col].astype(float)
    if not labels:
        what = (f"{len(rows)} file{'s' * (len(rows) != 1)}, none usable:" if rows
                else "no files.")
        lines = [f"  {r['file']}: {r['reason']}" for r in rows[:30]]
        if len(rows) > 30:
            lines.append(f"  ... and {len(rows) - 30} more (see the exception's .report)")
        raise NoUsableAudioError(
            f"no usable {c.clip_seconds:g} s clips in {root}: found {what}\n" + "\n".join(lines),
            report)
    clips = buffer.tensor()  # (N, 1, clip_len), the one copy of the clips
    return AudioClips(clips, labels, sample_rate, skipped, files, report)
