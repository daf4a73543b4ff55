import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from sda_lab.diagnostics import (ALARM_COLLAPSE, ALARM_KINDS, ALARM_NO_GENERALISATION,
                                 BASELINE_ZERO, Alarm, baseline_ratio, check_training_clips,
                                 eval_recon, judge, live_state, mean_mel_baseline, reconstruct,
                                 split_by_file, verdict)
from sda_lab.history import History
from sda_lab.model.vae import ConvVAE
from sda_lab.train import TrainConfig

from ._tiny import TINY, tiny_mels

FILES = ["a.wav"] * 3 + ["sub/b.flac"] * 2 + ["c.ogg"] * 4 + ["d.wav"]


# -- split by file -----------------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.2, 0.25, 0.5, 0.75])
def test_split_by_file_puts_every_clip_of_a_file_on_one_side(fraction):
    files = ["x.wav", "y.wav", "x.wav", "z.wav", "y.wav", "w.wav", "z.wav", "x.wav"]  # interleaved
    for seed in range(10):
        tr, va, vf = split_by_file(files, val_fraction=fraction, seed=seed)
        assert sorted(tr + va) == list(range(len(files)))  # every clip once
        train_files = {files[i] for i in tr}
        val_files = {files[i] for i in va}
        assert train_files and val_files and train_files.isdisjoint(val_files)
        assert val_files == set(vf)
        # every clip of a held-out file is held out, wherever it sits in the list
        assert va == [i for i, f in enumerate(files) if f in val_files]


def test_split_by_file_is_seeded_and_sized():
    tr, va, vf = split_by_file(FILES, val_fraction=0.5, seed=3)
    assert len(vf) == 2 and split_by_file(FILES, 0.5, seed=3) == (tr, va, vf)
    splits = {tuple(split_by_file(FILES, 0.25, seed=s)[2]) for s in range(20)}
    assert len(splits) > 1  # the seed matters
    assert all(len(s) == 1 for s in splits)  # round(0.25 * 4) files
    tr0, va0, vf0 = split_by_file(FILES, 0.0)
    assert va0 == [] and vf0 == [] and tr0 == list(range(len(FILES)))


def test_split_by_file_explicit_list_and_objects_with_files():
    class Clips:
        files = FILES

    tr, va, vf = split_by_file(Clips(), val_files=["b.flac", "d.wav"])
    assert vf == ["d.wav", "sub/b.flac"] and va == [3, 4, 9] and tr == [0, 1, 2, 5, 6, 7, 8]


@pytest.mark.parametrize("kwargs, match", [
    ({"val_fraction": 1.0}, r"val_fraction must be in \[0, 1\), got 1.0"),
    ({"val_fraction": -0.1}, "val_fraction must be in"),
    ({"val_files": ["nope.wav"]}, "'nope.wav' is not one of the 4 files"),
    ({"val_files": ["a.wav", "b.flac", "c.ogg", "d.wav"]}, "all 4 files are held out"),
])
def test_split_by_file_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        split_by_file(FILES, **kwargs)


def test_split_needs_two_files_and_two_training_clips():
    with pytest.raises(ValueError, match=r"at least 2 files, found 1 \(only.wav\)"):
        split_by_file(["only.wav"] * 5, 0.2)
    tr, _, vf = split_by_file(["a.wav", "b.wav", "b.wav"], val_files=["b.wav"])
    with pytest.raises(ValueError, match=r"only 1 training clip after holding out 1 file; "
                                         "training needs at least 2"):
        check_training_clips(len(tr), vf)
    check_training_clips(2)  # enough


# -- eval-mode scores and the baseline ---------------------------------------------------------


def test_reconstruct_is_eval_mode_and_restores_the_mode():
    torch.manual_seed(0)
    model = ConvVAE.from_config(replace(TINY, dropout=0.5))  # dropout makes train mode differ
    x = tiny_mels(5)
    model.train()
    mse, mu, logvar, recon = reconstruct(model, x, batch_size=2)
    assert model.training  # restored
    model.eval()
    with torch.no_grad():
        mu_ref, _ = model.encode(x)
        recon_ref = model.decode(mu_ref, x.shape)
    torch.testing.assert_close(recon, recon_ref)
    torch.testing.assert_close(mu, mu_ref)
    assert mse == pytest.approx(float((recon_ref - x).pow(2).mean()), rel=1e-5)
    assert recon.shape == x.shape and logvar.shape == (5, TINY.latent_dim)
    mse2, _, _ = eval_recon(model, x)
    assert mse2 == pytest.approx(mse, rel=1e-6)
    assert reconstruct(model, x, keep=False)[3] is None


