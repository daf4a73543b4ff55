"""The loop: schedules, budgets, hooks (live state, best and last checkpoints), the one verdict,
and training faults. Every run is a tiny VAE on tiny mels (tests/_tiny.py)."""

import math
import warnings
from dataclasses import asdict, replace

import pytest
import torch

import sda_lab.model.losses
import sda_lab.training.loop as train_mod
import sda_lab.training.posterior as loss_mod  # run_loss, the loop's loss, calls its vae_loss
from sda_lab.model.vae import ConvVAE
from sda_lab.training.checkpoint import best_path_for, load_checkpoint
from sda_lab.training.config import TrainConfig
from sda_lab.training.diagnostics import eval_recon, mean_mel_baseline
from sda_lab.training.history import History
from sda_lab.training.loop import Sinks, TrainingDiverged, train, train_run

from ._tiny import TINY, small, tiny_mels

QUIET = Sinks(progress=False)

# lr 5e-2, one step per epoch: epoch 0 sits above the average, epoch 9 well below it
LEARNS = dict(epochs=10, batch_size=8, lr=5e-2, kl_weight=1e-4, free_bits=0.0,
              kl_schedule="constant")


@pytest.fixture(scope="module")
def mels():
    return tiny_mels(12)  # (12, 1, 32, 16)


def test_training_lowers_the_loss_and_records_history(mels):
    _, h = train_run(TINY, small(epochs=6, lr=2e-2, kl_schedule="constant", kl_weight=0.0,
                                 free_bits=0.0), mels, sinks=QUIET)
    assert len(h.epoch) == len(h.recon) == len(h.active_units) == len(h.alarms) == 6
    assert h.recon[-1] < h.recon[0]
    assert len(h.kl_per_dim) == TINY.latent_dim and len(h.au_variance) == TINY.latent_dim
    assert h.steps == [3, 6, 9, 12, 15, 18] and h.n_train == 12 and h.n_val == 0


def test_schedule_drives_the_weight(mels):
    _, h = train_run(TINY, small(epochs=4, warmup_fraction=0.5), mels, sinks=QUIET)
    assert h.kl_weight == [0.0, 0.5, 1.0, 1.0]


