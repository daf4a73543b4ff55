"""Execute notebooks in place and stamp what their outputs came from (``make notebooks``).

    python tools/nbstamp.py                 # every notebooks/NN_*.ipynb
    python tools/nbstamp.py 03 07           # the ones whose names start with these
    python tools/nbstamp.py --check         # exit 1 and list stale notebooks, run nothing

Each notebook runs top to bottom in a fresh kernel (cwd ``notebooks/``, the base seed from
``SDA_LAB_SEED`` or 0). After its last cell the kernel is asked which ``sda_lab`` modules it
imported; the notebook's metadata then records (``metadata["sda_lab"]``) a hash of its code cells
and of each of those modules' source. ``tests/test_notebook_outputs.py`` recomputes both without
executing anything and fails when a committed notebook's outputs predate a change to its own
cells or to the package code it runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
STAMP_KEY = "sda_lab"
_PROBE = ("import json as _j, sys as _s\n"
          "print(_j.dumps(sorted({getattr(m, '__file__', None) or '' for n, m in list(_s.modules.items())"
          " if n == 'sda_lab' or n.startswith('sda_lab.')} - {''})))")


def notebook_paths(prefixes: list[str] | None = None) -> list[Path]:
    """The product's notebooks: the numbered ones (``NN_*.ipynb``) that git tracks (in a git
    checkout; every numbered one elsewhere), so a user's scratch notebook or JupyterLab's
    "-Copy1" in ``notebooks/`` is neither run, stamped nor tested. Optionally only those whose
    names start with one of ``prefixes``."""
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    tracked = _tracked(NOTEBOOKS)
    if tracked is not None:
        paths = [p for p in paths if p.name in tracked]
    if prefixes:
        paths = [p for p in paths if any(p.name.startswith(x) for x in prefixes)]
    return paths


def _tracked(folder: Path) -> set[str] | None:
    """Names of the files git tracks in ``folder``; None outside a git checkout."""
    try:
        done = subprocess.run(["git", "ls-files", "--", "."], cwd=folder, capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return {Path(line).name for line in done.stdout.splitlines()}


def cells_hash(nb) -> str:
    """sha256 of the code cells' sources, in order (markdown edits do not stale outputs)."""
    h = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            h.update(cell.source.encode())
            h.update(b"\x00")
    return h.hexdigest()


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stale_reasons(path: Path) -> list[str]:
    """Why ``path``'s committed outputs may not come from the committed code ([] = fresh)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    stamp = nb.metadata.get(STAMP_KEY)
    if not stamp or "modules" not in stamp:
        return ["it was never executed with `make notebooks` (no stamp in its metadata)"]
    reasons = []
    if stamp.get("cells_sha256") != cells_hash(nb):
        reasons.append("its code cells changed after it was executed")
    for rel, digest in sorted(stamp["modules"].items()):
        f = ROOT / rel
        if not f.is_file():
            reasons.append(f"{rel} (which it ran) no longer exists")
        elif file_hash(f) != digest:
            reasons.append(f"{rel} (which it ran) changed after it was executed")
    return reasons


def execute(path: Path, timeout: int = 900) -> float:
    """Run ``path`` in place in a fresh kernel and stamp it; returns the seconds it took."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(_PROBE))
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - t0
    probe = nb.cells.pop()
    text = "".join(o.get("text", "") for o in probe.outputs if o.get("output_type") == "stream")
    files = [Path(f).resolve() for f in json.loads(text.strip().splitlines()[-1])]
    modules = {}
    for f in files:
        try:
            rel = f.relative_to(ROOT)
        except ValueError:  # an installed copy outside the checkout: nothing to stamp against
            continue
        modules[rel.as_posix()] = file_hash(f)
    nb.metadata[STAMP_KEY] = {"cells_sha256": cells_hash(nb), "modules": modules}
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="run only notebooks starting with these")
    parser.add_argument("--check", action="store_true", help="list stale notebooks, run nothing")
    args = parser.parse_args(argv)
    paths = notebook_paths(args.prefixes)
    if not paths:
        print(f"no notebook matches {args.prefixes}", file=sys.stderr)
        return 2
    if args.check:
        stale = {p.name: stale_reasons(p) for p in paths}
        for name, reasons in stale.items():
            print(f"{name}: {'fresh' if not reasons else 'STALE: ' + '; '.join(reasons)}")
        return 1 if any(stale.values()) else 0
    for p in paths:
        print(f"{p.name} ...", flush=True)
        seconds = execute(p)
        print(f"{p.name}: executed and stamped in {seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
