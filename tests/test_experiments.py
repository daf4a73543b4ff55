"""The experiments runner: run keys, the cache, failures, statistics, and a real Dask cluster."""

import os
from dataclasses import replace

import pytest
import torch

from sda_lab.model.vae import VAEConfig
from sda_lab.studies.experiments import (DataSpec, Effect, Results, ResultStore, RunSpec,
                                         base_seed, bootstrap_ci, dask_client, execute_run, grid,
                                         run_grid, seeds_from)
from sda_lab.training.config import TrainConfig

TINY = DataSpec(clips_per_kind=1)  # 5 clips
FAST = TrainConfig(epochs=2, batch_size=4, lr=2e-3)
TINY_MODEL = VAEConfig(latent_dim=4, dropout=0.0, channels=(4, 8, 16, 32))  # trains in a second


class Refuses:
    """An executor that must not be asked for anything (everything should be cached)."""

    def submit(self, *args, **kwargs):
        raise AssertionError("submit called although every run was cached")


def test_key_depends_on_what_determines_the_run_only():
    a = RunSpec("a", 0, FAST, data=TINY)
    assert a.key == RunSpec("renamed", 0, FAST, data=TINY).key  # the arm's name is a label
    others = [RunSpec("a", 1, FAST, data=TINY),
              RunSpec("a", 0, TrainConfig(epochs=3, batch_size=4, lr=2e-3), data=TINY),
              RunSpec("a", 0, FAST, VAEConfig(latent_dim=32), TINY),
              RunSpec("a", 0, FAST, data=DataSpec(clips_per_kind=2))]
    assert len({a.key, *(o.key for o in others)}) == 5
    # the trainer's own seed field is overridden by the run's seed, so it cannot split the cache
    assert RunSpec("a", 0, TrainConfig(epochs=2, batch_size=4, lr=2e-3, seed=7), data=TINY).key == a.key


def test_grid_is_arms_times_seeds_and_rejects_nonsense():
    specs = grid({"x": FAST, "y": (FAST, VAEConfig(latent_dim=16))}, [3, 4, 5], TINY)
    assert [(s.arm, s.seed) for s in specs] == [("x", 3), ("x", 4), ("x", 5),
                                                 ("y", 3), ("y", 4), ("y", 5)]
    assert specs[3].model.latent_dim == 16
    with pytest.raises(ValueError, match="at least one arm and one seed"):
        grid({"x": FAST}, [], TINY)
    with pytest.raises(TypeError, match="expected a TrainConfig"):
        grid({"x": {"epochs": 2}}, [0], TINY)
    with pytest.raises(ValueError, match="needs folder"):
        DataSpec(source="folder")


def test_run_grid_caches_resumes_and_tabulates(tmp_path):
    threads = torch.get_num_threads()
    specs = grid({"fb": (FAST, TINY_MODEL),
                  "nofb": (TrainConfig(epochs=2, batch_size=4, lr=2e-3, free_bits=0.0), TINY_MODEL)},
                 [0, 1], TINY)
    first = run_grid(specs[:3], executor="serial", store=tmp_path, progress=False)
    assert [r["status"] for r in first.records] == ["ok"] * 3
    assert len(list(tmp_path.glob("*.json"))) == 3
    # an interrupted sweep resumes: the 3 finished runs are reused, only the 4th is trained
    second = run_grid(specs, executor="serial", store=tmp_path, progress=False)
    assert [r["cached"] for r in second.records] == [True, True, True, False]
    # everything cached: the executor is never asked
    third = run_grid(specs, executor=Refuses(), store=tmp_path, progress=False)
    assert all(r["cached"] for r in third.records)
    epochs, finals = third.epochs(), third.finals()
    assert len(epochs) == 4 * 2 and set(epochs["epoch"]) == {0, 1}
    assert list(finals["arm"]) == ["fb", "fb", "nofb", "nofb"]
    for col in ("recon", "raw_kl", "active_units", "informative_dims", "wall_s", "train.free_bits",
                "model.latent_dim", "data.clips_per_kind"):
        assert col in finals, col
    assert finals.loc[finals["arm"] == "nofb", "train.free_bits"].eq(0.0).all()
    assert third.per_seed("recon").shape == (2, 2)
    assert "[" in third.summary().loc["fb", "recon"]  # mean [low, high]
    assert torch.get_num_threads() == threads  # the serial path leaves torch's threads alone


