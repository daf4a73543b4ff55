"""What the ``train`` command writes and says when a run ends: ``metrics.json``
(:func:`run_metrics`) and the closing lines (:func:`closing_lines`)."""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import asdict
from pathlib import Path

from . import _options as opt

DEGENERATE_BASELINE = 1e-12  # a mean-mel MSE below this: every clip is the same mel
STILL_LEARNING = 0.1  # the mel MSE fell at least this much over a budget's last fifth
BUDGET_STOPS = ("max_steps:", "max_minutes:", "epochs:")


def _ratio(recon, baseline) -> tuple[float | None, str]:
    """recon / baseline, or ``None`` and the reason there is no ratio."""
    if recon is None:
        return None, "nothing held out for validation"
    if baseline is None:
        return None, "no baseline was computed"
    if baseline <= DEGENERATE_BASELINE:
        return None, (f"the mean-mel baseline is {baseline:.3g}: every clip is the training "
                      "set's mean mel, so no ratio is defined")
    return recon / baseline, ""


def _finite(x):
    """NaN/Inf -> None at any depth (dicts, lists), so metrics.json is strict JSON."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x if not isinstance(x, float) or math.isfinite(x) else None


def _fmt(x, spec: str = ".4g") -> str:
    return "n/a" if x is None else format(x, spec)


def audio_table(summary: dict) -> str:
    """The audio figures of :meth:`sda_lab.training.audio_eval.AudioEvaluation.summary` as the
    lines the CLI prints (one per path, then what the numbers mean)."""
    from ...training.audio_eval import MEANING

    n = summary["files_scored"]
    where = (opt.count(n, "held-out file") if summary["on"] == "validation"
             else f"{opt.count(n, 'training file')} (nothing was held out)")
    lines = [f"what the run sounds like, on {where}, through "
             f"{summary['inversion']}:",
             f"  {'':18} {'spectral conv.':>14} {'log-spectral dist.':>19} {'level':>9}"]
    steps = summary.get("posterior_steps", 0)
    for path, label in (("model", "through the model"), ("encoder_mean", "encoder's mean"),
                        ("mel_round_trip", "mel round trip"), ("average_sound", "average sound")):
        if path not in summary:
            continue
        f = summary[path]
        worst = (f" (worst file {f['level_db_worst_file']:+.1f} dB)"
                 if "level_db_worst_file" in f else "")
        lines.append(f"  {label:18} {f['spectral_convergence']:14.3f} "
                     f"{f['log_spectral_distance_db']:16.2f} dB {f['level_db']:+6.1f} dB{worst}")
    if "nothing_learned_sc" in summary:
        lines.append(f"  {'nothing learned':18} {summary['nothing_learned_sc']:14.3f}   "
                     "(per file, the average sound or silence, whichever is closer: what the "
                     "verdict measures from)")
    if steps:
        lines.append(f"  (through the model: each clip's posterior mean refined by {steps} "
                     "gradient steps on its own loss, as listen --through vae and blend play "
                     "it; the encoder's mean: its first guess, where the copying check and an "
                     "exported file place a clip)")
    lines.append(f"  ({MEANING})")
    return "\n".join(lines)


def run_metrics(result, clips, spec, folder: Path, record: dict, audio, verdict: dict,
                inverse_entry: dict, budget: dict | None, argv: list[str], wall_s: float,
                run_id: str) -> dict:
    """``metrics.json`` of a finished or interrupted run (strict JSON: NaN/Inf are null).

    ``record``: what the run records about its data (``train_files``, ``val_files``,
    ``same_recordings``: the groups of files that are one recording up to gain, ``fingerprints``,
    ``data_config``, ``seed``, ``budget``), as its checkpoints' ``extra``."""
    history = result.history
    val_recon = history.val_recon[-1] if history.val_recon else None
    train_ratio, train_note = _ratio(history.train_recon[-1], history.train_baseline)
    val_ratio, val_note = _ratio(val_recon, history.val_baseline)
    report = clips.report
    interrupted = history.stop_reason.startswith("interrupted")
    metrics = {
        "run_id": run_id,
        "folder": str(folder),
        "train_recon": history.train_recon[-1],
        "train_baseline": history.train_baseline,
        "train_ratio": train_ratio,
        "train_ratio_note": train_note,
        "val_recon": val_recon,
        "val_baseline": history.val_baseline,
        "val_ratio": val_ratio,
        "val_ratio_note": val_note,
        "active_units": history.active_units[-1],
        "n_train_clips": len(result.train_idx),
        "n_val_clips": len(result.val_idx),
        "val_files": record["val_files"],
        "train_files": record["train_files"],
        "same_recordings": record["same_recordings"],
        "fingerprints": record["fingerprints"],
        "data_config": record["data_config"],
        "audio": audio,
        "verdict": verdict,
        "mel_verdict": result.verdict(),
        "val_sc": history.val_sc[-1] if history.val_sc else None,
        "val_sc_baseline": history.val_sc_baseline,
        "stop_reason": history.stop_reason,
        "interrupted": interrupted,
        "epochs": history.epoch[-1] + 1,
        "steps": history.step_count,
        "best_epoch": history.best_epoch,
        "wall_s": wall_s,
        "train_s": sum(history.seconds),
        "budget": budget,
        "model_config": asdict(result.model_config),
        "train_config": asdict(result.train_config),
        "spectrogram_config": asdict(spec.config),
        "report": json.loads(report.to_json(orient="records")) if report is not None else [],
        "history": asdict(history),
        "inverse_mel": inverse_entry,
        "argv": list(argv),
    }
    return {k: _finite(v) for k, v in metrics.items()}