def test_budget_schedule_is_the_losses_schedule(monkeypatch):
    """losses.py is the only schedule code: the per-step (budget) schedule calls it too."""
    calls = []
    real = sda_lab.model.losses.get_kl_weight

    def spy(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(sda_lab.model.losses, "get_kl_weight", spy)
    cfg = small(epochs=None, max_steps=6, warmup_fraction=0.5, kl_weight=2.0)
    assert cfg.kl_weight_at_progress(0.25) == 1.0 and calls
    assert [cfg.kl_weight_at_progress(p) for p in (0, 0.5, 1, 7)] == [0, 2, 2, 2]
    cyc = small(epochs=None, max_steps=8, kl_schedule="cyclical", n_cycles=2, cycle_ratio=0.5)
    assert [cyc.kl_weight_at_progress(p) for p in (0, 0.125, 0.25, 0.5, 1.0)] == [0, 0.5, 1, 0, 1]


def test_budget_schedule_follows_the_planned_steps(mels):
    cfg = small(epochs=None, max_steps=6, batch_size=12, warmup_fraction=0.5)
    _, h = train_run(TINY, cfg, mels, sinks=QUIET)  # one step per epoch
    assert h.kl_weight == pytest.approx([0, 1 / 3, 2 / 3, 1, 1, 1])


def test_same_seed_same_curves(mels):
    _, a = train_run(TINY, small(), mels, sinks=QUIET, seed=3)
    torch.rand(100)  # global RNG state in between must not matter
    _, b = train_run(TINY, small(), mels, sinks=QUIET, seed=3)
    _, c = train_run(TINY, small(), mels, sinks=QUIET, seed=4)
    assert a.recon == b.recon and a.raw_kl == b.raw_kl
    assert a.recon != c.recon  # the seed is used


def test_step_budget_and_validation_baselines(mels):
    tr, va = mels[:10], mels[10:]
    cfg = small(epochs=None, max_steps=5, kl_weight=1e-3, free_bits=0.0)
    _, h = train_run(TINY, cfg, tr, val_mels=va, sinks=QUIET)
    # 10 clips at batch 4: 3 steps per epoch, so the budget ends the second epoch after two steps
    assert h.steps == [3, 5] and h.epoch == [0, 1]
    assert h.stop_reason.startswith("max_steps") and h.stop_reason.endswith("in epoch 2")
    assert len(h.val_recon) == len(h.train_recon) == 2
    assert h.train_baseline == pytest.approx(mean_mel_baseline(tr))
    assert h.val_baseline == pytest.approx(mean_mel_baseline(tr, va))
    assert h.n_train == 10 and h.n_val == 2
    row = h.summary()
    assert row["val recon / baseline"] == pytest.approx(h.val_recon[-1] / h.val_baseline,
                                                         abs=1e-3)
    assert row["steps"] == 5 and row["stopped by"] == "max_steps"
    assert row["mel verdict"] == h.alarm_kind
    assert (row["mel alarm"] == "fired") == (h.alarm is not None)
    assert not h.val_sc and "val spectral error / baseline" not in row  # no spectrogram given


def test_minute_budget_stops_cleanly(mels):
    _, h = train_run(TINY, small(epochs=None, max_minutes=1e-6), mels, sinks=QUIET)
    assert h.steps == [1] and h.stop_reason.startswith("max_minutes") and h.alarm_kind
    with pytest.raises(ValueError, match="needs a budget"):
        TrainConfig(epochs=None)
    with pytest.raises(ValueError, match="max_steps must be"):
        TrainConfig(max_steps=0)


# -- issue 23: the alarm judges once --------------------------------------------------------


def test_a_quiet_run_emits_no_warning_though_early_epochs_looked_collapsed(mels, recwarn):
    _, h = train_run(TINY, small(**LEARNS), mels[:8], val_mels=mels[:8], sinks=Sinks())
    assert h.alarms[0] == "collapse"  # epoch 0 had no active unit yet...
    assert h.alarm_kind == "learned" and h.alarm is None  # ...the run's verdict is learned
    assert "held-out files its mel MSE" in h.verdict and h.val_recon[-1] < 0.9 * h.val_baseline
    assert not [w for w in recwarn.list if issubclass(w.category, UserWarning)]


def test_nothing_held_out_says_not_validated(mels, recwarn):
    _, h = train_run(TINY, small(**LEARNS), mels[:8], sinks=QUIET)
    assert h.alarm_kind == "not_validated" and h.alarm is None
    assert "nothing was held out" in h.verdict
    assert not recwarn.list


def test_a_collapsing_run_gets_one_collapse_verdict_and_no_warning(mels):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        _, h = train_run(TINY, small(epochs=2, kl_schedule="constant", free_bits=0.0),
                         mels[:8], val_mels=mels[8:], sinks=QUIET)
    assert h.alarm_kind == "collapse" and h.alarm.startswith("posterior collapse")
    assert h.alarm == h.verdict and all(h.alarms)


def test_the_spectral_term_needs_the_spectrogram(mels):
    with pytest.raises(ValueError, match="TrainConfig.spectral_convergence_weight needs train"):
        train_run(TINY, small(epochs=1, spectral_convergence_weight=0.1), mels[:8], sinks=QUIET)


# -- hooks: best and last checkpoints ---------------------------------------------------------


def test_best_checkpoint_is_the_lowest_validation_epoch(tmp_path, mels):
    from sda_lab.representation.spectrogram import AudioSpectrogram, SpectrogramConfig

    path = tmp_path / "run" / "ck.pt"
    spec = AudioSpectrogram(SpectrogramConfig(n_mels=32))
    _, h = train_run(TINY, small(**{**LEARNS, "epochs": 6}), mels[:8], val_mels=mels[8:],
                     sinks=Sinks(path, progress=False), spectrogram=spec)
    best = best_path_for(path)
    assert best == tmp_path / "run" / "ck.best.pt" and best.is_file()
    assert h.best_epoch == min(range(6), key=lambda e: h.val_recon[e])
    ck = load_checkpoint(best, device="cpu")
    assert ck.history.best_epoch == h.best_epoch and len(ck.history.epoch) == h.best_epoch + 1
    assert ck.optimizer_state is None and ck.extra["best_epoch"] == h.best_epoch
    score = eval_recon(ck.model, mels[8:])[0]
    assert score == pytest.approx(h.val_recon[h.best_epoch], rel=1e-4)
    last = load_checkpoint(path, device="cpu")
    assert last.history == h and last.optimizer_state is not None  # the verdict is in it too
    assert last.spectrogram().config == spec.config


def test_save_every_s_still_writes_the_end(tmp_path, mels):
    path = tmp_path / "ck.pt"
    _, h = train_run(TINY, small(epochs=3), mels,
                     sinks=Sinks(path, progress=False, save_every_s=1e9))
    assert load_checkpoint(path).history.epoch == [0, 1, 2]


# -- issue 19: training faults ----------------------------------------------------------------


def test_nan_loss_says_diverged_with_epoch_and_step_and_keeps_checkpoint(tmp_path, mels,
                                                                         monkeypatch):
    calls = {"n": 0}
    real = loss_mod.vae_loss

    def poisoned(*args, **kwargs):
        total, r, k = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 5:  # the second epoch's second batch (3 steps per epoch)
            total = total * float("nan")
        return total, r, k

    monkeypatch.setattr(loss_mod, "vae_loss", poisoned)
    path = tmp_path / "ck.pt"
    with pytest.raises(TrainingDiverged, match=r"training diverged in epoch 2 \(its batch 2, "
                                               r"optimiser step 5\).*lr 0.001.*lower learning "
                                               "rate.*last good checkpoint is kept"):
        train_run(TINY, small(), mels, sinks=Sinks(path, progress=False))
    assert len(load_checkpoint(path).history.epoch) == 1


def test_a_huge_learning_rate_raises_training_diverged_in_one_line(mels):
    with pytest.raises(TrainingDiverged) as info:
        train_run(TINY, small(lr=1e30), mels, sinks=QUIET)
    msg = str(info.value)
    assert msg.startswith("training diverged in epoch 1 (its batch ") and "lr 1e+30" in msg
    assert "--lr" in msg and "grad_clip" in msg and "\n" not in msg
    assert "latent contains" not in msg


def test_identical_clips_have_an_undefined_ratio_not_a_crash(mels):
    same = mels[:1].repeat(6, 1, 1, 1)  # a looped tone: every clip the same mel
    _, h = train_run(TINY, small(epochs=2), same, sinks=Sinks())  # the bar shows the ratio
    assert h.train_baseline == 0.0 and math.isnan(h.ratios()["train"])
    assert h.alarm_kind == "undefined" and "the baseline is 0" in h.verdict
    assert h.summary()["mel verdict"] == "undefined"


def test_bad_training_input_is_refused_before_any_epoch(mels, monkeypatch):
    monkeypatch.setattr(train_mod, "_epoch_step", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ValueError, match="non-empty"):
        train(ConvVAE.from_config(TINY), mels[:0], small(), sinks=QUIET)
    with pytest.raises(ValueError, match="only 1 training clip; training needs at least 2"):
        train(ConvVAE.from_config(TINY), mels[:1], small(), sinks=QUIET)
    with pytest.raises(ValueError, match="must match the training mels"):
        train(ConvVAE.from_config(TINY), mels, small(), val_mels=mels[:, :, :, :8],
              sinks=QUIET)
    with pytest.raises(ValueError, match="augment needs"):
        train(ConvVAE.from_config(TINY), mels, small(augment=True), sinks=QUIET)
    with pytest.raises(ValueError, match="kl_schedule"):
        TrainConfig(kl_schedule="sigmoid")


def test_augmented_training_runs_on_waveforms():
    from sda_lab.data.augment import AugmentConfig
    from sda_lab.representation.spectrogram import AudioSpectrogram, SpectrogramConfig

    spec = AudioSpectrogram(SpectrogramConfig(n_mels=32))
    t = torch.arange(48_000) / 48_000
    waves = torch.stack([0.5 * torch.sin(2 * math.pi * f * t) for f in (220, 330, 440, 550)]
                        ).unsqueeze(1)  # (4, 1, 48000)
    mels = spec.waveform_to_mel(waves)  # (4, 1, 32, 94)
    cfg = small(epochs=None, max_steps=2, augment=True)
    assert cfg.augment == AugmentConfig() and TrainConfig(augment=False).augment is None
    _, h = train_run(replace(TINY, n_frames=mels.shape[-1]), cfg, mels, sinks=QUIET,
                     waveforms=waves, spectrogram=spec)
    assert h.steps == [1, 2]
    assert TrainConfig(**asdict(cfg)) == cfg  # the nested config survives a checkpoint


def test_specaugment_masks_what_the_model_sees_not_what_it_must_rebuild(mels, monkeypatch):
    """Mel-domain augmentation needs no waveforms; the loss's target is the whole mel."""
    from sda_lab.data.augment import AugmentConfig

    seen = {}
    real_loss = loss_mod.vae_loss

    def spy(recon, target, *a, **k):
        seen.setdefault("targets", []).append(target.detach().clone())
        return real_loss(recon, target, *a, **k)

    monkeypatch.setattr(loss_mod, "vae_loss", spy)
    model = ConvVAE.from_config(TINY)
    model.register_forward_pre_hook(
        lambda m, args: seen.setdefault("inputs", []).append(args[0].detach().clone()))
    aug = AugmentConfig(0, 0, 0, freq_mask=6, time_mask=4)
    cfg = small(epochs=None, max_steps=3, batch_size=12, augment=aug)
    train(model, mels + 0.1, cfg, sinks=QUIET)  # + 0.1: no zeros before masking
    inputs = torch.cat(seen["inputs"][:3])  # the training forwards (eval passes come later)
    targets = torch.cat(seen["targets"])
    assert (targets > 0).all()  # the target is never masked
    assert (inputs == 0).any()  # the input is
    assert torch.equal(inputs[inputs > 0], targets[inputs > 0])


def test_gaussian_sigma_trains_and_history_recon_stays_mse(mels):
    """Under the ELBO option the history still reports the per-element MSE (comparable with
    the mean-mel baseline), not the likelihood's scaled sum."""
    _, h = train_run(TINY, small(epochs=1, batch_size=12, kl_weight=1.0, free_bits=0.0,
                                 gaussian_sigma=0.1), mels, sinks=QUIET)
    assert 0.0 < h.recon[0] < 1.0  # an MSE of values in [0, 1], not a sum over 512 elements


def test_train_run_seeds_the_initial_weights():
    m1, _ = train_run(TINY, small(epochs=1), tiny_mels(4), seed=7, sinks=QUIET)
    m2, _ = train_run(TINY, small(epochs=1), tiny_mels(4), seed=7, sinks=QUIET)
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(),
                                                 m2.state_dict().values()))
    assert not m1.training


