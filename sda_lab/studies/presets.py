"""Presets: a saved explorer state of one run, a small JSON file next to the run.

A preset is ``RUN/presets/NAME.json`` (:data:`PRESETS_FOLDER`), written atomically
(:func:`sda_lab.core._io.atomic_write_json`)::

    {"format": "sda-lab preset", "version": 1,
     "run": "RUN folder name", "checkpoint": "best.pt", "checkpoint_sha256": "...",
     "z": [latent_dim numbers], "sliders": {"z3": 0.41, "z0 · brighter ↑": -1.2, ...},
     "seconds": null, "note": "free text"}

It belongs to the run whose checkpoint (the one :meth:`RunDir.run_checkpoint
<sda_lab.training.rundir.RunDir.run_checkpoint>` names: ``best.pt``, else ``checkpoint.pt``)
has the SHA-256 ``checkpoint_sha256``; the folder name is only for messages. A run whose
checkpoint changed (trained on, or replaced) is another run: its old presets are refused, as
their latents address another model's space. The hash is computed on every save and load (a
checkpoint is megabytes: milliseconds); nothing is cached.

``z`` is the latent (authoritative); ``sliders`` names each slider's value as the explorer
showed it (the dimension's label, ``"z{d}"`` or its descriptor name,
:mod:`sda_lab.interface.widgets.naming`), for a reader of the file and to restore the sliders
to the value they had. ``seconds`` (optional) is the length a generator should render.

A caller that decodes a preset (``generate --preset``) takes :attr:`Preset.z`, a ``(1,
latent_dim)`` float32 tensor, and hands it to ``model.decode``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..core._io import atomic_write_json
from ..training.checkpoint import last_checkpoint_hint
from ..training.rundir import RunDir
from .continuation import MAX_SECONDS

__all__ = ["PRESET_FORMAT", "PRESET_VERSION", "PRESETS_FOLDER", "Preset", "save_preset",
           "load_preset", "list_presets", "run_identity"]

PRESET_FORMAT = "sda-lab preset"
PRESET_VERSION = 1
PRESETS_FOLDER = "presets"
_SUFFIX = ".json"
MAX_NAME = 100  # characters of a preset's name (its file name adds .json)


@dataclass
class Preset:
    """One saved explorer state (module docstring). ``z`` is ``(1, latent_dim)`` float32 in
    memory and a list of numbers in the file; ``sliders`` is ``{name: value}``; ``seconds``
    None when the preset names no length; ``name`` is the file's stem (not stored in it)."""

    run: str
    checkpoint: str
    checkpoint_sha256: str
    z: torch.Tensor
    sliders: dict[str, float] = field(default_factory=dict)
    seconds: float | None = None
    note: str = ""
    version: int = PRESET_VERSION
    name: str = ""

    def to_json(self) -> dict:
        """The file's content (module docstring)."""
        return {"format": PRESET_FORMAT, "version": self.version, "run": self.run,
                "checkpoint": self.checkpoint, "checkpoint_sha256": self.checkpoint_sha256,
                "z": [float(v) for v in self.z.reshape(-1).tolist()],
                "sliders": {str(k): float(v) for k, v in self.sliders.items()},
                "seconds": self.seconds, "note": self.note}


def run_identity(run_dir: str | Path) -> tuple[Path, str, int]:
    """``(checkpoint path, its SHA-256 hex digest, the model's latent_dim)`` of a run folder.

    Raises
    ------
    FileNotFoundError
        What :meth:`RunDir.run_checkpoint <sda_lab.training.rundir.RunDir.run_checkpoint>`
        raises (one line).
    ValueError
        The checkpoint is not a readable sda-lab checkpoint (one line).
    """
    path = RunDir(run_dir).run_checkpoint()
    data = path.read_bytes()
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        latent_dim = int(payload["model_config"]["latent_dim"])
    except Exception as exc:
        raise ValueError(f"RUN: {path} is not a readable sda-lab checkpoint "
                         f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                         f"{last_checkpoint_hint(path)}") from exc
    return path, hashlib.sha256(data).hexdigest(), latent_dim


def _check_name(name: str) -> str:
    """``name`` if it is a usable preset name, else ``ValueError`` (one line)."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name: expected a preset name (letters, digits, spaces, -_), got "
                         f"{name!r}")
    if len(name) > MAX_NAME or any(not c.isprintable() for c in name):
        raise ValueError(f"name: expected a preset name of printable characters, at most "
                         f"{MAX_NAME}, got {name[:40]!r}{'...' if len(name) > 40 else ''}")
    if any(c in name for c in "/\\\0") or name.startswith(".") or name.endswith(_SUFFIX):
        raise ValueError(f"name: expected a preset name without path separators, a leading "
                         f"'.' or a '{_SUFFIX}' ending (it becomes "
                         f"RUN/{PRESETS_FOLDER}/NAME{_SUFFIX}), got {name!r}")
    return name


def _latent(z, latent_dim: int, where: str) -> torch.Tensor:
    """``z`` (any shape of ``latent_dim`` numbers) as ``(1, latent_dim)`` float32, else
    ``ValueError`` (one line naming ``where``)."""
    try:
        t = torch.as_tensor(z, dtype=torch.float64).detach().cpu().reshape(-1)  # (n,)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{where}: expected a latent of {latent_dim} numbers, got "
                         f"{type(z).__name__} ({exc})") from exc
    if t.numel() != latent_dim:
        raise ValueError(f"{where}: expected a latent of {latent_dim} numbers (the run's "
                         f"latent_dim), got {t.numel()}")
    bad = int((~torch.isfinite(t.float())).sum())  # NaN/Inf, or beyond float32's range
    if bad:
        raise ValueError(f"{where}: expected finite latent values within float32's range "
                         f"(|z| < 3.4e38), got {bad} of {latent_dim} that are not")
    return t.float().view(1, latent_dim)  # (1, D)


def _sliders(sliders, where: str) -> dict[str, float]:
    if not isinstance(sliders, dict):
        raise ValueError(f"{where}: expected sliders as {{name: value}}, got "
                         f"{type(sliders).__name__}")
    out = {}
    for k, v in sliders.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{where}: expected a finite number for slider {k!r}, got {v!r}")
        out[str(k)] = float(v)
    return out


def _seconds(seconds, where: str) -> float | None:
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or \
            not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"{where}: expected seconds as a number above 0 and at most "
                         f"{MAX_SECONDS:g} (generate --seconds' range), or None, got {seconds!r}")
    return float(seconds)


def list_presets(run_dir: str | Path) -> list[str]:
    """The names of the run's presets (``RUN/presets/*.json``), sorted; ``[]`` when none."""
    folder = Path(run_dir) / PRESETS_FOLDER
    if not folder.is_dir():
        return []
    return sorted(p.name[:-len(_SUFFIX)] for p in folder.glob("*" + _SUFFIX)
                  if p.is_file() and not p.name.startswith("."))


