"""The explorer's default model (issue 22): recipes compared on the synthetic default set.

Each arm is a representation, a KL weight and a model, trained like
:func:`sda_lab.training.cache.load_or_train_default` (the 300 clips of
``make_default_dataset(60)``, the default recipe's optimiser and epochs unless the arm says
otherwise). Scored on the training clips and on held-out synthetic clips
(``make_default_dataset(12, seed=1)``: the same five kinds, other random draws), each as eval-mode
MSE over the MSE of predicting the training set's mean mel
(:func:`sda_lab.training.diagnostics.mean_mel_baseline`); with the rate (raw KL), active units, the
epochs the collapse alarm's live state flagged, and what the explorer needs: the mean change of the
decoded mel for a 2-sd move of the top-ranked and the lowest-ranked dimension
(:meth:`sda_lab.interface.widgets.LatentExplorer.move_effect`, 4 start clips).

Rows are appended to a JSON-lines file; rows already there are not re-run::

    python -m benchmarks.bench_default_model --arms today db:1e-4 --seeds 0 1
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from .bench_own_audio import _append, _done, move_effects

ROOT = Path(__file__).resolve().parents[1]
_SEQ = dict(latent="sequence", time_halvings=2)
# arm -> (scale, KL weight, VAEConfig fields[, TrainConfig fields])
ARMS = {
    "db:2e-4:sc0.1": ("db", 2e-4, {}, {"spectral_convergence_weight": 0.1}),
    "today": ("log1p", 1e-3, {}),
    "log1p:1e-4": ("log1p", 1e-4, {}),
    "db:1e-3": ("db", 1e-3, {}),
    "db:1e-4": ("db", 1e-4, {}),
    "db:3e-4": ("db", 3e-4, {}),
    "db:2e-4": ("db", 2e-4, {}),
    "db:1e-4:seq96": ("db", 1e-4, {**_SEQ, "latent_dim": 96}),
    "log1p:1e-3:seq96": ("log1p", 1e-3, {**_SEQ, "latent_dim": 96}),
}


def run(arms, seeds, out: Path, epochs: int | None = None) -> list[dict]:
    import torch

    from sda_lab.data import make_default_dataset
    from sda_lab.interface.widgets import LatentExplorer
    from sda_lab.studies.dimensions import dimension_effects, rank_dimensions
    from sda_lab.training import recipes
    from sda_lab.training.diagnostics import mean_mel_baseline, reconstruct
    from sda_lab.representation.inverter import Inverter
    from sda_lab.training.audio_eval import evaluate_audio
    from sda_lab.training.loop import Sinks, train_run

    rows = _done(out)
    seen = {(r["arm"], r["seed"], r["epochs"]) for r in rows}
    train_clips = make_default_dataset(recipes.DEFAULT_CLIPS_PER_KIND)
    held_clips = make_default_dataset(12, seed=1)
    held_files = [f"{label}_{i}" for i, label in enumerate(held_clips.labels)]
    nb05_clips = make_default_dataset(8)  # notebook 05's 40 clips
    nb05_vowel = nb05_clips.labels.index("vowel")
    for arm in arms:
        scale, weight, fields, *train_fields = ARMS[arm]
        spec = recipes.DEFAULT_RECIPE.audio_spectrogram(scale)
        mels = spec.waveform_to_mel(train_clips.waveforms)  # (300, 1, 128, 94)
        held = spec.waveform_to_mel(held_clips.waveforms)  # (60, 1, 128, 94)
        nb05_mels = spec.waveform_to_mel(nb05_clips.waveforms)  # (40, 1, 128, 94)
        for seed in seeds:
            ep = epochs or recipes.DEFAULT_RECIPE.train.epochs
            if (arm, seed, ep) in seen:
                continue
            model_cfg = replace(recipes.DEFAULT_RECIPE.model, **fields)
            train_cfg = replace(recipes.DEFAULT_RECIPE.train, kl_weight=weight, seed=seed,
                                epochs=ep, **(train_fields[0] if train_fields else {}))
            t0 = time.perf_counter()
            model, h = train_run(model_cfg, train_cfg, mels, spectrogram=spec,
                                 sinks=Sinks(progress=False))
            seconds = time.perf_counter() - t0
            model = model.cpu().eval()
            ratio = {}
            for name, x in (("train", mels), ("held_out", held)):
                mse = reconstruct(model, x, keep=False)[0]
                ratio[name] = mse / mean_mel_baseline(mels, x)
            heard = evaluate_audio(model, spec, held_clips.waveforms, held_files,
                                   range(len(held_files)), mels, Inverter(spec),
                                   max_files=len(held_files), max_clips=1)
            top, low = move_effects(LatentExplorer(model, spec, mels[::5], None, show_map=False,
                                                   seed=seed))
            # notebook 05's check: every dimension from each of its 40 clips, ranked on them
            order, _, mu, sd = rank_dimensions(model, nb05_mels)
            fx = dimension_effects(model, mu, order, sd)  # (40, 64)
            per_start = fx[:, 0] / fx[:, -1]  # (40,)
            row = {"arm": arm, "seed": seed, "epochs": ep, "scale": scale, "kl_weight": weight,
                   "model": fields, "train_ratio": ratio["train"],
                   "held_out_ratio": ratio["held_out"], "raw_kl": h.raw_kl[-1],
                   "active_units": h.active_units[-1],
                   "alarm_epochs": sum(1 for a in h.alarms if a), "epochs_run": len(h.epoch),
                   "explorer_top": top, "explorer_lowest": low,
                   "nb05_mean_ratio": float(fx[:, 0].mean() / fx[:, -1].mean()),
                   "nb05_min_start_ratio": float(per_start.min()),
                   "nb05_vowel_ratio": float(per_start[nb05_vowel]),
                   "held_out_sc": heard.mean("model", "spectral_convergence"),
                   "held_out_sc_mel_round_trip": heard.mean("mel_round_trip",
                                                            "spectral_convergence"),
                   "held_out_level_db": heard.mean("model", "level_db"),
                   "held_out_level_db_worst": heard.worst_level_db(),
                   "seconds": seconds, "threads": torch.get_num_threads()}
            _append(out, row)
            rows.append(row)
            print(f"{arm} seed {seed}: train {row['train_ratio']:.3f}x, held-out "
                  f"{row['held_out_ratio']:.3f}x, raw KL {row['raw_kl']:.1f}, "
                  f"{row['active_units']} active, held-out audio SC {row['held_out_sc']:.3f} "
                  f"(mel round trip {row['held_out_sc_mel_round_trip']:.3f}, level "
                  f"{row['held_out_level_db']:+.1f} dB), alarm in {row['alarm_epochs']} epochs, "
                  f"explorer top/lowest {row['explorer_top'] / max(row['explorer_lowest'], 1e-12):.1f}x, "
                  f"notebook 05's mean over 40 starts {row['nb05_mean_ratio']:.1f}x (from the vowel "
                  f"{row['nb05_vowel_ratio']:.1f}x, lowest start {row['nb05_min_start_ratio']:.1f}x), "
                  f"{seconds:.0f} s", flush=True)
    return rows


def _span(values) -> str:
    return f"[{values.min():.1f}, {values.max():.1f}]x" if values.notna().any() else "-"


def table(rows: list[dict]) -> str:
    import pandas as pd

    df = pd.DataFrame(rows)
    df["explorer_ratio"] = df["explorer_top"] / df["explorer_lowest"].clip(lower=1e-12)
    for col in ("nb05_mean_ratio", "nb05_vowel_ratio", "nb05_min_start_ratio"):
        if col not in df:  # rows written before notebook 05's check was measured
            df[col] = float("nan")
    lines = ["| arm | epochs | seeds | training / mean image, mean [min, max] | held-out synthetic "
             "/ mean image, mean [min, max] | raw KL (nats) | active units | epochs alarmed | "
             "explorer top / lowest, min | notebook 05: mean over 40 starts, [min, max] | from "
             "the vowel, [min, max] | lowest single start, min | s per run |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (arm, ep), g in df.groupby(["arm", "epochs"], sort=False):
        t, v = g["train_ratio"], g["held_out_ratio"]
        lines.append(f"| {arm} | {ep} | {len(g)} | {t.mean():.3f} [{t.min():.3f}, {t.max():.3f}] "
                     f"| {v.mean():.3f} [{v.min():.3f}, {v.max():.3f}] | {g['raw_kl'].mean():.1f} "
                     f"| {g['active_units'].mean():.0f} | {g['alarm_epochs'].mean():.1f} | "
                     f"{g['explorer_ratio'].min():.1f}x | {_span(g['nb05_mean_ratio'])} | "
                     f"{_span(g['nb05_vowel_ratio'])} | {g['nb05_min_start_ratio'].min():.1f}x | "
                     f"{g['seconds'].mean():.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arms", nargs="+", default=["today", "db:1e-4"], choices=sorted(ARMS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "default_model.jsonl")
    p.add_argument("--table", action="store_true", help="only print the table of --out")
    a = p.parse_args(argv)
    rows = _done(a.out) if a.table else run(a.arms, a.seeds, a.out, a.epochs)
    print(table(rows))


if __name__ == "__main__":
    main()