def test_history_summary_and_informative_dims():
    h = History(epoch=[0, 1], recon=[0.5, 0.25], raw_kl=[100.0, 3.0], kl=[100.0, 3.0],
                kl_weight=[0.0, 1.0], active_units=[10, 4], seconds=[1.0, 2.0],
                kl_per_dim=[0.05, 0.2, 2.0], train_recon=[0.3, 0.2], train_baseline=0.4,
                alarms=["collapse", ""], alarm_kind="not_validated")
    assert h.informative_dims(0.1) == 2 and h.informative_dims(1.0) == 1
    row = h.summary()
    assert row["epochs"] == 2 and row["wall s"] == 3.0 and row["raw KL epoch 0"] == 100.0
    assert row["final recon"] == 0.25 and row["final active units"] == 4
    assert row["max active units"] == 10 and row["dims with KL > 0.1 nats"] == 2
    assert row["train recon / baseline"] == 0.5 and row["mel verdict"] == "not_validated"
    assert "train spectral error / baseline" not in row  # not recorded
    heard = replace(h, train_sc=[0.9, 0.6], train_sc_baseline=0.8, alarm_kind="at_average")
    row = heard.summary()  # the figure the mel verdict reads is in the row beside it
    assert row["train spectral error / baseline"] == 0.75 and row["mel verdict"] == "at_average"


