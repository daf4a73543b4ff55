"""Atomic file writes: the one place sda-lab writes a file that must never be half-written.

Every writer goes through :func:`atomic_write`: the bytes go to a temporary file in the same
folder, are flushed and fsynced, and the temporary file is renamed over the target only when
complete (``os.replace`` is atomic on POSIX and Windows). A failure of any kind removes the
temporary file and leaves the previous file, if any, as it was. A full disk or a folder that
cannot be written is raised as :class:`WriteError` with one line naming the path.

Audio is encoded in one place, :func:`audio_bytes` (WAV files through :func:`write_wav`, the
notebooks' FLAC players through the same function): a mono waveform goes through
:func:`limit_peaks`, which lowers the gain only around samples beyond full scale (1.0) and never
raises it, so a quiet sound stays quiet, nothing clips, and one over (a click at a clip's start)
does not turn the whole file down. Score what a listener gets as ``limit_peaks(waveform, rate)``.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, IO

__all__ = ["WriteError", "atomic_write", "atomic_write_json", "atomic_torch_save",
           "check_writable_dir", "limiter_gain", "limit_peaks", "LIMITER_HOLD_S", "audio_bytes",
           "limited_clause", "write_wav"]

LIMITER_HOLD_S = 1e-3  # the limiter's look-ahead and release, each side of an over


class WriteError(OSError):
    """A file could not be written (disk full, permission denied, not a folder): one line."""


def _describe(exc: BaseException, path: Path) -> str:
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return f"no space left on the device holding {path.parent} while writing {path.name}"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return f"permission denied writing {path}"
        if exc.errno == errno.ENOTDIR:
            return f"cannot write {path}: a part of {path.parent} is a file, not a folder"
        if exc.errno == errno.EROFS:
            return f"cannot write {path}: read-only file system"
    text = str(exc)
    # torch's serializer reports a full disk as a C++ "enforce fail" with the errno text inside
    if "No space left" in text or "enforce fail" in text and "write" in text.lower():
        return f"no space left on the device holding {path.parent} while writing {path.name}"
    return f"could not write {path}: {text.splitlines()[0] if text else type(exc).__name__}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write ``path`` atomically by calling ``write(f)`` on a binary temporary file beside it.

    Creates missing parent folders. Raises :class:`WriteError` (one line naming the path)
    when the folder cannot be created or written or the disk fills; the previous file at
    ``path`` survives any failure, and no temporary file is left behind.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise WriteError(_describe(exc, path)) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a saved file gets the usual mode
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, (OSError, RuntimeError)) and not isinstance(exc, WriteError):
            message = _describe(exc, path)
            if isinstance(exc, OSError) or "enforce fail" in str(exc) or "No space" in str(exc):
                raise WriteError(message) from exc
        raise
    return path


def atomic_write_json(path: str | Path, obj: object, **dump_kwargs) -> Path:
    """:func:`atomic_write` of ``obj`` as JSON (``indent=1``, strict: no NaN, by default)."""
    dump_kwargs = {"indent": 1, "allow_nan": False, "default": str, **dump_kwargs}
    data = json.dumps(obj, **dump_kwargs).encode()
    return atomic_write(path, lambda f: f.write(data))


def atomic_torch_save(path: str | Path, obj: object) -> Path:
    """:func:`atomic_write` of ``torch.save(obj)``."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def check_writable_dir(folder: str | Path, what: str = "folder") -> Path:
    """Create ``folder`` if needed and prove a file can be written there, before long work.

    Raises :class:`WriteError` naming ``what`` (an option or variable, e.g. ``"--out"`` or
    ``"SDA_LAB_CACHE"``), the folder, and the reason.
    """
    folder = Path(folder)
    try:
        if folder.exists() and not folder.is_dir():
            raise WriteError(f"{what}: expected a folder, got a file: {folder}")
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except WriteError:
        raise
    except OSError as exc:
        raise WriteError(f"{what}: cannot write to {folder}: "
                         f"{_describe(exc, folder / 'x')}") from exc
    return folder


def _mono(waveform):
    """``waveform`` (a torch tensor or array with at most one axis longer than 1) as a 1-D
    float64 array; ``ValueError`` for several channels, no samples, or NaN/Inf."""
    import numpy as np

    is_tensor = hasattr(waveform, "detach")
    dtype = waveform.dtype if is_tensor else np.asarray(waveform).dtype
    if not (dtype.is_floating_point if is_tensor else dtype.kind == "f"):
        pcm = "int" in str(dtype)
        raise ValueError(f"expected float samples in [-1, 1], got {dtype}"
                         + ("; divide integer PCM by its full scale (32768 for int16)" if pcm
                            else ""))
    if is_tensor:  # on any device
        waveform = waveform.detach().cpu().double().numpy()
    x = np.asarray(waveform, dtype=np.float64)
    if sum(d > 1 for d in x.shape) > 1:
        raise ValueError(f"expected a mono waveform (one axis longer than 1), got shape "
                         f"{x.shape}")
    x = x.reshape(-1)
    if x.size == 0:
        raise ValueError("expected a waveform with samples, got an empty one")
    bad = int((~np.isfinite(x)).sum())
    if bad:
        raise ValueError(f"expected finite samples, got {bad} NaN/Inf of {x.size}")
    return x


