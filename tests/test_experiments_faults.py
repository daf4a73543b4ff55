"""The experiments runner: finished work is never lost, bad input is one line.

Training is a tiny model on a handful of clips; interrupts are simulated by a train function
that raises KeyboardInterrupt.
"""

import os

import pytest

import sda_lab.training.loop
from sda_lab.core.settings import SettingError
from sda_lab.interface.plotting import plot_sweep_curves
from sda_lab.model.vae import VAEConfig
from sda_lab.studies.experiments import (DataSpec, Results, ResultStore, base_seed, dask_client,
                                         grid, run_grid)
from sda_lab.training.config import TrainConfig

TINY_MODEL = VAEConfig(latent_dim=4, dropout=0.0, channels=(4, 8, 16, 32))
TINY = DataSpec(clips_per_kind=1)  # 5 clips
FAST = TrainConfig(epochs=1, batch_size=4, lr=2e-3)


def _specs(n_seeds=3):
    return grid({"a": (FAST, TINY_MODEL)}, range(n_seeds), TINY)


@pytest.fixture
def counted_train(monkeypatch):
    """sda_lab.training.loop.train, counting its calls; ``plan[i]`` runs before call i
    (0-based)."""
    real = sda_lab.training.loop.train
    calls, plan = [], {}

    def train(*args, **kwargs):
        calls.append(len(calls))
        if len(calls) - 1 in plan:
            plan[len(calls) - 1]()
        return real(*args, **kwargs)

    monkeypatch.setattr(sda_lab.training.loop, "train", train)
    return calls, plan


def test_serial_stores_each_run_the_moment_it_finishes(tmp_path, counted_train):
    calls, plan = counted_train
    stored_before = []
    for i in range(3):
        plan[i] = lambda: stored_before.append(len(list(tmp_path.glob("*.json"))))
    run_grid(_specs(), executor="serial", store=tmp_path, progress=False)
    # before run i starts, the i runs before it are already on disk
    assert stored_before == [0, 1, 2]


def _interrupt():
    raise KeyboardInterrupt


def test_ctrl_c_stops_at_once_keeps_what_finished_and_reraises(tmp_path, counted_train):
    calls, plan = counted_train
    plan[1] = _interrupt  # Ctrl-C during the second of three runs
    with pytest.raises(KeyboardInterrupt):
        run_grid(_specs(), executor="serial", store=tmp_path, progress=False)
    assert len(calls) == 2  # the third run never started
    assert len(list(tmp_path.glob("*.json"))) == 1  # the first one is kept
    # and the sweep resumes from it: only the two others train
    again = run_grid(_specs(), executor="serial", store=tmp_path, progress=False)
    assert [r["cached"] for r in again.records] == [True, False, False]


def test_ctrl_c_during_the_last_run_keeps_the_finished_ones(tmp_path, counted_train):
    calls, plan = counted_train
    plan[2] = _interrupt
    with pytest.raises(KeyboardInterrupt):
        run_grid(_specs(), executor="serial", store=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_cache_under_a_regular_file_is_refused_before_training(tmp_path, monkeypatch,
                                                                counted_train):
    calls, _ = counted_train
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SDA_LAB_CACHE", str(blocker / "cache"))
    with pytest.raises(SettingError, match="SDA_LAB_CACHE") as err:
        run_grid(_specs(2), executor="serial", progress=False)
    assert "\n" not in str(err.value)
    # an explicit store folder under a file: refused as well, naming the store
    with pytest.raises(OSError, match="store") as err:
        run_grid(_specs(2), executor="serial", store=blocker / "runs", progress=False)
    assert "\n" not in str(err.value)
    # SDA_LAB_CACHE a folder whose runs/ is a file: refused, naming the variable
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "runs").write_text("")
    monkeypatch.setenv("SDA_LAB_CACHE", str(cache))
    with pytest.raises(OSError, match="SDA_LAB_CACHE"):
        run_grid(_specs(2), executor="serial", progress=False)
    assert calls == []  # nothing trained


def _failed(arm, seed, error="FileNotFoundError: no such folder: /x"):
    return {"arm": arm, "seed": seed, "status": "failed", "error": error}


