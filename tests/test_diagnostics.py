import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from sda_lab.model.vae import ConvVAE
from sda_lab.training.config import TrainConfig
from sda_lab.training.diagnostics import (ALARM_AT_AVERAGE, ALARM_COLLAPSE, ALARM_KINDS,
                                          ALARM_NO_GENERALISATION, BASELINE_ZERO, Alarm, baseline_ratio, eval_recon, judge,
                                          live_state, mean_mel_baseline, mean_mel_sc_baseline,
                                          reconstruct, verdict)
from sda_lab.training.history import History

from ._tiny import TINY, tiny_mels


# -- eval-mode scores and the baseline ---------------------------------------------------------


def test_reconstruct_is_eval_mode_and_restores_the_mode():
    torch.manual_seed(0)
    model = ConvVAE.from_config(replace(TINY, dropout=0.5))  # dropout makes train mode differ
    x = tiny_mels(5)
    model.train()
    mse, mu, logvar, recon, sc = reconstruct(model, x, batch_size=2)
    assert sc is None  # no magnitude given
    assert model.training  # restored
    model.eval()
    with torch.no_grad():
        mu_ref, _ = model.encode(x)
        recon_ref = model.decode(mu_ref, x.shape)
    torch.testing.assert_close(recon, recon_ref)
    torch.testing.assert_close(mu, mu_ref)
    assert mse == pytest.approx(float((recon_ref - x).pow(2).mean()), rel=1e-5)
    assert recon.shape == x.shape and logvar.shape == (5, TINY.latent_dim)
    assert eval_recon(model, x).mse == pytest.approx(mse, rel=1e-6)
    assert reconstruct(model, x, keep=False).recon is None


def test_reconstruct_measures_the_spectral_convergence_of_the_magnitudes():
    torch.manual_seed(0)
    model = ConvVAE.from_config(TINY).eval()
    x = tiny_mels(5)
    magnitude = lambda m: torch.pow(10.0, (m * 100 - 100) / 20)  # noqa: E731 (a dB mel's)
    got = reconstruct(model, x, batch_size=2, magnitude=magnitude)
    m, m_hat = magnitude(x.double()), magnitude(got.recon.double())
    by_hand = ((m - m_hat).flatten(1).norm(dim=1) / m.flatten(1).norm(dim=1)).mean()
    assert got.sc == pytest.approx(float(by_hand), rel=1e-6)
    # the average's score: the mean mel against every clip; a clip against itself scores 0
    base = mean_mel_sc_baseline(x, magnitude)
    mean = x.double().mean(0, keepdim=True)
    m_mean = magnitude(mean).expand_as(m)
    assert base == pytest.approx(float(((m - m_mean).flatten(1).norm(dim=1)
                                         / m.flatten(1).norm(dim=1)).mean()), rel=1e-6)
    assert mean_mel_sc_baseline(x[:1], magnitude) == 0.0


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
    learned = judge(0.012, 0.02, 5, "validation")
    assert learned.kind == "learned" and learned.message.startswith("learned beyond the average")
    quiet_train = judge(0.012, 0.02, 5, "training")
    assert quiet_train.kind == "not_validated" and not quiet_train.fired
    assert "nothing was held out" in quiet_train.message and "--val-fraction" in quiet_train.message
    average = judge(0.019, 0.02, 5, "validation", config=cfg, train_ratio=0.95)
    assert average.kind == "at_average" and average.fired  # units in use: not collapse
    assert average.message.startswith(ALARM_AT_AVERAGE)
    assert "lower KL weight (now 0.01)" in average.message and "dB" in average.message
    collapsed = judge(0.019, 0.02, 0, "validation", config=cfg, train_ratio=0.95)
    assert collapsed.kind == "collapse" and collapsed.fired
    assert collapsed.message.startswith(ALARM_COLLAPSE) and "no latent unit" in collapsed.message
    memorised = judge(0.019, 0.02, 5, "validation", config=TrainConfig(kl_weight=1e-4),
                      train_ratio=0.2)
    assert memorised.kind == "no_generalisation" and memorised.fired
    assert memorised.message.startswith(ALARM_NO_GENERALISATION)
    assert "higher KL weight (now 0.0001)" in memorised.message
    assert "lower KL weight" not in memorised.message
    assert judge(0.004, 0.02, 0, "validation", train_ratio=0.2).kind == "collapse"  # no unit
    assert judge(0.019, 0.02, 5, "training").kind == "at_average"  # on training clips
    undefined = judge(0.01, 0.0, 5, "training")
    assert undefined.kind == "undefined" and not undefined.fired
    assert undefined.message.startswith(BASELINE_ZERO) and math.isnan(undefined.ratio)
    assert {a.kind for a in (quiet_train, average, collapsed, memorised, undefined)} \
        < set(ALARM_KINDS)
    with pytest.raises(ValueError, match="Alarm.kind must be one of"):
        Alarm("collapse?", "x")


def test_judge_threshold_and_the_db_tip():
    assert judge(0.0179, 0.02, 1, "validation").kind == "learned"  # 0.895x
    assert judge(0.02, 0.02, 1, "validation").kind == "at_average"  # 1x: at the average
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
    assert report == {"fired": False, "kind": "learned", "why": verdict(healthy).message}
    assert "mel MSE is 0.60x that of the training set's average mel" in report["why"]
    # where the spectral convergence was measured, it is the verdict's figure
    heard = replace(healthy, train_sc=[0.3], train_sc_baseline=0.9, val_sc=[0.95],
                    val_sc_baseline=1.0)
    v = verdict(heard)
    assert v.figure == "sc" and v.ratio == pytest.approx(0.95) and v.kind == "no_generalisation"
    assert "spectral error is 0.95x" in v.message
    average = replace(healthy, val_recon=[0.019], train_recon=[0.019])
    assert verdict(average).message.startswith("no learning beyond the average mel")
    report = verdict(average).report()
    assert report["fired"] and report["kind"] == "at_average"
    collapsed = replace(average, active_units=[0])
    assert verdict(collapsed).message.startswith("posterior collapse")
    assert verdict(collapsed).report()["kind"] == "collapse"
    assert not judge(0.004, 0.02, 5, "training").fired  # not_validated is not a firing


def test_live_state_is_a_reading():
    text, looks = live_state(0.0084, 0.02, 60, "validation")
    assert text == "held-out mel MSE 0.42x the average · 60 active units" and looks == ""
    text, looks = live_state(0.019, 0.02, 3, "training", figure="sc")
    assert text == "training spectral error 0.95x the average · 3 active units"
    assert looks == "at_average"  # kept in History.alarms; the bar shows numbers only
    text, looks = live_state(0.01, 0.0, 3, "training")  # baseline 0: no ZeroDivisionError
    assert "undefined (baseline 0)" in text
    assert live_state(0.001, 0.02, 0)[1] == "collapse"
    assert np.isfinite(judge(0.0084, 0.02, 60).ratio)
