"""Checkpoints: one file holds the weights, the model, train and spectrogram configs, the
optimizer state and the history, written atomically (:func:`sda_lab.core._io.atomic_torch_save`)
and loaded back into an identical model (:func:`load_checkpoint`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..core._io import atomic_torch_save
from ..core.run_layout import RUN_CHECKPOINTS
from ..core.utils import pick_device
from ..model.vae import ConvVAE, VAEConfig
from .config import TrainConfig
from .history import History

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "best_path_for", "load_checkpoint",
           "last_checkpoint_hint", "save_checkpoint", "write_checkpoint"]

CHECKPOINT_FORMAT = 1
WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DataParallel/DDP, torch.compile


def best_path_for(checkpoint_path: str | Path) -> Path:
    """Where the best-by-validation checkpoint goes by default: ``<stem>.best<suffix>``
    beside ``checkpoint_path`` (``run/ck.pt`` -> ``run/ck.best.pt``)."""
    p = Path(checkpoint_path)
    return p.with_name(f"{p.stem}.best{p.suffix or '.pt'}")


def write_checkpoint(path: str | Path, model_config: VAEConfig, model_state: dict,
                     optimizer_state: dict | None = None, history: History | None = None,
                     train_config: TrainConfig | None = None, extra: dict | None = None,
                     resume: dict | None = None) -> Path:
    """Write a checkpoint from a model config and a state dict (e.g. a copy of an earlier
    epoch's weights), atomically: a failed save leaves the previous file as it was. ``resume``:
    the state a run goes on from (:func:`sda_lab.training.resume.capture`), or None.

    Raises
    ------
    sda_lab.core._io.WriteError
        One line naming the path when the folder cannot be written or the disk is full.
    """
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model_config": asdict(model_config),
        "model_state": {k: v.detach().cpu() for k, v in model_state.items()},
        "optimizer_state": optimizer_state,
        "history": asdict(history) if history is not None else None,
        "train_config": asdict(train_config) if train_config is not None else None,
        "extra": extra or {},
        "resume": resume,
    }
    return atomic_torch_save(path, payload)


def save_checkpoint(path: str | Path, model: ConvVAE, optimizer: torch.optim.Optimizer | None,
                    history: History | None, train_config: TrainConfig | None = None,
                    extra: dict | None = None, resume: dict | None = None) -> Path:
    """Write ``model``'s weights and config, the optimizer, history and configs to ``path``
    atomically (see :func:`write_checkpoint`).

    Put the spectrogram's config in ``extra["spectrogram_config"]`` (``asdict(spec.config)``)
    so :meth:`Checkpoint.spectrogram` rebuilds the representation the model was trained on.
    """
    return write_checkpoint(path, model.config, model.state_dict(),
                            optimizer.state_dict() if optimizer is not None else None,
                            history, train_config, extra, resume)


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` read: the model (eval mode), its history and train config
    (``None`` when not saved), the optimizer state, ``extra``, and ``resume``: the state a run
    goes on from (:mod:`sda_lab.training.resume`; None in a best checkpoint or a file saved by
    hand)."""

    model: ConvVAE
    history: History | None
    train_config: TrainConfig | None
    optimizer_state: dict | None
    extra: dict
    resume: dict | None = None

    @property
    def spectrogram_config(self):
        """The :class:`~sda_lab.representation.spectrogram.SpectrogramConfig` the model was trained
        on (from ``extra["spectrogram_config"]``), or the default config when the checkpoint has
        none.

        Raises
        ------
        ValueError
            If the stored config names fields this version's ``SpectrogramConfig`` lacks.
        """
        from ..representation.spectrogram import SpectrogramConfig

        stored = self.extra.get("spectrogram_config")
        if not stored:
            return SpectrogramConfig()
        return _config(SpectrogramConfig, stored, "the checkpoint")

    def spectrogram(self):
        """The one checkpoint -> spectrogram function: an
        :class:`~sda_lab.representation.spectrogram.AudioSpectrogram` built from
        :attr:`spectrogram_config`. Decode this model's mels only with it."""
        from ..representation.spectrogram import AudioSpectrogram

        return AudioSpectrogram(self.spectrogram_config)


def _strip_wrapper_prefix(state: dict, expected: set[str]) -> dict:
    """Remove uniform wrapper prefixes (``module.``, ``_orig_mod.``, nested) from every key."""
    changed = True
    while changed and set(state) != expected:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if state and all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                changed = True
    return state


def _state_mismatch(state: dict, reference: dict) -> str:
    """One line saying how ``state``'s keys and shapes differ from ``reference``'s."""
    unexpected = [k for k in state if k not in reference]
    missing = [k for k in reference if k not in state]
    reshaped = [k for k in state if k in reference and tuple(state[k].shape)
                != tuple(reference[k].shape)]
    parts = []
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys such as {unexpected[0]!r}")
    if missing:
        parts.append(f"{len(missing)} missing such as {missing[0]!r}")
    if reshaped:
        k = reshaped[0]
        parts.append(f"{len(reshaped)} with another shape such as {k!r} (saved "
                     f"{tuple(state[k].shape)}, expected {tuple(reference[k].shape)})")
    return "; ".join(parts)


def _config(cls, stored: dict, where):
    """``cls(**stored)`` for a config dataclass stored in a checkpoint (``where``: its path or
    name), or one line naming the fields this version of ``cls`` does not know (a checkpoint
    written by another version of sda-lab)."""
    import dataclasses

    unknown = sorted(set(stored) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"{where}: its {cls.__name__} has fields this sda-lab does not know "
                         f"({', '.join(unknown)}): it was written by another version; train it "
                         "again or use that version")
    return cls(**stored)


def _payload(path: Path) -> dict:
    """The dict :func:`save_checkpoint` wrote to ``path`` (a file), read and checked; else
    ``ValueError`` (one line: empty, not a file ``torch.save`` writes, not readable, not a dict,
    keys missing, another format)."""
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        raise ValueError(f"{path} is not a readable sda-lab checkpoint: it is empty (0 bytes)")
    if head != b"PK\x03\x04":  # torch.save writes a zip archive
        raise ValueError(f"{path} is not a readable sda-lab checkpoint: expected the zip archive "
                         f"torch.save writes, got a file that starts with {head!r}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights_only" in why or "Weights only load failed" in why:
            why = "it holds objects other than tensors, numbers and strings"  # not torch's advice
        why = why.split(". ")[0]  # torch's first sentence: what failed, not its guesses
        raise ValueError(f"{path} is not a readable sda-lab checkpoint ({why})") from exc
    if not isinstance(payload, dict):
        raise ValueError(f"{path} is not an sda-lab checkpoint: it holds a "
                         f"{type(payload).__name__}, expected a dict")
    missing = {"format", "model_config", "model_state"} - set(payload)
    if missing:
        raise ValueError(f"{path} is not an sda-lab checkpoint: missing {sorted(missing)}")
    if payload["format"] != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} has checkpoint format {payload['format']}, this sda-lab reads "
                         f"{CHECKPOINT_FORMAT}")
    return payload


