"""Which files a folder of audio holds: the walk behind :func:`sda_lab.data.load_folder`.

- :func:`walk` lists every file under a folder, sorted by path relative to it, and names the
  folders it could not read: a folder that cannot be listed (permission denied) and a symlink
  back to a folder already read (a loop). Symlinked folders are followed, each real folder once
  (``os.stat``'s device and inode); hidden folders (``.git``) are not entered.
- :func:`is_ignored` is what is left out silently: hidden files and documents.
- :func:`display_name` writes a path whose bytes are not UTF-8 with ``\\xe9`` escapes.
- :func:`file_fingerprints` records each file's size and SHA-256, so a run can tell later
  whether the files it trained on are still the same.
- :func:`example_folder` and :func:`user_or_example_folder` are the repository's own folders,
  ``data/examples/`` and ``data/user/``.

Names are kept as ``os.scandir`` gives them (undecodable bytes as surrogates, PEP 383), so a file
whose name is not UTF-8 opens like any other; only what is shown goes through
:func:`display_name`.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path

import soundfile as sf

from ..core.run_layout import file_sha256

__all__ = ["DOC_EXTENSIONS", "is_ignored", "display_name", "walk", "list_files",
           "file_fingerprints", "example_folder", "user_or_example_folder"]

# Documents beside the audio (READMEs, licences, notes): not in the report at all, like hidden
# files (".DS_Store") and hidden folders (".git").
DOC_EXTENSIONS = (".md", ".txt", ".rst", ".pdf", ".html", ".htm")
_DATA_DIR = Path(__file__).resolve().parents[2] / "data"


def is_ignored(name: str) -> bool:
    """True for what :func:`sda_lab.data.load_folder` leaves out silently: hidden files and
    documents (``README``, ``*.md``, ``*.txt``, ... :data:`DOC_EXTENSIONS`)."""
    base = Path(name).name
    return (base.startswith(".") or Path(base).suffix.lower() in DOC_EXTENSIONS
            or base.upper().startswith(("README", "LICENSE", "LICENCE", "COPYING")))


def display_name(rel: str) -> str:
    """A relative path as text that can always be printed and stored as JSON: bytes that are
    not UTF-8 (kept by Python as surrogates) are written as ``\\xe9``."""
    return os.fsencode(rel).decode("utf-8", "backslashreplace")


def _why_unread(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied (folder not read)"
    return f"folder not read ({exc.strerror or exc})"


def walk(root: Path, recursive: bool = True
         ) -> tuple[list[tuple[Path, str, str]], list[tuple[str, str]]]:
    """Files under ``root`` and the folders that were not read.

    Returns
    -------
    found : list of (path, relative path, note)
        Every file that is not :func:`is_ignored`, sorted by relative path (``"sub/a.wav"``);
        ``note`` is ``"found through the symlinked folder <link>"`` or ``""``.
    unread : list of (name, reason)
        Folders not read, ``name`` a :func:`display_name` ending in ``/`` (``"./"`` for
        ``root`` itself): "permission denied (folder not read)", "folder not read (<OS error>)",
        or "symlink to a folder already read (a loop): not read twice"; and symlinks that lead
        to no file or folder, ``name`` without the ``/``: "broken symlink (its target does not
        exist)" or "symlink not followed (<OS error>, e.g. a loop)".
    """
    found: list[tuple[Path, str, str]] = []
    unread: list[tuple[str, str]] = []

    def not_read(rel: str, reason: str) -> None:
        unread.append((display_name(rel.rstrip("/") + "/"), reason))

    def bad_link(rel: str, reason: str) -> None:
        if not is_ignored(rel):
            unread.append((display_name(rel), reason))

    seen: set[tuple[int, int]] = set()
    # (folder, its path relative to root, the symlinked folder it was reached through)
    todo: list[tuple[Path, str, str]] = [(Path(root), "", "")]
    while todo:
        folder, rel, via = todo.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                not_read(rel, "symlink to a folder already read (a loop): not read twice")
                continue
            seen.add((st.st_dev, st.st_ino))
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            not_read(rel or ".", _why_unread(exc))
            continue
        for entry in entries:
            sub = f"{rel}/{entry.name}" if rel else entry.name
            try:
                is_dir = entry.is_dir()  # follows links
                is_file = not is_dir and entry.is_file()
            except OSError as exc:
                if entry.is_symlink():
                    bad_link(sub, f"symlink not followed ({exc.strerror or exc})")
                else:
                    not_read(sub, _why_unread(exc))
                continue
            if not (is_dir or is_file) and entry.is_symlink():
                bad_link(sub, "broken symlink (its target does not exist)")
                continue
            if is_dir:
                if recursive and not entry.name.startswith("."):
                    link = sub if entry.is_symlink() else via
                    todo.append((Path(entry.path), sub, link))
            elif is_file and not is_ignored(sub):
                note = f"found through the symlinked folder {display_name(via)}" if via else ""
                found.append((Path(entry.path), sub, note))
    found.sort(key=lambda t: t[1])
    return found, unread


def list_files(root: Path, recursive: bool = True) -> list[Path]:
    """Every file :func:`sda_lab.data.load_folder` would look at, sorted by relative path."""
    return [p for p, _, _ in walk(Path(root), recursive)[0]]


def file_fingerprints(folder: str | Path, names: Iterable[str] | None = None
                      ) -> dict[str, dict[str, object]]:
    """``{name: {"bytes": size, "sha256": hex digest}}`` for the files under ``folder`` named
    as :func:`sda_lab.data.load_folder` names them (``AudioClips.files``: relative paths,
    :func:`display_name`), all of them when ``names`` is None. A named file that is not there
    or cannot be read is left out. Content, not modification time: a copied folder keeps its
    fingerprints."""
    paths = {display_name(rel): p for p, rel, _ in walk(Path(folder))[0]}
    wanted = paths if names is None else {n: paths[n] for n in names if n in paths}
    out: dict[str, dict[str, object]] = {}
    for name, path in sorted(wanted.items()):
        try:
            size, digest = file_sha256(path)
        except OSError:
            continue
        out[name] = {"bytes": size, "sha256": digest}
    return out


def example_folder() -> Path:
    """The bundled example sounds, ``data/examples/`` in the repository (see its README).

    Raises
    ------
    FileNotFoundError
        If the package runs outside a repository checkout (the examples are not installed).
    """
    folder = _DATA_DIR / "examples"
    if not folder.is_dir():
        raise FileNotFoundError(f"bundled examples not found at {folder}: they ship with the "
                                "repository checkout (install it with pip install -e .)")
    return folder


def _is_audio(path: Path) -> bool:
    try:
        return sf.info(str(path)).frames > 0
    except Exception:  # soundfile raises LibsndfileError, RuntimeError, OSError, ...
        return False


def user_or_example_folder() -> Path:
    """``data/user/`` if it holds any audio file libsndfile reads, else :func:`example_folder`."""
    user = _DATA_DIR / "user"
    if user.is_dir() and any(_is_audio(f) for f in list_files(user)):
        return user
    return example_folder()
