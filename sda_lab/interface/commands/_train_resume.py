"""``train --resume``: what may be given with it, the run's last checkpoint and record with this
session's budget, and the run's own files read back unchanged."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

# options that shape a run: --resume keeps the run's own and refuses a changed one
SHAPING = ("val_fraction", "val_files", "seed", "kl_weight", "free_bits", "lr", "batch_size",
           "latent_dim", "short_files", "cut", "scale", "latent", "time_halvings", "dropout",
           "augment", "spec_augment", "mel_shift", "mixup", "ema_decay",
           "spectral_convergence_weight", "lr_schedule", "no_inverse_mel")


def given_flags(args: argparse.Namespace) -> set[str]:
    """The flags given on the command line (``--lr`` for ``--lr 0.1`` and ``--lr=0.1``)."""
    return {str(a).split("=", 1)[0] for a in getattr(args, "argv", [])}


def check_resume_options(args: argparse.Namespace) -> None:
    """``--resume`` keeps the run's own settings: one line naming any option that would change
    them (or ``--overwrite``)."""
    if not args.resume:
        return
    if args.overwrite:
        raise ValueError("--resume: expected to go on with the run in --out, got --overwrite as "
                         "well, which replaces it; give one of them")
    defaults = getattr(args, "_train_defaults", {})
    given = given_flags(args)
    # an option given at all (even at its default value, which may not be the run's), or changed
    changed = [f"--{d.replace('_', '-')}" for d in SHAPING
               if f"--{d.replace('_', '-')}" in given
               or (d in defaults and getattr(args, d) != defaults[d])]
    if changed:
        raise ValueError(f"--resume: expected the run's own settings, got {', '.join(changed)}, "
                         "which would change them; drop them, or start a new run in another "
                         "--out")


def resume_point(out, args: argparse.Namespace):
    """The run to go on with: its last checkpoint (with resume state), the record in its
    ``extra``, and its train config with this session's budget. One line when there is none."""
    from ...training.checkpoint import load_checkpoint
    from ...training.resume import spent_limits

    if not out.checkpoint.is_file():
        from ...training.rundir import RUN_FILES

        held = [n for n in RUN_FILES if (out.path / n).exists()]
        start = (f"start the run again with --overwrite in place of --resume (the folder holds "
                 f"{', '.join(held)})" if held else "start the run without --resume")
        raise FileNotFoundError(f"--resume: expected the last checkpoint of a run in "
                                f"{out.path}, got no {out.checkpoint.name}; {start}")
    ckpt = load_checkpoint(out.checkpoint, device="cpu")
    record = ckpt.extra
    if ckpt.resume is None or ckpt.train_config is None or "train_files" not in record:
        raise ValueError(f"--resume: {out.checkpoint} holds no state to go on from (written "
                         "by an older sda-lab, or by hand); start a new run")
    if record.get("no_inverse_mel") and "--inverse-mel-minutes" in given_flags(args):
        raise ValueError("--inverse-mel-minutes: expected a run with a learned inverse mel, "
                         f"got {out.path}, trained with --no-inverse-mel (--resume keeps "
                         "that, so none would be fitted); drop it, or start a new run "
                         "without --no-inverse-mel")
    budget = {k: getattr(args, k) for k in ("max_minutes", "max_steps", "epochs")}
    own = all(v is None for v in budget.values())
    if own:
        budget = dict(record.get("budget") or {})
    epochs = budget.get("epochs")
    if epochs is None and budget.get("max_minutes") is None and budget.get("max_steps") is None:
        epochs = ckpt.train_config.epochs
    config = replace(ckpt.train_config, max_minutes=budget.get("max_minutes"),
                     max_steps=budget.get("max_steps"), epochs=epochs,
                     device=args.device)
    reached = spent_limits(config, ckpt.resume)  # said here, before the folder is read
    if reached:
        done = int(ckpt.resume["step_count"])
        limits = " and ".join("--" + r.replace("_", "-").replace("=", " ") for r in reached)
        got = f"none, and the run's own ({limits}) is" if own else f"{limits},"
        raise ValueError(f"--resume: expected a budget beyond what the run has done, got {got} "
                         f"spent at {done} steps; give one, e.g. --max-steps {2 * done} or "
                         "--max-minutes 5")
    return ckpt, record, config, budget


def resume_files(folder: Path, record: dict) -> tuple[list[str], list[str]]:
    """The run's training and held-out files in ``folder``; one line when any is gone or
    changed (the run would go on with other data), a note for files added since."""
    from ...studies.run_files import run_files

    files = run_files(record, folder)
    if len(files.train) != len(record["train_files"]) or len(files.val) != len(
            record["val_files"]):
        raise ValueError(f"--resume: expected the run's {len(record['train_files'])} training "
                         f"and {len(record['val_files'])} held-out files unchanged in {folder}, "
                         f"got {'; '.join(files.notes)}")
    for note in files.notes:
        print(note)
    return files.train, files.val
