"""The run cache: one small JSON file per finished run, ``<folder>/<key>.json``.

Written atomically (:func:`sda_lab.core._io.atomic_write_json`), so an interrupted sweep resumes
where it stopped, a re-run notebook cell reuses finished runs, and concurrent writers never
leave a partial file. Only successful runs are kept; a failed run is returned to the caller
as a row with its error and retried next time.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...core._io import atomic_write_json, check_writable_dir
from ...core.settings import cache_dir

__all__ = ["ResultStore"]


class ResultStore:
    """One JSON file per finished run in ``folder`` (default ``$SDA_LAB_CACHE/runs``, see
    :func:`sda_lab.core.settings.cache_dir`).

    Raises
    ------
    sda_lab.core.settings.SettingError
        ``folder`` is None and ``$SDA_LAB_CACHE`` lies under a regular file.
    """

    def __init__(self, folder: str | Path | None = None) -> None:
        self.from_environment = folder is None
        self.folder = Path(folder) if folder is not None else cache_dir() / "runs"

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The stored record of ``key``, or None (absent, unreadable or truncated: re-run)."""
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            return json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None

    def check_writable(self) -> Path:
        """Prove a run can be stored here, before any training.

        Raises
        ------
        sda_lab.core._io.WriteError
            One line naming ``SDA_LAB_CACHE`` (or ``store`` for a folder given by the caller),
            the folder and why it cannot be written.
        """
        what = "SDA_LAB_CACHE (its runs/ folder)" if self.from_environment else "store"
        return check_writable_dir(self.folder, what)

    def put(self, record: dict) -> Path:
        """Store ``record`` under ``record["key"]`` atomically;
        :class:`~sda_lab.core._io.WriteError` (one line) when it cannot be written."""
        return atomic_write_json(self.path(record["key"]), record, indent=None, allow_nan=True)
