"""``python -m sda_lab train FOLDER --out DIR``: the own-audio recipe on a folder of audio.

Order of work, so nothing long starts before every check passed and no finished run is lost:

1. options: each parsed by its type in :mod:`sda_lab.interface.commands._options` (one line naming
   the flag); the recipe's configs and the representation are built from them (their errors are
   rewritten to the flags); ``--resume`` with an option that would change the run is refused;
2. ``--out``: a writable folder (:func:`sda_lab.core._io.check_writable_dir`), locked for this
   run (:meth:`sda_lab.training.rundir.RunDir.lock`: a second training into it is refused in one
   line), that holds no earlier run (:data:`RUN_FILES`) unless ``--overwrite`` or ``--resume``;
3. the folder is loaded (:func:`sda_lab.data.load_folder`), fingerprinted
   (:func:`sda_lab.data.folders.file_fingerprints`), split by file once
   (:func:`sda_lab.data.split_by_file`) and turned into mels once; a training set of one mel
   repeated (a looped tone: mean-mel baseline 0) is refused. ``--resume`` reads back the run's
   own files (:func:`sda_lab.studies.run_files.run_files`) and its split;
4. ``--max-minutes`` is the whole wait: what loading left is split between training, the
   learned inverse mels, listening and writing (:func:`sda_lab.training.budget.split_budget`),
   printed, and each part is held to its share;
5. with ``--overwrite`` the old run's files move to ``DIR/previous-run/`` only now (deleted once
   the new run is complete), then training writes ``DIR/checkpoint.pt`` (last, with the state a
   ``--resume`` goes on from) and ``DIR/best.pt`` as it goes. Ctrl-C stops after the step in
   progress, writes both checkpoints and ``metrics.json`` and says how to resume (exit 130);
6. unless ``--no-inverse-mel``, a learned inverse mel is fitted on the training files
   (:func:`._train_steps.train_inverse_mel`: kept where it beats its start by a margin, else the
   start is kept, said in one line) into ``DIR/inverse_mel.pt``, then fine-tuned on the model's
   decoded mels of those files into ``DIR/decoded_inverse_mel.pt`` where that beats it on them
   (:func:`._train_steps.train_decoded_inverse`); the run is heard on its held-out files
   (:func:`._train_steps.hear`: the model through the second, the mel round trip through the
   first);
7. ``DIR/metrics.json`` is written atomically once, at the end, and read back before the run is
   reported as written.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import time
import uuid
from dataclasses import asdict, replace
from pathlib import Path

from . import _options as opt
from ...training.rundir import RUN_FILES
from ._train_report import (DEGENERATE_BASELINE, check_written, closing_lines, run_metrics,
                            stopped_line)
from ._train_resume import check_resume_options, resume_files, resume_point
from ._train_steps import clips_to_hear, hear, inverse_entry_for

__all__ = ["add_parser", "check_out", "run"]

FOLDER_ARG = "FOLDER"  # the positional argument's name in errors
MAX_LATENT_DIM = 4096  # far above any recipe's; a larger head does not fit in memory
SAVE_EVERY_S = 30.0  # the last checkpoint during training at most this often (and at the end)


def add_parser(subparsers) -> None:
    """Add ``train`` to ``subparsers`` (an ``argparse`` sub-parser action)."""
    from ...data.config import CUTS, SHORT_FILES
    from ...model.vae import LATENTS, VAEConfig
    from ...representation.spectrogram import SCALES
    from ...training.config import LR_SCHEDULES
    from ...training.recipes import OWN_AUDIO_RECIPE

    t = subparsers.add_parser(
        "train", help="train a VAE on a folder of audio",
        description="Train the own-audio recipe on every audio file under FOLDER, with a "
                    "validation split by file, and a learned inverse mel on the training "
                    "files, fine-tuned on the model's decoded mels of them; write "
                    "DIR/checkpoint.pt, DIR/best.pt, DIR/inverse_mel.pt, "
                    "DIR/decoded_inverse_mel.pt and DIR/metrics.json.")
    t._sub_name = "train"
    r, recipe_model = OWN_AUDIO_RECIPE.train, OWN_AUDIO_RECIPE.model
    recipe_scale = OWN_AUDIO_RECIPE.spectrogram.scale
    t.add_argument("folder", metavar="FOLDER", type=opt.path,
                   help="folder of audio files (searched recursively)")
    t.add_argument("--out", metavar="DIR", type=opt.path, required=True,
                   help="output folder (created; must not hold another run unless --overwrite)")
    t.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (its files move to "
                        "--out/previous-run/ when training starts, deleted once the new run is "
                        "written)")
    t.add_argument("--resume", action="store_true",
                   help="go on with the run in --out from its last checkpoint (stopped by Ctrl-C, "
                        "a budget or a closed lid): its own settings and files; --max-steps and "
                        "--epochs count the whole run, --max-minutes this session")
    t.add_argument("--val-fraction", type=opt.fraction, default=0.2,
                   help="fraction of the files held out for validation (default 0.2; 0: none)")
    t.add_argument("--val-files", nargs="+", metavar="FILE",
                   help="hold out exactly these files instead of a random fraction")
    t.add_argument("--seed", type=opt.seed, default=0,
                   help="random seed of the split, weights and data order (default 0)")
    t.add_argument("--max-minutes", type=opt.positive_float,
                   help="the whole wait, loading to writing, in minutes; shared between "
                        "training, the learned inverse mel and listening (the split is "
                        "printed); with no --epochs, train until its share is spent")
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
    t.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=r.lr_schedule,
                   help="the learning rate over the budget: constant, or cosine (decays to 0 "
                        f"by the budget's end) (default {r.lr_schedule})")
    t.add_argument("--no-inverse-mel", action="store_true",
                   help="train no learned inverse mel (the run is heard through NNLS)")
    t.add_argument("--inverse-mel-minutes", type=opt.positive_float, default=1.0,
                   help="the learned inverse mel's wall time at most, and half that for its "
                        "fine-tuning on decoded mels (default 1.0; with --max-minutes, their "
                        "share of the budget when that is smaller)")
    t.add_argument("--device", type=opt.device, default=None,
                   help="cpu, cuda, cuda:N or mps (default: the best found)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=run, _train_defaults={a.dest: a.default for a in t._actions})


def check_out(out: Path, overwrite: bool) -> list[Path]:
    """Prove ``--out`` can take this run before any work; returns the earlier run's files.

    Raises
    ------
    ValueError
        If ``out`` holds files of an earlier run (:data:`RUN_FILES`) and not ``overwrite``, or
        a run an unfinished ``--overwrite`` set aside (``out/previous-run/``).
    sda_lab.core._io.WriteError
        If ``out`` is a file or cannot be created or written.
    """
    from ...core._io import check_writable_dir

    old = [out / name for name in RUN_FILES if out.is_dir() and (out / name).exists()]
    if (out / PREVIOUS_RUN).exists():
        raise ValueError(f"--out: expected no run set aside, got {out / PREVIOUS_RUN} holding the "
                         "run an earlier --overwrite set aside and did not finish replacing; "
                         f"move its files back into {out} (or delete the folder) first")
    if old and not overwrite:
        raise ValueError(f"--out: expected a folder without another run, got {out} holding "
                         f"{', '.join(p.name for p in old)}; pass --overwrite to replace that "
                         "run, --resume to go on with it, or choose another folder")
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
                        spectral_convergence_weight=args.spectral_convergence_weight,
                        lr_schedule=args.lr_schedule)
    halvings, size = args.time_halvings, args.latent_dim
    if args.latent == model_cfg.latent:  # the recipe's own latent: its sizes by default
        halvings = model_cfg.time_halvings if halvings is None else halvings
        size = model_cfg.latent_dim if size is None else size
    else:  # the other latent: the plan's sizes by default
        size = VAEConfig().latent_dim if size is None else size
    if size > MAX_LATENT_DIM:
        raise ValueError(f"--latent-dim: expected 1 to {MAX_LATENT_DIM}, got {size}")
    model_cfg = replace(model_cfg, latent_dim=size, latent=args.latent,
                        time_halvings=halvings, dropout=args.dropout)
    return model_cfg, train_cfg, OWN_AUDIO_RECIPE.audio_spectrogram(args.scale)


PREVIOUS_RUN = "previous-run"  # where --overwrite keeps the earlier run until the new one is done


def _set_aside(out: Path, old: list[Path]) -> Path | None:
    """Move the earlier run's files into ``out/previous-run/`` (None when there were none):
    an interrupted or failed new run never costs the finished one."""
    if not old:
        return None
    previous = out / PREVIOUS_RUN  # check_out refused a folder that already holds one
    previous.mkdir()
    for path in old:
        os.replace(path, previous / path.name)
    print(f"--overwrite: the earlier run is kept in {previous} until this one finishes")
    return previous


def _load(args, folder: Path, data_config, only=None):
    """The folder's clips (their summary printed) and the fingerprints of the files used."""
    from ...data.folders import file_fingerprints
    from ...data.load import load_folder

    clips = load_folder(folder, data_config, only=only)
    print(clips.summary())
    return clips, file_fingerprints(folder, sorted(set(clips.files)))


