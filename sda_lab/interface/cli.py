"""Command line: ``python -m sda_lab <command> ...``; the commands live in
:mod:`sda_lab.interface.commands`.

Each module named in :data:`COMMAND_MODULES` exposes ``add_parser(subparsers) -> None`` (adds its
sub-parser, sets ``func``) and ``run(args) -> int``; a module not installed yet is left out, so
commands can be added one module at a time. ``train`` (:mod:`sda_lab.interface.commands.train`)
loads a folder, holds out whole files, trains the own-audio recipe and writes
``DIR/checkpoint.pt``, ``DIR/best.pt`` and ``DIR/metrics.json``.

Every option is checked before any work (:mod:`sda_lab.interface.commands._options`). Errors (a bad
option, no such folder, no usable audio, an impossible split, a run already in ``--out``, a
full disk, a diverged run) are one line on stderr starting ``sda-lab: error:``, naming the CLI's
flags, with exit status 1 (2 for bad options), never a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
import warnings

from .commands._options import PROG, OneLineParser, error_line

__all__ = ["COMMAND_MODULES", "available_commands", "build_parser", "main"]

COMMAND_MODULES = ("sda_lab.interface.commands.train", "sda_lab.interface.commands.listen",
                   "sda_lab.interface.commands.generate", "sda_lab.interface.commands.export",
                   "sda_lab.interface.commands.blend",
                   "sda_lab.interface.commands.train_vocoder")


def available_commands() -> list:
    """The modules of :data:`COMMAND_MODULES` that exist, imported, in that order."""
    found = []
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is not None:
            found.append(importlib.import_module(name))
    return found


def build_parser() -> OneLineParser:
    """The ``sda_lab`` command's argument parser, one sub-parser per available command."""
    parser = OneLineParser(prog=PROG, description="sda-lab: small-dataset audio VAEs.")
    subs = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for module in available_commands():
        module.add_parser(subs)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m sda_lab``; returns the exit status.

    ``argv``: the arguments (None: ``sys.argv[1:]``, the command line). A command receives
    them as ``args.argv`` (what ``train`` records in ``metrics.json``) and ``args.started``,
    the ``time.perf_counter()`` its wall time counts from: the process's start for the command
    line (start-up and imports included), this call for ``argv`` given in-process.
    """
    started = time.perf_counter()
    if argv is None:
        from ..training.budget import seconds_since_start

        started -= seconds_since_start()
    given = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()  # imports the commands' modules (and torch): seconds
        args = parser.parse_args(given)  # bad options exit 2 with one line
        args.argv, args.started = [str(a) for a in given], started
    except KeyboardInterrupt:
        print("sda-lab: interrupted before any work started", file=sys.stderr)
        return 130

    def show(message, category, filename, lineno, file=None, line=None):
        warning = message if isinstance(message, Warning) else Warning(message)
        print(f"sda-lab: warning: {error_line(warning)}", file=sys.stderr)

    old_show = warnings.showwarning
    warnings.showwarning = show
    try:
        return args.func(args)
    except KeyboardInterrupt:
        from pathlib import Path

        if args.command == "train":
            kept = ("the last checkpoint written is kept"
                    if (Path(args.out) / "checkpoint.pt").is_file() else "nothing was written")
        elif args.command.startswith("train"):  # train-vocoder: its checkpoint in RUN
            kept = "the last checkpoint written is kept"
        else:
            kept = "no file was half-written"
        print(f"sda-lab: interrupted; {kept}", file=sys.stderr)
        return 130
    except (OSError, ValueError, TypeError, RuntimeError) as exc:
        # RuntimeError covers TrainingDiverged and torch's own write errors
        print(f"sda-lab: error: {error_line(exc)}", file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = old_show