def limiter_gain(waveform, sample_rate: int):
    """The gain :func:`limit_peaks` applies to ``waveform`` (torch or NumPy, any shape, time on
    the last axis): a float64 torch tensor of its shape, 1.0 wherever no sample within
    :data:`LIMITER_HOLD_S` (twice) exceeds full scale. ``ValueError`` (one line) for a last
    axis of one sample holding more than one sample in all (a ``(samples, 1)`` array), or a
    sample rate that is not a positive number.

    Where a finite sample's magnitude exceeds full scale (1.0), the gain needed there
    (``1 / |x|``) is held over :data:`LIMITER_HOLD_S` either side (a running minimum) and
    smoothed by a moving average of the same width, so the gain falls and recovers within about
    2 ms around each over and each over lands at full scale or below. This is the
    min-filter-and-smooth gain of look-ahead brickwall limiters (Giannoulis, Massberg & Reiss,
    "Digital dynamic range compressor design", JAES 2012), with instant attack.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F

    if isinstance(sample_rate, bool) or not (isinstance(sample_rate, (int, float))
                                             and 0 < sample_rate < 1e7):
        raise ValueError(f"expected a sample rate in Hz (a positive number below 1e7), got "
                         f"{sample_rate!r}")
    if hasattr(waveform, "detach"):  # a torch tensor, on any device
        a = waveform.detach().cpu().double().abs()
    else:
        a = torch.as_tensor(np.abs(np.asarray(waveform, dtype=np.float64)))
    shape = a.shape
    if a.numel() == 0:
        return torch.ones(shape, dtype=torch.float64)
    if a.numel() > 1 and shape[-1] == 1:
        raise ValueError(f"expected time on the last axis, got shape {tuple(shape)} (one sample "
                         "per row: transpose a (samples, channels) array first)")
    a = torch.where(torch.isfinite(a), a, torch.zeros_like(a)).reshape(-1, 1, shape[-1])
    if not bool((a > 1.0).any()):
        return torch.ones(shape, dtype=torch.float64)
    h = min(max(1, round(float(sample_rate) * LIMITER_HOLD_S)), shape[-1])
    need = 1.0 / a.clamp(min=1.0)  # (rows, 1, n): 1 within full scale
    held = -F.max_pool1d(-F.pad(need, (h, h), mode="replicate"), 2 * h + 1, 1)  # (rows, 1, n)
    gain = F.avg_pool1d(F.pad(held, (h, h), mode="replicate"), 2 * h + 1, 1)  # (rows, 1, n)
    return gain.reshape(shape)


def limit_peaks(waveform, sample_rate: int):
    """The samples :func:`write_wav` writes: ``waveform`` times :func:`limiter_gain`; a torch
    tensor keeps its dtype and device, anything else comes back as a float64 array. A waveform
    within full scale comes back unchanged: never scaled up."""
    import numpy as np

    gain = limiter_gain(waveform, sample_rate)
    if hasattr(waveform, "detach"):
        return waveform * gain.to(device=waveform.device, dtype=waveform.dtype)
    return np.asarray(waveform, dtype=np.float64) * gain.numpy()


def audio_bytes(waveform, sample_rate: int, format: str = "WAV", subtype: str = "PCM_16"
                ) -> tuple[bytes, float]:
    """Encode a mono ``waveform`` (any shape with one axis longer than 1, torch or NumPy) as
    ``format``/``subtype`` (soundfile's names: ``"WAV"``/``"FLAC"``, ``"PCM_16"``/``"FLOAT"``),
    through :func:`limit_peaks` first. Returns ``(bytes, reduction_db)``: the largest gain
    reduction the limiter applied (0.0 where nothing exceeded full scale).

    Raises ``ValueError`` (one line) for several channels, no samples, NaN/Inf samples or a
    sample rate that is not a positive integer.
    """
    import io

    import numpy as np
    import soundfile as sf

    x = _mono(waveform)
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate < 1:
        raise ValueError(f"expected a positive integer sample rate, got {sample_rate!r}")
    gain = limiter_gain(x, int(sample_rate)).numpy()
    buf = io.BytesIO()
    sf.write(buf, x * gain, int(sample_rate), format=format, subtype=subtype)
    return buf.getvalue(), max(0.0, float(-20 * np.log10(gain.min())))


def limited_clause(reduction_db: float) -> str:
    """What the writer did to a file, as the clause a command prints after "wrote ...": empty
    when the limiter took off less than 0.05 dB (:func:`write_wav`'s return)."""
    return (f", peaks limited by up to {reduction_db:.1f} dB to avoid clipping"
            if reduction_db >= 0.05 else "")


def write_wav(path: str | Path, waveform, sample_rate: int, subtype: str = "PCM_16") -> float:
    """Write a mono ``waveform`` to ``path`` as WAV (16-bit PCM by default; ``"FLOAT"`` for
    32-bit float), through :func:`limit_peaks`, atomically (:func:`atomic_write`). Returns the
    largest gain reduction in dB (0.0: none). Raises what :func:`audio_bytes` and
    :func:`atomic_write` raise; nothing is written then."""
    data, reduction_db = audio_bytes(waveform, sample_rate, "WAV", subtype)
    atomic_write(path, lambda f: f.write(data))
    return reduction_db