def _readable_inverse(path: Path) -> bool:
    """Whether ``--resume`` can keep the run's ``inverse_mel.pt``: there and readable; one line
    where it is there but unreadable (it is then fitted again, after training)."""
    from ...representation.inverse_mel import load_inverse_mel

    if not path.is_file():
        return False
    try:
        load_inverse_mel(path)
    except ValueError as exc:
        print(f"note: {exc}; it is fitted again after training")
        return False
    return True


def _plan(args, train_cfg, started: float, inverse_wanted: bool, kept_inverse: bool,
          hearing_clips: int):
    """The budget's split (printed) and the train config with training's share; ``(None,
    train_cfg)`` without ``--max-minutes``. A kept inverse mel (``--resume``) leaves only its
    fine-tuning's share to plan; ``hearing_clips`` (the clips :func:`hear` may score) bounds
    hearing's."""
    from ...training.budget import split_budget

    if train_cfg.max_minutes is None:
        return None, train_cfg
    plan = split_budget(60.0 * train_cfg.max_minutes, time.perf_counter() - started,
                        60.0 * args.inverse_mel_minutes if inverse_wanted else None,
                        fine_tune_only=bool(kept_inverse and inverse_wanted),
                        hearing_clips=hearing_clips)
    print(plan.line())
    return plan, replace(train_cfg, max_minutes=plan.training_s / 60.0)


