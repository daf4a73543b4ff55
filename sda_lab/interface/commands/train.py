"""``python -m sda_lab train FOLDER --out DIR``: the own-audio recipe on a folder of audio.

Order of work, so nothing long starts before every check passed and no finished run is lost:

1. options: each parsed by its type in :mod:`sda_lab.interface.commands._options` (one line naming
   the flag); the recipe's configs and the representation are built from them (their errors are
   rewritten to the flags);
2. ``--out``: a writable folder (:func:`sda_lab.core._io.check_writable_dir`) that holds no earlier
   run (:data:`RUN_FILES`) unless ``--overwrite`` is given;
3. the folder is loaded (:func:`sda_lab.data.load_folder`), split by file once
   (:func:`sda_lab.data.split_by_file`), turned into mels once; a training set of one mel
   repeated (a looped tone: mean-mel baseline 0) is refused;
4. with ``--overwrite`` the old run's files move to ``DIR/previous-run/`` only now (deleted once
   the new run is complete, so an interrupted or failed one never costs it), then training writes
   ``DIR/checkpoint.pt`` (last) and ``DIR/best.pt`` (lowest validation recon) as it goes;
5. unless ``--no-inverse-mel``, a learned inverse mel (:mod:`sda_lab.representation.inverse_mel`)
   is trained for ``--inverse-mel-minutes`` on the VAE's training files, split by file once more: a
   fifth of them (the pick part) chooses its best weights, NNLS included, so it never does worse
   than NNLS there; it is written to ``DIR/inverse_mel.pt``. Fewer than two training files: skipped
   with a note. An interrupt or error here keeps the VAE's run (NNLS is then its inversion);
6. ``DIR/metrics.json`` is written atomically once, at the end, so the folder never mixes runs.

``metrics.json`` holds final eval-mode recon and mean-mel baselines on training and validation
clips, their ratios (``null`` with a ``*_ratio_note`` where a baseline is 0 or missing), clip
counts, validation files, the collapse alarm's verdict, why training stopped, the configs, the
per-file report, the wall time and ``inverse_mel`` (whether it was trained, its pick-set loss
against NNLS's, or why not).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

from . import _options as opt

# what one run writes into --out (the same name as
# sda_lab.representation.inverse_mel.INVERSE_MEL_FILE)
RUN_FILES = ("checkpoint.pt", "best.pt", "metrics.json", "inverse_mel.pt")
PICK_FRACTION = 0.2  # of the training files: the part that picks the inverse mel's weights
DEGENERATE_BASELINE = 1e-12  # a mean-mel MSE below this: every clip is the same mel
FOLDER_ARG = "FOLDER"  # the positional argument's name in errors


def add_parser(subparsers) -> None:
    """Add ``train`` to ``subparsers`` (an ``argparse`` sub-parser action)."""
    from ...data.config import CUTS, SHORT_FILES
    from ...model.vae import LATENTS, VAEConfig
    from ...representation.spectrogram import SCALES
    from ...training.recipes import OWN_AUDIO_RECIPE

    t = subparsers.add_parser(
        "train", help="train a VAE on a folder of audio",
        description="Train the own-audio recipe on every audio file under FOLDER, with a "
                    "validation split by file, and a learned inverse mel on the training "
                    "files; write DIR/checkpoint.pt, DIR/best.pt, DIR/inverse_mel.pt and "
                    "DIR/metrics.json.")
    t._sub_name = "train"
    r, recipe_model = OWN_AUDIO_RECIPE.train, OWN_AUDIO_RECIPE.model
    recipe_scale = OWN_AUDIO_RECIPE.spectrogram.scale
    t.add_argument("folder", metavar="FOLDER", help="folder of audio files (searched recursively)")
    t.add_argument("--out", metavar="DIR", required=True,
                   help="output folder (created; must not hold another run unless --overwrite)")
    t.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (its files are removed when training "
                        "starts)")
    t.add_argument("--val-fraction", type=opt.fraction, default=0.2,
                   help="fraction of the files held out for validation (default 0.2; 0: none)")
    t.add_argument("--val-files", nargs="+", metavar="FILE",
                   help="hold out exactly these files instead of a random fraction")
    t.add_argument("--seed", type=opt.seed, default=0,
                   help="random seed of the split, weights and data order (default 0)")
    t.add_argument("--max-minutes", type=opt.positive_float,
                   help="wall-clock budget; with no --epochs, train until it is spent")
    t.add_argument("--max-steps", type=opt.positive_int,
                   help="optimiser-step budget; with no --epochs, train until it is spent")
    t.add_argument("--epochs", type=opt.positive_int,
                   help=f"epoch limit (default {r.epochs} when no budget is given, else none)")
    t.add_argument("--kl-weight", type=opt.nonneg_float, default=r.kl_weight,
                   help=f"KL weight after the warm-up (default {r.kl_weight:g})")
    t.add_argument("--free-bits", type=opt.nonneg_float, default=r.free_bits,
                   help=f"free bits, nats per latent dimension (default {r.free_bits:g})")
    t.add_argument("--lr", type=opt.positive_float, default=r.lr,
                   help=f"learning rate (default {r.lr:g})")
    t.add_argument("--batch-size", type=opt.positive_int, default=r.batch_size,
                   help=f"clips per step (default {r.batch_size})")
    t.add_argument("--latent-dim", type=opt.positive_int, default=None,
                   help=f"latent dimensions, over all latent frames for a sequence (default "
                        f"{recipe_model.latent_dim} for the recipe's {recipe_model.latent}, "
                        f"{VAEConfig().latent_dim} for the other)")
    t.add_argument("--short-files", choices=SHORT_FILES, default=SHORT_FILES[0],
                   help=f"files shorter than a clip: {' or '.join(SHORT_FILES)} "
                        f"(default {SHORT_FILES[0]}: pad with silence)")
    t.add_argument("--cut", choices=CUTS, default=CUTS[0],
                   help=f"where clips start: {' or '.join(CUTS)} (default {CUTS[0]})")
    t.add_argument("--scale", choices=SCALES, default=recipe_scale,
                   help=f"mel representation (default {recipe_scale}): the reference log1p "
                        "or a dB scale, which spreads recordings at ordinary levels over more "
                        "of [0, 1]")
    t.add_argument("--latent", choices=LATENTS, default=recipe_model.latent,
                   help=f"the latent's form (default {recipe_model.latent}): one vector per "
                        "clip, or a sequence along time (--latent-dim is then the total over "
                        "its frames)")
    halvings = recipe_model.time_halvings
    t.add_argument("--time-halvings", type=opt.nonneg_int, default=None,
                   help="how many conv layers halve the time axis (default: "
                        f"{'all' if halvings is None else halvings} for the recipe's latent, all "
                        "for the other: the plan's)")
    t.add_argument("--dropout", type=opt.fraction, default=recipe_model.dropout,
                   help=f"dropout after every conv block (default {recipe_model.dropout:g})")
    t.add_argument("--augment", action="store_true",
                   help="random gain, time shift and speed on training clips")
    t.add_argument("--spec-augment", action="store_true",
                   help="SpecAugment: mask a band of mel rows and a span of frames in the "
                        "model's input (the target stays whole)")
    recipe_aug = r.augment
    shift = 0 if recipe_aug is None else recipe_aug.mel_shift
    t.add_argument("--mel-shift", type=opt.nonneg_int, default=shift,
                   help="shift training mels up or down by up to this many mel rows (default "
                        f"{shift}; 0: none)")
    t.add_argument("--mixup", type=opt.fraction, default=0.0,
                   help="probability of mixing a training clip with another (default 0)")
    ema = 0.0 if r.ema_decay is None else r.ema_decay
    t.add_argument("--ema-decay", type=opt.fraction, default=ema,
                   help="average the weights over training, this decay per step; the average "
                        f"is what is scored and saved (default {ema:g}; 0: the last step's)")
    t.add_argument("--spectral-convergence-weight", type=opt.nonneg_float,
                   default=r.spectral_convergence_weight,
                   help="weight of the mel magnitudes' spectral convergence beside the MSE "
                        f"(default {r.spectral_convergence_weight:g}; 0: the MSE alone)")
    t.add_argument("--no-inverse-mel", action="store_true",
                   help="train no learned inverse mel (the run is heard through NNLS)")
    t.add_argument("--inverse-mel-minutes", type=opt.positive_float, default=1.0,
                   help="the learned inverse mel's CPU training budget (default 1.0)")
    t.add_argument("--device", type=opt.device, default=None,
                   help="cpu, cuda, cuda:N or mps (default: the best found)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=run)


def check_out(out: Path, overwrite: bool) -> list[Path]:
    """Prove ``--out`` can take this run before any work; returns the earlier run's files.

    Raises
    ------
    ValueError
        If ``out`` holds files of an earlier run (:data:`RUN_FILES`) and not ``overwrite``.
    sda_lab.core._io.WriteError
        If ``out`` is a file or cannot be created or written.
    """
    from ...core._io import check_writable_dir

    old = [out / name for name in RUN_FILES if out.is_dir() and (out / name).exists()]
    if old and not overwrite:
        raise ValueError(f"--out: expected a folder without another run, got {out} holding "
                         f"{', '.join(p.name for p in old)}; pass --overwrite to replace that "
                         "run, or choose another folder")
    check_writable_dir(out, "--out")
    return old


def _configs(args: argparse.Namespace):
    """The recipe's (model, train) configs and spectrogram with the options applied."""
    from ...data.augment import NO_WAVEFORM, SPEC_AUGMENT, AugmentConfig
    from ...model.vae import VAEConfig
    from ...training.recipes import OWN_AUDIO_RECIPE

    budget = args.max_minutes is not None or args.max_steps is not None
    overrides = dict(max_minutes=args.max_minutes, max_steps=args.max_steps,
                     kl_weight=args.kl_weight, free_bits=args.free_bits, lr=args.lr,
                     batch_size=args.batch_size, device=args.device, seed=args.seed)
    if args.epochs is not None or budget:
        overrides["epochs"] = args.epochs  # None: the budget alone ends training
    model_cfg, train_cfg = OWN_AUDIO_RECIPE.configs(**overrides)
    aug = {} if args.augment else dict(NO_WAVEFORM)  # --augment: the waveform parts' defaults
    if args.spec_augment:
        aug.update(SPEC_AUGMENT)
    aug.update(mel_shift=args.mel_shift, mixup=args.mixup)
    # the options' defaults are the recipe's augmentation: the flags alone decide it
    wanted = args.augment or args.spec_augment or args.mel_shift or args.mixup
    train_cfg = replace(train_cfg, augment=AugmentConfig(**aug) if wanted else None,
                        ema_decay=args.ema_decay or None,
                        spectral_convergence_weight=args.spectral_convergence_weight)
    halvings, size = args.time_halvings, args.latent_dim
    if args.latent == model_cfg.latent:  # the recipe's own latent: its sizes by default
        halvings = model_cfg.time_halvings if halvings is None else halvings
        size = model_cfg.latent_dim if size is None else size
    else:  # the other latent: the plan's sizes by default
        size = VAEConfig().latent_dim if size is None else size
    model_cfg = replace(model_cfg, latent_dim=size, latent=args.latent,
                        time_halvings=halvings, dropout=args.dropout)
    return model_cfg, train_cfg, OWN_AUDIO_RECIPE.audio_spectrogram(args.scale)


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