def save_preset(run_dir: str | Path, name: str, z, sliders: dict[str, float] | None = None,
                seconds: float | None = None, note: str = "", overwrite: bool = False) -> Path:
    """Write ``RUN/presets/NAME.json`` atomically and return its path.

    ``z``: the latent, ``latent_dim`` numbers in any shape (``(D,)``, ``(1, D)``, a list);
    ``sliders``: ``{name: value}``; ``seconds``: optional positive length; ``note``: free text.

    Raises
    ------
    ValueError
        One line: a bad ``name`` (empty, a path separator, a leading '.', a '.json' ending), a
        preset of that name exists and ``overwrite`` is False, ``z`` not ``latent_dim`` finite
        numbers, a non-finite slider value, ``seconds`` not positive, or an unreadable
        checkpoint.
    FileNotFoundError
        ``run_dir`` is not a run folder.
    """
    name = _check_name(name)
    ckpt, sha, latent_dim = run_identity(run_dir)
    where = f"preset {name!r}"
    preset = Preset(run=Path(run_dir).resolve().name, checkpoint=ckpt.name,
                    checkpoint_sha256=sha, z=_latent(z, latent_dim, where),
                    sliders=_sliders(dict(sliders or {}), where),
                    seconds=_seconds(seconds, where), note=str(note))
    path = Path(run_dir) / PRESETS_FOLDER / (name + _SUFFIX)
    if path.exists() and not overwrite:
        raise ValueError(f"name: a preset {name!r} exists ({path}); choose another name or "
                         f"pass overwrite=True")
    return atomic_write_json(path, preset.to_json(), ensure_ascii=False)


def _preset_path(run_dir: Path, name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    is_path = (isinstance(name_or_path, Path) or "/" in text or "\\" in text
               or text.endswith(_SUFFIX))
    path = Path(name_or_path) if is_path else run_dir / PRESETS_FOLDER / (text + _SUFFIX)
    if not is_path:
        _check_name(text)
    if not path.is_file():
        have = list_presets(run_dir)
        raise FileNotFoundError(
            f"preset {text!r}: no such file {path}; the run {run_dir.name} has "
            f"{'presets ' + ', '.join(have) if have else 'no presets'}")
    return path


def load_preset(run_dir: str | Path, name_or_path: str | Path) -> Preset:
    """Read a preset of ``run_dir``: a name in ``RUN/presets/`` or a path to a preset file
    (a ``Path``, or text with a path separator or a ``.json`` ending). Returns a
    :class:`Preset` whose ``z`` is ``(1, latent_dim)`` float32.

    Raises
    ------
    FileNotFoundError
        One line: no such preset (the line lists the run's presets), or ``run_dir`` is not a
        run folder.
    ValueError
        One line: the file is not readable JSON or not a preset (a field missing or of the
        wrong type, another format version); it belongs to another run ("preset X belongs to
        run Y (checkpoint sha ...), not to RUN"); its latent is not the run's ``latent_dim``
        numbers or holds NaN/Inf; a slider value or ``seconds`` is not a finite number.
    """
    run_dir = Path(run_dir)
    ckpt, sha, latent_dim = run_identity(run_dir)
    path = _preset_path(run_dir, name_or_path)
    where = f"preset {str(name_or_path)!r} ({path})"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{where} is not readable JSON ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != PRESET_FORMAT:
        raise ValueError(f"{where} is not an sda-lab preset (expected \"format\": "
                         f"\"{PRESET_FORMAT}\")")
    if data.get("version") != PRESET_VERSION:
        raise ValueError(f"{where} has preset version {data.get('version')!r}, this sda-lab "
                         f"reads {PRESET_VERSION}")
    missing = [k for k in ("run", "checkpoint_sha256", "z") if k not in data]
    if missing:
        raise ValueError(f"{where} is not a complete preset: missing {missing}")
    if data["checkpoint_sha256"] != sha:
        raise ValueError(f"preset {str(name_or_path)!r} belongs to run {data['run']!r} "
                         f"(checkpoint sha {str(data['checkpoint_sha256'])[:12]}...), not to "
                         f"{run_dir} (its {ckpt.name} has sha {sha[:12]}...)")
    return Preset(run=str(data["run"]), checkpoint=str(data.get("checkpoint", ckpt.name)),
                  checkpoint_sha256=sha, z=_latent(data["z"], latent_dim, where),
                  sliders=_sliders(data.get("sliders") or {}, where),
                  seconds=_seconds(data.get("seconds"), where), note=str(data.get("note", "")),
                  name=path.stem)
