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
