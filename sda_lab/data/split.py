"""Validation by file: clips cut from one recording are near copies of each other, so a random
clip split leaks; :func:`split_by_file` holds out whole files. :func:`check_training_clips`
refuses a split that leaves too few training clips."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["split_by_file", "check_training_clips"]


def split_by_file(clips_or_files, val_fraction: float = 0.2, seed: int = 0,
                  val_files: Sequence[str] | None = None
                  ) -> tuple[list[int], list[int], list[str]]:
    """Split clip indices into training and validation so no file is on both sides.

    Parameters
    ----------
    clips_or_files : AudioClips or sequence of str
        Anything with a ``files`` list (the source file of every clip), or that list itself.
    val_fraction : float
        Fraction of the *files* held out, in [0, 1): ``max(1, round(fraction * n_files))``
        files, at least one file left for training. 0 holds nothing out.
    seed : int
        Seeds which files are held out (NumPy ``default_rng``; same seed, same split).
    val_files : sequence of str, optional
        Hold out exactly these files instead (full names as in ``files``, or a unique base
        name); ``val_fraction`` is then ignored.

    Returns
    -------
    train_idx, val_idx, val_files
        Sorted clip indices and the sorted held-out file names.

    Raises
    ------
    ValueError
        Fraction outside [0, 1), fewer than two files to split, an unknown validation file, or
        every file held out.
    """
    files = list(getattr(clips_or_files, "files", clips_or_files))
    if not files:
        raise ValueError("split_by_file got no clips (an empty file list)")
    unique = sorted(set(files))
    if val_files is not None:
        chosen = set()
        for name in val_files:
            if name in unique:
                chosen.add(name)
                continue
            matches = [f for f in unique if Path(f).name == name or Path(f).stem == name]
            if len(matches) != 1:
                shown = ", ".join(unique[:5]) + (" ..." if len(unique) > 5 else "")
                why = "matches several" if matches else "is not one of the"
                raise ValueError(f"validation file {name!r} {why} {len(unique)} files "
                                 f"({shown})")
            chosen.add(matches[0])
        if len(chosen) == len(unique):
            raise ValueError(f"all {len(unique)} files are held out for validation; keep at "
                             "least one for training")
    else:
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        if val_fraction == 0:
            chosen = set()
        else:
            if len(unique) < 2:
                raise ValueError(f"a validation split by file needs at least 2 files, found "
                                 f"{len(unique)} ({unique[0]}); add audio files or train "
                                 "without validation (val_fraction=0)")
            n_val = min(len(unique) - 1, max(1, round(val_fraction * len(unique))))
            order = np.random.default_rng(seed).permutation(len(unique))
            chosen = {unique[i] for i in order[:n_val]}
    train_idx = [i for i, f in enumerate(files) if f not in chosen]
    val_idx = [i for i, f in enumerate(files) if f in chosen]
    return train_idx, val_idx, sorted(chosen)


def check_training_clips(n_train: int, held_out_files: Sequence[str] = ()) -> None:
    """Refuse, before any epoch, a split that leaves fewer than 2 training clips (active units
    and the baseline are statistics over clips).

    Raises
    ------
    ValueError
        One line: how many training clips are left, and what to do.
    """
    if n_train < 2:
        held = (f" after holding out {len(held_out_files)} file"
                f"{'s' if len(held_out_files) != 1 else ''}" if held_out_files else "")
        raise ValueError(f"only {n_train} training clip{'s' if n_train != 1 else ''}{held}; "
                         "training needs at least 2 (add audio or hold out less)")
