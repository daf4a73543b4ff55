"""Option types and one-line errors shared by every ``python -m sda_lab`` subcommand.

Each ``argparse`` type below checks one option's text and raises
``argparse.ArgumentTypeError("expected <what>, got '<text>'")``; :class:`OneLineParser` turns
that into the single line ``sda-lab: error: --flag: expected ..., got '...'`` (exit status 2),
so every error names the FLAG, what it expected and what came, before any work starts.

Errors raised deeper (the trainer, the split) name Python keywords (``val_fraction=0``);
:func:`error_line` rewrites those to the CLI's flags through the one table :data:`KEYWORD_FLAGS`.
"""

from __future__ import annotations

import argparse
import errno
import re
from pathlib import Path

__all__ = ["PROG", "OneLineParser", "KEYWORD_FLAGS", "positive_int", "positive_float",
           "nonneg_int", "nonneg_float", "fraction", "seed", "device", "error_line",
           "in_flag_terms", "check_device", "check_file_out_folder", "count"]

PROG = "python -m sda_lab"
MAX_SEED = 2**31 - 1  # numpy takes seeds < 2**32; sda_lab.core.settings keeps the same headroom

# Python keyword (as the trainer and the split name it) -> CLI flag. The one place this is written.
KEYWORD_FLAGS = {
    "val_fraction": "--val-fraction",
    "val_files": "--val-files",
    "max_minutes": "--max-minutes",
    "max_steps": "--max-steps",
    "epochs": "--epochs",
    "kl_weight": "--kl-weight",
    "free_bits": "--free-bits",
    "lr": "--lr",
    "batch_size": "--batch-size",
    "latent_dim": "--latent-dim",
    "latent": "--latent",
    "time_halvings": "--time-halvings",
    "dropout": "--dropout",
    "mixup": "--mixup",
    "mel_shift": "--mel-shift",
    "ema_decay": "--ema-decay",
    "short_files": "--short-files",
    "cut": "--cut",
    "scale": "--scale",
    "augment": "--augment",
    "device": "--device",
    "seed": "--seed",
    "out": "--out",
}
# a keyword followed by "=", or a keyword with an underscore standing alone as a word (plain
# words such as "seed" or "scale" are only rewritten before "=": "the seed's" stays prose)
_KEYWORD = re.compile(
    r"(?<![\w/.\-])(?:(" + "|".join(map(re.escape, KEYWORD_FLAGS)) + r")(?=\s*=)"
    r"|(" + "|".join(re.escape(k) for k in KEYWORD_FLAGS if "_" in k) + r")\b(?![.\w]))")


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line naming the flag (argparse prints the usage first and
    says ``argument --seed:``). Flags must be given whole (``allow_abbrev=False``): a shortened
    one would slip past the checks that look for a flag by name (``train --resume``'s)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D102 - argparse's hook
        sub = getattr(self, "_sub_name", "")
        hint = f"{PROG} {sub} --help" if sub else f"{PROG} --help"
        message = re.sub(r"^argument ([^:]+): ", lambda m: m.group(1).split("/")[-1] + ": ",
                         message)
        self.exit(2, f"sda-lab: error: {message} (see {hint})\n")


def path(text: str) -> str:
    """A path given on the command line: not empty (an empty one would mean the current
    folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, got an empty string")
    return text


def count(n: int, noun: str) -> str:
    """``"1 file"``, ``"2 files"``: ``n`` and ``noun``, plural by an ``s`` unless ``n`` is 1."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def check_file_out_folder(out: Path, option: str = "--out") -> None:
    """One line naming ``option`` unless the folder ``out`` is to be written in exists: a file
    written into a folder that is not there is more often a mistyped path than a wish to
    create it."""
    folder = Path(out).parent
    if not folder.is_dir():
        raise ValueError(f"{option}: expected a file in an existing folder, got {out} "
                         f"({folder} is {'a file' if folder.exists() else 'not there'})")


def _number(parse, ok, expected: str):
    """An argparse ``type``: ``parse`` the text, accept it when ``ok(value)``, else say what
    was ``expected`` and what came."""

    def convert(text: str):
        try:
            value = parse(text)
        except (ValueError, OverflowError):
            value = None
        if value is None or value != value or not ok(value):  # value != value: NaN
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    convert.__name__ = expected  # argparse names a failed type by its __name__
    return convert


positive_int = _number(int, lambda v: v >= 1, "a positive integer")
nonneg_int = _number(int, lambda v: v >= 0, "a non-negative integer")
positive_float = _number(float, lambda v: 0 < v < float("inf"), "a positive number")
nonneg_float = _number(float, lambda v: 0 <= v < float("inf"), "a number >= 0")
fraction = _number(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")
_seed = _number(int, lambda v: 0 <= v, "a non-negative integer")


def seed(text: str) -> int:
    """``--seed``: an integer in [0, 2**31 - 1]."""
    value = _seed(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(
            f"expected a non-negative integer up to {MAX_SEED}, got {text!r}")
    return value


DEVICES = ("cpu", "cuda", "cuda:N", "mps")


def check_device(name: str) -> str:
    """``name`` if it is a device torch has on this machine, else ``ValueError`` (one line
    saying which devices exist)."""
    import torch

    kind, _, index = name.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"expected one of {', '.join(DEVICES)}, got {name!r}")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"expected a device this machine has, got {name!r}: "
                             "CUDA is not available here (use --device cpu)")
        if index and int(index) >= torch.cuda.device_count():
            raise ValueError(f"expected a CUDA device index below "
                             f"{torch.cuda.device_count()}, got {name!r}")
    if kind == "mps" and not (getattr(torch.backends, "mps", None)
                              and torch.backends.mps.is_available()):
        raise ValueError(f"expected a device this machine has, got {name!r}: "
                         "Apple's MPS is not available here (use --device cpu)")
    return name


def device(text: str) -> str:
    """``--device``: cpu, cuda, cuda:N or mps, and present on this machine."""
    try:
        return check_device(text.strip().lower())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def in_flag_terms(text: str) -> str:
    """``text`` with every Python keyword of :data:`KEYWORD_FLAGS` written as its flag
    (``"val_fraction=0"`` -> ``"--val-fraction=0"``); paths and dotted names are left alone."""
    return _KEYWORD.sub(lambda m: KEYWORD_FLAGS[m.group(1) or m.group(2)], text)


def _no_space(exc: BaseException) -> bool:
    text = str(exc)
    return ((isinstance(exc, OSError) and exc.errno == errno.ENOSPC)
            or "No space left" in text or ("enforce fail" in text and "write" in text.lower()))


def error_line(exc: BaseException) -> str:
    """One line for ``exc``: its first line, then up to five more joined by ``; ``, in the
    CLI's flag names. A full disk says "no space left on ..." (``sda_lab.core._io.WriteError``
    already does; a raw ``OSError``/torch write error is reworded); a diverged run starts
    "training diverged"."""
    from ...core._io import WriteError

    if _no_space(exc) and not isinstance(exc, WriteError):
        where = getattr(exc, "filename", None)
        return f"no space left on the device{f' while writing {where}' if where else ''}"
    lines = [s.strip() for s in str(exc).splitlines() if s.strip()]
    if type(exc).__name__ == "TrainingDiverged" and not (lines and "diverged" in lines[0]):
        lines = [f"training diverged: {lines[0] if lines else 'the loss became NaN or Inf'}",
                 *lines[1:]]
    if not lines:
        return type(exc).__name__
    text = lines[0]
    if len(lines) > 1:
        rest = lines[1:6]
        text += " " + "; ".join(rest) + (f"; ... ({len(lines) - 6} more)" if len(lines) > 6
                                         else "")
    return in_flag_terms(text)
