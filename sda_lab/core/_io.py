"""Atomic file writes: the one place sda-lab writes a file that must never be half-written.

Every writer goes through :func:`atomic_write`: the bytes go to a temporary file in the same
folder, are flushed and fsynced, and the temporary file is renamed over the target only when
complete (``os.replace`` is atomic on POSIX and Windows). A failure of any kind removes the
temporary file and leaves the previous file, if any, as it was. A full disk or a folder that
cannot be written is raised as :class:`WriteError` with one line naming the path.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, IO

__all__ = ["WriteError", "atomic_write", "atomic_write_json", "atomic_torch_save",
           "check_writable_dir", "wav_gain"]


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


def wav_gain(waveform) -> float:
    """The gain a WAV writer applies to ``waveform`` (any shape, a tensor or an array): ``1 /
    peak`` where the peak exceeds full scale (it would clip), else 1. Score audio after
    multiplying by it to score what is written."""
    import numpy as np

    values = np.abs(np.asarray(waveform.detach().cpu() if hasattr(waveform, "detach")
                               else waveform))
    peak = float(values.max()) if values.size else 0.0
    return 1.0 / peak if peak > 1.0 else 1.0


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