def test_mean_mel_baseline_and_its_ratio():
    x = tiny_mels(6)
    assert mean_mel_baseline(x) == pytest.approx(float(x.var(dim=0, unbiased=False).mean()))
    assert mean_mel_baseline(x[:3], x[3:]) > mean_mel_baseline(x[:3])
    with pytest.raises(ValueError, match="differ in shape"):
        mean_mel_baseline(x, x[:, :, :16])
    same = x[:1].repeat(4, 1, 1, 1)  # every clip the same mel (a looped tone)
    assert mean_mel_baseline(same) == 0.0
    assert math.isnan(baseline_ratio(0.01, 0.0)) and math.isnan(baseline_ratio(0.01, None))
    assert baseline_ratio(0.01, 0.02) == 0.5


# -- the alarm ---------------------------------------------------------------------------------


def test_judge_gives_each_kind():
    cfg = TrainConfig(kl_weight=0.01, free_bits=0.0)
    assert judge(0.012, 0.02, 5, "validation").kind == "quiet"
    quiet_train = judge(0.012, 0.02, 5, "training")
    assert quiet_train.kind == "not_validated" and not quiet_train.fired
    assert "training clips only" in quiet_train.message and "--val-fraction" in quiet_train.message
    collapsed = judge(0.019, 0.02, 5, "validation", config=cfg, train_ratio=0.95)
    assert collapsed.kind == "collapse" and collapsed.fired
    assert collapsed.message.startswith(ALARM_COLLAPSE)
    assert "lower KL weight (now 0.01)" in collapsed.message and "dB" in collapsed.message
    memorised = judge(0.019, 0.02, 5, "validation", config=TrainConfig(kl_weight=1e-4),
                      train_ratio=0.2)
    assert memorised.kind == "no_generalisation" and memorised.fired
    assert memorised.message.startswith(ALARM_NO_GENERALISATION)
    assert "higher KL weight (now 0.0001)" in memorised.message
    assert "lower KL weight" not in memorised.message
    assert judge(0.004, 0.02, 0, "validation", train_ratio=0.2).kind == "collapse"  # no unit
    assert judge(0.019, 0.02, 5, "training").kind == "collapse"  # at the average on training
    undefined = judge(0.01, 0.0, 5, "training")
    assert undefined.kind == "undefined" and not undefined.fired
    assert undefined.message.startswith(BASELINE_ZERO) and math.isnan(undefined.ratio)
    assert {a.kind for a in (quiet_train, collapsed, memorised, undefined)} < set(ALARM_KINDS)
    with pytest.raises(ValueError, match="Alarm.kind must be one of"):
        Alarm("collapse?", "x")


def test_judge_threshold_and_the_db_tip():
    assert judge(0.0179, 0.02, 1, "validation").kind == "quiet"  # 0.895x
    assert judge(0.02, 0.02, 1, "validation").kind == "collapse"  # 1x: at the average
    assert "dB representation" in judge(0.02, 0.02, 0).message
    assert "dB representation" not in judge(0.02, 0.02, 0, scale="db").message


def test_verdict_reads_the_final_numbers_and_mentions_best():
    h = History(epoch=[0, 1, 2], active_units=[5, 5, 5], train_recon=[0.02, 0.004, 0.004],
                train_baseline=0.02, val_recon=[0.02, 0.01, 0.019], val_baseline=0.02,
                best_epoch=1)
    v = verdict(h)
    assert v.kind == "no_generalisation" and v.on == "validation"
    assert v.ratio == pytest.approx(0.95) and "best epoch, 1, reached 0.50x" in v.message
    no_val = History(epoch=[0], active_units=[3], train_recon=[0.004], train_baseline=0.02)
    assert verdict(no_val).kind == "not_validated"
    with pytest.raises(ValueError, match="no eval-mode recon"):
        verdict(History(epoch=[0], active_units=[3]))
    with pytest.raises(ValueError, match="no epochs"):
        verdict(History())


def test_the_report_is_the_verdict():
    healthy = History(epoch=[0], active_units=[5], train_recon=[0.004], train_baseline=0.02,
                      val_recon=[0.012], val_baseline=0.02)
    report = verdict(healthy).report()
    assert report == {"fired": False, "kind": "quiet", "why": verdict(healthy).message}
    assert "0.60x the mean-mel baseline" in report["why"]
    collapsed = replace(healthy, val_recon=[0.019], train_recon=[0.019])
    assert verdict(collapsed).message.startswith("posterior collapse")
    assert verdict(collapsed).report()["fired"] and verdict(collapsed).report()["kind"] == "collapse"
    assert not judge(0.004, 0.02, 5, "training").fired  # not_validated is not a firing


def test_live_state_is_a_reading():
    text, looks = live_state(0.0084, 0.02, 60, "validation")
    assert text == "val/mean 0.42 · active 60" and looks == ""
    text, looks = live_state(0.019, 0.02, 3, "training")
    assert text.startswith("train/mean 0.95 · active 3 · not validated") and looks == "collapse"
    text, looks = live_state(0.01, 0.0, 3, "training")  # baseline 0: no ZeroDivisionError
    assert "undefined (baseline 0)" in text
    assert live_state(0.001, 0.02, 0)[1] == "collapse"
    assert np.isfinite(judge(0.0084, 0.02, 60).ratio)