def audio_table(summary: dict) -> str:
    """The audio figures of :meth:`sda_lab.training.audio_eval.AudioEvaluation.summary` as the
    lines the CLI prints (one per path, then what the numbers mean)."""
    from ...training.audio_eval import MEANING

    where = ("held-out files" if summary["on"] == "validation"
             else "training files (nothing was held out)")
    lines = [f"what the run sounds like, on {summary['files_scored']} {where}, through "
             f"{summary['inversion']}:",
             f"  {'':18} {'spectral conv.':>14} {'log-spectral dist.':>19} {'level':>9}"]
    for path, label in (("model", "through the model"), ("mel_round_trip", "mel round trip"),
                        ("average_sound", "average sound")):
        f = summary[path]
        worst = (f" (worst file {f['level_db_worst_file']:+.1f} dB)" if path == "model" else "")
        lines.append(f"  {label:18} {f['spectral_convergence']:14.3f} "
                     f"{f['log_spectral_distance_db']:16.2f} dB {f['level_db']:+6.1f} dB{worst}")
    lines.append(f"  ({MEANING})")
    return "\n".join(lines)


def _finite(x):
    """NaN/Inf -> None, so metrics.json is strict JSON."""
    import math

    return x if not isinstance(x, float) or math.isfinite(x) else None


