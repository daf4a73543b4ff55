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

__all__ = ["split_by_file", "same_recordings", "check_training_clips", "SAME_RECORDING"]

SAME_RECORDING = 0.9  # peak normalised cross-correlation of two files' first clips: one recording
MAX_LAG_S = 0.01  # the lags searched: one file may start a little later than its copy
SEGMENT_S = 0.25  # how much of each file is correlated, from just before its loudest sample
_POOL = 8  # STFT bins pooled for the prefilter


def same_recordings(clips) -> dict[str, str]:
    """Files that are one recording up to gain and a small shift: ``{file: the first file of
    its group}`` for every file of ``clips`` (an :class:`~sda_lab.data.clips.AudioClips`; a
    file alone maps to itself).

    Two files are one recording where their first clips, as waveforms, have a peak
    normalised cross-correlation of at least :data:`SAME_RECORDING` within :data:`MAX_LAG_S`
    (either polarity), over :data:`SEGMENT_S` from just before each clip's loudest sample: a
    gain changes nothing in it, a different recording of a similar sound scores far lower
    (one-shot drum hits of one kit: at most 0.65; a pack's velocity layers scaled from one hit:
    0.999 and more). Groups are the connected pairs. Only pairs whose pooled STFT magnitudes
    have a cosine of at least :data:`SAME_RECORDING` are correlated.
    """
    files = list(clips.files)
    first: dict[str, int] = {}
    for i, f in enumerate(files):
        first.setdefault(f, i)
    names = sorted(first)
    if len(names) < 2:
        return {f: f for f in names}
    x = clips.waveforms[[first[f] for f in names], 0].float()  # (F, n)
    n = x.shape[-1]
    n_fft = min(1024, 1 << (n.bit_length() - 1))
    window = torch.hann_window(n_fft)
    with torch.no_grad():
        pooled = torch.cat([torch.nn.functional.avg_pool1d(
            torch.stft(part, n_fft, n_fft // 2, window=window, return_complex=True).abs()
            .transpose(1, 2), _POOL).flatten(1)
            for part in x.split(64)])  # (F, P): in parts, so a large folder fits in memory
        unit = pooled / pooled.norm(dim=1, keepdim=True).clamp_min(1e-12)
        candidates = torch.triu(unit @ unit.T >= SAME_RECORDING, diagonal=1)  # (F, F)
        lag = int(MAX_LAG_S * clips.sample_rate)
        # each file's SEGMENT_S from just before its loudest sample: a copy's is the same stretch
        m = min(n, max(2 * lag + 1, round(SEGMENT_S * clips.sample_rate)))
        starts = (x.abs().argmax(dim=1) - lag).clamp(0, n - m)  # (F,)
        seg = torch.stack([x[k, s:s + m] for k, s in enumerate(starts.tolist())])  # (F, m)
        norms = seg.norm(dim=1)  # (F,)
        spectra: dict[int, torch.Tensor] = {}  # rfft of the segments some pair needs, (m + 1,)

        def spectrum(k: int) -> torch.Tensor:
            if k not in spectra:
                spectra[k] = torch.fft.rfft(seg[k], 2 * m)
            return spectra[k]

        parent = list(range(len(names)))

        def root(a: int) -> int:
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        for i in range(len(names)):
            every = candidates[i].nonzero().flatten().tolist()
            for at in range(0, len(every), 64):
                js = every[at:at + 64]
                others = torch.stack([spectrum(j) for j in js])  # (J, m + 1)
                cc = torch.fft.irfft(spectrum(i).conj() * others, 2 * m)  # (J, 2m)
                near = torch.cat([cc[:, :lag + 1], cc[:, 2 * m - lag:]], dim=1).abs().amax(1)
                score = near / (norms[i] * norms[js]).clamp_min(1e-12)  # (J,)
                for j, same in zip(js, (score >= SAME_RECORDING).tolist()):
                    if same:
                        parent[root(j)] = root(i)
    first_of = {}  # each group's key: its first file by name
    for k, f in enumerate(names):
        first_of.setdefault(root(k), f)
    return {f: first_of[root(k)] for k, f in enumerate(names)}


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
        and each group is held out or kept whole (files not in it are groups of one).

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
            held = {keys[i] for i in order[:n_val]}
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
    if n_train < 2:
        held = (f" after holding out {len(held_out_files)} file"
                f"{'s' if len(held_out_files) != 1 else ''}" if held_out_files else "")
        raise ValueError(f"only {n_train} training clip{'s' if n_train != 1 else ''}{held}; "
                         "training needs at least 2 (add audio or hold out less)")
