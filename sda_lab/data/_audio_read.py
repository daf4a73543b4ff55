"""Reading audio for :func:`sda_lab.data.load_folder` in memory that grows with what is kept.

- :func:`read_mono` reads a file in blocks of :data:`BLOCK_FRAMES` frames with ``soundfile``,
  mixing each block to mono into one preallocated float32 array (never the whole multichannel
  file at once), counting NaN/Inf and the peak over all channels on the way.
- :func:`resample` runs ``torchaudio.functional.resample`` block by block with enough context
  on each side that the result equals resampling the whole signal (to float rounding). Its
  polyphase filter has as many phases as the reduced ratio's terms (44.1 -> 48 kHz is 147/160);
  for a rate whose ratio does not reduce (44101 Hz, or 22254 Hz of old Macs: 3709/8000) that
  filter takes gigabytes, so such ratios go through ``soxr`` (libsoxr's "HQ" polyphase
  resampler, streaming, any ratio) instead. :data:`MIN_SAMPLE_RATE` is the lowest rate read
  as audio (:func:`rate_problem`).
- :func:`open_error` says in a few words why a file could not be opened.
- A WAV whose header says its data chunk is empty while audio bytes follow it (a recorder
  stopped before it went back to write the sizes) is read through a view of the file with the
  sizes the bytes give (:class:`_PatchedFile`, nothing copied); :attr:`MonoRead.header_note`
  says so.
- :class:`ClipBuffer` collects equal-length clips in one growing array (``ndarray.resize``:
  on Linux a large buffer grows by remapping pages, not copying) and hands it to torch without a
  stacked second copy.

File names are opened as bytes (``os.fsencode``), so a name that is not UTF-8 (Latin-1 bytes
from an old sample CD) opens like any other.
"""

from __future__ import annotations

import errno
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

# Extensions that announce audio: a file with one of these that libsndfile cannot read gets a
# warning; any other unreadable file (images, archives) is reported as "not audio" quietly.
# Whether a file is read is decided by libsndfile itself, never by this list.
AUDIO_EXTENSIONS = (".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".mp2", ".aif",
                    ".aiff", ".aifc", ".caf", ".au", ".snd", ".w64", ".rf64", ".m4a", ".aac",
                    ".wma", ".wv", ".ape", ".alac", ".mp4", ".webm", ".mka", ".voc", ".sd2")
BLOCK_FRAMES = 1 << 16  # frames per read block (about 1.4 s at 48 kHz)
RESAMPLE_BLOCK_S = 10.0  # seconds of source audio per resampling block
MAX_RATIO_TERM = 1000  # a reduced ratio o/m with a term above this goes through soxr
MIN_SAMPLE_RATE = 1000  # Hz: below it a file is not audio this package can use


def rate_problem(sample_rate: int) -> str | None:
    """Why a file's ``sample_rate`` cannot be used, in a few words; None when it can."""
    if sample_rate < MIN_SAMPLE_RATE:
        return f"sample rate {sample_rate} Hz: expected at least {MIN_SAMPLE_RATE} Hz"
    return None


@dataclass
class MonoRead:
    """What :func:`read_mono` found: ``mono`` ``(frames,)`` float32 and the file's facts."""

    mono: np.ndarray
    sample_rate: int
    format: str
    subtype: str
    channels: int
    header_frames: int
    peak: float  # over all channels, before mixing
    n_bad: int  # NaN/Inf samples, all channels
    n_values: int  # frames * channels read
    header_note: str = ""  # what was wrong with the header and how it was read anyway


def _fs_path(path) -> str | bytes:
    return os.fsencode(path) if os.name != "nt" else str(path)


