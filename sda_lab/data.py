"""Audio data: an embedded, synthesised default set, and the user's own folder of audio.

The default set is made by code, not downloaded: short, varied, musical 1 s clips at the
spectrogram's sample rate in five kinds (plucked strings, FM bells, drum hits, formant vowels,
noise sweeps). Each clip's parameters come from a ``numpy`` generator seeded by ``(seed, index)``,
so the set is identical on every machine and every run, and clip ``i`` does not depend on how
many clips were asked for.

The user's own audio comes in through :func:`load_folder`, which reads whatever libsndfile
reads, cuts it into clips, and reports on every file it found (``AudioClips.report``); the
repository bundles a few real recordings in ``data/examples/`` (:func:`example_folder`).

Shapes: clips ``(N, 1, samples)`` float32 in [-1, 1].
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.signal
import soundfile as sf
import torch
import torchaudio.functional as AF

KINDS = ("pluck", "bell", "drum", "vowel", "sweep")
PEAK = 0.8  # clips are normalised to this peak: headroom below full scale


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
        From :func:`load_folder`: one row per file found, see :data:`REPORT_COLUMNS`.

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


# -- synthesis -------------------------------------------------------------------------------


def _envelope(n: int, sr: int, attack: float, decay: float) -> np.ndarray:
    t = np.arange(n) / sr
    att = np.clip(t / max(attack, 1e-4), 0, 1)
    return att * np.exp(-t / decay)


def _pluck(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Karplus-Strong string: a noise burst in a damped, low-passed delay loop."""
    f0 = 440.0 * 2 ** (rng.integers(-24, 13) / 12)  # A2 .. A5 on the semitone grid
    delay = max(2, int(round(sr / f0)))
    damping = rng.uniform(0.990, 0.998)
    burst = np.zeros(n)
    burst[:delay] = rng.uniform(-1, 1, delay)
    # y[n] = x[n] + damping/2 * (y[n-L] + y[n-L-1]), one IIR filter instead of a Python loop
    a = np.zeros(delay + 2)
    a[0], a[delay], a[delay + 1] = 1.0, -damping / 2, -damping / 2
    return scipy.signal.lfilter([1.0], a, burst)


