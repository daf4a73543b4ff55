"""The own-audio recipe on real recordings: held-out-file distortion against the mean image.

Two parts:

- ``choose``: arms (mel representation x KL weight) x seeds on a folder, each run a fixed number
  of optimiser steps (reproducible, unlike a minute budget). Each seed also picks the held-out
  files (``split_by_file``), so the spread covers both initialisation and which files are unseen.
  The figure of merit is the validation MSE on held-out files divided by the MSE of predicting
  the training set's mean mel on them (below 1: the model learned something that transfers).
- ``augment``: augmentation on and off, paired by seed
  (``sda_lab.training.own_audio.augmentation_effect``), printed as the markdown table notebook 06
  shows.
- ``cli``: the shipped command itself, ``python -m sda_lab train FOLDER --out DIR --max-minutes
  M --seed S``, one subprocess per folder and seed, read back from DIR/metrics.json.

Rows are appended to a JSON-lines file as they finish, and rows already there are not re-run, so
an interrupted measurement resumes. Run alone on a quiet machine (training is CPU-bound)::

    python -m benchmarks.bench_own_audio choose ../shared/audio/instruments \\
        --arms log1p:1e-3 db:1e-3 db:1e-4 --seeds 0 1 2 --max-steps 300
    python -m benchmarks.bench_own_audio cli ../shared/audio/drum-one-shots --minutes 5 --seeds 0
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _done(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _append(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def parse_arm(text: str) -> tuple[str, float]:
    """``"db:1e-4"`` -> ``("db", 1e-4)``."""
    scale, _, weight = text.partition(":")
    if scale not in ("log1p", "db") or not weight:
        raise argparse.ArgumentTypeError(f"expected SCALE:KL_WEIGHT with SCALE log1p or db, "
                                         f"got {text!r}")
    return scale, float(weight)


def choose(folders, arms, seeds, max_steps: int, out: Path) -> list[dict]:
    """Train every (folder, arm, seed) for ``max_steps`` steps; rows appended to ``out``."""
    import torch

    from sda_lab.data import load_folder
    from sda_lab.training.own_audio import clips_to_mels, train_on_clips
    from sda_lab.training.recipes import OWN_AUDIO_RECIPE

    rows = _done(out)
    seen = {(r["folder"], r["scale"], r["kl_weight"], r["seed"], r["max_steps"]) for r in rows}
    for folder in folders:
        clips = load_folder(folder)
        for scale, weight in arms:
            spec = OWN_AUDIO_RECIPE.audio_spectrogram(scale)
            mels = clips_to_mels(spec, clips.waveforms)  # (N, 1, n_mels, T)
            for seed in seeds:
                key = (str(folder), scale, weight, seed, max_steps)
                if key in seen:
                    continue
                _, cfg = OWN_AUDIO_RECIPE.configs(epochs=None, max_steps=max_steps,
                                                  kl_weight=weight)
                t0 = time.perf_counter()
                run = train_on_clips(clips, train_config=cfg, seed=seed, spectrogram=spec,
                                     mels=mels, progress=False)
                h = run.history
                row = {"folder": str(folder), "scale": scale, "kl_weight": weight, "seed": seed,
                       "max_steps": max_steps, "val_files": run.val_files,
                       "val_ratio": h.ratios().get("val"), "train_ratio": h.ratios().get("train"),
                       "best_val_ratio": min(h.val_recon) / h.val_baseline,
                       "active_units": h.active_units[-1], "raw_kl": h.raw_kl[-1],
                       "alarm": h.alarm is not None, "seconds": time.perf_counter() - t0,
                       "threads": torch.get_num_threads()}
                _append(out, row)
                rows.append(row)
                print(f"{Path(folder).name} {scale}:{weight:g} seed {seed}: "
                      f"val {row['val_ratio']:.3f}x, train {row['train_ratio']:.3f}x, "
                      f"{row['active_units']} active units, {row['seconds']:.0f} s", flush=True)
    return rows


def explorer_effects(checkpoint: Path, folder, starts: int = 4) -> tuple[float, float]:
    """Mean |change| of the decoded mel for a 2-sd move of the top- and the lowest-ranked
    latent dimension (``LatentExplorer.move_effect``, the slider path), averaged over ``starts``
    clips spread through the folder."""
    from sda_lab.interface.widgets import LatentExplorer

    return move_effects(LatentExplorer.from_checkpoint(checkpoint, folder, show_map=False), starts)


def move_effects(ex, starts: int = 4) -> tuple[float, float]:
    """:func:`explorer_effects` on an open :class:`~sda_lab.interface.widgets.LatentExplorer`
    ``ex``."""
    import numpy as np

    last = len(ex.sliders) - 1
    top, low = [], []
    for i in np.linspace(0, len(ex.mu) - 1, starts).round().astype(int):
        ex.set_start(("clip", int(i)))
        top.append(ex.move_effect(0))
        low.append(ex.move_effect(last))
    return float(np.mean(top)), float(np.mean(low))


def synthetic_folder(folder: Path, clips_per_kind: int = 10, seed: int = 7) -> Path:
    """The synthetic default set's five kinds written as one WAV file per clip (other draws
    than the default model's: ``seed``), so the command can hold out files of it."""
    import soundfile as sf

    from sda_lab.data import make_default_dataset

    folder.mkdir(parents=True, exist_ok=True)
    clips = make_default_dataset(clips_per_kind, seed=seed)
    for i, (wave, label) in enumerate(zip(clips.waveforms, clips.labels)):
        sf.write(folder / f"{label}_{i:03d}.wav", wave[0].numpy(), 48_000, subtype="FLOAT")
    return folder