def _fmt(x, spec: str = ".4g") -> str:
    return "n/a" if x is None else format(x, spec)


def train_inverse_mel(args: argparse.Namespace, spec, clips, train_idx: list[int],
                      out: Path) -> dict:
    """Step 5: fit, pick and save the learned inverse mel on the training clips ``train_idx``.

    Returns its ``metrics.json`` entry: ``trained`` (bool), and either ``note`` (why not) or
    the fit/pick clip counts, pick files, steps, seconds, ``best_step`` and the pick-set loss
    (:func:`sda_lab.representation.inverse_mel.magnitude_loss`) of the kept weights beside its
    start's, the start chosen and each start's pick-set spectral convergence (``start``,
    ``start_sc``) and ``kept``: ``"learned"``, or the start's name when step 0 stayed best. A
    ``KeyboardInterrupt`` is re-raised with ``note`` filled in as the exception's ``inverse_mel``
    attribute.
    """
    from ...data.split import split_by_file
    from ...representation import inverse_mel as IM

    if args.no_inverse_mel:
        return {"trained": False, "note": "--no-inverse-mel"}
    files = [clips.files[i] for i in train_idx]
    if len(set(files)) < 2:
        note = (f"skipped the learned inverse mel: {len(set(files))} training file, it needs "
                "at least 2 (one to fit, one to pick its weights); the run uses NNLS")
        print(note)
        return {"trained": False, "note": note}
    fit, pick, pick_files = split_by_file(files, PICK_FRACTION, args.seed)
    fit_idx, pick_idx = [train_idx[i] for i in fit], [train_idx[i] for i in pick]
    config = IM.InverseMelConfig(max_seconds=60.0 * args.inverse_mel_minutes, seed=args.seed)
    print(f"learned inverse mel: fitting on {len(fit_idx)} clips, picking on {len(pick_idx)} "
          f"clips of {len(pick_files)} files, for at most {args.inverse_mel_minutes:g} min")
    try:
        inv = IM.fit_inverse_mel(spec, clips.waveforms[fit_idx], config,
                                 progress=not args.quiet,
                                 val_waveforms=clips.waveforms[pick_idx])
    except KeyboardInterrupt as exc:
        exc.inverse_mel = {"trained": False, "note": "interrupted while training the inverse "
                                                     "mel; the run uses NNLS"}
        raise
    except (ValueError, TypeError, RuntimeError) as exc:  # the VAE's run is kept either way
        note = f"the learned inverse mel failed ({str(exc).splitlines()[0]}); the run uses NNLS"
        print(note)
        return {"trained": False, "note": note}
    IM.save_inverse_mel(out / IM.INVERSE_MEL_FILE, inv)
    h = inv.history
    losses = dict(h["val_loss"])  # step -> pick-set loss; step 0 is the start
    entry = {"trained": True, "file": IM.INVERSE_MEL_FILE, "fit_clips": len(fit_idx),
             "pick_clips": len(pick_idx), "pick_files": pick_files, "steps": h["steps"],
             "seconds": h["seconds"], "best_step": h["best_step"], "start": inv.start,
             "start_sc": h.get("start_sc") or {},
             "pick_loss": losses[h["best_step"]], "pick_start_loss": losses[0],
             "kept": "learned" if h["best_step"] > 0 else inv.start,
             "config": asdict(inv.config)}
    chosen = ", ".join(f"{k} {v:.3f}" for k, v in entry["start_sc"].items())
    print(f"learned inverse mel: start {inv.start}"
          f"{f' (pick-set SC of each start: {chosen})' if chosen else ''}; "
          f"pick-set loss {entry['pick_loss']:.4g} vs its start {entry['pick_start_loss']:.4g} "
          f"(best step {h['best_step']} of {h['steps']}"
          f"{'; the start kept' if h['best_step'] == 0 else ''})")
    return entry


