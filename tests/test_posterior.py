"""The posterior a run hears a file through: the encoder's mean refined on the file's own loss."""

from dataclasses import replace

import pytest
import torch

from sda_lab.model.vae import ConvVAE
from sda_lab.training.config import TrainConfig
from sda_lab.training.posterior import heard_reconstruction, refine_posterior, run_loss

CONFIG = TrainConfig(kl_weight=1e-3, free_bits=0.0, posterior_steps=30)


def model_and_mels():
    """A tiny VAE fitted for 150 steps to 8 striped mels, and 3 mels it did not see."""
    torch.manual_seed(0)
    rows = torch.arange(16.0).view(1, 1, 16, 1)
    stripes = lambda f: 0.5 + 0.4 * torch.sin(rows * f.view(-1, 1, 1, 1)).expand(-1, 1, 16, 16)
    seen, unseen = stripes(torch.linspace(0.2, 1.6, 8)), stripes(torch.tensor([0.5, 0.9, 1.3]))
    model = ConvVAE(latent_dim=8, dropout=0.0, n_mels=16, n_frames=16, channels=(4, 8))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        recon, mu, logvar = model(seen)
        loss = run_loss(CONFIG, recon, seen, mu, logvar, CONFIG.kl_weight)[0]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.zero_grad(set_to_none=True)
    return model, unseen  # (3, 1, 16, 16)


def per_clip_loss(model, mels, mu, logvar):
    with torch.no_grad():
        return [float(run_loss(CONFIG, model.decode(mu[i:i + 1], mels.shape), mels[i:i + 1],
                               mu[i:i + 1], logvar[i:i + 1], CONFIG.kl_weight)[0])
                for i in range(mels.shape[0])]


def test_refining_lowers_every_clips_own_loss_and_leaves_the_model_as_it_was():
    model, mels = model_and_mels()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mu0, logvar0 = refine_posterior(model, mels, CONFIG, steps=0)
    with torch.no_grad():
        model.eval()
        assert torch.equal(mu0, model.encode(mels)[0])  # 0 steps: the encoder's mean
        model.train()
    mu, logvar = refine_posterior(model, mels, CONFIG)
    assert torch.equal(logvar, logvar0) and not torch.allclose(mu, mu0)
    model.eval()  # the losses compared in eval mode, as the clips are heard
    start, end = per_clip_loss(model, mels, mu0, logvar0), per_clip_loss(model, mels, mu, logvar)
    assert all(e < s for s, e in zip(start, end)) and sum(end) < 0.8 * sum(start), (start, end)
    assert model.training is False
    model.train()
    refine_posterior(model, mels, CONFIG)
    assert model.training  # its mode restored
    assert all(p.requires_grad and p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():  # BatchNorm's statistics included
        assert torch.equal(v, before[k]), k


def test_a_clips_refinement_does_not_depend_on_the_others_in_its_batch():
    model, mels = model_and_mels()
    together, _ = refine_posterior(model, mels, CONFIG)
    alone, _ = refine_posterior(model, mels[1:2], CONFIG)
    assert torch.allclose(together[1:2], alone, atol=1e-4)


def test_heard_reconstruction_decodes_the_refined_mean_in_batches():
    model, mels = model_and_mels()
    mu, _ = refine_posterior(model, mels, CONFIG)
    model.eval()
    with torch.no_grad():
        expected = model.decode(mu, mels.shape)
    model.train()
    heard = heard_reconstruction(model, mels, CONFIG, batch=2)  # (3, 1, 16, 16) in 2 batches
    assert heard.shape == mels.shape and torch.allclose(heard, expected, atol=1e-4)
    assert model.training
    with torch.no_grad():
        model.eval()
        plain = model.decode(model.encode(mels)[0], mels.shape)
    assert torch.allclose(heard_reconstruction(model, mels, replace(CONFIG, posterior_steps=0)),
                          plain)


def test_bad_steps_mels_or_a_missing_magnitude_are_one_clear_error_before_any_step():
    model, mels = model_and_mels()
    for steps in (-1, 2.5, "3", True):
        with pytest.raises(ValueError, match=f"steps must be an integer >= 0, got {steps!r}"):
            refine_posterior(model, mels, CONFIG, steps=steps)
    for steps in (-2, 2.5, True):
        with pytest.raises(ValueError, match="posterior_steps must be an integer >= 0"):
            TrainConfig(posterior_steps=steps)
    with pytest.raises(TypeError, match="mels must be a torch.Tensor"):
        refine_posterior(model, mels.numpy(), CONFIG)
    with pytest.raises(ValueError, match="mels is empty"):
        heard_reconstruction(model, mels[:0], CONFIG)
    with pytest.raises(ValueError, match=r"mels contains non-finite values \(\d+ NaN"):
        refine_posterior(model, mels.masked_fill(mels > 0.8, float("nan")), CONFIG)
    with pytest.raises(ValueError, match="pass magnitude=<the run's AudioSpectrogram>"):
        refine_posterior(model, mels, replace(CONFIG, spectral_convergence_weight=0.1))


def test_refining_does_not_make_an_untrained_model_sound_learned():
    """The refinement moves latents only: a decoder that learned nothing still plays nothing
    like the input, and the verdict stays at the average."""
    import math

    from sda_lab.representation.inverter import Inverter
    from sda_lab.training.audio_eval import evaluate_audio, judge
    from sda_lab.training.recipes import OWN_AUDIO_RECIPE

    spec = OWN_AUDIO_RECIPE.audio_spectrogram()
    t = torch.arange(48_000) / 48_000
    waves = torch.stack([0.3 * torch.sin(2 * math.pi * f * t) * torch.exp(-4 * t)
                         for f in (110.0, 220.0, 330.0, 440.0, 550.0, 660.0)]).unsqueeze(1)
    mels = spec.waveform_to_mel(waves)  # (6, 1, 128, T)
    model_config, train_config = OWN_AUDIO_RECIPE.configs()
    assert train_config.posterior_steps > 0
    torch.manual_seed(0)
    model = ConvVAE(replace(model_config, n_frames=mels.shape[-1])).eval()
    files = [f"f{i}.wav" for i in range(6)]
    ev = evaluate_audio(model, spec, waves, files, [4, 5], mels[:4], Inverter(spec),
                        train_config=train_config)
    assert ev.mean("model", "spectral_convergence") > 0.9
    assert judge(ev, active_units=5).kind == "at the average"
