"""The package's layers, as pyproject.toml's import-linter contracts state them: the package
keeps them, and an upward import or a circle breaks them (on a copy of the package)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the ``sda_lab`` under ``root`` with ``root/pyproject.toml``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), str(root / "pyproject.toml"), "--no-cache"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "sda_lab", tmp_path / "sda_lab",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text() + f"\n{line}  # noqa: E402\n")


def test_the_package_keeps_its_contracts():
    out = _lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Contracts: 2 kept, 0 broken." in out.stdout, out.stdout


def test_an_upward_import_breaks_the_layers(tmp_path):
    root = _copy(tmp_path)
    _append(root / "sda_lab" / "core" / "utils.py", "from sda_lab.interface import cli")
    out = _lint(root)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Pipeline layers BROKEN" in out.stdout, out.stdout
    assert "sda_lab.core is not allowed to import sda_lab.interface" in out.stdout
    assert "- sda_lab.core.utils -> sda_lab.interface.cli" in out.stdout


def test_a_circle_inside_a_layer_breaks_the_acyclic_contract(tmp_path):
    root = _copy(tmp_path)
    _append(root / "sda_lab" / "training" / "history.py", "from sda_lab.training import loop")
    out = _lint(root)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Pipeline layers KEPT" in out.stdout and "1 kept, 1 broken" in out.stdout, out.stdout
    assert "No cycles are allowed in sda_lab.training" in out.stdout
    assert "- .history -> .loop" in out.stdout