PREVIOUS_RUN = "previous-run"  # where --overwrite keeps the earlier run until the new one is done


def _set_aside(out: Path, old: list[Path]) -> Path | None:
    """Move the earlier run's files into ``out/previous-run/`` (None when there were none):
    an interrupted or failed new run never costs the finished one."""
    if not old:
        return None
    previous = out / PREVIOUS_RUN
    shutil.rmtree(previous, ignore_errors=True)
    previous.mkdir()
    for path in old:
        os.replace(path, previous / path.name)
    print(f"--overwrite: the earlier run is kept in {previous} until this one finishes")
    return previous


def hear(result, out: Path, quiet: bool) -> tuple[dict | None, dict]:
    """The run's audio figures and verdict (:mod:`sda_lab.training.audio_eval`) on its
    held-out files, heard as ``listen`` hears them: the model in ``best.pt`` (else the last),
    the run's own inversion. Returns ``(summary, verdict)``."""
    from ...representation.inverter import Inverter
    from ...training.checkpoint import load_checkpoint

    best = out / "best.pt"
    if best.is_file():
        result = replace(result, model=load_checkpoint(best, device="cpu").model.eval())
    inverter = Inverter.for_run(out, result.spectrogram)
    evaluation = result.evaluate_audio(inverter, progress=not quiet)
    return evaluation.summary(), result.audio_verdict(evaluation)