def _ok(arm, seed, recon):
    return {"arm": arm, "seed": seed, "status": "ok", "kl_per_dim": [0.0, 0.5],
            "epochs": {"epoch": [0], "recon": [recon], "raw_kl": [1.0], "active_units": [1],
                       "kl_weight": [1.0]}}


def test_tables_over_an_arm_whose_runs_all_failed_say_so():
    message = "all 3 runs of arm 'bad' failed: FileNotFoundError: no such folder: /x"
    only_failed = Results([_failed("bad", s) for s in range(3)])
    with pytest.raises(ValueError, match=message):
        only_failed.claims([("recon", "bad", ">", "bad")])
    with pytest.raises(ValueError, match=message):
        plot_sweep_curves(only_failed)
    assert only_failed.summary().loc["bad", "note"] == message
    mixed = Results([_failed("bad", s) for s in range(3)] + [_ok("good", s, 1.0 + s)
                                                             for s in range(3)])
    table = mixed.summary()
    assert table.loc["bad", "note"] == message and table.loc["bad", "runs"] == 0
    assert table.loc["good", "recon"].startswith("2 [")
    with pytest.raises(ValueError, match=message):
        mixed.claims([("recon", "good", ">", "bad")])
    with pytest.warns(UserWarning, match=message):
        fig = plot_sweep_curves(mixed)  # the other arms drawn, the failed one named on it
    assert any(message in t.get_text() for t in fig.texts)


def test_grid_refuses_what_run_grid_can_never_honour(tmp_path):
    with pytest.raises(ValueError, match="augment's waveform parts"):
        grid({"aug": TrainConfig(epochs=1, augment=True)}, [0], TINY)
    from sda_lab.data.augment import NO_WAVEFORM, SPEC_AUGMENT, AugmentConfig

    mel_only = TrainConfig(epochs=1, augment=AugmentConfig(**NO_WAVEFORM, **SPEC_AUGMENT))
    assert len(grid({"masks": mel_only}, [0], TINY)) == 1  # runs on the cached mels
    from .test_cli import write_folder

    one_clip = write_folder(tmp_path / "one", names=("a.wav",), seconds=1.0)
    with pytest.raises(ValueError, match=r"leaves 1 training clip"):
        grid({"a": FAST}, [0], DataSpec(source="folder", folder=str(one_clip)))
    # 5 clips: 4 of 5 files would leave one training clip, so the split holds out 3
    assert len(grid({"a": FAST}, [0], DataSpec(clips_per_kind=1, val_fraction=0.8))) == 1


def test_bad_environment_variables_are_one_line_naming_the_variable(monkeypatch):
    monkeypatch.setenv("SDA_LAB_SEED", "-1")
    with pytest.raises(ValueError, match="SDA_LAB_SEED"):
        base_seed()
    monkeypatch.setenv("SDA_LAB_DASK_ADDRESS", "abc")
    with pytest.raises(ValueError, match="SDA_LAB_DASK_ADDRESS") as err:
        dask_client()
    assert "\n" not in str(err.value)


def test_local_cluster_has_one_worker_per_cpu_this_process_may_use(monkeypatch):
    import distributed

    seen = {}

    class FakeCluster:
        def __init__(self, n_workers, **kwargs):
            seen["n_workers"] = n_workers

    monkeypatch.delenv("SDA_LAB_DASK_ADDRESS", raising=False)
    monkeypatch.setattr(distributed, "LocalCluster", FakeCluster)
    monkeypatch.setattr(distributed, "Client", lambda cluster: cluster)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    dask_client()
    assert seen["n_workers"] == 1


def test_store_writes_through_the_atomic_helper(tmp_path, monkeypatch):
    """A failed write leaves no partial file and no temporary file behind."""
    import sda_lab.core._io

    store = ResultStore(tmp_path)

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sda_lab.core._io.os, "replace", broken_replace)
    with pytest.raises(OSError, match="no space left"):
        store.put({"key": "k", "status": "ok"})
    assert list(tmp_path.iterdir()) == []