def test_profiling_names_its_median():
    from sda_lab.studies.profiling import measure_training_step

    out = measure_training_step(ConvVAE.from_config(TINY), batch_size=2, steps=3, warmup=1,
                                device="cpu")
    assert out["median_step_ms"] > 0 and "step_ms" not in out
    assert out["samples_per_s"] == pytest.approx(2000 / out["median_step_ms"])


def test_weight_average_is_what_is_evaluated_saved_and_returned(tmp_path, mels, monkeypatch):
    """ema_decay: the returned model, the scores and both checkpoints are the exponential
    average of the raw weights after every step (computed here by hand), not the last step."""
    decay, raw_steps = 0.3, []
    step = torch.optim.AdamW.step

    def recording_step(self, *a, **kw):
        out = step(self, *a, **kw)
        raw_steps.append([p.detach().clone() for p in self.param_groups[0]["params"]])
        return out

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    path = tmp_path / "ck.pt"
    cfg = small(**{**LEARNS, "epochs": 8, "ema_decay": decay})  # warm-up, then 0.3 from n = 3
    model, h = train_run(TINY, cfg, mels[:8], sinks=Sinks(path, progress=False),
                         val_mels=mels[8:])
    average = raw_steps[0]  # the first update copies, the n-th after it moves by (1 - d)
    for n, w in enumerate(raw_steps[1:], start=1):
        d = min(decay, (1 + n) / (10 + n))  # the decay's warm-up
        average = [d * a + (1 - d) * x for a, x in zip(average, w)]
    for p, a, last in zip(model.parameters(), average, raw_steps[-1]):
        assert torch.allclose(p.detach().cpu(), a, atol=1e-6)
    assert any(not torch.allclose(a, last, atol=1e-4) for a, last in zip(average, raw_steps[-1]))
    assert eval_recon(model, mels[8:])[0] == pytest.approx(h.val_recon[-1], rel=1e-4)
    saved = load_checkpoint(path, device="cpu").model
    assert eval_recon(saved, mels[8:])[0] == pytest.approx(h.val_recon[-1], rel=1e-4)
    best = load_checkpoint(best_path_for(path), device="cpu").model
    assert eval_recon(best, mels[8:])[0] == pytest.approx(h.val_recon[h.best_epoch], rel=1e-4)
    with pytest.raises(ValueError, match="ema_decay must be in"):
        TrainConfig(ema_decay=1.0)


