"""``make test`` runs the product's notebooks only: a user's scratch notebook or JupyterLab's
"-Copy1" in ``notebooks/`` is neither collected, stamped nor checked (issue 33)."""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import nbstamp  # noqa: E402


@pytest.fixture
def notebooks(tmp_path, monkeypatch):
    """A git checkout's notebooks/ with two committed numbered notebooks and a user's three."""
    if shutil.which("git") is None:
        pytest.skip("needs git")
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name in ("01_a.ipynb", "02_b.ipynb"):
        (folder / name).write_text("{}")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "notebooks"], cwd=tmp_path, check=True)
    for name in ("01_a-Copy1.ipynb", "scratch.ipynb", "03_mine.ipynb"):
        (folder / name).write_text("{}")
    monkeypatch.setattr(nbstamp, "NOTEBOOKS", folder)
    return folder


def test_only_the_tracked_numbered_notebooks_are_the_products(notebooks):
    assert [p.name for p in nbstamp.notebook_paths()] == ["01_a.ipynb", "02_b.ipynb"]
    assert [p.name for p in nbstamp.notebook_paths(["02"])] == ["02_b.ipynb"]


def test_outside_a_git_checkout_every_numbered_notebook_counts(notebooks):
    shutil.rmtree(notebooks.parent / ".git")
    assert [p.name for p in nbstamp.notebook_paths()] == [
        "01_a-Copy1.ipynb", "01_a.ipynb", "02_b.ipynb", "03_mine.ipynb"]


def test_pytest_skips_a_notebook_that_is_not_the_products():
    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    ours = nbstamp.notebook_paths()
    assert ours and all(conftest.pytest_ignore_collect(p, None) is None for p in ours)
    scratch = ROOT / "notebooks" / "scratch.ipynb"
    assert conftest.pytest_ignore_collect(scratch, None) is True
    assert conftest.pytest_ignore_collect(ROOT / "tests" / "test_vae.py", None) is None