class _PatchedFile:
    """A read-only binary file whose bytes at some offsets are replaced (``{offset: bytes}``):
    a WAV header's sizes corrected without copying the audio."""

    def __init__(self, path, patches: dict[int, bytes]) -> None:
        self._f = open(_fs_path(path), "rb")
        self._patches = patches
        self.mode = "rb"

    def read(self, size: int = -1) -> bytes:
        pos = self._f.tell()
        data = bytearray(self._f.read(size))
        for offset, new in self._patches.items():
            lo, hi = max(offset, pos), min(offset + len(new), pos + len(data))
            if lo < hi:
                data[lo - pos:hi - pos] = new[lo - offset:hi - offset]
        return bytes(data)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def close(self) -> None:
        self._f.close()


def _empty_data_chunk(path) -> tuple[dict[int, bytes], int] | None:
    """For a RIFF WAVE file whose ``data`` chunk declares 0 bytes but has whole frames after
    it: the patches that give the RIFF and data chunks the sizes the file's length implies,
    and the number of audio bytes; else None."""
    with open(_fs_path(path), "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        size = os.fstat(f.fileno()).st_size
        block_align, pos = 0, 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk, n = f.read(4), struct.unpack("<I", f.read(4))[0]
            if chunk == b"fmt " and n >= 16:
                block_align = struct.unpack("<H", f.read(16)[12:14])[0]
            elif chunk == b"data":
                if n != 0 or block_align == 0:
                    return None
                audio = min((size - pos - 8) // block_align * block_align, 0xFFFFFFFF - 64)
                if audio <= 0:
                    return None
                return {4: struct.pack("<I", min(size - 8, 0xFFFFFFFF)),
                        pos + 4: struct.pack("<I", audio)}, audio
            pos += 8 + n + (n & 1)
    return None


def read_mono(path) -> MonoRead:
    """Read ``path`` block by block and mix it to mono ``(frames,)`` float32.

    A truncated file yields the frames that are there; a WAV whose header declares an empty
    data chunk with audio after it is read whole, and ``header_note`` says the header was
    wrong. Raises what ``soundfile`` raises (``LibsndfileError``, ``RuntimeError``) or
    ``OSError`` (permission denied).
    """
    source = _fs_path(path)
    with sf.SoundFile(source) as f:
        empty_wav = f.frames == 0 and f.format in ("WAV", "WAVEX")
    fixed = _empty_data_chunk(path) if empty_wav else None
    if fixed is not None:
        source = _PatchedFile(path, fixed[0])
    try:
        read = _read_blocks(source)
    finally:
        if fixed is not None:
            source.close()
    if fixed is not None:
        read.header_note = (f"header wrong: it says the audio is empty (0 frames), but "
                            f"{read.mono.shape[0] / read.sample_rate:.3g} s follow it (a "
                            "recording stopped before its header was finished?): read them")
    return read


def _read_blocks(source) -> MonoRead:
    """:func:`read_mono`'s work on an open-able ``source`` (a path or a file object)."""
    with sf.SoundFile(source) as f:
        sr, channels = f.samplerate, f.channels
        mono = np.empty(max(f.frames, 0), np.float32)
        pos, peak, bad = 0, 0.0, 0
        block = np.empty((BLOCK_FRAMES, channels), np.float32)
        while True:
            got = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True, out=block)
            n = got.shape[0]
            if n == 0:
                break
            if pos + n > mono.shape[0]:  # the header said fewer frames: grow
                mono = np.resize(mono, pos + max(n, mono.shape[0] // 2))
            part = mono[pos:pos + n]
            np.mean(got, axis=1, out=part)  # (n,); NaN/Inf in any channel stays non-finite
            if not np.isfinite(part).all():
                bad += int((~np.isfinite(got)).sum())
            elif n:
                peak = max(peak, float(got.max()), -float(got.min()))  # no |x| temporary
            pos += n
            if n < BLOCK_FRAMES:
                break
        info = MonoRead(mono[:pos] if pos == mono.shape[0] else mono[:pos].copy(), sr,
                        f.format, f.subtype, channels, f.frames, peak, bad, pos * channels)
    return info


def resample(mono: np.ndarray, orig: int, new: int) -> np.ndarray:
    """``mono`` ``(frames,)`` at ``orig`` Hz -> ``(ceil(frames * new / orig),)`` at ``new`` Hz.

    ``torchaudio.functional.resample`` (windowed sinc, its defaults) applied to blocks of about
    :data:`RESAMPLE_BLOCK_S` seconds, each with zero-padded context as wide as the filter, so
    the peak memory is the output plus one block instead of several copies of the whole file.
    A ratio whose reduced terms exceed :data:`MAX_RATIO_TERM` goes through ``soxr.resample``
    ("HQ") instead (module docstring), cut or zero-padded to the same length.
    """
    import torchaudio.functional as AF

    g = math.gcd(orig, new)
    o, m = orig // g, new // g  # the resampler works in periods of o input, m output samples
    n = mono.shape[0]
    total = math.ceil(n * new / orig)
    if max(o, m) > MAX_RATIO_TERM:
        import soxr

        y = soxr.resample(np.ascontiguousarray(mono, np.float32), orig, new, quality="HQ")
        out = np.zeros(total, np.float32)
        out[:min(total, len(y))] = y[:total]
        return out
    out = np.empty(total, np.float32)
    block = max(1, int(RESAMPLE_BLOCK_S * orig) // o) * o  # a whole number of periods
    ctx = max(1, math.ceil(64 * max(o, m) / min(o, m) / o)) * o  # >> the filter's half width
    x = torch.from_numpy(mono)
    for start in range(0, n, block):
        lo, hi = max(0, start - ctx), min(n, start + block + ctx)
        piece = torch.nn.functional.pad(x[lo:hi], (ctx - (start - lo),
                                                   ctx - (hi - min(n, start + block))))
        y = AF.resample(piece, orig, new)  # (ceil(len(piece) * m / o),)
        first = start * m // o
        want = min(total, math.ceil(min(n, start + block) * new / orig)) - first
        out[first:first + want] = y[ctx * m // o: ctx * m // o + want].numpy()
    return out


class ClipBuffer:
    """Equal-length clips ``(clip_len,)`` appended into one float32 array, zero-padded."""

    def __init__(self, clip_len: int, capacity: int = 64) -> None:
        self.clip_len = clip_len
        self._data = np.zeros((capacity, clip_len), np.float32)
        self.n = 0

    def append(self, piece) -> None:
        """Copy ``piece`` (``(k,)``, ``k <= clip_len``) in as the next clip, zero-padded."""
        if self.n == self._data.shape[0]:
            self._data.resize((max(16, self.n * 3 // 2), self.clip_len), refcheck=False)
        k = piece.shape[0]
        self._data[self.n, :k] = piece
        self._data[self.n, k:] = 0.0
        self.n += 1

    def tensor(self) -> torch.Tensor:
        """The clips as ``(n, 1, clip_len)``, sharing this buffer's memory (shrunk to ``n``)."""
        self._data.resize((self.n, self.clip_len), refcheck=False)
        return torch.from_numpy(self._data).unsqueeze(1)  # (n, 1, clip_len)


def _libsndfile_message(exc: Exception, path: Path) -> str:
    """libsndfile's own words, without the ``Error opening '<path>': `` prefix."""
    msg = str(exc)
    for shown in (str(path), os.fsencode(path)):
        prefix = f"Error opening {shown!r}: "
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg


def open_error(exc: Exception, path: Path) -> tuple[str, bool]:
    """(reason, whether to warn) for a file that could not be opened: "permission denied",
    "unreadable (<libsndfile's words>)" (warned: its extension is in :data:`AUDIO_EXTENSIONS`)
    or "not audio (<libsndfile's words>)" (quiet: an image, an archive)."""
    if isinstance(exc, PermissionError) or getattr(exc, "errno", None) in (errno.EACCES,
                                                                           errno.EPERM):
        return "permission denied", True
    msg = _libsndfile_message(exc, path)
    if msg.strip() == "System error." and not os.access(path, os.R_OK):
        return "permission denied", True
    if path.suffix.lower() in AUDIO_EXTENSIONS:
        return f"unreadable ({msg})", True
    return f"not audio ({msg})", False
