"""What limits what I hear: every mel -> waveform path per material, on held-out files (issue 20).

For each material (the synthetic default set, the bundled ``data/examples/instruments`` and
``data/examples/drum-one-shots``, and every folder of audio under ``$SDA_LAB_EXTRA_AUDIO`` when
it is set) the clips are split by file (:func:`sda_lab.data.split_by_file`, 20% of the files
held out), a learned inverse mel is trained on the training files for ``--train-seconds``
(:func:`sda_lab.representation.inverse_mel_fit.fit_inverse_mel`; a fifth of the training files, never
the held-out ones, picks its best weights, NNLS itself included), and up to ``--clips`` held-out
clips go through every path of :func:`sda_lab.studies.evaluate.compare_inversions`, in the
own-audio recipe's dB mel; then NNLS and the harmonic start (nothing learned) on up to 60 clips of
the whole set (:func:`sda_lab.studies.evaluate.compare_starts`).
Spectral convergence (SC) against the original STFT magnitude; time per clip as a ratio to the
NNLS default measured in the same process (compare ratios, not absolute times).

Usage: python -m benchmarks.bench_hearing [--clips 20] [--train-seconds 60] [--seed 0]
       [--only NAME ...]   (materials whose name contains one of the NAMEs)
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from sda_lab.data import split_by_file
from sda_lab.data import example_folder, load_folder, make_default_dataset
from sda_lab.interface.plotting import markdown_table
from sda_lab.representation.inverse_mel import InverseMelConfig
from sda_lab.representation.inverse_mel_fit import fit_inverse_mel
from sda_lab.studies.evaluate import compare_starts
from sda_lab.studies.evaluate import compare_inversions
from sda_lab.training.recipes import OWN_AUDIO_RECIPE

SUMMARY = {  # column of the table -> path of compare_inversions
    "floor: sqrt(NNLS) vs |S|": "floor: sqrt(NNLS(mel)) vs |S|",
    "floor: harmonic vs |S|": "floor: harmonic start vs |S|",
    "floor: learned vs |S|": "floor: learned magnitude vs |S|",
    "default (NNLS + GL)": "NNLS default",
    "NNLS + PGHI + GL": "NNLS + PGHI + fast GL",
    "harmonic + PGHI + GL": "harmonic + PGHI + fast GL",
    "learned + GL": "learned + fast GL",
    "learned + PGHI + GL": "learned + PGHI + fast GL",
    "bound: |S| + GL": "bound: true |S| + fast GL",
    "bound: |S| + PGHI + GL": "bound: true |S| + PGHI + fast GL",
}


def materials(clips_per_kind: int, seed: int) -> dict:
    """``{name: AudioClips}``: synthetic, the bundled examples, and ``$SDA_LAB_EXTRA_AUDIO``'s
    folders (each sub-folder holding audio, or the folder itself)."""
    found = {"synthetic default set": make_default_dataset(clips_per_kind, seed=seed)}
    examples = example_folder()
    for name in ("instruments", "drum-one-shots"):
        if (examples / name).is_dir():
            found[f"examples/{name}"] = load_folder(examples / name)
    extra = os.environ.get("SDA_LAB_EXTRA_AUDIO")
    if extra:
        root = Path(extra)
        subs = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        for folder in subs or [root]:
            try:
                found[f"extra/{folder.name}"] = load_folder(folder)
            except (OSError, ValueError) as exc:
                print(f"skipped {folder.name}: {str(exc).splitlines()[0]}")
    return found


def measure(clips, n_clips: int, train_seconds: float, seed: int, log_weight: float = 1.0
            ) -> tuple[list[dict], dict]:
    """One material: train on its training files, compare on up to ``n_clips`` held-out clips."""
    spec = OWN_AUDIO_RECIPE.audio_spectrogram("db")
    train_idx, val_idx, _ = split_by_file(clips, 0.2, seed)
    g = torch.Generator().manual_seed(seed)
    val_idx = [val_idx[i] for i in torch.randperm(len(val_idx), generator=g)[:n_clips]]
    # a fifth of the training files picks the inverse's best weights (step 0 = NNLS)
    fit_idx, pick_idx, _ = split_by_file([clips.files[i] for i in train_idx], 0.2, seed)
    inverse = fit_inverse_mel(spec, clips.waveforms[[train_idx[i] for i in fit_idx]],
                              InverseMelConfig(max_seconds=train_seconds, seed=seed,
                                               log_weight=log_weight),
                              val_waveforms=clips.waveforms[[train_idx[i] for i in pick_idx]])
    rows = compare_inversions(spec, clips.waveforms[val_idx], inverse, seed=seed)
    # nothing learned: every clip (up to 60, spread over the set) compares the two starts
    every = torch.linspace(0, len(clips.waveforms) - 1, min(60, len(clips.waveforms))).long()
    starts = compare_starts(spec, clips.waveforms[every], seed=seed)
    info = {"train clips": len(train_idx), "held-out clips": len(val_idx),
            "steps": inverse.history["steps"], "best step": inverse.history["best_step"],
            "learned start": inverse.start, "starts on every clip": starts,
            "clips compared": len(every),
            "train s": round(inverse.history["seconds"], 1)}
    return rows, info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=20, help="held-out clips per material")
    p.add_argument("--clips-per-kind", type=int, default=20,
                   help="synthetic clips per kind (5 kinds; 20%% held out)")
    p.add_argument("--train-seconds", type=float, default=60.0,
                   help="training budget of each learned inverse")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-weight", type=float, default=InverseMelConfig.log_weight,
                   help="weight of the log-magnitude L1 in the inverse's loss")
    p.add_argument("--only", nargs="+", metavar="NAME", default=None,
                   help="measure only the materials whose name contains one of these, e.g. "
                        "extra/drum")
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    found = materials(args.clips_per_kind, args.seed)
    if args.only:
        found = {k: v for k, v in found.items() if any(n in k for n in args.only)}
        if not found:
            p.error(f"--only {' '.join(args.only)} matches none of the materials "
                    f"{sorted(materials(1, args.seed))}")
    t0 = time.perf_counter()
    summary, details, start_rows = [], [], []
    for name, clips in found.items():
        rows, info = measure(clips, args.clips, args.train_seconds, args.seed, args.log_weight)
        by_path = {r["path"]: r for r in rows}
        summary.append({"material": name, "held-out clips": info["held-out clips"],
                        **{col: by_path[path]["SC"] for col, path in SUMMARY.items()},
                        "learned + PGHI time / default":
                            by_path["learned + PGHI + fast GL"]["x default time"]})
        start_rows.append({"material": name, "clips": info.pop("clips compared"),
                           **info.pop("starts on every clip")})
        details.append((name, info, rows))
    print(f"## What limits what I hear: SC on held-out files (dB mel, {platform.node()}, "
          f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
          f"{time.strftime('%Y-%m-%d')})\n")
    print(markdown_table(summary).data)
    print("\n## NNLS against the harmonic start on every clip (nothing learned; SC against the "
          "original, both + PGHI + fast GL)\n")
    print(markdown_table(start_rows).data)
    for name, info, rows in details:
        print(f"\n### {name}: {info}\n")
        print(markdown_table(rows).data)
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
