from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch

import sda_lab.train as train_mod
from sda_lab.train import (TrainConfig, TrainingDiverged, load_checkpoint, save_checkpoint,
                           train)
from sda_lab.vae import ConvVAE


@pytest.fixture(scope="module")
def mels():
    from sda_lab.data import make_default_dataset
    from sda_lab.spectrogram import AudioSpectrogram

    return AudioSpectrogram().waveform_to_mel(make_default_dataset(4).waveforms)  # (20, 1, 128, 94)


def small(**kw):
    return TrainConfig(**{"epochs": 3, "batch_size": 8, "device": "cpu", **kw})


def test_training_lowers_the_loss_and_records_history(mels):
    h = train(ConvVAE(), mels, small(epochs=6, kl_schedule="constant", kl_weight=0.0,
                                     free_bits=0.0), progress=False)
    assert len(h.epoch) == len(h.recon) == len(h.active_units) == 6
    assert h.recon[-1] < h.recon[0]
    assert len(h.kl_per_dim) == 64 and len(h.au_variance) == 64


def test_schedule_drives_the_weight(mels):
    h = train(ConvVAE(), mels, small(epochs=4, warmup_fraction=0.5), progress=False)
    assert h.kl_weight == [0.0, 0.5, 1.0, 1.0]


def test_same_seed_same_curves(mels):
    torch.manual_seed(0)
    model_a = ConvVAE()
    torch.manual_seed(0)
    model_b = ConvVAE()
    a = train(model_a, mels, small(), progress=False)
    torch.rand(100)  # the trainer reseeds: global RNG state in between must not matter
    b = train(model_b, mels, small(), progress=False)
    assert a.recon == b.recon and a.raw_kl == b.raw_kl


def test_checkpoint_round_trip(tmp_path, mels):
    model = ConvVAE()
    path = tmp_path / "ck.pt"
    h = train(model, mels, small(), checkpoint_path=path, progress=False)
    ck = load_checkpoint(path, device="cpu")
    assert ck.history.recon == h.recon
    assert ck.train_config == small()
    assert ck.optimizer_state is not None
    x = mels[:4]
    model.eval()
    torch.testing.assert_close(ck.model.encode(x)[0], model.encode(x)[0], rtol=0, atol=0)
    assert not ck.model.training


def test_failed_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, ConvVAE(), None, None)
    before = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(train_mod.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, ConvVAE(latent_dim=8), None, None)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temp file left behind


def test_nan_loss_stops_with_epoch_and_step_and_keeps_checkpoint(tmp_path, mels, monkeypatch):
    calls = {"n": 0}
    real = train_mod.vae_loss

    def poisoned(*args, **kwargs):
        total, r, k = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 5:  # epoch 1 (3 steps per epoch), step 1
            total = total * float("nan")
        return total, r, k

    monkeypatch.setattr(train_mod, "vae_loss", poisoned)
    path = tmp_path / "ck.pt"
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 1.*last good checkpoint kept"):
        train(ConvVAE(), mels, small(), checkpoint_path=path, progress=False)
    assert len(load_checkpoint(path).history.epoch) == 1


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable sda-lab checkpoint"):
        load_checkpoint(bad)
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="missing"):
        load_checkpoint(tmp_path / "other.pt")


def test_bad_training_input(mels):
    with pytest.raises(ValueError, match="non-empty"):
        train(ConvVAE(), mels[:0], small(), progress=False)
    with pytest.raises(ValueError, match="kl_schedule"):
        TrainConfig(kl_schedule="sigmoid")


def test_history_summary_and_informative_dims():
    from sda_lab.train import History

    h = History(epoch=[0, 1], recon=[0.5, 0.25], raw_kl=[100.0, 3.0], active_units=[10, 4],
                seconds=[1.0, 2.0], kl_per_dim=[0.05, 0.2, 2.0])
    assert h.informative_dims(0.1) == 2 and h.informative_dims(1.0) == 1
    row = h.summary()
    assert row["epochs"] == 2 and row["wall s"] == 3.0 and row["raw KL epoch 0"] == 100.0
    assert row["final recon"] == 0.25 and row["final active units"] == 4
    assert row["max active units"] == 10 and row["dims with KL > 0.1 nats"] == 2


