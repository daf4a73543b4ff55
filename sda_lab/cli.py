"""Command line: ``python -m sda_lab train FOLDER --out DIR``.

Loads every audio file under ``FOLDER`` (:func:`sda_lab.data.load_folder`), holds out whole
files for validation (:func:`sda_lab.train.split_by_file`), trains the own-audio recipe
(:func:`sda_lab.train.own_audio_recipe`) with a progress bar, and writes

- ``DIR/checkpoint.pt``: the last epoch (``sda_lab.train.load_checkpoint`` reads it; its
  ``spectrogram()`` rebuilds the representation it was trained on),
- ``DIR/best.pt``: the epoch with the lowest validation recon (training recon without
  validation),
- ``DIR/metrics.json``: final eval-mode recon and mean-mel baselines on training and validation
  clips, their ratios, clip counts, validation files, the collapse alarm's verdict, why training
  stopped, the configs, the per-file report and the wall time.

Errors (no such folder, no usable audio, a bad option, an impossible split, a diverged run) are
one line on stderr starting ``sda-lab: error:`` and exit status 1 (2 for bad options), never a
traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, replace
from pathlib import Path

PROG = "python -m sda_lab"


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (argparse prints the usage first)."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        sub = getattr(self, "_sub_name", "")
        hint = f"{PROG} {sub} --help" if sub else f"{PROG} --help"
        self.exit(2, f"sda-lab: error: {message} (see {hint})\n")


def _number(parse, ok, expected: str):
    """An argparse ``type``: ``parse`` the text, accept it when ``ok(value)``, else say what
    was ``expected`` and what came."""

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return convert


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_positive_float = _number(float, lambda v: v > 0, "a positive number")
_nonneg_float = _number(float, lambda v: v >= 0, "a number >= 0")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``sda_lab`` command's argument parser (subcommand ``train``)."""
    from .train import OWN_AUDIO_MODEL, OWN_AUDIO_SCALE, OWN_AUDIO_TRAIN

    parser = _Parser(prog=PROG, description="sda-lab: small-dataset audio VAEs.")
    subs = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    t = subs.add_parser(
        "train", help="train a VAE on a folder of audio",
        description="Train the own-audio recipe on every audio file under FOLDER, with a "
                    "validation split by file; write DIR/checkpoint.pt, DIR/best.pt and "
                    "DIR/metrics.json.")
    t._sub_name = "train"
    r = OWN_AUDIO_TRAIN
    t.add_argument("folder", metavar="FOLDER", help="folder of audio files (searched recursively)")
    t.add_argument("--out", metavar="DIR", required=True, help="output folder (created)")
    t.add_argument("--val-fraction", type=_fraction, default=0.2,
                   help="fraction of the files held out for validation (default 0.2; 0: none)")
    t.add_argument("--val-files", nargs="+", metavar="FILE",
                   help="hold out exactly these files instead of a random fraction")
    t.add_argument("--seed", type=int, default=0, help="seeds the split, weights, data order")
    t.add_argument("--max-minutes", type=_positive_float,
                   help="wall-clock budget; with no --epochs, train until it is spent")
    t.add_argument("--max-steps", type=_positive_int,
                   help="optimiser-step budget; with no --epochs, train until it is spent")
    t.add_argument("--epochs", type=_positive_int,
                   help=f"epoch limit (default {r.epochs} when no budget is given, else none)")
    t.add_argument("--kl-weight", type=_nonneg_float, default=r.kl_weight,
                   help=f"KL weight after the warm-up (default {r.kl_weight:g})")
    t.add_argument("--free-bits", type=_nonneg_float, default=r.free_bits,
                   help=f"free bits, nats per latent dimension (default {r.free_bits:g})")
    t.add_argument("--lr", type=_positive_float, default=r.lr,
                   help=f"learning rate (default {r.lr:g})")
    t.add_argument("--batch-size", type=_positive_int, default=r.batch_size,
                   help=f"clips per step (default {r.batch_size})")
    t.add_argument("--latent-dim", type=_positive_int, default=OWN_AUDIO_MODEL.latent_dim,
                   help=f"latent dimensions (default {OWN_AUDIO_MODEL.latent_dim})")
    t.add_argument("--short-files", choices=("pad", "skip"), default="pad",
                   help="files shorter than a clip: pad with silence (default) or skip")
    t.add_argument("--cut", choices=("grid", "onset"), default="grid",
                   help="cut clips on a fixed grid (default) or at onsets")
    t.add_argument("--scale", choices=("log1p", "db"), default=OWN_AUDIO_SCALE,
                   help=f"mel representation (default {OWN_AUDIO_SCALE}): the seed's log1p or "
                        "a dB scale, which spreads recordings at ordinary levels over more of "
                        "[0, 1]")
    t.add_argument("--augment", action="store_true",
                   help="random gain, time shift and speed on training clips")
    t.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best found)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)
    return parser


