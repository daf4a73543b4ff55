"""A run's own HiFi-GAN V2 vocoder against the run's own inversion, at CPU-minute marks.

One vocoder (:func:`sda_lab.training.vocoder.train_vocoder`) is trained on a COPY of RUN (the run
itself is never written) with one thread, its budget counted in CPU seconds of this process
(``time.process_time``: the figure holds on a shared machine). At each mark of
``--cpu-minutes`` it stops, is scored on the run's held-out files (the mel round trip as
``audio_eval`` scores audio: spectral convergence, log-spectral distance, level, at the level the
WAV is written) beside the run's own inversion (learned inverse mel or its start + PGHI + fast
Griffin-Lim) and the plain NNLS start (+ PGHI + fast Griffin-Lim), and resumes for the next
mark. One JSON line per mark is appended to ``--out``; marks already there (same run, config
and seed) are not re-run, and an interrupted training resumes from the copy's ``vocoder.pt``::

    OMP_NUM_THREADS=1 nice -n 5 python -m benchmarks.bench_vocoder /tmp/run300 \\
        --cpu-minutes 5 15 30 --out /tmp/voc/vocoder.jsonl
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd

from .bench_own_audio import _append, _done

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ("spectral_convergence", "log_spectral_distance_db", "level_db")
SHORT = {"spectral_convergence": "SC", "log_spectral_distance_db": "LSD dB", "level_db": "level dB"}


def work_copy(run: Path, work: Path) -> Path:
    """``run`` copied to ``work`` once (its files, no vocoder, no lock); an existing copy is
    reused (it holds the training to resume)."""
    if not (work / "metrics.json").is_file():
        shutil.copytree(run, work, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".lock", "vocoder.pt", "previous-run"))
    return work


def tag(config) -> str:
    """The settings that tell one benchmark's rows from another's."""
    return f"batch {config.batch_size}, adversarial from step {config.adversarial_start}"


def bench(run: Path, marks: list[float], out: Path, work: Path, config, seed: int = 0,
          max_files: int = 12, progress: bool = True) -> list[dict]:
    """Train to each CPU-minute mark in ``marks`` on a copy of ``run`` and score; rows
    appended to ``out`` (module docstring)."""
    import torch

    torch.set_num_threads(1)
    from sda_lab.representation.inverter import Inverter
    from sda_lab.representation.vocoder import VOCODER_FILE, load_vocoder
    from sda_lab.studies.generate import load_run
    from sda_lab.studies.vocoder import train_run_vocoder
    from sda_lab.training.audio_eval import evaluate_audio

    rows = _done(out)
    seen = {(r["run"], r["config"], r["seed"], r["cpu_minutes"]) for r in rows}
    todo = [m for m in sorted(marks) if (str(run), tag(config), seed, m) not in seen]
    if not todo:
        return rows
    copy = work_copy(run, work)
    loaded = load_run(copy)
    spec = loaded.spec
    indices = loaded.val_idx or loaded.train_idx
    nnls = evaluate_audio(loaded.model, spec, loaded.clips.waveforms, loaded.clips.files, indices,
                          loaded.train_mels, Inverter(spec),
                          on="validation" if loaded.val_idx else "training",
                          max_files=max_files, max_clips=config.eval_clips)
    for mark in todo:
        path = copy / VOCODER_FILE
        history = load_vocoder(path).history if path.is_file() else {}
        left = 60.0 * mark - history.get("cpu_seconds", 0.0)
        kw = (dict(budget_s=left) if left > 0 else dict(max_steps=history.get("steps", 0)))
        t0 = time.perf_counter()
        result = train_run_vocoder(copy, config, run=loaded, clock=time.process_time,
                                   generator=seed, resume=True, progress=progress,
                                   max_files=max_files, **kw)
        h = result.vocoder.history
        row = {"run": str(run), "config": tag(config), "seed": seed, "cpu_minutes": mark,
               "steps": h["steps"], "cpu_s": round(h["cpu_seconds"], 1),
               "wall_s": round(h["wall_seconds"], 1), "on": result.through_vocoder.on,
               "files": len(result.through_vocoder.files), "kept": result.kept,
               "inverter_name": result.through_inverter.inversion,
               "threads": torch.get_num_threads(), "call_wall_s": round(time.perf_counter() - t0, 1),
               "last_losses": h["losses"][-1] if h.get("losses") else None,
               "vocoder_config": asdict(result.vocoder.config)}
        for who, e in (("vocoder", result.through_vocoder), ("inverter", result.through_inverter),
                       ("nnls", nnls)):
            for f in FIGURES:
                row[f"{who}_{f}"] = e.mean("mel_round_trip", f)
        _append(out, row)
        rows.append(row)
        print(f"{mark:g} CPU min: {row['steps']} steps, vocoder SC "
              f"{row['vocoder_spectral_convergence']:.3f} vs inverter "
              f"{row['inverter_spectral_convergence']:.3f}; kept: {row['kept']}", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    """The rows as a markdown table: one line per mark, mean over held-out files."""
    out = []
    for r in rows:
        line = {"config": r["config"], "CPU min": r["cpu_minutes"], "steps": r["steps"],
                "CPU s": r["cpu_s"], "wall s": r["wall_s"]}
        for who in ("vocoder", "inverter", "nnls"):
            for f in FIGURES:
                line[f"{who} {SHORT[f]}"] = round(r[f"{who}_{f}"], 3)
        line["kept"] = r["kept"]
        out.append(line)
    frame = pd.DataFrame(out).astype(str)
    lines = [list(frame.columns), ["---"] * len(frame.columns), *frame.values.tolist()]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def main(argv=None) -> None:
    from sda_lab.representation.vocoder import VocoderConfig

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--cpu-minutes", nargs="+", type=float, default=[5.0, 15.0, 30.0])
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "vocoder.jsonl")
    p.add_argument("--work", type=Path, default=None,
                   help="where the copy of RUN is trained (default: beside --out, named by "
                        "the run and the settings)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=VocoderConfig.batch_size)
    p.add_argument("--adversarial-start", type=int, default=VocoderConfig.adversarial_start,
                   help="the step the discriminators join at (HiFi-GAN: 0; a large one: mel "
                        "L1 only within the budget)")
    p.add_argument("--max-files", type=int, default=12)
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if not (a.run / "metrics.json").is_file():
        p.error(f"RUN: expected a finished run folder (with metrics.json), got {a.run}")
    config = replace(VocoderConfig(), batch_size=a.batch_size,
                     adversarial_start=a.adversarial_start)
    work = a.work or a.out.parent / (f"{a.run.name}-vocoder-b{a.batch_size}-"
                                     f"adv{a.adversarial_start}-s{a.seed}")
    bench(a.run, a.cpu_minutes, a.out, work, config, a.seed, a.max_files, not a.quiet)
    rows = [r for r in _done(a.out) if r["run"] == str(a.run) and r["config"] == tag(config)
            and r["seed"] == a.seed]
    print(table(sorted(rows, key=lambda r: r["cpu_minutes"])))


if __name__ == "__main__":
    main()
