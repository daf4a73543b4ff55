"""Environment variables: the one place sda-lab reads them, each checked where it is read.

| variable | meaning | default |
|---|---|---|
| ``SDA_LAB_SEED`` | base seed of the notebooks' experiments (integer in [0, 2**31 - 1]) | 0 |
| ``SDA_LAB_CACHE`` | folder for stored runs and the default model | ``data/cache`` of a checkout, else ``~/.cache/sda-lab`` |
| ``SDA_LAB_DASK_ADDRESS`` | scheduler of an existing Dask cluster (``tcp://HOST:PORT``) | none: a ``LocalCluster`` |
| ``SDA_LAB_EXTRA_AUDIO`` | a folder of real recordings (sub-folders such as ``instruments/``) used by notebook 07 and by tests that need real audio | none: ``data/examples`` |

A bad value raises :class:`SettingError` (a ``ValueError``) whose one line names the variable,
what was expected and what came.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["SettingError", "base_seed", "cache_dir", "dask_address", "extra_audio_dir",
           "MAX_SEED"]

MAX_SEED = 2**31 - 1  # seeds_from() multiplies by 1000 and numpy takes < 2**32: keep headroom
_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://[^\s/:]+(:\d{1,5})?/?$")


class SettingError(ValueError):
    """An environment variable holds a value sda-lab cannot use."""


def _raw(name: str) -> str | None:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    return raw.strip()


def _expand(name: str, raw: str) -> Path:
    """``raw`` with a leading ``~`` or ``~user`` expanded; :class:`SettingError` naming ``name``
    when that names no home folder on this machine."""
    try:
        return Path(raw).expanduser()
    except RuntimeError:  # pathlib: "Could not determine home directory."
        user = raw[1:].split("/", 1)[0]
        who = f"no user {user!r}" if user else "no home folder for the current user"
        raise SettingError(f"{name}: expected a folder path, got {raw!r}: this machine has "
                           f"{who}") from None


def base_seed(default: int = 0) -> int:
    """``$SDA_LAB_SEED`` as an integer in [0, 2**31 - 1], else ``default``."""
    raw = _raw("SDA_LAB_SEED")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingError(f"SDA_LAB_SEED: expected an integer in [0, {MAX_SEED // 1000}], "
                           f"got {raw!r}") from None
    if not 0 <= value <= MAX_SEED // 1000:
        raise SettingError(f"SDA_LAB_SEED: expected an integer in [0, {MAX_SEED // 1000}] "
                           f"(run seeds are 1000 * base + i), got {value}")
    return value


def cache_dir() -> Path:
    """``$SDA_LAB_CACHE``, else ``data/cache`` of a source checkout, else ``~/.cache/sda-lab``.

    Only names the folder; :func:`sda_lab.core._io.check_writable_dir` proves it can be written
    before long work starts.
    """
    raw = _raw("SDA_LAB_CACHE")
    if raw is not None:
        path = _expand("SDA_LAB_CACHE", raw)
        for parent in (path, *path.parents):
            if parent.exists():
                if not parent.is_dir():
                    raise SettingError(f"SDA_LAB_CACHE: expected a folder, but {parent} "
                                       f"is a file (SDA_LAB_CACHE={raw!r})")
                break
        return path
    repo_data = Path(__file__).resolve().parents[2] / "data"
    if repo_data.is_dir():
        return repo_data / "cache"
    return Path.home() / ".cache" / "sda-lab"


def dask_address() -> str | None:
    """``$SDA_LAB_DASK_ADDRESS`` (``tcp://HOST:PORT``, a port in [1, 65535]), else ``None``
    (start a LocalCluster). Checked for form only; no connection is tried here."""
    raw = _raw("SDA_LAB_DASK_ADDRESS")
    if raw is None:
        return None
    match = _ADDRESS.match(raw)
    if not match:
        raise SettingError(f"SDA_LAB_DASK_ADDRESS: expected a scheduler address like "
                           f"tcp://HOST:8786, got {raw!r}")
    if match.group(2) is not None and not 1 <= int(match.group(2)[1:]) <= 65535:
        raise SettingError(f"SDA_LAB_DASK_ADDRESS: expected a port in [1, 65535] as in "
                           f"tcp://HOST:8786, got {raw!r}")
    return raw


def extra_audio_dir() -> Path | None:
    """``$SDA_LAB_EXTRA_AUDIO`` as an existing folder, else ``None`` (unset).

    Raises :class:`SettingError` when it is set to something that is not a folder.
    """
    raw = _raw("SDA_LAB_EXTRA_AUDIO")
    if raw is None:
        return None
    path = _expand("SDA_LAB_EXTRA_AUDIO", raw)
    if not path.is_dir():
        raise SettingError(f"SDA_LAB_EXTRA_AUDIO: expected a folder of audio, but {path} "
                           f"{'is a file' if path.exists() else 'does not exist'}")
    return path