def _copies_line(groups: dict[str, str], val_files: list[str]) -> str:
    """The line on files that are one recording up to gain (``groups``:
    :func:`sda_lab.data.split.same_recordings`): how many, and where a held-out file has a copy
    in training (``--val-files``, or a run resumed from before the groups: a fraction's split
    holds out whole groups); '' where every file is its own recording."""
    from ...data.split import recording_groups

    shared = recording_groups(groups)
    if not shared:
        return ""
    held = set(val_files)
    leaks = [(f, next(o for o in m if o not in held)) for m in shared for f in m
             if f in held and not set(m) <= held]
    largest = sorted(shared, key=len, reverse=True)  # a merged group shows first
    shown = "; ".join(" = ".join(Path(f).name for f in m[:3])
                      + (f" = ... ({len(m)} files)" if len(m) > 3 else "") for m in largest[:3])
    if len(shared) > 3:
        shown += f"; {len(shared) - 3} more in metrics.json's same_recordings"
    line = (f"one recording up to gain: {sum(map(len, shared))} files in "
            f"{opt.count(len(shared), 'group')} ({shown})")
    if not held:
        return line + ": nothing is held out, all of them train"
    if not leaks:
        return line + ": each group is held out or trained on whole"
    f, o = leaks[0]
    return (f"{line}; note: held-out {Path(f).name} is a copy of training file {Path(o).name}"
            + (f" (and {len(leaks) - 1} more held-out files have a copy in training)"
               if len(leaks) > 1 else "")
            + ": the held-out figures flatter the model on it")


def held_out_names(folder: Path, given: list[str]) -> list[str]:
    """``--val-files`` as names relative to ``folder``, checked against the files it holds
    before any audio is read: a path (absolute, or relative to the working folder) under
    ``folder``, or a name :func:`sda_lab.data.split.match_file` finds there; else one line
    naming ``--val-files``, the folder and the value."""
    from ...data.folders import display_name, walk
    from ...data.split import match_file

    folder = folder.resolve()
    files = [display_name(rel) for _, rel, _ in walk(folder)[0]]
    names = []
    for value in given:
        path = Path(value).expanduser()
        if path.is_file() and (path.is_absolute() or len(path.parts) > 1):
            try:
                value = display_name(path.resolve().relative_to(folder).as_posix())
            except ValueError:
                raise ValueError(f"--val-files: expected files under FOLDER ({folder}), got "
                                 f"{value}") from None
        try:
            names.append(match_file(value, files))
        except ValueError as exc:
            raise ValueError(f"--val-files: expected files under FOLDER ({folder}): "
                             f"{exc}") from None
    return names