def cli(folders, seeds, minutes: float, out: Path, extra: list[str] | None = None,
        max_steps: int | None = None) -> list[dict]:
    """Run the shipped command per folder and seed; rows appended to ``out``. ``max_steps``:
    a step budget for training instead of the minutes (the same work on a loaded machine)."""
    rows = _done(out)
    budget = ["--max-steps", str(max_steps)] if max_steps else ["--max-minutes", str(minutes)]
    seen = {(r["folder"], r["seed"], r["minutes"], tuple(r["extra"])) for r in rows}
    extra = list(extra or []) + (budget if max_steps else [])
    for folder in folders:
        for seed in seeds:
            if (str(folder), seed, minutes, tuple(extra)) in seen:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                cmd = [sys.executable, "-m", "sda_lab", "train", str(folder), "--out", tmp,
                       *(() if max_steps else budget), "--seed", str(seed), "--quiet", *extra]
                proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
                if proc.returncode != 0:
                    raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr}")
                m = json.loads((Path(tmp) / "metrics.json").read_text())
                top, low = explorer_effects(Path(tmp) / "checkpoint.pt", folder)
            row = {"folder": str(folder), "seed": seed, "minutes": minutes, "extra": extra,
                   "scale": m["spectrogram_config"]["scale"],
                   "kl_weight": m["train_config"]["kl_weight"], "val_files": m["val_files"],
                   "val_ratio": m["val_ratio"], "train_ratio": m["train_ratio"],
                   "active_units": m["active_units"], "steps": m["steps"],
                   "verdict": m["verdict"]["kind"], "wall_s": m["wall_s"],
                   "sc_model": m["audio"]["model"]["spectral_convergence"],
                   "sc_encoder_mean": m["audio"].get("encoder_mean", m["audio"]["model"])[
                       "spectral_convergence"],
                   "posterior_steps": m["audio"].get("posterior_steps", 0),
                   "sc_mel": m["audio"]["mel_round_trip"]["spectral_convergence"],
                   "sc_average": m["audio"]["average_sound"]["spectral_convergence"],
                   "lsd_model": m["audio"]["model"]["log_spectral_distance_db"],
                   "lsd_mel": m["audio"]["mel_round_trip"]["log_spectral_distance_db"],
                   "level_db": m["audio"]["model"]["level_db"],
                   "level_db_worst": m["audio"]["model"]["level_db_worst_file"],
                   "files": m["audio"]["files"], "inversion": m["audio"]["inversion"],
                   "explorer_top": top, "explorer_lowest": low, "explorer_ratio": top / low}
            _append(out, row)
            rows.append(row)
            print(f"{Path(folder).name} seed {seed}: {row['steps']} steps in {minutes:g} min, "
                  f"val {row['val_ratio']:.3f}x, train {row['train_ratio']:.3f}x "
                  f"({row['scale']}, KL weight {row['kl_weight']:g}, held out "
                  f"{', '.join(row['val_files'])}); heard: SC {row['sc_model']:.3f} through the "
                  f"model vs {row['sc_mel']:.3f} mel round trip ({row['sc_model'] / row['sc_mel']:.2f}x; "
                  f"encoder's mean {row['sc_encoder_mean']:.3f}), "
                  f"level {row['level_db']:+.1f} dB (worst {row['level_db_worst']:+.1f}), "
                  f"{row['verdict']}; explorer: top dimension moves the mel "
                  f"{row['explorer_ratio']:.1f}x more than the lowest", flush=True)
    return rows


