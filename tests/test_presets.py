"""Presets (sda_lab.studies.presets): save and load round trips, another run's preset refused,
bad names and files in one line, and the explorer's save/load. Tiny runs of test_generate."""

from __future__ import annotations

import json

import pytest
import torch

from sda_lab.studies.presets import PRESETS_FOLDER, list_presets, load_preset, save_preset

from .test_generate import TINY, tiny_run

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny runs of different weights (seeds 0 and 1)."""
    root = tmp_path_factory.mktemp("presets")
    return tiny_run(root / "a", seed=0), tiny_run(root / "b", seed=1)


def _one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg and msg
    return msg


def test_save_and_load_keep_z_and_sliders_exactly(runs, tmp_path):
    run, _ = runs
    g = torch.Generator().manual_seed(3)
    z = torch.randn(TINY.latent_dim, generator=g)  # (D,) float32
    sliders = {"z0": 0.1 + 0.2, "z1 · brighter ↑": -1 / 3, "z2": 1e-17}
    path = save_preset(run, "keep", z, sliders, seconds=2.5, note="low drone")
    assert path == run / PRESETS_FOLDER / "keep.json"
    got = load_preset(run, "keep")
    assert got.z.shape == (1, TINY.latent_dim) and got.z.dtype == torch.float32
    assert torch.equal(got.z[0], z)
    assert got.sliders == sliders  # exactly, the descriptor name's characters too
    assert got.seconds == 2.5 and got.note == "low drone" and got.run == "run"
    assert torch.equal(load_preset(run, path).z, got.z)  # by path as well as by name
    assert list_presets(run) == ["keep"]

    with pytest.raises(ValueError) as err:  # no silent overwrite
        save_preset(run, "keep", -z, sliders)
    assert "exists" in _one_line(err) and "overwrite=True" in str(err.value)
    save_preset(run, "keep", -z, {}, overwrite=True)
    assert torch.equal(load_preset(run, "keep").z[0], -z)
    assert not [p for p in (run / PRESETS_FOLDER).iterdir() if p.name.startswith(".")]


def test_another_runs_preset_is_refused(runs, tmp_path):
    _, b = runs
    a = tiny_run(tmp_path, seed=0)  # its own: its checkpoint is replaced below
    path = save_preset(a, "of_a", torch.zeros(TINY.latent_dim), {})
    with pytest.raises(ValueError) as err:
        load_preset(b, path)
    msg = _one_line(err)
    assert "belongs to run 'run'" in msg and "checkpoint sha" in msg and str(b) in msg
    # the same run whose checkpoint changed (trained on) is another run too
    (a / "best.pt").write_bytes((b / "best.pt").read_bytes())
    with pytest.raises(ValueError, match="belongs to run"):
        load_preset(a, "of_a")


@pytest.mark.parametrize("name", ["", "  ", "a/b", "..\\up", ".hidden", "x.json", "new\nline",
                                  "x" * 101])
def test_bad_names_are_one_line(runs, name):
    run, _ = runs
    with pytest.raises(ValueError) as err:
        save_preset(run, name, torch.zeros(TINY.latent_dim))
    assert _one_line(err).startswith("name:")


def _write(run, name: str, text: str):
    folder = run / PRESETS_FOLDER
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.json").write_text(text)


@pytest.mark.parametrize("edit, needle", [
    (None, "not readable JSON"),
    (lambda d: d.update(z=d["z"][:-1]), f"latent of {TINY.latent_dim} numbers"),
    (lambda d: d.update(z=[float("nan")] + d["z"][1:]), "finite latent values"),
    (lambda d: d.update(sliders={"z0": "loud"}), "slider 'z0'"),
    (lambda d: d.update(version=99), "preset version 99"),
    (lambda d: d.pop("z"), "missing ['z']"),
    (lambda d: d.update(seconds=-1), "seconds"),
    (lambda d: d.update(seconds=1e9), "at most 60"),
    (lambda d: d.update(z=[1e39] + d["z"][1:]), "float32's range"),
])
def test_bad_files_are_one_line(runs, edit, needle):
    run, _ = runs
    good = save_preset(run, "good", torch.ones(TINY.latent_dim), {"z0": 1.0}, overwrite=True)
    data = json.loads(good.read_text())
    if edit is None:
        _write(run, "bad", good.read_text()[:-5])
    else:
        edit(data)
        _write(run, "bad", json.dumps(data))  # json writes NaN as NaN: Python reads it back
    with pytest.raises(ValueError) as err:
        load_preset(run, "bad")
    assert needle in _one_line(err)


def test_a_missing_preset_lists_the_runs_presets(runs, tmp_path):
    run, _ = runs
    save_preset(run, "there", torch.zeros(TINY.latent_dim), overwrite=True)
    with pytest.raises(FileNotFoundError) as err:
        load_preset(run, "gone")
    msg = _one_line(err)
    assert "gone" in msg and "there" in msg
    with pytest.raises(FileNotFoundError) as err:
        load_preset(tmp_path, "there")  # not a run folder
    assert "RUN:" in _one_line(err)
    with pytest.raises(ValueError) as err:
        save_preset(run, "short", torch.zeros(TINY.latent_dim + 1))
    assert "latent_dim" in _one_line(err)


@pytest.mark.filterwarnings("ignore:metrics.json records no fingerprints")
def test_explorer_save_and_load_restore_z_and_sliders(tmp_path):
    from sda_lab.interface.widgets import LatentExplorer

    run = tiny_run(tmp_path)
    ex = LatentExplorer.from_run(run, n_shown=2, show_map=False, live=False, preview=None)
    assert ex.presets.widget in ex.widget.children[0].children  # the row is in the layout
    for rank in range(len(ex.sliders)):  # somewhere off the start point
        s = ex.sliders[rank]
        ex.set_dimension(rank, s.value + (rank + 1) * 7 * s.step)
    z, values = ex.z.clone(), ex.slider_values()
    ex.presets.name.value = "mine"
    ex.presets.save()
    assert "saved" in ex.presets.status.value and ex.presets.menu.options == ("mine",)

    ex.randomise()
    assert not torch.equal(ex.z, z)
    ex.presets.load()
    assert torch.equal(ex.z, z)
    assert ex.slider_values() == pytest.approx(values, rel=1e-12, abs=1e-12)
    ex.presets.save()  # the same name again: refused in the status line, the file kept
    assert "exists" in ex.presets.status.value

    with pytest.raises(ValueError, match="from_run"):
        LatentExplorer(ex.model, ex.spec, ex.mels, show_map=False).save_preset("x")


def test_generate_starts_from_a_preset_and_refuses_another_runs(runs, tmp_path, capsys):
    """``generate --preset``: the sound is the preset latent's (two presets differ, the same
    preset twice is the same file), the table names it, its length applies, and another run's
    preset or --n > 1 without a length is one line before anything is written."""
    import pandas as pd
    import soundfile as sf

    from sda_lab.interface.cli import main

    run, other = runs
    g = torch.Generator().manual_seed(5)
    save_preset(run, "p1", 3 * torch.randn(TINY.latent_dim, generator=g), {}, overwrite=True)
    save_preset(run, "p2", 3 * torch.randn(TINY.latent_dim, generator=g), {}, seconds=1.5,
                overwrite=True)
    waves = {}
    for name, out in (("p1", "a"), ("p1", "b"), ("p2", "c")):
        assert main(["generate", str(run), "--preset", name, "--keep-silent", "--no-f0",
                     "--quiet", "--out", str(tmp_path / out)]) == 0
        table = pd.read_csv(tmp_path / out / "samples.csv")
        assert len(table) == 1 and table["start"][0] == f"preset {name}"
        waves[out], sr = sf.read(tmp_path / out / table["file"][0])
    assert (waves["a"] == waves["b"]).all()  # the preset, not a draw
    assert len(waves["c"]) == round(1.5 * sr) and len(waves["a"]) != len(waves["c"])
    assert "start: preset 'p2'" in capsys.readouterr().out

    capsys.readouterr()
    assert main(["generate", str(other), "--preset", str(run / PRESETS_FOLDER / "p1.json"),
                 "--out", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "belongs to run" in err
    assert main(["generate", str(run), "--preset", "p1", "--n", "3",
                 "--out", str(tmp_path / "e")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--n" in err and "--seconds" in err
    assert not (tmp_path / "d" / "samples.csv").exists()
