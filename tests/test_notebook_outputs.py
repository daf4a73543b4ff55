"""Committed notebooks must show what the committed code gives (no re-execution here).

``make notebooks`` (tools/nbstamp.py) executes every notebook and records in its metadata a hash
of its code cells and of each sda_lab module it imported. These tests recompute the hashes: a
notebook whose outputs predate a change to its own cells or to the package code it ran fails,
naming what changed. Outputs must also name no folder of the machine they ran on.
"""

import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import nbstamp  # noqa: E402

NOTEBOOKS = nbstamp.notebook_paths()
# an absolute path of a machine (home, temp or work folders) or a folder outside the repository
MACHINE_PATH = re.compile(r"(?<![\w.])(/(home|root|tmp|work|Users|private|var/folders)/|\.\./shared)")


def _outputs_text(nb) -> list[tuple[int, str]]:
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            parts = [out.get("text", "")]
            data = out.get("data", {})
            parts += [data.get(k, "") for k in ("text/plain", "text/markdown", "text/html")]
            if out.get("output_type") == "error":
                parts.append(f"{out.get('ename')}: {out.get('evalue')}")
            found.append((i, "".join("".join(p) if isinstance(p, list) else p for p in parts)))
    return found


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 7, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_are_fresh(path):
    reasons = nbstamp.stale_reasons(path)
    assert not reasons, (f"{path.name}: committed outputs are stale: {'; '.join(reasons)}. "
                         f"Re-execute it: make notebooks NB={path.name[:2]}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_name_no_machine_folder_and_hold_no_error(path):
    nb = nbformat.read(path, as_version=4)
    for i, text in _outputs_text(nb):
        m = MACHINE_PATH.search(text)
        assert m is None, f"{path.name} cell {i} output names a machine folder: ...{text[max(0, m.start() - 60):m.end() + 60]}..."
    errors = [i for i, c in enumerate(nb.cells)
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: error outputs in cells {errors}"


def test_staleness_is_detected(tmp_path):
    """The check itself can fail: a changed cell and a changed module are both reported."""
    src = next(p for p in NOTEBOOKS if nbstamp.stale_reasons(p) == []) if any(
        nbstamp.stale_reasons(p) == [] for p in NOTEBOOKS) else NOTEBOOKS[0]
    nb = nbformat.read(src, as_version=4)
    nb.metadata[nbstamp.STAMP_KEY] = {"cells_sha256": nbstamp.cells_hash(nb),
                                      "modules": {"sda_lab/__init__.py": "0" * 64}}
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.source += "\n# edited"
    copy = tmp_path / src.name
    nbformat.write(nb, copy)
    reasons = nbstamp.stale_reasons(copy)
    assert any("code cells changed" in r for r in reasons), reasons
    assert any("sda_lab/__init__.py" in r for r in reasons), reasons
    del nb.metadata[nbstamp.STAMP_KEY]
    nbformat.write(nb, copy)
    assert "never executed" in nbstamp.stale_reasons(copy)[0]