def table(rows: list[dict], by: list[str]) -> str:
    """Mean [min, max] of the held-out ratio per group, with seeds and active units."""
    df = pd.DataFrame(rows)
    df["folder"] = df["folder"].map(lambda p: Path(p).name)
    g = df.groupby(by, sort=False)
    out = g.agg(seeds=("seed", "count"), val_mean=("val_ratio", "mean"),
                val_min=("val_ratio", "min"), val_max=("val_ratio", "max"),
                train_mean=("train_ratio", "mean"), active_units=("active_units", "mean"))
    if "explorer_ratio" in df:
        out["explorer_ratio_min"] = g["explorer_ratio"].min()
    return out.round(3).to_string()


def augment_table(folder, seeds, max_steps: int) -> str:
    """Validation error / baseline with augmentation off and on, per seed (paired)."""
    from sda_lab.data import load_folder
    from sda_lab.training.own_audio import augmentation_effect

    df = augmentation_effect(load_folder(folder), seeds=seeds, max_steps=max_steps)
    wide = df.pivot(index="seed", columns="augment", values="val_ratio")
    diff = wide["on"] - wide["off"]
    lines = [f"**{max_steps} steps**", "", "| seed | val ratio, off | val ratio, on | on - off |",
             "|---|---|---|---|"]
    lines += [f"| {s} | {wide.loc[s, 'off']:.3f} | {wide.loc[s, 'on']:.3f} | {diff[s]:+.3f} |"
              for s in wide.index]
    lines.append(f"| mean (sd) | {wide['off'].mean():.3f} | {wide['on'].mean():.3f} | "
                 f"{diff.mean():+.3f} ({diff.std():.3f}) |")
    below = int((df["val_ratio"] < 0.9).sum())
    lines += ["", f"Augmentation lowered the ratio in {int((diff < 0).sum())} of {len(diff)} "
              f"seeds; runs below 0.9 (clearly better than the average): {below} of {len(df)}; "
              f"alarm fired in {int(df['alarm'].sum())} of {len(df)}."]
    return "\n".join(lines) + "\n"


def real_folders() -> list[Path]:
    """The real-recording folders beside the checkout (``../shared/audio/*``), else the bundled
    examples."""
    shared = ROOT.parent / "shared" / "audio"
    found = sorted(p for p in shared.glob("*") if p.is_dir()) if shared.is_dir() else []
    return found or [ROOT / "data" / "examples"]


def arm_of(row: dict) -> str:
    """The options a row's run was given beyond its budget (``"shipped"``: none)."""
    extra, out, skip = list(row["extra"]), [], False
    for word in extra:
        if skip:
            skip = False
        elif word in ("--max-steps", "--max-minutes"):
            skip = True
        else:
            out.append(word)
    return " ".join(out) or "shipped"