def test_eval_every_skips_evaluations_but_not_training(mels, tmp_path):
    """The eval pass draws no random numbers: every 3rd epoch gives the same final model."""
    cfg = small(epochs=7, lr=2e-2)
    tr, va = mels[:9], mels[9:]
    full_model, full = train_run(TINY, cfg, tr, val_mels=va, sinks=QUIET, seed=2)
    some_model, some = train_run(TINY, replace(cfg, eval_every=3), tr, val_mels=va,
                                 seed=2, sinks=Sinks(tmp_path / "run.pt", progress=False))
    assert some.epoch == [0, 2, 5, 6]  # the first, every 3rd, the last
    assert len(some.recon) == len(some.val_recon) == len(some.active_units) == 4
    assert some.val_recon == [full.val_recon[e] for e in some.epoch]
    assert some.raw_kl[-1] == full.raw_kl[-1] and some.steps[-1] == full.steps[-1]
    for a, b in zip(full_model.state_dict().values(), some_model.state_dict().values()):
        assert torch.equal(a, b)
    assert some.summary()["epochs"] == 7
    assert sum(some.seconds) > 0 and load_checkpoint(tmp_path / "run.pt").history.epoch[-1] == 6
    with pytest.raises(ValueError, match="eval_every must be a positive integer"):
        small(eval_every=0)


def test_an_evaluation_share_spaces_the_evaluations_out_by_the_clip_counts(mels):
    """eval_share: the eval pass (EVAL_STEP_SHARE of a step per batch of clips) is at most that
    share of the work, worked out from the counts (a step budget stays reproducible); the
    first and the last epoch are still evaluated, and training is the same."""
    from sda_lab.training.config import EVAL_STEP_SHARE

    cfg = small(epochs=None, max_steps=25, batch_size=4)
    tr, va = mels[:8], mels[8:]  # 2 steps an epoch; 12 clips to evaluate: 3 batches
    between = EVAL_STEP_SHARE * 3 * (1 - 0.1) / 0.1  # 13.5 steps: every 7th epoch
    assert replace(cfg, eval_share=0.1).epochs_between_evaluations(2, 12) == math.ceil(
        between / 2) == 7
    assert replace(cfg, eval_share=0.1, eval_every=9).epochs_between_evaluations(2, 12) == 9
    assert cfg.epochs_between_evaluations(2, 12) == 1  # None: the plan's every epoch
    full_model, full = train_run(TINY, cfg, tr, val_mels=va, sinks=QUIET, seed=1)
    some_model, some = train_run(TINY, replace(cfg, eval_share=0.1), tr, val_mels=va,
                                 sinks=QUIET, seed=1)
    assert full.epoch == list(range(13)) and some.epoch == [0, 6, 12]
    for a, b in zip(full_model.state_dict().values(), some_model.state_dict().values()):
        assert torch.equal(a, b)
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(ValueError, match="eval_share must be in"):
            small(eval_share=bad)


def test_a_cosine_learning_rate_falls_over_the_budget_and_a_constant_one_stays(tmp_path, mels):
    last = {}
    for schedule in ("constant", "cosine"):
        path = tmp_path / schedule / "ck.pt"
        train_run(TINY, small(epochs=None, max_steps=6, lr=1e-3, lr_schedule=schedule), mels[:8],
                  sinks=Sinks(path, progress=False))
        last[schedule] = load_checkpoint(path, device="cpu").optimizer_state["param_groups"][0]["lr"]
    assert last["constant"] == pytest.approx(1e-3)
    # the sixth of six steps runs at progress 5/6: lr * (1 + cos(5 pi / 6)) / 2
    assert last["cosine"] == pytest.approx(1e-3 * (1 + math.cos(5 * math.pi / 6)) / 2)
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        TrainConfig(lr_schedule="linear")