# -- validation split, baselines, alarm, budgets, best checkpoint, wrapped weights ----------

from sda_lab.train import (AugmentConfig, History, augment_waveforms, best_path_for,  # noqa: E402
                           collapse_alarm, eval_recon, mean_mel_baseline, own_audio_recipe,
                           split_by_file)

FILES = ["a.wav"] * 3 + ["sub/b.flac"] * 2 + ["c.ogg"] * 4 + ["d.wav"]


def test_split_by_file_never_shares_a_file_and_is_seeded():
    tr, va, vf = split_by_file(FILES, val_fraction=0.5, seed=3)
    assert len(vf) == 2 and sorted(tr + va) == list(range(len(FILES)))
    assert {FILES[i] for i in tr}.isdisjoint({FILES[i] for i in va})
    assert {FILES[i] for i in va} == set(vf)
    assert split_by_file(FILES, 0.5, seed=3) == (tr, va, vf)
    splits = {tuple(split_by_file(FILES, 0.25, seed=s)[2]) for s in range(20)}
    assert len(splits) > 1  # the seed matters
    assert all(len(s) == 1 for s in splits)  # round(0.25 * 4) files
    tr0, va0, vf0 = split_by_file(FILES, 0.0)
    assert va0 == [] and vf0 == [] and len(tr0) == len(FILES)


def test_split_by_file_explicit_list_and_objects_with_files():
    class Clips:
        files = FILES

    tr, va, vf = split_by_file(Clips(), val_files=["b.flac", "d.wav"])
    assert vf == ["d.wav", "sub/b.flac"] and va == [3, 4, 9]


@pytest.mark.parametrize("kwargs, match", [
    ({"val_fraction": 1.0}, r"val_fraction must be in \[0, 1\), got 1.0"),
    ({"val_fraction": -0.1}, "val_fraction must be in"),
    ({"val_files": ["nope.wav"]}, "'nope.wav' is not one of the 4 files"),
    ({"val_files": ["a.wav", "b.flac", "c.ogg", "d.wav"]}, "all 4 files are held out"),
])
def test_split_by_file_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        split_by_file(FILES, **kwargs)


def test_split_needs_two_files():
    with pytest.raises(ValueError, match=r"at least 2 files, found 1 \(only.wav\)"):
        split_by_file(["only.wav"] * 5, 0.2)


def test_collapse_alarm_reports_both_ways():
    healthy = History(epoch=[0], active_units=[5], train_recon=[0.004], train_baseline=0.02,
                      val_recon=[0.012], val_baseline=0.02)
    assert collapse_alarm(healthy) is None
    collapsed = History(epoch=[0], active_units=[5], train_recon=[0.019], train_baseline=0.02,
                        val_recon=[0.019], val_baseline=0.02)
    msg = collapse_alarm(collapsed, config=TrainConfig(kl_weight=0.01, free_bits=0.0))
    assert msg.startswith("posterior collapse") and "validation recon 0.019 is 0.95x" in msg
    assert "lower KL weight (now 0.01)" in msg and "free bits" in msg and "dB" in msg
    # training clips learnt, held-out files at the average: said as such, with other advice
    memorised = History(epoch=[0], active_units=[5], train_recon=[0.004], train_baseline=0.02,
                        val_recon=[0.019], val_baseline=0.02)
    msg = collapse_alarm(memorised, config=TrainConfig(kl_weight=1e-4, free_bits=0.0))
    assert msg.startswith("no generalisation") and "validation recon 0.019 is 0.95x" in msg
    assert "training recon is 0.20x" in msg and "higher KL weight (now 0.0001)" in msg
    assert "lower KL weight" not in msg
    # with no active unit it is collapse whatever the training error
    gone = replace(memorised, active_units=[0])
    assert collapse_alarm(gone).startswith("posterior collapse")
    no_units = History(epoch=[0], active_units=[0], train_recon=[0.004], train_baseline=0.02)
    assert "0 active latent units" in collapse_alarm(no_units)  # judged on training recon
    just_below = History(epoch=[0], active_units=[1], train_recon=[0.0179], train_baseline=0.02)
    assert collapse_alarm(just_below) is None
    with pytest.raises(ValueError, match="no eval-mode recon"):
        collapse_alarm(History(epoch=[0], active_units=[3]))


