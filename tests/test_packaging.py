"""pyproject.toml and environment.yml must name the same dependencies."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(map(_norm, project["dependencies"]))
    for extra in project["optional-dependencies"].values():
        wanted |= set(map(_norm, extra))
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {_norm(r) for r in pip_section if not r.startswith("-e")}
    assert listed == wanted, f"only in pyproject: {wanted - listed}; only in env: {listed - wanted}"


def test_torchaudio_works_with_installed_torch():
    """torchaudio 2.11 declares no torch pin; check the transforms we use run with this torch."""
    import torch
    import torchaudio
    import torchaudio.functional as AF

    assert torchaudio.__version__.startswith("2.11")
    x = torch.randn(1, 4800)
    assert AF.resample(x, 48_000, 16_000).shape == (1, 1600)