def test_a_failed_run_is_a_row_with_its_error_and_is_retried(tmp_path):
    bad = DataSpec(source="folder", folder=str(tmp_path / "no-such-folder"))
    with pytest.raises(FileNotFoundError, match="no-such-folder"):  # grid() refuses it...
        grid({"bad": FAST}, [0], bad)
    # ...but a folder can vanish between grid() and run_grid(): that run fails alone
    specs = [RunSpec("bad", 0, FAST, TINY_MODEL, bad)] + grid({"good": (FAST, TINY_MODEL)}, [0],
                                                             TINY)
    res = run_grid(specs, executor="serial", store=tmp_path / "runs", progress=False)
    assert [r["status"] for r in res.records] == ["failed", "ok"]
    assert "no-such-folder" in res.failed.loc[0, "error"]
    assert res.finals().loc[0, "status"] == "failed"
    assert len(res.finals()) == 2 and len(res.epochs()) == 2  # the good run's two epochs
    assert not ResultStore(tmp_path / "runs").path(specs[0].key).exists()  # not cached


def test_execute_run_never_raises(tmp_path):
    rec = execute_run(RunSpec("x", 0, FAST, data=DataSpec(source="folder", folder=str(tmp_path))),
                      threads=None)
    assert rec["status"] == "failed" and rec["error"]


def test_a_run_trains_through_the_one_train_run_and_keeps_its_verdict(monkeypatch):
    import sda_lab.training.loop as T
    from sda_lab.core.utils import seed_everything
    from sda_lab.model.vae import ConvVAE
    from sda_lab.studies.experiments.spec import load_split
    from sda_lab.training.diagnostics import ALARM_KINDS

    calls = []
    real = T.train_run

    def counting(*args, **kwargs):
        calls.append(kwargs.get("seed"))
        return real(*args, **kwargs)

    monkeypatch.setattr(T, "train_run", counting)
    spec = RunSpec("x", 3, FAST, TINY_MODEL, TINY)
    rec = execute_run(spec, threads=None)
    assert rec["status"] == "ok", rec["error"]
    assert calls == [3]
    assert rec["scalars"]["alarm_kind"] in ALARM_KINDS and rec["scalars"]["verdict"]
    assert "warnings" not in rec  # training warns nothing; the verdict is the record
    # the same numbers as the runner's own loop before it called train_run
    mels, _ = load_split(spec.data)
    seed_everything(3)
    h = T.train(ConvVAE.from_config(TINY_MODEL), mels,
                replace(FAST, seed=3, device="cpu"), sinks=T.Sinks(progress=False))
    assert rec["epochs"]["recon"] == h.recon and rec["epochs"]["train_recon"] == h.train_recon


def test_bootstrap_interval_and_effects():
    mean, lo, hi = bootstrap_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert mean == 3.0 and 1.0 <= lo < mean < hi <= 5.0
    assert bootstrap_ci([2.5]) == (2.5, 2.5, 2.5)
    assert bootstrap_ci([1.0, float("nan"), 3.0])[0] == 2.0
    always = Effect("m", "a", "b", [0.1, 0.5, 0.2], *bootstrap_ci([0.1, 0.5, 0.2]))
    assert always.a_wins == 3 and always.holds(">") and not always.holds("<")
    mixed = Effect("m", "a", "b", [1.0, -1.0, 0.5, -0.5], *bootstrap_ci([1.0, -1.0, 0.5, -0.5]))
    assert not mixed.holds(">") and not mixed.holds("<") and not mixed.excludes_zero


def _record(arm, seed, recon):
    return {"arm": arm, "seed": seed, "status": "ok", "kl_per_dim": [0.0, 0.5],
            "epochs": {"epoch": [0], "recon": [recon], "raw_kl": [1.0], "active_units": [1]}}


def test_results_effect_is_paired_by_seed():
    res = Results([_record("a", s, 1.0 + s) for s in range(5)] +
                  [_record("b", s, 0.9 + s) for s in range(5)])
    eff = res.effect("recon", "a", "b")
    assert eff.n == 5 and eff.a_wins == 5 and abs(eff.mean - 0.1) < 1e-9
    with pytest.raises(KeyError, match="arms must be among"):
        res.effect("recon", "a", "zzz")


def test_base_seed_from_environment(monkeypatch):
    monkeypatch.delenv("SDA_LAB_SEED", raising=False)
    assert base_seed() == 0
    monkeypatch.setenv("SDA_LAB_SEED", "7")
    assert base_seed() == 7 and seeds_from(7, 3) == [7000, 7001, 7002]
    monkeypatch.setenv("SDA_LAB_SEED", "seven")
    with pytest.raises(ValueError, match="SDA_LAB_SEED: expected an integer"):
        base_seed()