def test_collapse_alarm_fires_in_a_collapsing_run(mels):
    # seed weight 1 with no free bits: the KL term wins and the decoder predicts the average
    with pytest.warns(UserWarning, match="posterior collapse"):
        h = train(ConvVAE(), mels[:16], small(epochs=2, kl_schedule="constant", free_bits=0.0),
                  val_mels=mels[16:], progress=False)
    assert h.alarm is not None and all(h.alarms)
    assert h.val_recon[-1] >= 0.9 * h.val_baseline or h.active_units[-1] == 0


def test_validation_baselines_and_step_budget(mels):
    tr, va = mels[:15], mels[15:]
    cfg = small(epochs=None, max_steps=5, kl_weight=1e-3, free_bits=0.0)
    h = train(ConvVAE(), tr, cfg, val_mels=va, progress=False)
    # 15 clips at batch 8: 2 steps per epoch, so the budget ends epoch 2 after one step
    assert h.steps == [2, 4, 5] and h.epoch == [0, 1, 2]
    assert h.stop_reason.startswith("max_steps") and "epoch 2" in h.stop_reason
    assert len(h.val_recon) == len(h.train_recon) == 3
    assert h.train_baseline == pytest.approx(mean_mel_baseline(tr))
    assert h.val_baseline == pytest.approx(mean_mel_baseline(tr, va))
    assert h.val_baseline > h.train_baseline  # the training mean fits its own clips best
    assert h.n_train == 15 and h.n_val == 5
    row = h.summary()
    assert row["val recon / baseline"] == pytest.approx(h.val_recon[-1] / h.val_baseline,
                                                         abs=1e-3)
    assert row["steps"] == 5 and row["stopped by"] == "max_steps"
    assert (row["alarm"] == "fired") == (collapse_alarm(h) is not None)


def test_budget_schedule_follows_the_planned_steps(mels):
    cfg = small(epochs=None, max_steps=6, batch_size=20, warmup_fraction=0.5)
    assert [cfg.kl_weight_at_progress(p) for p in (0, 0.25, 0.5, 1)] == [0, 0.5, 1, 1]
    h = train(ConvVAE(), mels, cfg, progress=False)  # one step per epoch
    assert h.kl_weight == pytest.approx([0, 1 / 3, 2 / 3, 1, 1, 1])
    assert small(epochs=None, max_steps=8, kl_schedule="cyclical", n_cycles=2,
                 cycle_ratio=0.5).kl_weight_at_progress(0.5) == 0.0


def test_minute_budget_stops_cleanly(mels):
    h = train(ConvVAE(), mels, small(epochs=None, max_minutes=1e-6), progress=False)
    assert h.steps == [1] and h.stop_reason.startswith("max_minutes")
    with pytest.raises(ValueError, match="needs a budget"):
        TrainConfig(epochs=None)
    with pytest.raises(ValueError, match="max_steps must be"):
        TrainConfig(max_steps=0)


def test_best_checkpoint_is_the_lowest_validation_epoch(tmp_path, mels):
    from sda_lab.spectrogram import AudioSpectrogram

    path = tmp_path / "run" / "ck.pt"
    spec = AudioSpectrogram()
    h = train(ConvVAE(), mels[:15], small(epochs=3, kl_weight=1e-3, free_bits=0.0),
              checkpoint_path=path, val_mels=mels[15:], progress=False, spectrogram=spec)
    best = best_path_for(path)
    assert best == tmp_path / "run" / "ck.best.pt" and best.is_file()
    assert h.best_epoch == min(range(3), key=lambda e: h.val_recon[e])
    ck = load_checkpoint(best, device="cpu")
    assert ck.history.best_epoch == h.best_epoch and len(ck.history.epoch) == h.best_epoch + 1
    score = eval_recon(ck.model, mels[15:])[0]
    assert score == pytest.approx(h.val_recon[h.best_epoch], rel=1e-4)
    last = load_checkpoint(path, device="cpu")
    assert last.history.alarm == h.alarm and last.history.stop_reason == h.stop_reason
    assert last.spectrogram().config == spec.config