def last_checkpoint_hint(path: str | Path) -> str:
    """For a run's ``best.pt`` that cannot be opened: a clause on the run's last checkpoint
    beside it (``checkpoint.pt``): move best.pt aside to open the run from it, or, where it
    cannot be read either, that the run must be trained again; '' for any other file or
    where there is no ``checkpoint.pt``."""
    path = Path(path)
    best, last = RUN_CHECKPOINTS
    if path.name != best or not (path.parent / last).is_file():
        return ""
    try:
        _payload(path.parent / last)
    except ValueError:
        return (f"; the run's last checkpoint {path.parent / last} cannot be read either: "
                "train the run again")
    return (f"; the run's last checkpoint {path.parent / last} is beside it: move {best} aside "
            f"to open the run from {last}")


def load_checkpoint(path: str | Path, device: str | torch.device | None = None) -> Checkpoint:
    """Rebuild the model (in eval mode) and read everything else saved by :func:`save_checkpoint`.

    Weights saved from a wrapped model load too: a prefix shared by every key, ``module.``
    (``DataParallel``/``DistributedDataParallel``) or ``_orig_mod.`` (``torch.compile``), is
    stripped.

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    ValueError
        If it is not an sda-lab checkpoint or has another format (for a ``best.pt``, the line
        ends with :func:`last_checkpoint_hint`), its weights do not fit the model its config
        describes (one line: how many keys are unexpected, missing or
        of another shape, with an example of each), or they hold NaN/Inf values.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = _payload(path)
    except ValueError as exc:
        raise ValueError(f"{exc}{last_checkpoint_hint(path)}") from exc
    model = ConvVAE.from_config(_config(VAEConfig, payload["model_config"], path))
    reference = model.state_dict()
    state = _strip_wrapper_prefix(dict(payload["model_state"]), set(reference))
    mismatch = _state_mismatch(state, reference)
    if mismatch:
        raise ValueError(f"{path}: the saved weights do not fit the model its config describes "
                         f"({len(state)} saved tensors, {len(reference)} expected): {mismatch}")
    bad = sum(int((~torch.isfinite(t)).sum()) for t in state.values() if t.is_floating_point())
    if bad:
        total = sum(t.numel() for t in state.values() if t.is_floating_point())
        raise ValueError(f"{path}: its weights hold {bad} NaN/Inf values (of {total}): the "
                         f"model cannot be used{last_checkpoint_hint(path)}")
    model.load_state_dict(state)
    model.to(pick_device(str(device)) if device is not None else pick_device()).eval()
    hist = History(**payload["history"]) if payload.get("history") else None
    stored = payload.get("train_config")
    tc = _config(TrainConfig, stored, path) if stored else None
    return Checkpoint(model, hist, tc, payload.get("optimizer_state"), payload.get("extra", {}),
                      payload.get("resume"))