def heard_table(rows: list[dict]) -> str:
    """The VAE path against the mel round trip per folder, options and seed, on held-out files,
    as markdown: spectral convergence (their ratio: the issue's target is at most 1.5x), the
    share of the way from nothing learned to the mel round trip and the verdict (both as
    :func:`sda_lab.training.audio_eval.judge` reads the stored per-file figures),
    log-spectral distance and the level (mean and the worst file; the target is within 3 dB on
    every file)."""
    from sda_lab.training.audio_eval import AudioEvaluation, judge

    lines = ["| folder | options | seed | held-out files | steps | SC through the model | SC mel "
             "round trip | ratio | share of the way | LSD model / mel (dB) | level mean, worst "
             "file (dB) | mel MSE / mean image | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    df = pd.DataFrame(rows)
    df["folder"] = df["folder"].map(lambda p: Path(p).name)
    df["options"] = [arm_of(r) for r in rows]
    df["ratio"] = df["sc_model"] / df["sc_mel"]
    # the verdict as this version judges the stored per-file figures (rows may predate it)
    heard = [AudioEvaluation(pd.DataFrame(r["files"]), "validation", r["inversion"], 0.0)
             for r in rows]
    df["share"] = [ev.share for ev in heard]
    df["verdict"] = [judge(ev, r["active_units"]).kind for ev, r in zip(heard, rows)]
    for r in df.itertuples():
        lines.append(f"| {r.folder} | {r.options} | {r.seed} | {len(r.files)} | {r.steps} | "
                     f"{r.sc_model:.3f} | {r.sc_mel:.3f} | {r.ratio:.2f}x | {r.share:.2f} | "
                     f"{r.lsd_model:.1f} / {r.lsd_mel:.1f} | {r.level_db:+.1f}, "
                     f"{r.level_db_worst:+.1f} | {r.val_ratio:.3f} | {r.verdict} |")
    lines += ["", "| folder | options | seeds | ratio, mean [min, max] | level, worst file over "
              "seeds (dB) |", "|---|---|---|---|---|"]
    for (folder, options), g in df.groupby(["folder", "options"], sort=False):
        lines.append(f"| {folder} | {options} | {len(g)} | {g['ratio'].mean():.2f} "
                     f"[{g['ratio'].min():.2f}, {g['ratio'].max():.2f}] | "
                     f"{g['level_db_worst'].min():+.1f} |")
    return "\n".join(lines) + "\n"


def section(folders=None, seeds=(0,), minutes: float = 5.0, max_steps: int | None = None) -> str:
    """``make bench``'s section: the shipped command on each real folder and on the synthetic
    set, heard on held-out files, as markdown tables."""
    tmp = Path(tempfile.mkdtemp())
    folders = list(folders or real_folders()) + [synthetic_folder(tmp / "synthetic")]
    rows = cli(folders, list(seeds), minutes, tmp / "cli.jsonl", max_steps=max_steps)
    budget = f"--max-steps {max_steps}" if max_steps else f"--max-minutes {minutes:g}"
    return (f"`python -m sda_lab train FOLDER {budget} --seed S` with the shipped recipe; "
            "held-out files chosen by the seed, heard through the run's own inversion.\n\n"
            + heard_table(rows))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="part", required=True)
    c = sub.add_parser("choose")
    c.add_argument("folders", nargs="+")
    c.add_argument("--arms", nargs="+", type=parse_arm, default=[("log1p", 1e-3), ("db", 1e-3)])
    c.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    c.add_argument("--max-steps", type=int, default=300)
    c.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "own_audio_choose.jsonl")
    g = sub.add_parser("augment")
    g.add_argument("folder")
    g.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    g.add_argument("--max-steps", nargs="+", type=int, default=[80, 250])
    t = sub.add_parser("cli")
    t.add_argument("folders", nargs="+")
    t.add_argument("--seeds", nargs="+", type=int, default=[0])
    t.add_argument("--minutes", type=float, default=5.0)
    t.add_argument("--max-steps", type=int, default=None,
                   help="a step budget instead of --minutes (900: the 5-minute budget's steps "
                        "on a quiet 2-core machine)")
    t.add_argument("--synthetic", action="store_true",
                   help="also the synthetic set written as files (10 clips per kind)")
    t.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                   help="further options for sda_lab train (last)")
    t.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "own_audio_cli.jsonl")
    a = p.parse_args(argv)
    if a.part == "augment":
        for n in a.max_steps:
            print(augment_table(a.folder, a.seeds, n), flush=True)
    elif a.part == "choose":
        rows = choose(a.folders, a.arms, a.seeds, a.max_steps, a.out)
        print(table(rows, ["folder", "max_steps", "scale", "kl_weight"]))
    else:
        folders = list(a.folders)
        if a.synthetic:
            folders.append(synthetic_folder(a.out.parent / "synthetic"))
        rows = cli(folders, a.seeds, a.minutes, a.out, a.extra, a.max_steps)
        print(heard_table(rows))
        print(table(rows, ["folder", "minutes", "scale", "kl_weight"]))


if __name__ == "__main__":
    main()
