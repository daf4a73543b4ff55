"""Validation by file: clips cut from one recording are near copies of each other, so a random
clip split leaks; :func:`split_by_file` holds out whole files. Files can be copies of each other
too (a sample pack's velocity layers made by scaling one hit): :func:`same_recordings` groups the
files that are one recording up to gain, and :func:`split_by_file` given those groups holds out
or keeps each group whole, so no held-out file has a copy in training.
:func:`check_training_clips` refuses a split that leaves too few training clips."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

__all__ = ["split_by_file", "match_file", "same_recordings", "recording_groups",
           "count_recordings", "check_training_clips", "SAME_RECORDING"]

SAME_RECORDING = 0.85  # peak normalised cross-correlation of two files' first clips: one recording
CORRELATION_RATE = 8_000  # Hz: the clips are correlated at about this rate (a box low-pass)
_POOL = 8  # spectrum bins pooled for the prefilter
MIN_TRAINING_CLIPS = 2  # what a split leaves at least (check_training_clips)


def same_recordings(clips) -> dict[str, str]:
    """Files that are one recording up to gain and a shift: ``{file: the first file of its
    group by name}`` for every file of ``clips`` (an :class:`~sda_lab.data.clips.AudioClips`; a
    file alone maps to itself).

    Two files are one recording where their first clips, as waveforms averaged down to about
    :data:`CORRELATION_RATE`, have a peak normalised cross-correlation (any lag, either
    polarity) of at least :data:`SAME_RECORDING`: a gain, a shift, a resampling or a little
    noise change little in it (a pack's velocity layers scaled from one hit: 0.97 and more; a
    copy with its first 0.3 s cut: 0.87), a different recording scores lower (one-shot drum
    hits of one kit: at most 0.70; the synthetic set: 0.66; sines 1 Hz apart: 0.32; one synth
    tone under two different noises: 0.99, one recording here). Groups are the connected
    pairs. Only pairs whose clips' average magnitude spectra (pooled) have a cosine of at least
    :data:`SAME_RECORDING` are correlated.
    """
    files = list(clips.files)
    first: dict[str, int] = {}
    for i, f in enumerate(files):
        first.setdefault(f, i)
    names = sorted(first)
    if len(names) < 2:
        return {f: f for f in names}
    factor = max(1, clips.sample_rate // CORRELATION_RATE)
    with torch.no_grad():
        x = torch.nn.functional.avg_pool1d(
            clips.waveforms[[first[f] for f in names]].float(), factor)[:, 0]  # (F, n)
        n = x.shape[-1]
        n_fft = min(512, 1 << (n.bit_length() - 1))
        window = torch.hann_window(n_fft)
        spectrum_mean = torch.cat([
            torch.stft(part, n_fft, n_fft // 4, window=window, return_complex=True).abs()
            .mean(dim=-1) for part in x.split(64)])  # (F, n_fft/2 + 1): shift-invariant
        pooled = torch.nn.functional.avg_pool1d(spectrum_mean[:, None], _POOL)[:, 0]  # (F, P)
        unit = pooled / pooled.norm(dim=1, keepdim=True).clamp_min(1e-12)
        candidates = torch.triu(unit @ unit.T >= SAME_RECORDING, diagonal=1)  # (F, F)
        norms = x.double().norm(dim=1)  # (F,)
        spectra = torch.fft.rfft(x.double(), 2 * n)  # (F, n + 1)
        parent = list(range(len(names)))

        def root(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        for i in range(len(names)):
            every = candidates[i].nonzero().flatten()
            for js in every.split(64) if len(every) else ():
                cc = torch.fft.irfft(spectra[i].conj() * spectra[js], 2 * n)  # (J, 2n)
                score = cc.abs().amax(dim=1) / (norms[i] * norms[js]).clamp_min(1e-12)  # (J,)
                for j, same in zip(js.tolist(), (score >= SAME_RECORDING).tolist()):
                    if same:
                        parent[root(j)] = root(i)
    first_of = {}  # each group's key: its first file by name
    for k, f in enumerate(names):
        first_of.setdefault(root(k), f)
    return {f: first_of[root(k)] for k, f in enumerate(names)}


def recording_groups(groups: Mapping[str, str]) -> list[list[str]]:
    """The groups of :func:`same_recordings` (``groups``) with more than one file, each sorted,
    in sorted order (as ``metrics.json`` keeps them)."""
    members: dict[str, list[str]] = {}
    for f, g in groups.items():
        members.setdefault(g, []).append(f)
    return sorted(sorted(m) for m in members.values() if len(m) > 1)


def count_recordings(files: Sequence[str], groups: Mapping[str, str] | None) -> int:
    """How many different recordings ``files`` are (``groups``: :func:`same_recordings`; a file
    not in it is its own)."""
    return len({(groups or {}).get(f, f) for f in files})

def match_file(name: str, files: Sequence[str]) -> str:
    """The one of ``files`` (sorted names relative to a folder) that ``name`` names: the name
    itself, or a file name or stem that exactly one of them has; else ``ValueError`` (one line:
    none or several, with the first few files)."""
    if name in files:
        return name
    matches = [f for f in files if Path(f).name == name or Path(f).stem == name]
    if len(matches) != 1:
        shown = ", ".join(files[:5]) + (" ..." if len(files) > 5 else "")
        why = "matches several" if matches else "is not one of the"
        raise ValueError(f"validation file {name!r} {why} {len(files)} files ({shown})")
    return matches[0]


def split_by_file(clips_or_files, val_fraction: float = 0.2, seed: int = 0,
                  val_files: Sequence[str] | None = None,
                  groups: Mapping[str, str] | None = None
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
        name); ``val_fraction`` and ``groups`` are then ignored.
    groups : mapping of str to str, optional
        ``{file: its group}`` (:func:`same_recordings`): the fraction is then of the groups,
        and each group is held out or kept whole (files not in it are groups of one). Groups
        (or files) are drawn in the seed's order, passing over one whose holding out would
        leave fewer than :data:`MIN_TRAINING_CLIPS` training clips.

    Returns
    -------
    train_idx, val_idx, val_files
        Sorted clip indices and the sorted held-out file names.

    Raises
    ------
    ValueError
        Fraction outside [0, 1), fewer than two files (or recordings) to split, no file that
        can be held out leaving :data:`MIN_TRAINING_CLIPS` training clips, an unknown
        validation file, or every file held out.
    """
    files = list(getattr(clips_or_files, "files", clips_or_files))
    if not files:
        raise ValueError("split_by_file got no clips (an empty file list)")
    unique = sorted(set(files))
    if val_files is not None:
        chosen = set()
        for name in val_files:
            chosen.add(match_file(name, unique))
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
            group = {f: (groups or {}).get(f, f) for f in unique}
            keys = sorted(set(group.values()))
            if len(keys) < 2:
                raise ValueError(f"a validation split by file needs at least 2 different "
                                 f"recordings, found {len(unique)} files that are all one "
                                 f"recording up to gain ({', '.join(unique[:3])}"
                                 f"{' ...' if len(unique) > 3 else ''}); add other audio or "
                                 "train without validation (val_fraction=0)")
            n_val = min(len(keys) - 1, max(1, round(val_fraction * len(keys))))
            order = np.random.default_rng(seed).permutation(len(keys))
            clips_of = {k: 0 for k in keys}  # clips per group
            for f in files:
                clips_of[group[f]] += 1
            held, left = set(), len(files)
            for i in order:  # in the seed's order, passing over a group that would leave too
                if len(held) == n_val:  # few training clips
                    break
                if left - clips_of[keys[i]] >= MIN_TRAINING_CLIPS:
                    held.add(keys[i])
                    left -= clips_of[keys[i]]
            if not held:
                raise ValueError(f"no file can be held out for validation and leave "
                                 f"{MIN_TRAINING_CLIPS} training clips ({len(files)} clips in "
                                 f"{len(unique)} files); add audio or train without "
                                 "validation (val_fraction=0)")
            chosen = {f for f in unique if group[f] in held}
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
    if n_train < MIN_TRAINING_CLIPS:
        held = (f" after holding out {len(held_out_files)} file"
                f"{'s' if len(held_out_files) != 1 else ''}" if held_out_files else "")
        raise ValueError(f"only {n_train} training clip{'s' if n_train != 1 else ''}{held}; "
                         "training needs at least 2 (add audio or hold out less)")
