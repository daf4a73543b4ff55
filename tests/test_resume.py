"""Randomness handed down, a Ctrl-C that stops at a step boundary and saves, and a run resumed
from its last checkpoint taking the steps an uninterrupted run takes. Tiny VAE (tests/_tiny.py)."""

import signal
from dataclasses import replace

import pytest
import torch

import sda_lab.training.posterior as loss_mod  # run_loss, the loop's loss, calls its vae_loss
from sda_lab.data.augment import AugmentConfig
from sda_lab.model.vae import ConvVAE
from sda_lab.training.checkpoint import load_checkpoint
from sda_lab.training.loop import Sinks, train, train_run
from sda_lab.training.resume import TrainingInterrupted

from ._tiny import TINY, small, tiny_mels

# dropout and the reparameterisation noise draw from the global generator, the mel shift and
# the order from the handed-down one, the weights' average and AdamW keep state: all resumed
NOISY = replace(TINY, dropout=0.2)
CFG = small(epochs=3, lr=2e-2, ema_decay=0.9, augment=AugmentConfig(
    gain_db=0.0, max_shift_s=0.0, speed=0.0, mel_shift=2))


@pytest.fixture(scope="module")
def mels():
    return tiny_mels(12)  # (12, 1, 32, 16): 3 steps per epoch at batch 4


def _ctrl_c_at(monkeypatch, call: int) -> None:
    """Deliver SIGINT during the ``call``-th loss computation (a step in progress)."""
    real, calls = loss_mod.vae_loss, {"n": 0}

    def loss(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(loss_mod, "vae_loss", loss)


def test_ctrl_c_saves_the_last_completed_step_and_resume_takes_the_uninterrupted_steps(
        tmp_path, mels, monkeypatch):
    whole, h_whole = train_run(NOISY, CFG, mels[:8], val_mels=mels[8:], seed=4,
                               sinks=Sinks(progress=False))
    path = tmp_path / "ck.pt"
    _ctrl_c_at(monkeypatch, 5)  # epoch 1 (2 steps per epoch), its second step
    with pytest.raises(TrainingInterrupted, match="interrupted after 5 steps") as info:
        train_run(NOISY, CFG, mels[:8], val_mels=mels[8:], seed=4,
                  sinks=Sinks(path, progress=False, save_every_s=1e9))
    assert info.value.history.stop_reason.startswith("interrupted")
    assert info.value.history.step_count == 5  # the steps done, whatever was last evaluated
    ck = load_checkpoint(path, device="cpu")
    assert ck.history.steps[-1] == 5 and ck.resume["step_count"] == 5  # not the epoch-0 save
    assert ck.resume["order"] is not None and ck.resume["next_batch"] == 1  # mid-epoch 2
    monkeypatch.undo()
    resumed, h = train_run(NOISY, CFG, mels[:8], val_mels=mels[8:], seed=4,
                           sinks=Sinks(path, progress=False), resume=ck)
    assert h.steps[-1] == 6 and h.stop_reason.startswith("epochs")
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert h.val_recon[-1] == h_whole.val_recon[-1]
    with pytest.raises(ValueError, match=r"expected a budget beyond what the run has done, "
                                         r"got epochs=\d+ for a run at 6 steps"):
        train_run(NOISY, CFG, mels[:8], seed=4, sinks=Sinks(progress=False),
                  resume=load_checkpoint(path, device="cpu"))


def test_a_longer_budget_goes_on_from_where_the_run_stopped(tmp_path, mels):
    """A run stopped by its step budget resumes with a larger one: the total, not more."""
    path = tmp_path / "ck.pt"
    cfg = small(epochs=None, max_steps=4, lr=2e-2)
    train_run(TINY, cfg, mels, sinks=Sinks(path, progress=False))
    _, h = train_run(TINY, replace(cfg, max_steps=7), mels, sinks=Sinks(path, progress=False),
                     resume=load_checkpoint(path, device="cpu"))
    assert h.steps[-1] == 7 and h.steps[0] == 3
    with pytest.raises(ValueError, match="epoch order is for 12 clips, got 8"):
        train_run(TINY, replace(cfg, max_steps=9), mels[:8], sinks=Sinks(progress=False),
                  resume=load_checkpoint(path, device="cpu"))


def test_training_leaves_the_callers_random_state_alone(mels):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    train_run(NOISY, small(epochs=1), mels, sinks=Sinks(progress=False))
    assert torch.equal(torch.get_rng_state(), before)


def test_the_generator_handed_down_decides_the_run(mels):
    """Same generator seed, same model, whatever the global state; another seed, another."""
    def run(gen_seed, global_seed):
        torch.manual_seed(0)
        model = ConvVAE(NOISY)
        torch.manual_seed(global_seed)
        train(model, mels, small(epochs=1), sinks=Sinks(progress=False),
              generator=torch.Generator().manual_seed(gen_seed))
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    a, b, c = run(1, 0), run(1, 99), run(2, 0)
    assert torch.equal(a, b) and not torch.equal(a, c)