def test_dask_local_cluster_runs_a_sweep_in_worker_processes(tmp_path):
    """A real LocalCluster: 2 worker processes with 1 thread each, as in the notebooks."""
    specs = grid({"fb": (FAST, TINY_MODEL)}, [0, 1, 2], TINY)
    client = dask_client(n_workers=2, threads_per_worker=1)
    try:
        workers = client.scheduler_info()["workers"]
        assert len(workers) == 2 and all(w["nthreads"] == 1 for w in workers.values())
        res = run_grid(specs, executor=client, store=tmp_path, progress=False)
        env = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
    finally:
        client.close()
        client.cluster.close()
    assert [r["status"] for r in res.records] == ["ok"] * 3
    assert all(r["pid"] != os.getpid() and r["threads"] == 1 for r in res.records)
    assert set(env.values()) == {None}  # no glibc trim threshold in the workers
    # the same run in this process, 1 thread: the same numbers (up to float noise)
    threads = torch.get_num_threads()
    try:
        here = execute_run(specs[0], threads=1)
    finally:
        torch.set_num_threads(threads)
    assert here["epochs"]["recon"] == pytest.approx(res.records[0]["epochs"]["recon"], rel=1e-4)


def test_claims_table_states_each_claim_with_its_verdict():
    res = Results([_record("a", s, 2.0 + 0.1 * s) for s in range(5)] +
                  [_record("b", s, 1.0 + 0.3 * s) for s in range(5)])
    table = res.claims([("recon", "a", ">", "b"), ("recon", "a", ">", "b", 1.5),
                        ("recon", "a", "<", "b")])
    assert list(table["holds"]) == [True, False, False]
    # a > 1.5 b: 2.0 > 1.5 and 2.1 > 1.95 hold, 2.2 > 2.4 does not: 2 of 5 seeds
    assert table["seeds where it holds"].tolist() == ["5/5", "2/5", "0/5"]
    with pytest.raises(ValueError, match="direction"):
        res.claims([("recon", "a", ">=", "b")])


def test_a_new_config_field_at_its_default_keeps_the_key():
    """Keys hash only non-default fields: a config growing a field does not orphan the cache."""
    from sda_lab.studies.experiments import run_key

    spec = RunSpec("a", 0, FAST, data=TINY)
    det = spec.determinants()
    det["train"]["some_future_option"] = None  # absent from today's defaults: it counts...
    assert run_key(det) != spec.key
    det = spec.determinants()
    det["train"]["lr"] = TrainConfig().lr  # ...and a field back at its default does not
    assert run_key(det) == RunSpec("a", 0, TrainConfig(epochs=2, batch_size=4), data=TINY).key


def test_workers_do_not_get_dasks_malloc_trim_threshold():
    from sda_lab.studies.experiments import worker_environ

    env = worker_environ()
    assert "MALLOC_TRIM_THRESHOLD_" not in env
    assert env.get("OMP_NUM_THREADS") in (1, "1")  # the rest of Dask's settings are kept


def test_a_folders_split_holds_out_one_recording_up_to_gain_whole(tmp_path):
    """A sweep over a folder splits as ``train`` does: files that are one recording up to gain
    (a hit at three levels) are held out together or trained on together."""
    import soundfile as sf

    from sda_lab.studies.experiments import load_split

    sr = 48_000
    t = torch.arange(sr) / sr
    kick = torch.sin(2 * torch.pi * 60 * t * (1 + 2 * torch.exp(-t * 30))) * torch.exp(-t * 8)
    g = torch.Generator().manual_seed(0)
    waves = {"kick_v127": kick, "kick_v100": 0.6 * kick, "kick_v60": 0.2 * kick,
             "tone": 0.5 * torch.sin(2 * torch.pi * 440 * t) * torch.exp(-t * 3),
             "noise": 0.3 * torch.randn(sr, generator=g), "noise2": 0.3 * torch.randn(sr, generator=g)}
    for name, w in waves.items():
        sf.write(tmp_path / f"{name}.wav", w.numpy(), sr)
    held = []
    for seed in range(6):
        _, val = load_split(DataSpec(source="folder", folder=str(tmp_path), val_fraction=0.5,
                                     split_seed=seed))
        held.append(len(val))  # one clip per file: 4 with the kick's three, else 2
    assert set(held) == {2, 4}, held  # never 3: the kick's files are never split up
