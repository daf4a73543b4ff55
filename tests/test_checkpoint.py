from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch

from sda_lab.core._io import WriteError
from sda_lab.model.vae import ConvVAE
from sda_lab.training.checkpoint import (best_path_for, load_checkpoint, save_checkpoint,
                                         write_checkpoint)
from sda_lab.training.history import History

from ._tiny import TINY, small, tiny_mels


def test_round_trip_keeps_weights_configs_history_and_optimizer(tmp_path):
    torch.manual_seed(0)
    model = ConvVAE.from_config(TINY)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = tiny_mels(4)
    model(x)[0].mean().backward()
    opt.step()
    h = History(epoch=[0], recon=[0.5], alarm_kind="quiet", verdict="fine")
    path = save_checkpoint(tmp_path / "ck.pt", model, opt, h, small(), {"note": 1})
    ck = load_checkpoint(path, device="cpu")
    assert ck.history == h and ck.train_config == small() and ck.extra == {"note": 1}
    assert ck.optimizer_state["state"]  # AdamW's moments came back
    assert ck.model.config == model.config and not ck.model.training
    model.eval()
    torch.testing.assert_close(ck.model.encode(x)[0], model.encode(x)[0], rtol=0, atol=0)


def test_write_checkpoint_from_a_config_and_a_state_dict(tmp_path):
    """The best epoch is saved from a copy of its weights, not from the live model."""
    torch.manual_seed(0)
    model = ConvVAE.from_config(TINY)
    earlier = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)  # the model moved on
    path = write_checkpoint(tmp_path / "best.pt", model.config, earlier)
    loaded = load_checkpoint(path, device="cpu").model.state_dict()
    assert all(torch.equal(loaded[k], earlier[k]) for k in earlier)
    assert not torch.equal(loaded["encoder.fc_mu.weight"], model.state_dict()["encoder.fc_mu.weight"])


def test_failed_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, ConvVAE.from_config(TINY), None, None)
    before = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(WriteError, match="no space left"):
        save_checkpoint(path, ConvVAE.from_config(replace(TINY, latent_dim=8)), None, None)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temp file left behind


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"not a readable sda-lab checkpoint: expected the zip "
                                         r"archive torch.save writes, got a file that starts "
                                         r"with b'garb'$"):
        load_checkpoint(bad)
    bad.write_bytes(b"PK\x03\x04" + bytes(60))  # a zip's magic, then nothing torch can read
    with pytest.raises(ValueError, match=r"not a readable sda-lab checkpoint \([^;.]*\)$"):
        load_checkpoint(bad)
    torch.save({"format": 1, "model_config": {}, "model_state": {}, "x": Path("x")},
               bad)  # a pickled object: torch's "weights_only=False" advice is not passed on
    with pytest.raises(ValueError, match=r"\(it holds objects other than tensors, numbers and "
                                         r"strings\)$"):
        load_checkpoint(bad)
    run = tmp_path / "run"
    run.mkdir()
    last = save_checkpoint(run / "checkpoint.pt", ConvVAE.from_config(TINY), None, None)
    (run / "best.pt").write_bytes(last.read_bytes()[:100])  # damaged after it was written
    with pytest.raises(ValueError, match=r"best.pt is not a readable .*; the run's last "
                       r"checkpoint .*checkpoint.pt is beside it: move best.pt aside"):
        load_checkpoint(run / "best.pt")
    torch.save(torch.zeros(3), run / "best.pt")  # readable, not a checkpoint: the same hint
    with pytest.raises(ValueError, match=r"holds a Tensor, expected a dict; .* move best.pt"):
        load_checkpoint(run / "best.pt")
    (run / "best.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"checkpoint: it is empty \(0 bytes\); the run's last"):
        load_checkpoint(run / "best.pt")
    nan = ConvVAE.from_config(TINY)
    with torch.no_grad():
        next(nan.parameters()).fill_(float("nan"))
    save_checkpoint(run / "best.pt", nan, None, None)
    with pytest.raises(ValueError, match=r"best.pt: its weights hold \d+ NaN/Inf values \(of "
                                         r"\d+\): the model cannot be used; the run's last"):
        load_checkpoint(run / "best.pt")
    (run / "checkpoint.pt").write_bytes(b"junk")  # the last one is broken too: no dead end
    with pytest.raises(ValueError, match=r"checkpoint.pt cannot be read either: train the run "
                                         r"again$"):
        load_checkpoint(run / "best.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="missing"):
        load_checkpoint(tmp_path / "other.pt")
    path = save_checkpoint(tmp_path / "f.pt", ConvVAE.from_config(TINY), None, None)
    payload = torch.load(path, weights_only=True)
    payload["format"] = 99
    torch.save(payload, path)
    with pytest.raises(ValueError, match="checkpoint format 99"):
        load_checkpoint(path)
    # a config field another version of sda-lab wrote: one line naming it
    from dataclasses import asdict

    from sda_lab.training.config import TrainConfig

    for key, stored in (("model_config", {**asdict(TINY), "level_weight": 0.2}),
                        ("train_config", {**asdict(TrainConfig()), "level_weight": 0.2})):
        path = save_checkpoint(tmp_path / f"{key}.pt", ConvVAE.from_config(TINY), None, None,
                               train_config=TrainConfig())
        payload = torch.load(path, weights_only=True)
        payload[key] = stored
        torch.save(payload, path)
        with pytest.raises(ValueError, match="does not know \\(level_weight\\)") as err:
            load_checkpoint(path)
        assert "\n" not in str(err.value)


def test_checkpoint_rebuilds_its_spectrogram(tmp_path):
    from sda_lab.representation.spectrogram import AudioSpectrogram, SpectrogramConfig

    save_checkpoint(tmp_path / "plain.pt", ConvVAE.from_config(TINY), None, None)
    assert load_checkpoint(tmp_path / "plain.pt").spectrogram().config == SpectrogramConfig()
    cfg = SpectrogramConfig(n_mels=32, f_max=8000.0)
    save_checkpoint(tmp_path / "s.pt", ConvVAE.from_config(TINY), None, None,
                    extra={"spectrogram_config": asdict(cfg)})
    spec = load_checkpoint(tmp_path / "s.pt").spectrogram()
    assert isinstance(spec, AudioSpectrogram) and spec.config == cfg
    save_checkpoint(tmp_path / "odd.pt", ConvVAE.from_config(TINY), None, None,
                    extra={"spectrogram_config": {"no_such_field": 1}})
    with pytest.raises(ValueError, match="SpectrogramConfig has fields this sda-lab does not "
                                         "know \\(no_such_field\\)"):
        load_checkpoint(tmp_path / "odd.pt").spectrogram()


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "_orig_mod.module."])
def test_load_strips_a_wrapper_prefix(tmp_path, prefix):
    model = ConvVAE.from_config(TINY)
    path = save_checkpoint(tmp_path / "w.pt", model, None, None)
    payload = torch.load(path, weights_only=True)
    payload["model_state"] = {prefix + k: v for k, v in payload["model_state"].items()}
    torch.save(payload, path)
    loaded = load_checkpoint(path, device="cpu").model
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)


def test_load_mismatch_is_one_line(tmp_path):
    path = save_checkpoint(tmp_path / "w.pt", ConvVAE.from_config(TINY), None, None)
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


def test_best_path_for():
    assert best_path_for("run/ck.pt").as_posix() == "run/ck.best.pt"
    assert best_path_for("run/ck").as_posix() == "run/ck.best.pt"