def _bell(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Chowning FM bell: inharmonic ratio, modulation index decaying with the amplitude."""
    t = np.arange(n) / sr
    fc = rng.uniform(200, 1200)
    ratio = rng.choice([1.4, 2.76, 3.5, 1.21])
    index0 = rng.uniform(2, 8)
    env = _envelope(n, sr, 0.002, rng.uniform(0.2, 0.6))
    return env * np.sin(2 * np.pi * fc * t + index0 * env * np.sin(2 * np.pi * fc * ratio * t))


def _drum(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Kick/tom: a sine sweeping down in pitch plus a short noise snap."""
    t = np.arange(n) / sr
    f_hi, f_lo = rng.uniform(150, 400), rng.uniform(40, 120)
    sweep = f_lo + (f_hi - f_lo) * np.exp(-t / rng.uniform(0.02, 0.08))
    phase = 2 * np.pi * np.cumsum(sweep) / sr
    body = np.sin(phase) * np.exp(-t / rng.uniform(0.08, 0.3))
    snap = rng.normal(0, 1, n) * np.exp(-t / rng.uniform(0.005, 0.03)) * rng.uniform(0.2, 0.8)
    return body + snap


_VOWEL_FORMANTS = {  # (F1, F2, F3) in Hz, adult male averages
    "a": (730, 1090, 2440),
    "e": (530, 1840, 2480),
    "i": (270, 2290, 3010),
    "o": (570, 840, 2410),
    "u": (300, 870, 2240),
}


def _vowel(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Source-filter vowel: a vibrato sawtooth through three formant resonators."""
    t = np.arange(n) / sr
    f0 = rng.uniform(90, 260) * (1 + 0.01 * np.sin(2 * np.pi * rng.uniform(4, 6) * t))
    phase = np.cumsum(f0) / sr
    source = 2 * (phase % 1.0) - 1  # sawtooth, rich in harmonics
    out = np.zeros(n)
    formants = _VOWEL_FORMANTS[rng.choice(list(_VOWEL_FORMANTS))]
    for i, f in enumerate(formants):
        bw = 60 + 40 * i
        r = np.exp(-np.pi * bw / sr)
        a = [1, -2 * r * np.cos(2 * np.pi * f / sr), r * r]
        out += scipy.signal.lfilter([1 - r], a, source) / (i + 1)
    return out * _envelope(n, sr, 0.05, 2.0)


def _sweep(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Band of noise whose centre glides between two frequencies (STFT-domain mask)."""
    n_fft, hop = 1024, 256
    frames = n // hop + 1
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    f_start, f_end = np.exp(rng.uniform(np.log(200), np.log(12000), 2))
    centre = np.geomspace(f_start, f_end, frames)
    width = rng.uniform(0.1, 0.4)  # in octaves
    octaves = np.log2(np.maximum(freqs[:, None], 1.0) / centre[None, :])
    mask = np.exp(-0.5 * (octaves / width) ** 2)  # (bins, frames)
    spec = mask * np.exp(2j * np.pi * rng.uniform(0, 1, mask.shape))
    _, x = scipy.signal.istft(spec, fs=sr, nperseg=n_fft, noverlap=n_fft - hop)
    x = np.resize(x, n) if len(x) < n else x[:n]
    return x * _envelope(n, sr, 0.1, 1.5)


_SYNTHS = {"pluck": _pluck, "bell": _bell, "drum": _drum, "vowel": _vowel, "sweep": _sweep}


def synthesize_clip(kind: str, index: int, seed: int = 0, sample_rate: int = 48_000,
                    seconds: float = 1.0) -> np.ndarray:
    """One deterministic clip ``(samples,)`` float32 of ``kind``, peak-normalised to 0.8."""
    if kind not in _SYNTHS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    n = int(round(seconds * sample_rate))
    rng = np.random.default_rng([seed, KINDS.index(kind), index])
    x = _SYNTHS[kind](rng, n, sample_rate)
    # Short fade-out so clips end in silence rather than a click.
    fade = min(n, int(0.01 * sample_rate))
    x[-fade:] *= np.linspace(1, 0, fade)
    return (PEAK * x / (np.abs(x).max() + 1e-12)).astype(np.float32)


def make_default_dataset(clips_per_kind: int = 8, seed: int = 0, sample_rate: int = 48_000,
                         kinds: tuple[str, ...] = KINDS) -> AudioClips:
    """The embedded default data set: ``clips_per_kind`` clips of each kind, interleaved.

    ``make_default_dataset(60)`` gives 300 clips in a few seconds. Labels are the kind names;
    ``files`` names one pseudo-file per clip, ``f"{kind}_{i:03d}"``.
    """
    if clips_per_kind < 1:
        raise ValueError(f"clips_per_kind must be at least 1, got {clips_per_kind}")
    waves, labels, files = [], [], []
    for i in range(clips_per_kind):
        for kind in kinds:
            waves.append(synthesize_clip(kind, i, seed=seed, sample_rate=sample_rate))
            labels.append(kind)
            files.append(f"{kind}_{i:03d}")  # one pseudo-file per clip
    clips = torch.from_numpy(np.stack(waves)).unsqueeze(1)  # (N, 1, samples)
    return AudioClips(clips, labels, sample_rate, files=files)


# -- user audio ------------------------------------------------------------------------------

#: Columns of :attr:`AudioClips.report`, one row per file found by :func:`load_folder`.
#: ``peak_dbfs`` is the file's own peak over all channels (before any change), ``clips`` the
#: clips kept, ``silent_clips`` those dropped as silent, ``padded_clips`` the kept clips padded
#: with silence; ``reason`` says why a skipped file was skipped (empty when ``status`` is "ok")
#: and ``note`` what was changed in a used file (peak-normalised, tail dropped, ...).
REPORT_COLUMNS = ("file", "format", "subtype", "sample_rate", "channels", "duration_s",
                  "peak_dbfs", "clips", "status", "reason", "silent_clips", "padded_clips", "note")
SHORT_FILES = ("pad", "skip")
CUTS = ("grid", "onset")
TOO_LOUD = ("normalize", "clip")
TAIL_KEEP = 0.5  # a last partial clip at least half a clip long is padded and kept
FULL_CLIP_TOLERANCE = 0.01  # a file at most 1% short of a clip is a whole clip, never "short"
SILENCE_FRAME_SECONDS = 0.02  # a clip is silent when its loudest 20 ms frame is below silence_db
# Extensions that announce audio: a file with one of these that libsndfile cannot read gets a
# warning; any other unreadable file (notes, images) is reported as "not audio" quietly.
# Whether a file is read is decided by libsndfile itself, never by this list.
AUDIO_EXTENSIONS = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".mp2", ".aif",
                    ".aiff", ".aifc", ".caf", ".au", ".snd", ".w64", ".rf64", ".m4a", ".aac",
                    ".wma", ".wv", ".ape", ".alac", ".mp4", ".webm", ".mka", ".voc", ".sd2")
_DATA_DIR = Path(__file__).resolve().parent.parent / "data"


class NoUsableAudioError(ValueError):
    """:func:`load_folder` found no usable clip; ``report`` holds the per-file report."""

    def __init__(self, message: str, report: pd.DataFrame) -> None:
        super().__init__(message)
        self.report = report


def _choice(name: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")


def _list_files(root: Path, recursive: bool) -> list[Path]:
    """Every regular file under ``root``, sorted; hidden folders (``.git``, ...) are not entered."""
    if not recursive:
        return sorted(p for p in root.iterdir() if p.is_file())
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(folder, n) for n in names if Path(folder, n).is_file()]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _libsndfile_message(exc: Exception, path: Path) -> str:
    """libsndfile's own words, without the ``Error opening '<path>': `` prefix."""
    msg = str(exc)
    prefix = f"Error opening {str(path)!r}: "
    return msg[len(prefix):] if msg.startswith(prefix) else msg


def _loudest_frame_rms(x: torch.Tensor, frame: int) -> float:
    """RMS of the loudest non-overlapping ``frame``-sample frame of ``x`` ``(samples,)``."""
    n = x.shape[0] // frame * frame
    frames = x[:n].view(-1, frame) if n else x[None]  # (frames, frame)
    return float(frames.pow(2).mean(dim=1).sqrt().max())


def _onset_starts(mono: torch.Tensor, sample_rate: int, clip_len: int) -> list[int]:
    """Clip starts at onsets (librosa, backtracked), skipping onsets inside the previous clip."""
    import librosa  # imported here: it takes a second and only cut="onset" needs it

    onsets = librosa.onset.onset_detect(y=mono.numpy(), sr=sample_rate, backtrack=True,
                                        units="samples")
    starts: list[int] = []
    for o in onsets:
        if not starts or o >= starts[-1] + clip_len:
            starts.append(int(o))
    return starts


def _load_file(path: Path, name: str, sample_rate: int, clip_len: int, threshold: float,
               short_files: str, cut: str, too_loud: str, silence_db: float):
    """Read, check and cut one file. Returns (report row, clips, starts in s, warnings, skipped)."""
    row = dict.fromkeys(REPORT_COLUMNS)
    row.update(file=name, clips=0, silent_clips=0, padded_clips=0, status="skipped", reason="",
               note="", format=path.suffix.lower().lstrip(".") or "")
    clips: list[torch.Tensor] = []
    starts_s: list[float] = []
    warns: list[str] = []
    skipped: list[str] = []

    def skip(reason: str, warn: bool = False):
        row["reason"] = reason
        skipped.append(f"{name}: {reason}")
        if warn:
            warns.append(f"skipping {name}: {reason}")
        return row, clips, starts_s, warns, skipped

    if any(part.startswith(".") for part in Path(name).parts):
        return skip("hidden file")
    if path.stat().st_size == 0:
        return skip("empty (0 bytes)", warn=path.suffix.lower() in AUDIO_EXTENSIONS)
    try:
        with sf.SoundFile(str(path)) as f:
            row.update(format=f.format, subtype=f.subtype, sample_rate=f.samplerate,
                       channels=f.channels, duration_s=f.frames / f.samplerate)
            data = f.read(dtype="float32", always_2d=True)  # (frames, channels)
            sr = f.samplerate
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, ...
        msg = _libsndfile_message(exc, path)
        if path.suffix.lower() in AUDIO_EXTENSIONS:
            return skip(f"unreadable ({msg})", warn=True)
        return skip(f"not audio ({msg})")
    row["duration_s"] = data.shape[0] / sr  # what was read (a truncated file reads short)
    if data.shape[0] == 0:
        return skip("empty (no samples)")
    bad = int((~np.isfinite(data)).sum())
    if bad:
        return skip(f"NaN/Inf samples ({bad} of {data.size})", warn=True)
    peak = float(np.abs(data).max())
    row["peak_dbfs"] = 20 * np.log10(peak) if peak > 0 else -np.inf

    mono = torch.from_numpy(data.mean(axis=1))  # (frames,)
    if peak > 1.0:
        level = f"{peak:.3g} ({row['peak_dbfs']:+.1f} dBFS)"
        if too_loud == "normalize":
            mono = mono / peak  # (frames,) now peaking at <= 1.0
            row["note"] = f"peak-normalised from {level}"
            warns.append(f"{name} peaks at {level}, above full scale: peak-normalised to 1.0")
        else:
            mono = mono.clamp(-1.0, 1.0)  # (frames,)
            row["note"] = f"clipped at full scale (peak was {level})"
            warns.append(f"{name} peaks at {level}, above full scale: clipped to [-1, 1]")
    if sr != sample_rate:
        mono = AF.resample(mono, sr, sample_rate)  # (frames * sample_rate / sr,)
        over = float(mono.abs().max())
        if over > 1.0:  # resampling can overshoot a full-scale file by a little
            mono = mono / over if too_loud == "normalize" else mono.clamp(-1.0, 1.0)

    n = mono.shape[0]
    if n < (1 - FULL_CLIP_TOLERANCE) * clip_len:  # a short file
        if short_files == "skip":
            return skip(f"shorter than a clip ({n / sample_rate:.3g} s < "
                        f"{clip_len / sample_rate:g} s; short_files='pad' keeps it)")
        starts = [0]
    elif cut == "onset":
        starts = _onset_starts(mono, sample_rate, clip_len)
        if not starts:
            starts = list(range(0, n, clip_len))
            row["note"] = "; ".join(filter(None, [row["note"], "no onset found: grid cuts"]))
    else:
        starts = list(range(0, n, clip_len))
    if n >= (1 - FULL_CLIP_TOLERANCE) * clip_len:
        tail = n - starts[-1]
        if tail < TAIL_KEEP * clip_len:  # a short last piece of a long file is dropped
            starts = starts[:-1]
            row["note"] = "; ".join(filter(None, [row["note"],
                                                  f"last {tail / sample_rate:.3g} s dropped"]))
    if not starts:  # cut="onset": the only onset leaves less than half a clip after it
        return skip(f"no clip: the only onset leaves under {TAIL_KEEP:g} of a clip")
    frame = max(1, int(SILENCE_FRAME_SECONDS * sample_rate))
    for start in starts:
        piece = mono[start:start + clip_len]  # (<= clip_len,)
        label_s = round(start / sample_rate, 3)
        if _loudest_frame_rms(piece, frame) < threshold:
            row["silent_clips"] += 1
            skipped.append(f"{name}@{label_s:g}s: silent (< {silence_db:g} dBFS)")
            continue
        if piece.shape[0] < clip_len:
            row["padded_clips"] += 1
            piece = torch.nn.functional.pad(piece, (0, clip_len - piece.shape[0]))  # (clip_len,)
        clips.append(piece)
        starts_s.append(label_s)
    row["clips"] = len(clips)
    if not clips:
        row["reason"] = f"silent (below {silence_db:g} dBFS)"
        skipped.append(f"{name}: {row['reason']}")
        return row, clips, starts_s, warns, skipped
    row["status"] = "ok"
    return row, clips, starts_s, warns, skipped


def load_folder(path: str | Path, sample_rate: int = 48_000, clip_seconds: float = 1.0,
                silence_db: float = -50.0, recursive: bool = True, short_files: str = "pad",
                cut: str = "grid", too_loud: str = "normalize") -> AudioClips:
    """Read every audio file under ``path`` into mono clips of ``clip_seconds``.

    Which files are audio is decided by libsndfile (``soundfile``) trying to open each one, not
    by a list of extensions: WAV (int, float, WAVEX, upper-case ``.WAV``), FLAC, Ogg Vorbis and
    Opus, AIFF, MP3 (libsndfile >= 1.1), CAF, W64, ... whatever ``soundfile.available_formats()``
    lists. Each file is mixed down to mono and resampled to ``sample_rate`` with
    ``torchaudio.functional.resample``, then cut:

    - ``cut="grid"``: non-overlapping clips from the start of the file. The last partial piece
      is padded with silence and kept when it is at least half a clip (``TAIL_KEEP``), else
      dropped (noted in the report).
    - ``cut="onset"``: a clip starts at each onset found by ``librosa.onset.onset_detect``
      (``backtrack=True``, so at the energy minimum just before the attack); an onset inside the
      previous clip starts none, so clips never overlap. Audio before the first onset is unused;
      the last clip follows the half-a-clip rule. A file with no onset is cut on the grid.
    - A file shorter than one clip (a drum one-shot) is padded with silence to the clip length
      (``short_files="pad"``, default) or skipped (``short_files="skip"``). A file at most 1%
      short of a clip (44,099 samples at 44.1 kHz for 1 s) counts as a whole clip.
    - A clip whose loudest 20 ms frame has an RMS below ``silence_db`` dBFS is silent and
      dropped (counted per file in the report).
    - A file peaking above full scale (a float WAV at 3.0) is peak-normalised to 1.0
      (``too_loud="normalize"``) or clipped to [-1, 1] (``too_loud="clip"``), with a warning
      naming the file and its peak, so clips stay in [-1, 1] and their mels in [0, 1].
    - A file that cannot be used is skipped with the reason: unreadable (libsndfile's message,
      with a warning if its extension announces audio), not audio (quietly: notes, images),
      empty, NaN/Inf samples (warning), silent, shorter than a clip (``short_files="skip"``),
      hidden (``.DS_Store``; hidden folders are not entered). A truncated file yields the
      samples that are there.

    Parameters
    ----------
    path : folder of audio (str or Path); subfolders too when ``recursive``.
    sample_rate : Hz of the clips.
    clip_seconds : length of every clip, seconds.
    silence_db : dBFS below which a clip counts as silent.
    short_files : "pad" or "skip".
    cut : "grid" or "onset".
    too_loud : "normalize" or "clip".

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
    ValueError
        For an unknown option or a non-positive ``sample_rate``/``clip_seconds``.
    NoUsableAudioError
        (a ``ValueError``) if no usable clip was found: the message lists every file found and
        why it was skipped; ``.report`` holds the report.
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"audio folder not found: {root} (expected a directory)")
    if not root.is_dir():
        raise NotADirectoryError(f"expected a folder of audio files, got a file: {root}")
    _choice("short_files", short_files, SHORT_FILES)
    _choice("cut", cut, CUTS)
    _choice("too_loud", too_loud, TOO_LOUD)
    if not (isinstance(sample_rate, (int, np.integer)) and sample_rate > 0):
        raise ValueError(f"sample_rate must be a positive int (Hz), got {sample_rate!r}")
    clip_len = int(round(clip_seconds * sample_rate))
    if clip_len < 1:
        raise ValueError(f"clip_seconds must be positive, got {clip_seconds!r}")
    threshold = 10 ** (silence_db / 20)

    rows, waves, labels, files, skipped = [], [], [], [], []
    for f in _list_files(root, recursive):
        name = f.relative_to(root).as_posix()
        row, clips, starts, warns, skip = _load_file(f, name, sample_rate, clip_len, threshold,
                                                     short_files, cut, too_loud, silence_db)
        for w in warns:
            warnings.warn(w, stacklevel=2)
        rows.append(row)
        skipped += skip
        waves += clips
        labels += [f"{name}@{s:g}s" for s in starts]
        files += [name] * len(clips)
    report = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    for col in ("sample_rate", "channels", "clips", "silent_clips", "padded_clips"):
        report[col] = report[col].astype("Int64")
    for col in ("duration_s", "peak_dbfs"):
        report[col] = report[col].astype(float)
    if not waves:
        what = (f"{len(rows)} file{'s' * (len(rows) != 1)}, none usable:" if rows
                else "no files.")
        lines = [f"  {r['file']}: {r['reason']}" for r in rows[:30]]
        if len(rows) > 30:
            lines.append(f"  ... and {len(rows) - 30} more (see the exception's .report)")
        raise NoUsableAudioError(
            f"no usable {clip_seconds:g} s clips in {root}: found {what}\n" + "\n".join(lines),
            report)
    clips = torch.stack(waves).unsqueeze(1)  # (N, 1, clip_len)
    return AudioClips(clips, labels, sample_rate, skipped, files, report)


def example_folder() -> Path:
    """The bundled example sounds, ``data/examples/`` in the repository (see its README).

    Raises
    ------
    FileNotFoundError
        If the package runs outside a repository checkout (the examples are not installed).
    """
    folder = _DATA_DIR / "examples"
    if not folder.is_dir():
        raise FileNotFoundError(f"bundled examples not found at {folder}: they ship with the "
                                "repository checkout (install it with pip install -e .)")
    return folder


def _is_audio(path: Path) -> bool:
    try:
        return sf.info(str(path)).frames > 0
    except Exception:
        return False


def user_or_example_folder() -> Path:
    """``data/user/`` if it holds any audio file libsndfile reads, else :func:`example_folder`."""
    user = _DATA_DIR / "user"
    if user.is_dir() and any(not f.name.startswith(".") and _is_audio(f)
                             for f in _list_files(user, recursive=True)):
        return user
    return example_folder()
