"""Atomic file writes: the one place sda-lab writes a file that must never be half-written.

Every writer goes through :func:`atomic_write`: the bytes go to a temporary file in the same
folder, are flushed and fsynced, and the temporary file is renamed over the target only when
complete (``os.replace`` is atomic on POSIX and Windows). A failure of any kind removes the
temporary file and leaves the previous file, if any, as it was. A full disk or a folder that
cannot be written is raised as :class:`WriteError` with one line naming the path.

Audio is encoded in one place, :func:`audio_bytes` (WAV files through :func:`write_wav`, the
notebooks' FLAC players through the same function): a mono waveform is scaled down by
:func:`wav_gain` only where its peak exceeds full scale (1.0), never up, so a quiet sound stays
quiet and nothing clips. Score what a listener gets as ``waveform * wav_gain(waveform)``.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, IO

__all__ = ["WriteError", "atomic_write", "atomic_write_json", "atomic_torch_save",
           "check_writable_dir", "wav_gain", "audio_bytes", "write_wav"]


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

    if hasattr(waveform, "detach"):  # a torch tensor, on any device
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


def wav_gain(waveform) -> float:
    """The gain :func:`write_wav` applies to ``waveform`` (any shape, a torch tensor or an
    array): ``1 / peak`` where the peak absolute finite sample exceeds full scale (1.0, it
    would clip), else exactly 1.0 (also for no samples). Pure: multiply by it to score what is
    written. (The writer itself refuses NaN/Inf samples.)"""
    import numpy as np

    if hasattr(waveform, "detach"):  # a torch tensor, on any device
        waveform = waveform.detach().cpu().double().numpy()
    values = np.abs(np.asarray(waveform, dtype=np.float64))
    values = values[np.isfinite(values)]
    peak = float(values.max()) if values.size else 0.0
    return 1.0 / peak if peak > 1.0 else 1.0


def audio_bytes(waveform, sample_rate: int, format: str = "WAV", subtype: str = "PCM_16"
                ) -> tuple[bytes, float]:
    """Encode a mono ``waveform`` (any shape with one axis longer than 1, torch or NumPy) as
    ``format``/``subtype`` (soundfile's names: ``"WAV"``/``"FLAC"``, ``"PCM_16"``/``"FLOAT"``),
    scaled by :func:`wav_gain` first. Returns ``(bytes, gain)``.

    Raises ``ValueError`` (one line) for several channels, no samples, NaN/Inf samples or a
    sample rate that is not a positive integer.
    """
    import io

    import soundfile as sf

    x = _mono(waveform)
    if isinstance(sample_rate, bool) or int(sample_rate) != sample_rate or sample_rate < 1:
        raise ValueError(f"expected a positive integer sample rate, got {sample_rate!r}")
    gain = wav_gain(x)
    buf = io.BytesIO()
    sf.write(buf, x * gain, int(sample_rate), format=format, subtype=subtype)
    return buf.getvalue(), gain


def write_wav(path: str | Path, waveform, sample_rate: int, subtype: str = "PCM_16") -> float:
    """Write a mono ``waveform`` to ``path`` as WAV (16-bit PCM by default; ``"FLOAT"`` for
    32-bit float), scaled by :func:`wav_gain`, atomically (:func:`atomic_write`). Returns the
    gain applied. Raises what :func:`audio_bytes` and :func:`atomic_write` raise; nothing is
    written then."""
    data, gain = audio_bytes(waveform, sample_rate, "WAV", subtype)
    atomic_write(path, lambda f: f.write(data))
    return gain
