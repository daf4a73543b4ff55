"""Resident memory of :func:`sda_lab.data.load_folder`, and what fits in 4 GB.

Two measurements, each on files generated in a temporary folder that is deleted afterwards:

- ``shots N``: N one-shots (0.05 s mono 16-bit WAVs of decaying noise at 48 kHz, as in a drum
  sample library), each padded to one 1 s clip. Prints the MB held per 1,000 files after loading
  and the peak while loading, and how many such files 4 GB holds.
- ``long MINUTES``: one stereo 16-bit WAV at 44.1 kHz (a field recording), resampled to 48 kHz
  and cut into 1 s clips. Prints the peak while loading as a multiple of the file's size, the
  MB held per minute of audio, and how many hours 4 GB holds: as one recording (the peak grows
  with its length) and as many files of this length (their clips plus one file's peak).

The loading runs in a child process of its own, one thread, after ``sda_lab.data``, torch and
``torchaudio.functional`` are imported, so the numbers are what loading adds: ``held`` is the
resident set size (``/proc/self/statm``, Linux) after ``load_folder`` returns, ``peak`` the
child's ``ru_maxrss`` during it, both minus the resident size just before it. "Fits in 4 GB"
counts the larger of the two against 4 GiB minus that base (the interpreter with torch). Memory
does not depend on the machine's load, only time does. Results go in ``benchmarks/RESULTS.md``.

    python -m benchmarks.bench_memory shots 1500
    python -m benchmarks.bench_memory long 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

BUDGET_MB = 4096.0  # "fits in 4 GB": 4 GiB of resident memory in all
SHOT_SECONDS, SHOT_RATE = 0.05, 48_000
LONG_RATE = 44_100


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _write_shots(folder: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    k = int(SHOT_SECONDS * SHOT_RATE)
    decay = np.exp(-np.arange(k) / 500)
    for i in range(n):
        x = 0.5 * rng.standard_normal(k) * decay
        sf.write(folder / f"shot{i:05d}.wav", x.astype(np.float32), SHOT_RATE, subtype="PCM_16")


def _write_long(folder: Path, minutes: float) -> Path:
    rng = np.random.default_rng(0)
    frames, block = int(minutes * 60 * LONG_RATE), 10 * LONG_RATE
    path = folder / "long.wav"
    with sf.SoundFile(path, "w", LONG_RATE, 2, subtype="PCM_16") as f:
        for start in range(0, frames, block):
            m = min(block, frames - start)
            f.write((0.2 * np.clip(rng.standard_normal((m, 2)), -4, 4)).astype(np.float32))
    return path


def _measure(folder: str) -> dict:
    """In the child: load ``folder`` and return base, held and peak MB and the clip count."""
    import resource

    import torch
    import torchaudio.functional  # noqa: F401 - imported before the base, as in a notebook

    import sda_lab.data.load as data

    torch.set_num_threads(1)
    base = _rss_mb()
    clips = data.load_folder(folder)
    held = _rss_mb() - base
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base  # KiB on Linux
    return {"base_mb": base, "held_mb": held, "peak_mb": max(peak, held), "clips": len(clips),
            "clip_samples": int(clips.waveforms.shape[-1])}


def _measure_in_child(folder: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "benchmarks.bench_memory", "_measure",
                          str(folder)], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def shots(n: int) -> str:
    """Memory of ``n`` one-shot files; returns the lines printed."""
    tmp = Path(tempfile.mkdtemp(prefix="sda_lab_bench_memory_"))
    try:
        _write_shots(tmp, n)
        r = _measure_in_child(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    per_file = max(r["held_mb"], r["peak_mb"]) / n  # MB
    fits = (BUDGET_MB - r["base_mb"]) / per_file
    clip_kb = r["clip_samples"] * 4 / 1024
    return (f"{n} one-shots of {SHOT_SECONDS:g} s -> {r['clips']} clips of {clip_kb:.0f} KB "
            f"(float32): held +{r['held_mb']:.0f} MB ({r['held_mb'] / n * 1000:.0f} MB per "
            f"1,000 files), peak +{r['peak_mb']:.0f} MB; process base {r['base_mb']:.0f} MB\n"
            f"fits in 4 GB: about {fits:,.0f} one-shot files")


def long(minutes: float) -> str:
    """Memory of one ``minutes``-long stereo file; returns the lines printed."""
    tmp = Path(tempfile.mkdtemp(prefix="sda_lab_bench_memory_"))
    try:
        size = _write_long(tmp, minutes).stat().st_size / 2**20
        r = _measure_in_child(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    room = BUDGET_MB - r["base_mb"]
    one_file_h = room / (max(r["held_mb"], r["peak_mb"]) / minutes) / 60  # peak grows with it
    # many files of this length: the clips of all of them plus one file's passing extra
    many_files_h = (room - (r["peak_mb"] - r["held_mb"])) / (r["held_mb"] / minutes) / 60
    return (f"{minutes:g} min stereo 16-bit WAV at {LONG_RATE / 1000:g} kHz ({size:.0f} MB) -> "
            f"{r['clips']} clips: peak +{r['peak_mb']:.0f} MB = {r['peak_mb'] / size:.2f}x the "
            f"file, held +{r['held_mb']:.0f} MB ({r['held_mb'] / minutes:.1f} MB per minute); "
            f"process base {r['base_mb']:.0f} MB\n"
            f"fits in 4 GB: one recording of about {one_file_h:.1f} hours, or about "
            f"{many_files_h:.1f} hours in files of {minutes:g} min")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_memory",
                                description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    sub.add_parser("shots", help="N one-shot files").add_argument("n", type=int)
    sub.add_parser("long", help="one long stereo file").add_argument("minutes", type=float)
    sub.add_parser("_measure").add_argument("folder")  # the child process
    args = p.parse_args(argv)
    if args.what == "_measure":
        print(json.dumps(_measure(args.folder)))
    elif args.what == "shots":
        if args.n < 1:
            p.error(f"shots: N must be a positive number of files, got {args.n}")
        print(shots(args.n))
    else:
        if not args.minutes > 0:
            p.error(f"long: MINUTES must be positive, got {args.minutes:g}")
        print(long(args.minutes))


if __name__ == "__main__":
    main()