def _write_json(path: Path, obj: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, allow_nan=False, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _finite(x):
    """NaN/Inf -> None, so metrics.json is strict JSON."""
    import math

    return x if not isinstance(x, float) or math.isfinite(x) else None


def cmd_train(args: argparse.Namespace) -> int:
    """Run ``train``; returns the exit status."""
    from .data import load_folder
    from .train import own_audio_recipe, own_audio_spectrogram, split_by_file, train_on_clips

    t0 = time.perf_counter()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a folder, got an existing file: {out}")
    clips = load_folder(args.folder, short_files=args.short_files, cut=args.cut)
    print(clips.summary())
    budget = args.max_minutes is not None or args.max_steps is not None
    overrides = dict(max_minutes=args.max_minutes, max_steps=args.max_steps,
                     kl_weight=args.kl_weight, free_bits=args.free_bits, lr=args.lr,
                     batch_size=args.batch_size, device=args.device, augment=args.augment)
    if args.epochs is not None or budget:
        overrides["epochs"] = args.epochs  # None: the budget alone ends training
    model_cfg, train_cfg = own_audio_recipe(**overrides)
    model_cfg = replace(model_cfg, latent_dim=args.latent_dim)
    spec = own_audio_spectrogram(args.scale)
    train_idx, val_idx, val_files = split_by_file(clips, args.val_fraction, args.seed,
                                                  args.val_files)
    n_files = len(set(clips.files))
    print(f"training on {len(train_idx)} clips from {n_files - len(val_files)} files, "
          f"validating on {len(val_idx)} clips from {len(val_files)} files "
          f"({', '.join(val_files) or 'none'})")
    run = train_on_clips(clips, model_cfg, train_cfg, val_fraction=args.val_fraction,
                         val_files=val_files or None, seed=args.seed, spectrogram=spec,
                         checkpoint_path=out / "checkpoint.pt",
                         best_checkpoint_path=out / "best.pt", progress=not args.quiet,
                         extra={"folder": str(args.folder)})
    history, train_idx, val_idx, val_files = run.history, run.train_idx, run.val_idx, run.val_files
    model_cfg, train_cfg = run.model_config, run.train_config
    verdict = run.verdict()
    ratios = history.ratios()
    report = clips.report
    metrics = {
        "folder": str(Path(args.folder).resolve()),
        "train_recon": history.train_recon[-1],
        "train_baseline": history.train_baseline,
        "train_ratio": ratios.get("train"),
        "val_recon": history.val_recon[-1] if history.val_recon else None,
        "val_baseline": history.val_baseline,
        "val_ratio": ratios.get("val"),
        "active_units": history.active_units[-1],
        "n_train_clips": len(train_idx),
        "n_val_clips": len(val_idx),
        "val_files": val_files,
        "train_files": sorted({clips.files[i] for i in train_idx}),
        "alarm": verdict,
        "stop_reason": history.stop_reason,
        "epochs": len(history.epoch),
        "steps": history.steps[-1],
        "best_epoch": history.best_epoch,
        "wall_s": time.perf_counter() - t0,
        "train_s": sum(history.seconds),
        "model_config": asdict(model_cfg),
        "train_config": asdict(train_cfg),
        "spectrogram_config": asdict(spec.config),
        "report": json.loads(report.to_json(orient="records")) if report is not None else [],
        "history": {k: [_finite(x) for x in v] if isinstance(v, list) else _finite(v)
                    for k, v in asdict(history).items()},
        "argv": sys.argv[1:],
    }
    metrics = {k: _finite(v) for k, v in metrics.items()}
    _write_json(out / "metrics.json", metrics)
    val = (f"; validation {metrics['val_recon']:.4g} vs baseline {metrics['val_baseline']:.4g} "
           f"({metrics['val_ratio']:.2f}x)" if history.val_recon else "")
    print(f"stopped by {history.stop_reason}")
    print(f"train recon {metrics['train_recon']:.4g} vs mean-mel baseline "
          f"{metrics['train_baseline']:.4g} ({metrics['train_ratio']:.2f}x){val}; "
          f"{metrics['active_units']} active units")
    print(f"collapse alarm: {'FIRED' if verdict['fired'] else 'quiet'}: {verdict['why']}")
    print(f"wrote {out / 'checkpoint.pt'}, {out / 'best.pt'}, {out / 'metrics.json'}")
    return 0


def _one_line(exc: BaseException) -> str:
    lines = [s.strip() for s in str(exc).splitlines() if s.strip()]
    if not lines:
        return type(exc).__name__
    text = lines[0]
    if len(lines) > 1:
        rest = lines[1:6]
        text += " " + "; ".join(rest) + (f"; ... ({len(lines) - 6} more)" if len(lines) > 6
                                         else "")
    return text


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m sda_lab``; returns the exit status."""
    from .train import TrainingDiverged

    parser = build_parser()
    args = parser.parse_args(argv)  # bad options exit 2 with one line

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"sda-lab: warning: {_one_line(message if isinstance(message, Warning) else Warning(message))}",
              file=sys.stderr)

    old_show = warnings.showwarning
    warnings.showwarning = show
    try:
        return args.func(args)
    except (FileNotFoundError, NotADirectoryError, PermissionError, ValueError, TypeError,
            TrainingDiverged, OSError) as exc:
        print(f"sda-lab: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sda-lab: interrupted; the last checkpoint written is kept", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = old_show
