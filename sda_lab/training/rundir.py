"""A run folder of ``python -m sda_lab train FOLDER --out RUN`` as a type: :class:`RunDir`.

A run folder holds ``checkpoint.pt`` (the last state, with what a resumed run goes on from),
``best.pt`` (the lowest validation score), ``metrics.json`` (the run's record) and, where
fitted, ``inverse_mel.pt``, ``decoded_inverse_mel.pt`` (the same fine-tuned on the model's
decoded mels) and ``vocoder.pt`` (``python -m sda_lab train-vocoder``). The record names the
training data: its folder as an absolute path
(``folder``), the files trained on and held out (``train_files``, ``val_files``), a fingerprint
per file (``fingerprints``, :func:`sda_lab.data.folders.file_fingerprints`) and how the folder
was cut into clips (``data_config``, :class:`sda_lab.data.config.DataConfig`). The last
checkpoint's ``extra`` holds the same, so a run killed before ``metrics.json`` was written still
knows its data.

While a training writes into the folder it holds :meth:`RunDir.lock`: an exclusive
``flock`` on ``RUN/.lock``, released (and the file removed) when it ends; the kernel releases
the lock of a process that died, so a lock file left behind by one is taken over.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..core.run_layout import RUN_CHECKPOINTS, find_checkpoint

__all__ = ["RunDir", "RunLock", "RunLocked", "RUN_FILES", "LOCK_FILE"]

RUN_FILES = ("checkpoint.pt", "best.pt", "metrics.json", "inverse_mel.pt",
             "decoded_inverse_mel.pt", "vocoder.pt")
LOCK_FILE = ".lock"

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: an O_EXCL lock file with the holder's pid
    fcntl = None


class RunLocked(RuntimeError):
    """Another process holds the run folder's lock (one line naming the folder and process)."""


class RunLock:
    """An exclusive lock on a run folder (:meth:`RunDir.lock`); a context manager."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.path, self._fd = folder, folder / LOCK_FILE, None

    def _holder(self) -> str:
        try:
            pid = self.path.read_text().strip()
        except OSError:
            pid = ""
        return f"process {pid}" if pid else "another process"

    def _refuse(self) -> RunLocked:
        return RunLocked(f"{self.folder} is in use by another training ({self._holder()} holds "
                         f"{self.path}): wait for it to finish, or choose another folder")

    def acquire(self) -> RunLock:
        """Take the lock now or raise :class:`RunLocked`; never waits."""
        while True:
            if fcntl is None:  # pragma: no cover
                return self._acquire_exclusive()
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise self._refuse() from None
            try:  # the holder before us may have removed the file between our open and flock
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
                self._fd = fd
                return self
            os.close(fd)

    def _acquire_exclusive(self) -> RunLock:  # pragma: no cover - without fcntl
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                os.kill(int(self.path.read_text().strip()), 0)
            except (OSError, ValueError):  # the holder is gone: a stale lock
                self.path.unlink(missing_ok=True)
                return self._acquire_exclusive()
            raise self._refuse() from None
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file and let go; a no-op when not held."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)  # while still held: no one can have locked it
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@dataclass(frozen=True)
class RunDir:
    """The files of one run folder and what its record says about the training data."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def best(self) -> Path:
        return self.path / "best.pt"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def inverse_mel(self) -> Path:
        return self.path / "inverse_mel.pt"

    @property
    def decoded_inverse_mel(self) -> Path:
        return self.path / "decoded_inverse_mel.pt"

    def files(self) -> list[Path]:
        """The run files (:data:`RUN_FILES`) the folder holds now."""
        return [self.path / n for n in RUN_FILES if (self.path / n).exists()]

    def lock(self) -> RunLock:
        """The folder's exclusive lock (module docstring); ``with run.lock(): ...``."""
        return RunLock(self.path)

    def run_checkpoint(self) -> Path:
        """The checkpoint a run is opened with: ``best.pt`` (lowest validation score), else
        ``checkpoint.pt`` (the last).

        Raises
        ------
        FileNotFoundError
            One line naming the folder and what was expected: ``RUN`` is not a folder, or
            holds neither checkpoint.
        """
        if not self.path.is_dir():
            raise FileNotFoundError(f"RUN: expected a run folder of 'python -m sda_lab train "
                                    f"FOLDER --out RUN', got {str(self.path)!r}, which is not a "
                                    "folder")
        found = find_checkpoint(self.path)
        if found is not None:
            return found
        present = sorted(p.name for p in self.path.iterdir())[:8]
        raise FileNotFoundError(
            f"RUN: {self.path} holds no run: expected {' or '.join(RUN_CHECKPOINTS)} (written by "
            f"'python -m sda_lab train FOLDER --out {self.path}'), found "
            f"{', '.join(present) if present else 'nothing'}")

    def read_metrics(self) -> dict | None:
        """``metrics.json`` as a dict, None when there is none.

        Raises
        ------
        ValueError
            One line when it is not readable JSON.
        """
        if not self.metrics.is_file():
            return None
        try:
            return json.loads(self.metrics.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"RUN: {self.metrics} is not readable JSON ({exc})") from exc

    def record(self) -> dict:
        """What the run recorded about its data: ``metrics.json``, else the ``extra`` of its
        checkpoints (:data:`~sda_lab.core.run_layout.RUN_CHECKPOINTS` order; a run stopped
        before writing ``metrics.json``), else ``{}``."""
        metrics = self.read_metrics()
        if metrics is not None:
            return metrics
        for path in (self.path / name for name in RUN_CHECKPOINTS):
            if path.is_file():
                import torch

                try:
                    payload = torch.load(path, map_location="cpu", weights_only=True)
                except Exception:  # unreadable: nothing recorded
                    continue
                if isinstance(payload, dict):
                    return dict(payload.get("extra") or {})
        return {}

    def data_folder(self) -> Path | None:
        """The training folder as recorded (absolute since runs record it so), or None."""
        folder = self.record().get("folder")
        return Path(folder) if folder else None

    def find_data(self, data: str | Path | None = None) -> Path:
        """The run's training folder: ``data`` when given, else the recorded one. A relative
        record (older runs) is tried from the working folder, then from each folder above the
        run.

        Raises
        ------
        FileNotFoundError
            One line: ``data`` is not a folder; the run records no folder; or the recorded
            folder is gone or moved (pass ``data=`` pointing at it).
        """
        if data is not None:
            if not Path(data).is_dir():
                raise FileNotFoundError(f"data: expected the run's training folder, got "
                                        f"{str(data)!r}, which is not a folder")
            return Path(data)
        folder = self.data_folder()
        if folder is None:
            raise FileNotFoundError(f"{self.path} records no training folder (not a run of "
                                    "'python -m sda_lab train'?): pass data= pointing at the "
                                    "audio it was trained on")
        tries = [folder] if folder.is_absolute() else [
            folder, *(p / folder for p in self.path.resolve().parents)]
        for candidate in tries:
            if candidate.is_dir():
                return candidate
        raise FileNotFoundError(f"the run's training folder {folder} is gone or moved: pass "
                                f"data= pointing at it (e.g. from_run({str(self.path)!r}, "
                                f"data='path/to/folder'))")