def closing_lines(metrics: dict, folder: str, out: str, quiet: bool = False) -> list[str]:
    """What the run ended as, in the order a user reads it: the audio figures, the model's own
    domain (the progress bar's last reading among them), the verdict, and how to train on when
    it was still learning (:func:`still_learning_line`; ``folder`` and ``out`` as the command
    was given them; ``quiet``: no progress bar was shown, so none is named)."""
    lines = []
    if metrics["audio"] is not None:
        lines.append(audio_table(metrics["audio"]))
    sc, sc_base = metrics["val_sc"], metrics["val_sc_baseline"]
    hist = metrics["history"]
    if sc is None and hist.get("train_sc"):
        sc, sc_base = hist["train_sc"][-1], hist.get("train_sc_baseline")
    bar = "" if quiet else " (the progress bar's last reading)"
    spectral = (f"spectral error {sc / sc_base:.2f}x the average mel's{bar}, "
                if sc is not None and sc_base else "")
    side = "held-out" if metrics["val_recon"] is not None else "training"
    val = (f"mel MSE {_fmt(metrics['val_ratio'], '.2f')}x"
           f"{', ' + metrics['val_ratio_note'] if metrics['val_ratio_note'] else ''}"
           if metrics["val_recon"] is not None else "nothing held out for validation")
    lines.append(f"in the model's own domain (what it minimises, not what the verdict reads), on "
                 f"{side} clips: {spectral}"
                 f"{val}; training mel MSE {_fmt(metrics['train_ratio'], '.2f')}x"
                 f"{', ' + metrics['train_ratio_note'] if metrics['train_ratio_note'] else ''}"
                 f" the average mel's (each against its own set's average mel); "
                 f"{metrics['active_units']} active latent units")
    lines.append(f"verdict: {metrics['verdict']['sentence']}")
    learning = still_learning_line(metrics, folder, out)
    if learning:
        lines.append(learning)
    return lines


def recent_fall(curve: list[float], steps: list[int], share: float = 0.2) -> float | None:
    """How much a per-epoch error ``curve`` fell over the last ``share`` of the optimiser
    ``steps`` (cumulative, one per epoch), as a fraction of where it stood (0.16: 16% lower at
    the end; negative where it rose); None with fewer than 5 epochs or none ended before that
    last share began."""
    if len(curve) < 5 or len(steps) < len(curve) or not steps[len(curve) - 1]:
        return None
    end = steps[len(curve) - 1]
    before = [i for i, n in enumerate(steps[:len(curve)]) if n <= (1.0 - share) * end]
    if not before:
        return None
    then, now = curve[before[-1]], curve[-1]  # None where metrics.json held NaN or Inf
    if then is None or now is None or not (math.isfinite(then) and math.isfinite(now)) \
            or then <= 0:
        return None
    return 1.0 - now / then


def still_learning_line(metrics: dict, folder: str, out: str) -> str | None:
    """One line when a budget ended the run while its mel MSE was still falling (at least
    :data:`STILL_LEARNING` over the last fifth of the steps), with the command that trains on
    (``folder`` and ``out`` as the command was given them); else None."""
    if not str(metrics.get("stop_reason") or "").startswith(BUDGET_STOPS):
        return None
    history = metrics["history"]
    fall = recent_fall(history["val_recon"] or history["train_recon"], history["steps"])
    if fall is None or not STILL_LEARNING <= fall <= 1.0:  # NaN too
        return None
    side = "held-out" if metrics["val_recon"] is not None else "training"
    command = (f"python -m sda_lab train {shlex.quote(str(folder))} --out "
               f"{shlex.quote(str(out))} --resume --max-minutes 5")
    return (f"still learning when the budget ended: the {side} mel MSE fell {fall:.0%} over the "
            f"last fifth of the steps; to train on from here: {command}")


def stopped_line(stop_reason: str) -> str:
    """``training stopped by ...`` in the CLI's flag names (``training interrupted: ...`` for a
    Ctrl-C)."""
    if stop_reason.startswith("interrupted: "):
        return f"training {stop_reason}"
    return f"training stopped by {opt.in_flag_terms(stop_reason)}"


def check_written(out, run_id: str, inverse_entry: dict) -> list[Path]:
    """The run's files, after proving ``metrics.json`` on disk is this run's: one line when
    another process replaced it (nothing is reported as written then)."""
    from ...core._io import WriteError

    decoded = (inverse_entry.get("decoded") or {}).get("kept")
    names = ([out.checkpoint, out.best] + ([out.inverse_mel] if inverse_entry.get("trained")
                                           else [])
             + ([out.decoded_inverse_mel] if decoded else []) + [out.metrics])
    missing = [p.name for p in names if not p.is_file()]
    on_disk = (out.read_metrics() or {}).get("run_id")
    if missing or on_disk != run_id:
        raise WriteError(f"--out: {out.path} changed under this run (another process wrote "
                         f"into it{': ' + ', '.join(missing) + ' missing' if missing else ''}); "
                         "its files are not this run's, so nothing is reported as written")
    return names
