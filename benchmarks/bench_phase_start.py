"""Does PGHI's start beat Griffin-Lim's random start from the true magnitude, in every seed?

Notebook 08 compares, per material, fast Griffin-Lim from the clips' **true** STFT magnitude
started from a random phase and from PGHI's phase (the two "bound" rows of
:func:`sda_lab.studies.evaluate.render_paths`, scored by
:func:`sda_lab.studies.evaluate.phase_start_sc`; the own-audio recipe's dB mel settings,
``griffin_lim_iters`` iterations). Which clips it scores and the random phases both follow the
notebook's base seed ``s`` (``SDA_LAB_SEED``): the first five held-out clips of
``split_by_file(clips, 0.2, s)``, scored as one batch as the notebook's table scores them, and
``torch.Generator().manual_seed(s)``; the synthetic set is ``make_default_dataset(5, seed=s)``.

For each base seed this prints the effect, mean SC(random start) - mean SC(PGHI start) over
those clips (positive: PGHI's start is closer), and the same effect on **every** clip of the
material (nothing is learned on this path, so every clip may be scored; the random phases
still follow the seed) with the lower end of its 95% t-interval over the clips (paired). Per
material: the mean effect over seeds with its 95% t-interval, and in how many seeds PGHI wins.

Usage: python -m benchmarks.bench_phase_start [--seeds 20] [--first 0] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import torch

from sda_lab.data import example_folder, load_folder, make_default_dataset, split_by_file
from sda_lab.interface.plotting import markdown_table
from sda_lab.studies.evaluate import phase_start_sc
from sda_lab.training.recipes import OWN_AUDIO_RECIPE

MATERIALS = ("synthetic default set", "drum one-shots (examples)", "instruments (examples)")
N_EVAL = 5  # held-out clips the notebook scores (fit_held_out(..., n_eval=5))


def interval(values: list[float]) -> tuple[float, float, float, float]:
    """Mean, standard deviation and the 95% t-interval of the mean of ``values``."""
    from scipy import stats

    n = len(values)
    t = torch.tensor(values, dtype=torch.float64)
    mean = float(t.mean())
    if n < 2:
        return mean, float("nan"), float("nan"), float("nan")
    sd = float(t.std())
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return mean, sd, mean - half, mean + half


def measure(seeds: list[int], only: list[str] | None = None) -> tuple[list[dict], list[dict]]:
    """Per seed and material the notebook's effect (its held-out clips) and the effect on every
    clip with the lower end of its 95% interval over clips; per material the summary (module
    docstring). Returns ``(per_seed_rows, summary_rows)``."""
    spec = OWN_AUDIO_RECIPE.audio_spectrogram("db")
    names = [m for m in MATERIALS if not only or any(o.lower() in m.lower() for o in only)]
    fixed = {"drum one-shots (examples)": load_folder(example_folder() / "drum-one-shots"),
             "instruments (examples)": load_folder(example_folder() / "instruments")}
    per_seed = []
    effects = {m: [] for m in names}
    everywhere = {m: [] for m in names}
    clip_lows = {m: [] for m in names}
    clip_wins = {m: [0, 0] for m in names}
    for s in seeds:
        row = {"seed": s}
        for m in names:
            clips = fixed.get(m) or make_default_dataset(5, seed=s)
            _, val_idx, _ = split_by_file(clips, 0.2, s)
            # the notebook's held-out clips, as one batch as its table scores them
            held = phase_start_sc(spec, clips.waveforms[val_idx[:N_EVAL]], s)
            effect = float(held["random"].mean() - held["pghi"].mean())
            sc = phase_start_sc(spec, clips.waveforms, s)  # every clip, one batch
            every, _, low, _ = interval((sc["random"] - sc["pghi"]).tolist())  # paired
            effects[m].append(effect)
            everywhere[m].append(every)
            clip_lows[m].append(low)
            clip_wins[m][0] += int((held["pghi"] < held["random"]).sum())
            clip_wins[m][1] += len(held["pghi"])
            short = m.split(" (")[0]
            row[f"{short}: held out"] = effect
            row[f"{short}: every clip"] = every
            row[f"{short}: every clip, 95% low"] = low
        per_seed.append(row)
    summary = []
    for m in names:
        mean, sd, lo, hi = interval(effects[m])
        all_mean, _, all_lo, all_hi = interval(everywhere[m])
        n = len(seeds)
        summary.append({
            "material": m, "seeds": n, "held out: mean effect": mean, "sd": sd,
            "95% interval": f"[{lo:.4f}, {hi:.4f}]",
            "held out: seeds PGHI wins": f"{sum(e > 0 for e in effects[m])} of {n}",
            "held-out clips PGHI wins": f"{clip_wins[m][0]} of {clip_wins[m][1]}",
            "every clip: mean effect": all_mean,
            "every clip: 95% interval": f"[{all_lo:.4f}, {all_hi:.4f}]",
            "every clip: seeds PGHI wins": f"{sum(e > 0 for e in everywhere[m])} of {n}",
            "every clip: seeds whose 95% interval excludes 0":
                f"{sum(v > 0 for v in clip_lows[m])} of {n}",
            "every clip: smallest effect": min(everywhere[m])})
    return per_seed, summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_phase_start",
        description="Notebook 08's claim 'from the true magnitude, PGHI's start beats Griffin-"
                    "Lim's random start' over many base seeds: the effect per seed, its spread "
                    "and 95%% interval, per material.")
    parser.add_argument("--seeds", type=int, default=20, help="base seeds (default 20)")
    parser.add_argument("--first", type=int, default=0, help="first base seed (default 0)")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="materials whose name contains one of these words")
    args = parser.parse_args(argv)
    if args.seeds < 2:
        parser.error(f"--seeds: expected at least 2 (an interval needs two), got {args.seeds}")
    if args.first < 0:
        parser.error(f"--first: expected a non-negative seed, got {args.first}")
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    per_seed, summary = measure(list(range(args.first, args.first + args.seeds)), args.only)
    print(f"## PGHI's start against the random start, from the true magnitude "
          f"({time.strftime('%Y-%m-%d')}, {platform.machine()}, torch {torch.__version__}, "
          f"{time.perf_counter() - t0:.0f} s)\n")
    print("Effect = mean SC(random start) - mean SC(PGHI start); positive: PGHI closer.\n")
    print(markdown_table(per_seed, floatfmt=".4f").data)
    print()
    print(markdown_table(summary, floatfmt=".4f").data)


if __name__ == "__main__":
    main()