def run(args: argparse.Namespace) -> int:
    """Run ``train``; returns the exit status. Errors are raised (``main`` prints one line)."""
    from ...core._io import check_writable_dir
    from ...training.rundir import RunDir, RunLocked

    started = getattr(args, "started", None) or time.perf_counter()
    check_resume_options(args)  # first: a changed setting is named as such
    model_cfg, train_cfg, spec = _configs(args)  # bad values: one line naming the flag
    if args.val_files and Path(args.folder).is_dir():  # a missing FOLDER is said after
        args.val_files = held_out_names(Path(args.folder), args.val_files)
    out = RunDir(args.out)
    created = [p for p in (out.path, *out.path.parents) if not p.exists()]  # deepest first
    try:
        check_writable_dir(out.path, "--out")
        try:
            lock = out.lock().acquire()
        except RunLocked as exc:
            raise ValueError(f"--out: {exc}") from None
        try:
            return _run_locked(args, out, started, model_cfg, train_cfg, spec)
        finally:
            lock.release()
    finally:  # a run refused or stopped before writing anything leaves no empty folder
        for folder in created:
            try:
                folder.rmdir()
            except OSError:  # not empty (the run wrote), or not there
                break


def _run_locked(args, out, started, model_cfg, train_cfg, spec) -> int:
    """:func:`run` once ``--out`` is locked."""
    from ...core._io import atomic_write_json
    from ...data.config import DataConfig
    from ...data.split import count_recordings, recording_groups, same_recordings, split_by_file
    from ...training.callbacks import Sinks
    from ...training.diagnostics import mean_mel_baseline
    from ...training.own_audio import clips_to_mels, train_on_clips
    from ...training.resume import TrainingInterrupted

    folder = Path(args.folder).resolve()
    ckpt = None
    if args.resume:
        ckpt, record, train_cfg, budget_flags = resume_point(out, args)
        args.no_inverse_mel = args.no_inverse_mel or bool(record.get("no_inverse_mel"))
        model_cfg, spec, seed = ckpt.model.config, ckpt.spectrogram(), record.get("seed", 0)
        data_config = DataConfig(**record["data_config"])
        if not folder.is_dir():
            raise FileNotFoundError(f"audio folder not found: {folder} (expected a directory)")
        train_files, val_files = resume_files(folder, record)
        clips, fingerprints = _load(args, folder, data_config, train_files + val_files)
        old = []
    else:
        old = check_out(out.path, args.overwrite)
        seed = args.seed
        data_config = DataConfig(short_files=args.short_files, cut=args.cut)
        budget_flags = {k: getattr(args, k) for k in ("max_minutes", "max_steps", "epochs")}
        clips, fingerprints = _load(args, folder, data_config)
    groups = same_recordings(clips)  # files that are one recording up to gain
    if not args.resume:
        _, _, val_files = split_by_file(clips, args.val_fraction, seed, args.val_files,
                                        groups=groups)  # the one split of the run
    train_idx, val_idx, val_files = split_by_file(clips, 0.0, seed, val_files or None)
    copies = _copies_line(groups, val_files)
    if copies:
        print(copies)
    if len(train_idx) < 2:
        raise ValueError(f"--val-fraction/--val-files: expected at least 2 training clips, got "
                         f"{len(train_idx)} after holding out {len(val_files)} files")
    train_files = sorted({clips.files[i] for i in train_idx})
    print(f"training on {opt.count(len(train_idx), 'clip')} from "
          f"{opt.count(len(train_files), 'file')}, validating on "
          f"{opt.count(len(val_idx), 'clip')} from {opt.count(len(val_files), 'file')} "
          f"({', '.join(val_files) or 'none'})")
    mels = clips_to_mels(spec, clips.waveforms)  # (N, 1, n_mels, T), once
    baseline = mean_mel_baseline(mels[train_idx])
    if baseline <= DEGENERATE_BASELINE:
        raise ValueError(f"{FOLDER_ARG}: expected clips that differ, got {len(train_idx)} "
                         f"training clips that are all the same mel (mean-mel baseline "
                         f"{baseline:.3g}, e.g. a looped tone): there is nothing to learn "
                         "beyond the average; add different audio")
    earlier = out.read_metrics() if args.resume else None
    kept_inverse = args.resume and _readable_inverse(out.inverse_mel)
    n_recordings = count_recordings(train_files, groups)
    inverse_wanted = not (args.no_inverse_mel or n_recordings < 2)
    plan, train_cfg = _plan(args, train_cfg, started, inverse_wanted, kept_inverse,
                            clips_to_hear(clips.files, val_idx or train_idx))
    t_loaded = time.perf_counter()
    run_id = uuid.uuid4().hex
    record = {"folder": str(folder), "train_files": train_files, "val_files": val_files,
              "fingerprints": fingerprints, "data_config": asdict(data_config), "seed": seed,
              "budget": budget_flags, "run_id": run_id,
              "same_recordings": recording_groups(groups),
              "no_inverse_mel": bool(args.no_inverse_mel)}  # --resume keeps it
    previous = _set_aside(out.path, old)  # --overwrite: the earlier run moves aside only now
    interrupted = None
    try:
        result = train_on_clips(
            clips, model_cfg, train_cfg, val_fraction=0.0, val_files=val_files or None,
            seed=seed, spectrogram=spec, mels=mels, progress=not args.quiet, resume=ckpt,
            sinks=Sinks(out.checkpoint, out.best, save_every_s=SAVE_EVERY_S, extra=record))
    except TrainingInterrupted as exc:  # both checkpoints hold the last completed step
        result, interrupted = exc.run, exc
    except BaseException:
        if previous is not None:
            print(f"sda-lab: the earlier run is kept in {previous}: move its files back into "
                  f"{out.path} to use it again", file=sys.stderr)
        raise
    t_trained = time.perf_counter()
    share = ""
    if plan is not None and result.history.stop_reason.startswith("max_minutes"):
        share = (f" (training's share of the {plan.total_s / 60:.3g}-minute budget; the rest "
                 "is for the inverse mels, listening and writing)")
    print(stopped_line(result.history.stop_reason) + share)
    inverse_entry = inverse_entry_for(args, result, out, seed, plan, interrupted, kept_inverse,
                                      earlier, n_recordings, groups)
    t_inverse = time.perf_counter()
    mel_verdict = result.verdict()  # {"fired", "kind", "why"}: in the model's own domain
    audio, verdict = None, {"kind": mel_verdict["kind"], "sentence": (
        f"{mel_verdict['why']} (judged in the model's own domain: the run was interrupted "
        "before it was heard)"), "meaning": ""}
    if interrupted is None and not isinstance(inverse_entry, KeyboardInterrupt):
        try:
            audio, verdict = hear(result, out.path, args.quiet,
                                  plan.hearing_s if plan is not None else None)
        except KeyboardInterrupt as exc:  # keep the run: metrics.json is still written
            interrupted = exc
    if isinstance(inverse_entry, KeyboardInterrupt):
        interrupted, inverse_entry = inverse_entry, getattr(inverse_entry, "inverse_mel",
                                                            {"trained": False})
    t_heard = time.perf_counter()
    budget = None if plan is None else {
        "total_s": plan.total_s, "planned": plan.parts(),
        "used": {"loading_s": plan.loading_s, "training_s": t_trained - t_loaded,
                 "inverse_s": t_inverse - t_trained, "hearing_s": t_heard - t_inverse}}
    metrics = run_metrics(result, clips, spec, folder, record, audio, verdict, inverse_entry,
                          budget, getattr(args, "argv", sys.argv[1:]),
                          time.perf_counter() - started, run_id)
    atomic_write_json(out.metrics, metrics)  # once, at the end
    written = check_written(out, run_id, inverse_entry)
    if previous is not None and interrupted is None:  # complete: the earlier run can go
        shutil.rmtree(previous, ignore_errors=True)
    if interrupted is not None:
        kept = ("" if previous is None else
                f"; the earlier run is still kept in {previous}")
        if isinstance(interrupted, TrainingInterrupted):
            print(f"sda-lab: interrupted after {result.history.step_count} steps: the run so far "
                  f"is in {out.path} ({', '.join(p.name for p in written)}); go on with: "
                  f"python -m sda_lab train {shlex.quote(str(args.folder))} --out "
                  f"{shlex.quote(str(args.out))} --resume{kept}",
                  file=sys.stderr)
            return 130
        raise interrupted
    print("\n".join(closing_lines(metrics, args.folder, args.out, args.quiet)))
    if plan is not None:
        print(f"took {time.perf_counter() - started:.1f} s of the {plan.total_s:.0f} s budget")
    print(f"wrote {', '.join(str(p) for p in written)}")
    print(f'open the explorer on this run: from sda_lab.interface.widgets import LatentExplorer; '
          f'LatentExplorer.from_run({str(out.path.resolve())!r})')
    return 0


