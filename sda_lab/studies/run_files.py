"""Which files a trained run trained on, read back from its own record, never from the folder's
current contents.

``python -m sda_lab train`` records in ``metrics.json`` the folder (absolute), ``train_files``
and ``val_files`` (names as :attr:`sda_lab.data.AudioClips.files` gives them) and, per file,
``fingerprints``: ``{name: {"bytes": size, "sha256": digest}}``
(:func:`sda_lab.data.folders.file_fingerprints`). :func:`run_files` compares that record with
the folder now:

- a file in the folder that is in neither list (added after training, or skipped by it) is not
  used: it is not "a training clip";
- a recorded file that is gone is said;
- a recorded file whose size or content differs from its fingerprint is said and not used (it
  is not what the model learned from); without fingerprints (an older run) files are matched by
  name only, and that is said.

Each finding is one line in :attr:`RunFiles.notes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..data.folders import display_name, file_fingerprints, walk

__all__ = ["RunFiles", "run_files"]

_SHOWN = 3  # file names quoted in a note before "and N more"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


@dataclass
class RunFiles:
    """``train`` and ``val``: the recorded files to use (present and unchanged); ``notes``: one
    line per difference between the record and the folder; ``recorded``: whether
    ``metrics.json`` listed the training files at all."""

    train: list[str]
    val: list[str]
    notes: list[str] = field(default_factory=list)
    recorded: bool = True


def run_files(metrics: dict, folder: str | Path) -> RunFiles:
    """The run's own training and held-out files, checked against ``folder`` (module
    docstring).

    Raises
    ------
    FileNotFoundError
        None of the recorded training files is in ``folder`` unchanged (one line).
    """
    folder = Path(folder)
    present = {display_name(rel) for _, rel, _ in walk(folder)[0]}
    val = list(dict.fromkeys(metrics.get("val_files") or []))
    train = metrics.get("train_files")
    if train is None:  # an older run: only the held-out files were recorded
        train = sorted(present - set(val))
        return RunFiles(train, [v for v in val if v in present], [
            f"metrics.json lists no train_files (a run of an older sda-lab): every file now in "
            f"{folder} that was not held out counts as a training file"], recorded=False)
    train = list(dict.fromkeys(train))
    recorded = train + [v for v in val if v not in set(train)]
    notes = []
    other = sorted(present - set(recorded))
    if other:
        notes.append(f"{len(other)} file{'s' * (len(other) != 1)} in {folder} "
                     f"{'are' if len(other) != 1 else 'is'} not among the run's files (added "
                     f"after training, or skipped by it): not used ({_names(other)})")
    gone = [f for f in recorded if f not in present]
    if gone:
        notes.append(f"{len(gone)} of the run's {len(recorded)} files "
                     f"{'are' if len(gone) != 1 else 'is'} gone from {folder}: "
                     f"{_names(gone)}")
    prints = metrics.get("fingerprints")
    changed: list[str] = []
    if isinstance(prints, dict) and prints:
        now = file_fingerprints(folder, [f for f in recorded if f in present and f in prints])
        changed = [f for f in recorded if f in now and now[f] != prints[f]]
        if changed:
            notes.append(f"{len(changed)} of the run's files changed since training (size or "
                         f"content differ from metrics.json's fingerprints): not used "
                         f"({_names(changed)})")
    else:
        notes.append("metrics.json records no fingerprints of the run's files: they are matched "
                     "by name only (a file changed since training would not be noticed)")
    usable = present - set(changed)
    train_ok = [f for f in train if f in usable]
    if not train_ok:
        raise FileNotFoundError(f"training clips not found: none of the run's {len(train)} "
                                f"training files is in {folder} unchanged ({_names(train)})")
    return RunFiles(train_ok, [f for f in val if f in usable and f not in set(train)], notes)