def test_checkpoint_rebuilds_its_spectrogram(tmp_path):
    from sda_lab.spectrogram import AudioSpectrogram, SpectrogramConfig

    save_checkpoint(tmp_path / "plain.pt", ConvVAE(latent_dim=4), None, None)
    assert load_checkpoint(tmp_path / "plain.pt").spectrogram().config == SpectrogramConfig()
    cfg = SpectrogramConfig(n_mels=64, f_max=8000.0)
    save_checkpoint(tmp_path / "s.pt", ConvVAE(latent_dim=4, n_mels=64), None, None,
                    extra={"spectrogram_config": asdict(cfg)})
    spec = load_checkpoint(tmp_path / "s.pt").spectrogram()
    assert isinstance(spec, AudioSpectrogram) and spec.config == cfg


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "_orig_mod.module."])
def test_load_strips_a_wrapper_prefix(tmp_path, prefix):
    model = ConvVAE(latent_dim=4)
    path = save_checkpoint(tmp_path / "w.pt", model, None, None)
    payload = torch.load(path, weights_only=True)
    payload["model_state"] = {prefix + k: v for k, v in payload["model_state"].items()}
    torch.save(payload, path)
    loaded = load_checkpoint(path, device="cpu").model
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)


def test_load_mismatch_is_one_line(tmp_path):
    path = save_checkpoint(tmp_path / "w.pt", ConvVAE(latent_dim=4), None, None)
    payload = torch.load(path, weights_only=True)
    state = payload["model_state"]
    state["foo.weight"] = torch.zeros(1)
    del state["encoder.fc_mu.bias"]
    state["decoder.fc.weight"] = torch.zeros(3, 3)
    torch.save(payload, path)
    with pytest.raises(ValueError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert "1 unexpected keys such as 'foo.weight'" in msg
    assert "1 missing such as 'encoder.fc_mu.bias'" in msg
    assert "'decoder.fc.weight' (saved (3, 3), expected" in msg


def test_augment_waveforms_keeps_shape_and_full_scale():
    g = torch.Generator().manual_seed(0)
    x = torch.sin(torch.linspace(0, 2000, 4800)).mul(0.9).repeat(6, 1, 1)  # (6, 1, 4800)
    cfg = AugmentConfig(gain_db=12.0, max_shift_s=0.01, speed=0.1)
    y = augment_waveforms(x, cfg, 48_000, g)
    assert y.shape == x.shape and y.abs().max() <= 1.0 + 1e-6
    assert not torch.equal(y, x)
    again = augment_waveforms(x, cfg, 48_000, torch.Generator().manual_seed(0))
    assert torch.equal(y, again)
    assert torch.equal(augment_waveforms(x, AugmentConfig(0, 0, 0), 48_000, g), x)
    with pytest.raises(ValueError, match="speed < 0.5"):
        AugmentConfig(speed=0.6)


def test_augmented_training_needs_waveforms_and_runs(mels):
    from sda_lab.data import make_default_dataset
    from sda_lab.spectrogram import AudioSpectrogram

    cfg = small(epochs=None, max_steps=2, augment=True)
    assert cfg.augment == AugmentConfig() and TrainConfig(augment=False).augment is None
    with pytest.raises(ValueError, match="augment needs"):
        train(ConvVAE(), mels, cfg, progress=False)
    clips = make_default_dataset(2)
    spec = AudioSpectrogram()
    h = train(ConvVAE(), spec.waveform_to_mel(clips.waveforms), cfg, progress=False,
              waveforms=clips.waveforms, spectrogram=spec)
    assert h.steps == [2]
    assert TrainConfig(**asdict(cfg)) == cfg  # the nested config survives a checkpoint


def test_own_audio_recipe_is_a_copy():
    model_cfg, cfg = own_audio_recipe(epochs=None, max_minutes=1.0)
    assert cfg.max_minutes == 1.0 and cfg.kl_weight == train_mod.OWN_AUDIO_TRAIN.kl_weight
    assert train_mod.OWN_AUDIO_TRAIN.max_minutes is None and model_cfg.dropout == 0.0


def test_train_on_clips_splits_by_file_and_augmentation_effect_pairs_seeds():
    from sda_lab.data import AudioClips, make_default_dataset
    from sda_lab.train import augmentation_effect, train_on_clips

    base = make_default_dataset(2)  # 10 clips
    files = [f"f{i // 3}.wav" for i in range(10)]  # 4 files of 3, 3, 3, 1 clips
    clips = AudioClips(base.waveforms, base.labels, base.sample_rate, files=files)
    _, cfg = own_audio_recipe(epochs=None, max_steps=2, batch_size=4, device="cpu")
    run = train_on_clips(clips, train_config=cfg, val_fraction=0.25, seed=5, progress=False)
    assert len(run.val_files) == 1 and run.train_config.seed == 5
    assert {files[i] for i in run.train_idx}.isdisjoint(run.val_files)
    assert run.history.n_val == len(run.val_idx) and run.val_mels.shape[0] == len(run.val_idx)
    assert run.reconstruct(run.val_idx).shape == run.val_mels.shape
    assert run.verdict()["fired"] == (run.history.alarm is not None)
    df = augmentation_effect(clips, seeds=(0,), max_steps=1, val_fraction=0.25, batch_size=4,
                             device="cpu")
    assert list(df["augment"]) == ["off", "on"] and df["val_files"].tolist() == [1, 1]
    assert df["val_baseline"].nunique() == 1  # same seed, same split in both arms


def test_gaussian_sigma_trains_and_history_recon_stays_mse():
    """Under the ELBO option the history still reports the per-element MSE (comparable with
    the mean-mel baseline), not the likelihood's scaled sum."""
    from sda_lab.train import TrainConfig, train
    from sda_lab.vae import ConvVAE

    torch.manual_seed(0)
    mels = torch.rand(6, 1, 128, 94) * 0.5  # (6, 1, 128, 94)
    h = train(ConvVAE(dropout=0.0), mels, TrainConfig(epochs=1, batch_size=6, kl_weight=1.0,
                                                      free_bits=0.0, gaussian_sigma=0.1),
              progress=False)
    assert 0.0 < h.recon[0] < 1.0  # an MSE of values in [0, 1], not a sum over 12,032 pixels


def test_default_model_interrupted_leaves_nothing_under_the_loaded_name(tmp_path, monkeypatch):
    """Another kernel must never load a half-trained default model from the cache."""
    import sda_lab.train as tm

    seen = {}

    def train_then_die(model, mels, config, checkpoint_path=None, progress=True, **kw):
        seen["path"] = Path(checkpoint_path)
        save_checkpoint(checkpoint_path, model, None, None)  # one epoch's checkpoint...
        raise KeyboardInterrupt  # ...then the user interrupts

    monkeypatch.setattr(tm, "train", train_then_die)
    monkeypatch.setattr(tm, "DEFAULT_CLIPS_PER_KIND", 1)
    target = tmp_path / "default.pt"
    with pytest.raises(KeyboardInterrupt):
        tm.load_or_train_default(target, progress=False)
    assert seen["path"] != target and not target.exists()
    assert list(tmp_path.iterdir()) == []  # the partial file is cleaned up too


def test_alarm_drops_the_db_tip_on_db():
    h = History(epoch=[0], active_units=[0], train_recon=[0.02], train_baseline=0.02)
    assert "dB representation" in collapse_alarm(h)
    assert "dB representation" not in collapse_alarm(h, scale="db")