def run(args: argparse.Namespace) -> int:
    """Run ``train``; returns the exit status. Errors are raised (``main`` prints one line)."""
    from ...core._io import atomic_write_json
    from ...data.config import DataConfig
    from ...data.load import load_folder
    from ...data.split import split_by_file
    from ...training.diagnostics import mean_mel_baseline
    from ...training.callbacks import Sinks
    from ...training.own_audio import clips_to_mels, train_on_clips

    t0 = time.perf_counter()
    model_cfg, train_cfg, spec = _configs(args)  # bad values: one line naming the flag
    out = Path(args.out)
    old = check_out(out, args.overwrite)
    clips = load_folder(args.folder, DataConfig(short_files=args.short_files, cut=args.cut))
    print(clips.summary())
    train_idx, val_idx, val_files = split_by_file(clips, args.val_fraction, args.seed,
                                                  args.val_files)  # the one split of the run
    if len(train_idx) < 2:
        raise ValueError(f"--val-fraction/--val-files: expected at least 2 training clips, got "
                         f"{len(train_idx)} after holding out {len(val_files)} files")
    n_files = len(set(clips.files))
    print(f"training on {len(train_idx)} clips from {n_files - len(val_files)} files, "
          f"validating on {len(val_idx)} clips from {len(val_files)} files "
          f"({', '.join(val_files) or 'none'})")
    mels = clips_to_mels(spec, clips.waveforms)  # (N, 1, n_mels, T), once
    baseline = mean_mel_baseline(mels[train_idx])
    if baseline <= DEGENERATE_BASELINE:
        raise ValueError(f"{FOLDER_ARG}: expected clips that differ, got {len(train_idx)} "
                         f"training clips that are all the same mel (mean-mel baseline "
                         f"{baseline:.3g}, e.g. a looped tone): there is nothing to learn "
                         "beyond the average; add different audio")
    previous = _set_aside(out, old)  # --overwrite: the earlier run moves aside only now
    result = train_on_clips(
        clips, model_cfg, train_cfg, val_fraction=0.0, val_files=val_files or None,
        seed=args.seed, spectrogram=spec, mels=mels, progress=not args.quiet,
        sinks=Sinks(out / "checkpoint.pt", out / "best.pt", save_every_s=30.0,
                    extra={"folder": str(Path(args.folder).resolve())}))
    interrupted = None
    try:
        inverse_entry = train_inverse_mel(args, spec, clips, list(result.train_idx), out)
    except KeyboardInterrupt as exc:  # keep the VAE's run: metrics.json is still written
        interrupted, inverse_entry = exc, getattr(exc, "inverse_mel", {"trained": False})
    history = result.history
    mel_verdict = result.verdict()  # {"fired", "kind", "why"}: in the model's own domain
    audio, verdict = None, {"kind": mel_verdict["kind"], "sentence": (
        f"{mel_verdict['why']} (judged in the model's own domain: the run was interrupted "
        "before it was heard)"), "meaning": ""}
    if interrupted is None:
        try:
            audio, verdict = hear(result, out, args.quiet)
        except KeyboardInterrupt as exc:  # keep the run: metrics.json is still written
            interrupted = exc
    val_recon = history.val_recon[-1] if history.val_recon else None
    train_ratio, train_note = _ratio(history.train_recon[-1], history.train_baseline)
    val_ratio, val_note = _ratio(val_recon, history.val_baseline)
    report = clips.report
    metrics = {
        "folder": str(Path(args.folder).resolve()),
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
        "val_files": result.val_files,
        "train_files": sorted({clips.files[i] for i in result.train_idx}),
        "audio": audio,
        "verdict": verdict,
        "mel_verdict": mel_verdict,
        "val_sc": history.val_sc[-1] if history.val_sc else None,
        "val_sc_baseline": history.val_sc_baseline,
        "stop_reason": history.stop_reason,
        "epochs": history.epoch[-1] + 1,
        "steps": history.steps[-1],
        "best_epoch": history.best_epoch,
        "wall_s": time.perf_counter() - t0,
        "train_s": sum(history.seconds),
        "model_config": asdict(result.model_config),
        "train_config": asdict(result.train_config),
        "spectrogram_config": asdict(spec.config),
        "report": json.loads(report.to_json(orient="records")) if report is not None else [],
        "history": {k: [_finite(x) for x in v] if isinstance(v, list) else _finite(v)
                    for k, v in asdict(history).items()},
        "inverse_mel": inverse_entry,
        "argv": sys.argv[1:],
    }
    metrics = {k: _finite(v) for k, v in metrics.items()}
    atomic_write_json(out / "metrics.json", metrics)  # once, at the end
    if previous is not None:  # the new run is complete: the earlier one can go
        shutil.rmtree(previous, ignore_errors=True)
    if interrupted is not None:
        raise interrupted
    print(f"stopped by {opt.in_flag_terms(history.stop_reason)}")
    if audio is not None:
        print(audio_table(audio))
    val = (f"validation {_fmt(val_ratio, '.2f')}x{', ' + val_note if val_note else ''}"
           if val_recon is not None else "nothing held out for validation")
    print(f"in the model's own domain (what it minimises): mel MSE {val}, training "
          f"{_fmt(train_ratio, '.2f')}x{', ' + train_note if train_note else ''} the average "
          f"mel's; {metrics['active_units']} active latent units")
    print(f"verdict: {verdict['sentence']}")
    written = ["checkpoint.pt", "best.pt"] + (["inverse_mel.pt"] if inverse_entry["trained"]
                                              else []) + ["metrics.json"]
    print(f"wrote {', '.join(str(out / name) for name in written)}")
    print(f'open the explorer on this run: from sda_lab.interface.widgets import LatentExplorer; '
          f'LatentExplorer.from_run("{out}")')
    return 0

