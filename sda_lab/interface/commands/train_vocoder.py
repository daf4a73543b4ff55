"""``python -m sda_lab train-vocoder RUN --max-minutes M [--max-steps N] [--restart] [--seed S]
[--quiet]``.

Train a run's own HiFi-GAN V2 vocoder (:mod:`sda_lab.training.vocoder`) on the run's training
files, for ``--max-minutes`` of training (wall time; the held-out scoring afterwards is not
counted) or until ``--max-steps`` steps in all, into ``RUN/vocoder.pt``. A ``RUN/vocoder.pt``
already there is gone on from (its step count, optimisers and random state) unless
``--restart``. Ctrl-C keeps the last finished step (exit 130); run the command again to go on.

At the end the run's held-out files are heard two ways, the mel round trip through the vocoder
and through the run's own inversion (:meth:`Inverter.for_run
<sda_lab.representation.inverter.Inverter.for_run>` without the vocoder), and the table of
spectral convergence, log-spectral distance and level (as ``train`` scores audio) is printed,
with one line saying whether the vocoder is kept: only where both its spectral convergence and
its log-spectral distance are lower. A kept vocoder is what ``listen``, ``generate`` and the
explorer hear the run through; exports do not carry it.

Errors are one line naming the argument, before any training: RUN not a folder, without a
checkpoint or without ``metrics.json`` (a run that did not finish), a bad ``--max-minutes``,
``--max-steps`` or ``--seed``, RUN in use by a training, a ``vocoder.pt`` that is not readable or
of another spectrogram.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import _options as opt

__all__ = ["add_parser", "run", "MAX_MINUTES"]

MAX_MINUTES = 7 * 24 * 60.0  # a week: more is refused as a typo
_MINUTES = f"a positive number of minutes up to {MAX_MINUTES:g} (a week)"
minutes_option = opt._number(float, lambda v: 0 < v <= MAX_MINUTES, _MINUTES)


def add_parser(subparsers) -> None:
    """Add ``train-vocoder`` to ``subparsers`` (an ``argparse`` sub-parser action)."""
    p = subparsers.add_parser(
        "train-vocoder", help="train a run's own HiFi-GAN vocoder; kept only where it beats "
                              "the run's inversion on held-out files",
        description="Train a HiFi-GAN V2 vocoder on RUN's training files into RUN/vocoder.pt "
                    "(going on from one already there), then score the held-out files through "
                    "it and through the run's own inversion and keep it only where it wins.")
    p._sub_name = "train-vocoder"
    p.add_argument("run", metavar="RUN", type=opt.path,
                   help="run folder of 'python -m sda_lab train'")
    p.add_argument("--max-minutes", type=minutes_option, required=True,
                   help="minutes of training in this call (wall time; scoring comes after)")
    p.add_argument("--max-steps", type=opt.positive_int, default=None,
                   help="stop at this many steps in all (over every call)")
    p.add_argument("--restart", action="store_true",
                   help="start over instead of going on from RUN/vocoder.pt")
    p.add_argument("--seed", type=opt.seed, default=0,
                   help="seeds the initial weights and the segments of a fresh training")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def check_run(run_dir: str) -> Path:
    """``RUN`` as a finished run folder, else one-line ``FileNotFoundError``."""
    from ...training.rundir import RunDir

    run = RunDir(run_dir)
    run.run_checkpoint()  # RUN: not a folder / no checkpoint, one line
    if not run.metrics.is_file():
        raise FileNotFoundError(f"RUN: {run_dir} has no metrics.json: the run did not finish "
                                f"(resume it with 'python -m sda_lab train ... --resume') or is "
                                f"not a train run")
    return run.path


def train_vocoder_command(run_dir: str, max_minutes: float, max_steps: int | None = None,
                          restart: bool = False, seed: int = 0, quiet: bool = False):
    """Do what ``train-vocoder`` does; returns ``(result, resumed_from_step)``
    (:class:`~sda_lab.training.vocoder.VocoderResult`)."""
    import time

    from ...representation.vocoder import load_vocoder
    from ...studies.vocoder import train_run_vocoder
    from ...training.rundir import RunDir

    if not (0 < max_minutes <= MAX_MINUTES):
        raise ValueError(f"--max-minutes: expected {_MINUTES}, got {max_minutes!r}")
    path = check_run(run_dir)
    existing = path / "vocoder.pt"
    resumed = None
    if existing.is_file() and not restart:
        try:
            resumed = int(load_vocoder(existing).history.get("steps", 0))
        except ValueError as exc:
            raise ValueError(f"{exc}; --restart starts over (the file is replaced)") from exc
    with RunDir(path).lock():
        result = train_run_vocoder(path, budget_s=60.0 * max_minutes, clock=time.perf_counter,
                                   max_steps=max_steps, generator=seed, resume=not restart,
                                   progress=not quiet)
    return result, resumed


def run(args: argparse.Namespace) -> int:
    """Run ``train-vocoder``; returns the exit status (errors propagate to the CLI's one line)."""
    from ...training.audio_eval import FIGURES

    result, resumed = train_vocoder_command(args.run, args.max_minutes, args.max_steps,
                                            args.restart, args.seed, args.quiet)
    h = result.vocoder.history
    went_on = f" (went on from step {resumed})" if resumed is not None else ""
    print(f"trained the vocoder to step {h['steps']}{went_on}: {h['cpu_seconds']:.0f} CPU s, "
          f"{h['wall_seconds']:.0f} s in all; stopped by "
          f"{'--max-minutes' if result.stopped == 'budget' else '--max-steps'}; "
          f"wrote {Path(args.run) / 'vocoder.pt'} "
          f"({(Path(args.run) / 'vocoder.pt').stat().st_size / 2**20:.0f} MB with the training "
          "state a later call goes on from)")
    names = {"spectral_convergence": "spectral convergence",
             "log_spectral_distance_db": "log-spectral distance dB", "level_db": "level dB"}
    print(f"{'mel round trip, ' + result.through_vocoder.on + ' files':<40}"
          + "".join(f"{names[f]:>26}" for f in FIGURES))
    for who, e in (("vocoder", result.through_vocoder),
                   (result.through_inverter.inversion, result.through_inverter)):
        print(f"{who[:40]:<40}" + "".join(f"{e.mean('mel_round_trip', f):>26.3f}"
                                          for f in FIGURES))
    use = ("listen, generate and the explorer now hear the run through it" if result.kept ==
           "vocoder" else "listen, generate and the explorer go on hearing the run through "
                          "its own inversion")
    print(f"{result.why}; {use}")
    return 0
