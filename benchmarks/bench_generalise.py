"""What closes the gap between training and held-out error on small real sets (issue 22).

Arms are a recipe change each (a regulariser, an augmentation, a narrower bottleneck, a latent
sequence along time), trained from the own-audio recipe
(:data:`sda_lab.training.recipes.OWN_AUDIO_RECIPE`) for a fixed number of optimiser steps on one
fold: one whole file held out (``--hold-out``; on the instrument melodies a file is an instrument),
or ``--val-fraction`` of the files chosen by the seed. The figure of merit is the eval-mode MSE on
the held-out files divided by the MSE of predicting the training set's mean mel on them
(:meth:`sda_lab.training.history.History.ratios`), and the same for training clips;
``best_val_ratio`` is the lowest held-out ratio over the epochs (early stopping on validation;
optimistic, since it chooses on the files it scores).

Arms are changes to the recipe *of the day* (``OWN_AUDIO_RECIPE`` as it stands): section 14's
rows in ``benchmarks/RESULTS.md`` were measured on the recipe before section 15 (sequence 192,
no mel shift, no weight average: the arm ``section14``), section 15's on that one too, so
``base`` now means section 15's shipped recipe.

Rows are appended to a JSON-lines file as they finish and rows already there are not re-run, so
an interrupted measurement resumes. Run alone on a quiet machine::

    python -m benchmarks.bench_generalise FOLDER --arms base seq96 dropout --hold-out piano \\
        trumpet nylon_guitar --seeds 0 --max-steps 400
    python -m benchmarks.bench_generalise --table benchmarks/generalise.jsonl
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

from sda_lab.data.augment import NO_WAVEFORM as NO_WAVE, SPEC_AUGMENT

from .bench_own_audio import _append, _done

_SEQ = dict(latent="sequence", time_halvings=2)
# arm -> (VAEConfig fields, TrainConfig fields, AugmentConfig fields or None)
ARMS: dict[str, tuple[dict, dict, dict | None]] = {
    "base": ({}, {}, None),
    "dropout": ({"dropout": 0.2}, {}, None),
    "weight_decay": ({}, {"weight_decay": 0.1}, None),
    "specaugment": ({}, {}, {**NO_WAVE, **SPEC_AUGMENT}),
    "mel_shift": ({}, {}, {**NO_WAVE, "mel_shift": 4}),
    "mixup": ({}, {}, {**NO_WAVE, "mixup": 0.5}),
    "wave_augment": ({}, {}, {}),
    "narrow16": ({"latent_dim": 16}, {}, None),
    "seq96": ({**_SEQ, "latent_dim": 96}, {}, None),
    "seq192": ({**_SEQ, "latent_dim": 192}, {}, None),
    "seq48": ({**_SEQ, "latent_dim": 48}, {}, None),
    "seq384": ({**_SEQ, "latent_dim": 384}, {}, None),
    "seq96_12hz": ({"latent": "sequence", "time_halvings": 3, "latent_dim": 96}, {}, None),
    "seq96_specaugment": ({**_SEQ, "latent_dim": 96}, {},
                          {**NO_WAVE, **SPEC_AUGMENT}),
    "seq96_mel_shift": ({**_SEQ, "latent_dim": 96}, {}, {**NO_WAVE, "mel_shift": 4}),
    "seq96_dropout": ({**_SEQ, "latent_dim": 96, "dropout": 0.2}, {}, None),
    "seq96_kl1e-3": ({**_SEQ, "latent_dim": 96}, {"kl_weight": 1e-3}, None),
    "kl1e-5": ({}, {"kl_weight": 1e-5}, None),
    "seq192_kl1e-5": ({**_SEQ, "latent_dim": 192}, {"kl_weight": 1e-5}, None),
    "seq384_kl1e-5": ({**_SEQ, "latent_dim": 384}, {"kl_weight": 1e-5}, None),
    "seq192_kl1e-6": ({**_SEQ, "latent_dim": 192}, {"kl_weight": 1e-6}, None),
    "seq192_kl1e-5_mel_shift": ({**_SEQ, "latent_dim": 192}, {"kl_weight": 1e-5},
                                {**NO_WAVE, "mel_shift": 4}),
    "seq192_kl1e-5_dropout": ({**_SEQ, "latent_dim": 192, "dropout": 0.2}, {"kl_weight": 1e-5},
                              None),
    "seq192_kl1e-5_specaugment": ({**_SEQ, "latent_dim": 192}, {"kl_weight": 1e-5},
                                  {**NO_WAVE, **SPEC_AUGMENT}),
    # weight averaging (TrainConfig.ema_decay), on the shipped recipe
    "ema0.99": ({}, {"ema_decay": 0.99}, None),
    "ema0.998": ({}, {"ema_decay": 0.998}, None),
    "ema0.99_mel_shift": ({}, {"ema_decay": 0.99}, {**NO_WAVE, "mel_shift": 4}),
    "ema0.99_specaugment": ({}, {"ema_decay": 0.99}, {**NO_WAVE, **SPEC_AUGMENT}),
    "ema0.99_dropout": ({"dropout": 0.2}, {"ema_decay": 0.99}, None),
    # the recipe section 14 shipped (RESULTS.md section 15's "section 14's recipe" row)
    "section14": ({**_SEQ, "latent_dim": 192}, {"augment": None, "ema_decay": None}, None),
    "ema0.99_mel_shift_kl1e-6": ({}, {"ema_decay": 0.99, "kl_weight": 1e-6},
                                 {**NO_WAVE, "mel_shift": 4}),
    "ema0.99_mel_shift_seq384": ({**_SEQ, "latent_dim": 384}, {"ema_decay": 0.99},
                                 {**NO_WAVE, "mel_shift": 4}),
}


def arm_configs(arm: str, max_steps: int):
    """``(VAEConfig, TrainConfig)`` of ``arm`` on top of the own-audio recipe."""
    from sda_lab.data.augment import AugmentConfig
    from sda_lab.training.recipes import OWN_AUDIO_RECIPE

    model_fields, train_fields, aug = ARMS[arm]
    model, train = OWN_AUDIO_RECIPE.configs(epochs=None, max_steps=max_steps, **train_fields)
    model = replace(model, **model_fields)
    if aug is not None:
        train = replace(train, augment=AugmentConfig(**aug))
    return model, train


def run(folder, arms, folds, seeds, max_steps: int, out: Path, val_fraction: float = 0.2
        ) -> list[dict]:
    """Train every (arm, fold, seed); a fold is a file name to hold out or None (the seed's
    split of ``val_fraction``). Rows appended to ``out`` as they finish."""
    import torch

    from sda_lab.data import load_folder
    from sda_lab.training.own_audio import clips_to_mels, train_on_clips
    from sda_lab.training.recipes import OWN_AUDIO_RECIPE

    rows = _done(out)
    seen = {(r["folder"], r["arm"], r["fold"], r["seed"], r["max_steps"]) for r in rows}
    clips = load_folder(folder)
    spec = OWN_AUDIO_RECIPE.audio_spectrogram()
    mels = clips_to_mels(spec, clips.waveforms)  # (N, 1, n_mels, T)
    for arm in arms:
        for fold in folds:
            for seed in seeds:
                key = (str(folder), arm, fold, seed, max_steps)
                if key in seen:
                    continue
                model_cfg, train_cfg = arm_configs(arm, max_steps)
                t0 = time.perf_counter()
                r = train_on_clips(clips, model_cfg, train_cfg, seed=seed, spectrogram=spec,
                                   mels=mels, progress=False, val_fraction=val_fraction,
                                   val_files=None if fold is None else [fold])
                h = r.history
                ratios = h.ratios()
                row = {"folder": str(folder), "arm": arm, "fold": fold, "seed": seed,
                       "max_steps": max_steps, "val_files": r.val_files,
                       "val_ratio": ratios.get("val"), "train_ratio": ratios.get("train"),
                       "best_val_ratio": min(h.val_recon) / h.val_baseline,
                       "val_curve": [v / h.val_baseline for v in h.val_recon],
                       "steps_curve": list(h.steps),
                       "active_units": h.active_units[-1], "raw_kl": h.raw_kl[-1],
                       "params": sum(p.numel() for p in r.model.parameters()),
                       "latent_dim": r.model.config.latent_dim,
                       "seconds": time.perf_counter() - t0, "threads": torch.get_num_threads(),
                       "model": asdict(model_cfg)}
                _append(out, row)
                rows.append(row)
                print(f"{Path(folder).name} {arm} fold {fold} seed {seed}: val "
                      f"{row['val_ratio']:.3f}x (best {row['best_val_ratio']:.3f}x), train "
                      f"{row['train_ratio']:.3f}x, {row['active_units']} active, raw KL "
                      f"{row['raw_kl']:.0f}, {row['seconds']:.0f} s", flush=True)
    return rows


def paired_table(rows: list[dict], baseline: str = "base") -> str:
    """Per arm: held-out ratio mean [min, max] over runs, its difference from ``baseline``
    paired by (fold, seed) with a t 95% interval, the training ratio and the rate."""
    from scipy import stats

    df = pd.DataFrame(rows)
    df["folder"] = df["folder"].map(lambda p: Path(p).name)
    df["fold"] = df["fold"].fillna("split")
    key = ["folder", "max_steps", "fold", "seed"]
    base = df[df["arm"] == baseline].set_index(key)["val_ratio"]
    lines = ["| folder | steps | arm | runs | held-out / mean image, mean [min, max] | minus base, "
             "mean [95% CI] | best epoch held-out | training / mean image | raw KL (nats) | "
             "active units | s per run |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (folder, steps, arm), g in df.groupby(["folder", "max_steps", "arm"], sort=False):
        g = g.set_index(key)
        common = g.index.intersection(base.index)
        diff = (g.loc[common, "val_ratio"] - base.loc[common]) if arm != baseline else None
        if diff is not None and len(diff) > 1:
            half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / len(diff) ** 0.5
            d = f"{diff.mean():+.3f} [{diff.mean() - half:+.3f}, {diff.mean() + half:+.3f}]"
        elif diff is not None and len(diff) == 1:
            d = f"{diff.mean():+.3f} (1 run)"
        else:
            d = ""
        v = g["val_ratio"]
        lines.append(f"| {folder} | {steps} | {arm} | {len(g)} | {v.mean():.3f} [{v.min():.3f}, "
                     f"{v.max():.3f}] | {d} | {g['best_val_ratio'].mean():.3f} | "
                     f"{g['train_ratio'].mean():.3f} | {g['raw_kl'].mean():.0f} | "
                     f"{g['active_units'].mean():.0f} | {g['seconds'].mean():.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder", nargs="?")
    p.add_argument("--arms", nargs="+", default=["base", "seq96"], choices=sorted(ARMS))
    p.add_argument("--hold-out", nargs="+", default=None,
                   help="file names, one fold each (default: the seed's split)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--max-steps", type=int, default=400)
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "generalise.jsonl")
    p.add_argument("--table", type=Path, default=None, help="only print the table of a file")
    a = p.parse_args(argv)
    if a.table is not None:
        print(paired_table(_done(a.table)))
        return
    if a.folder is None:
        p.error("a FOLDER to train on is required (or --table FILE)")
    rows = run(a.folder, a.arms, a.hold_out or [None], a.seeds, a.max_steps, a.out,
               a.val_fraction)
    print(paired_table([r for r in rows if r["folder"] == str(a.folder)]))


if __name__ == "__main__":
    main()
