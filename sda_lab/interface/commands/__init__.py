"""Subcommands of ``python -m sda_lab``: one module each (see
:data:`sda_lab.interface.cli.COMMAND_MODULES`).

A command module exposes ``add_parser(subparsers) -> None`` (adds its sub-parser and sets
``func=run`` on it) and ``run(args) -> int`` (the exit status). Shared option types and the
error-to-one-line helper live in :mod:`sda_lab.interface.commands._options`.
"""
