"""sda_lab.studies.continuation and ``generate --seconds``: exact Gaussian conditioning, the
lengths asked for, seams of conditioned windows against independent ones on a tiny trained
sequence model, one-line errors, and the CLI writing long files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture

from sda_lab.model.vae import VAEConfig, encode_dataset
from sda_lab.representation.inverter import Inverter
from sda_lab.representation.spectrogram import AudioSpectrogram
from sda_lab.studies.continuation import (ContinuationConfig, check_seconds, compare_seams,
                                          condition_prior, continue_from, continue_mel, seam_flux)
from sda_lab.studies.prior import LatentPrior, fit_gmm_prior, normal_prior
from sda_lab.training.config import TrainConfig
from sda_lab.training.loop import train_run

from ._tiny import tiny_mels
from .test_generate import SR, TINY_SPEC, tiny_run
from .test_loop import QUIET

# 8 latent frames of 2 channels per 16-frame clip
SEQ = VAEConfig(latent_dim=16, dropout=0.0, n_mels=32, n_frames=16, channels=(4, 8),
                latent="sequence", time_halvings=1)


@pytest.fixture(scope="module")
def trained():
    """A tiny sequence VAE trained on 24 tiny mels, its GMM prior and training latents."""
    torch.set_num_threads(1)
    mels = tiny_mels(24)  # (24, 1, 32, 16)
    model, _ = train_run(SEQ, TrainConfig(epochs=30, batch_size=8, lr=2e-2, kl_weight=1e-4,
                                          free_bits=0.0, kl_schedule="constant", device="cpu"),
                         mels, sinks=QUIET)
    mu, _ = encode_dataset(model.eval(), mels)  # (24, 16)
    return model, fit_gmm_prior(mu), mu


def _gmm(k: int, d: int = 4, seed: int = 0) -> LatentPrior:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((60, d)) @ rng.standard_normal((d, d))  # (60, d)
    x += 3 * rng.integers(0, k, 60)[:, None]  # k clusters
    return LatentPrior("gmm", d, GaussianMixture(k, random_state=seed).fit(x))


def test_one_component_conditioning_is_the_closed_form_and_keeps_the_observed():
    prior = _gmm(1)
    m, c = prior.mixture.means_[0], prior.mixture.covariances_[0]
    o, u = [0, 2], [1, 3]
    values = torch.tensor([[0.5, -1.0], [2.0, 0.3]])  # (2, 2)
    cond = condition_prior(prior, torch.tensor(o), shrinkage=0.0)
    gain = c[np.ix_(u, o)] @ np.linalg.inv(c[np.ix_(o, o)])
    expected_cov = c[np.ix_(u, u)] - gain @ c[np.ix_(o, u)]
    expected_mean = m[u] + (values.double().numpy() - m[o]) @ gain.T  # (2, 2)
    weights, means = cond.posterior(values)
    assert np.allclose(cond.cov[0].numpy(), expected_cov, atol=1e-10)
    assert np.allclose(means[:, 0].numpy(), expected_mean, atol=1e-10)
    assert torch.allclose(weights, torch.ones(2, 1, dtype=torch.float64))
    z = cond.sample(values.repeat(500, 1), torch.Generator().manual_seed(0))  # (1000, 4)
    assert torch.equal(z[:, o], values.repeat(500, 1))
    draws = z[::2, u].double().numpy()  # the first row's 500 draws
    sem = np.sqrt(expected_cov.diagonal() / 500)  # standard error of the draws' mean
    assert np.allclose(draws.mean(0), expected_mean[0], atol=4 * sem.max())


def test_component_weights_follow_the_marginal_likelihood_of_the_observed():
    prior = _gmm(2)
    g = prior.mixture
    values = torch.tensor([[0.0, 0.0], [3.0, 3.0]])  # (2, 2)
    weights, _ = condition_prior(prior, torch.tensor([1, 3])).posterior(values)
    for row, x in zip(weights, values.numpy()):
        like = np.array([w * multivariate_normal(mk[[1, 3]], ck[np.ix_([1, 3], [1, 3])]).pdf(x)
                         for w, mk, ck in zip(g.weights_, g.means_, g.covariances_)])
        assert np.allclose(row.numpy(), like / like.sum(), atol=1e-8)


def test_conditioning_n01_changes_nothing():
    cond = condition_prior(normal_prior(6), torch.tensor([0, 5]))
    weights, means = cond.posterior(torch.tensor([[3.0, -2.0]]))
    assert torch.equal(means, torch.zeros(1, 1, 4, dtype=torch.float64))
    assert torch.equal(cond.cov[0], torch.eye(4, dtype=torch.float64))


@pytest.mark.parametrize("seconds", [0.3, 1.0, 2.5, 3.7])
def test_a_sound_is_as_long_as_asked(trained, seconds):
    model, prior, mu = trained
    spec = AudioSpectrogram(TINY_SPEC)
    wave, mel = continue_from(model, prior, mu[0], seconds, Inverter(spec),
                              torch.Generator().manual_seed(0))
    assert wave.shape == (1, 1, round(seconds * SR))
    assert mel.shape == (1, 1, 32, spec.get_mel_shape(round(seconds * SR))[1])
    assert torch.isfinite(wave).all()


def test_windows_share_their_latent_frames(trained):
    model, prior, mu = trained
    cont = continue_mel(model, prior, mu[:3], 60, torch.Generator().manual_seed(1))
    f, k = SEQ.latent_frames, round(SEQ.latent_frames / 3)
    seq = cont.latents.view(3, -1, SEQ.latent_channels, f)  # (B, W, C, F)
    assert seq.shape[1] > 2
    assert torch.equal(seq[:, 1:, :, :k], seq[:, :-1, :, f - k:])
    assert torch.equal(cont.latents[:, 0], mu[:3])


def test_conditioned_joins_are_smoother_than_independent_windows(trained):
    """Over seeds 0-4 (all we tried), from the training latents of the tiny trained model with
    its GMM prior: the seam ratio of conditioned windows is below that of independent ones
    (compare_seams, checked against continue_mel + seam_flux for the first seed)."""
    model, prior, mu = trained
    spec = AudioSpectrogram(TINY_SPEC)
    for seed in range(5):
        ratio = compare_seams(model, prior, mu[:8], 80, spec, seed=seed)
        assert ratio["conditioned"] < ratio["independent"], (seed, ratio)
    cont = continue_mel(model, prior, mu[:8], 80, torch.Generator().manual_seed(4),
                        ContinuationConfig(conditioned=False))
    assert seam_flux(cont.mel, spec, cont.joins)["ratio"] == ratio["independent"]


def test_seam_flux_sees_a_jump_at_the_join():
    spec = AudioSpectrogram(TINY_SPEC)
    mel = torch.full((1, 1, 32, 40), 0.5)
    mel[..., 20:] = 0.8  # a step into frame 20
    flux = seam_flux(mel, spec, [(18, 22)])
    assert flux["within"] == 0.0 and flux["join"] > 0 and flux["ratio"] == float("inf")
    assert seam_flux(mel, spec, [(30, 34)])["join"] == 0.0


@pytest.mark.parametrize("seconds", [0, -1.0, float("nan"), 61.0, "2"])
def test_bad_seconds_is_one_line(trained, seconds):
    model, prior, mu = trained
    with pytest.raises(ValueError, match=r"^seconds: expected a length from .* to 60 seconds, "
                                         r"got .*$"):
        continue_from(model, prior, mu[0], seconds, Inverter(AudioSpectrogram(TINY_SPEC)))


def test_a_prior_of_another_dimension_is_one_line(trained):
    model, _, mu = trained
    with pytest.raises(ValueError, match="prior: expected a prior over the model's 16 latent "
                                         "dimensions, got one over 4"):
        continue_from(model, normal_prior(4), mu[0], 2.0, Inverter(AudioSpectrogram(TINY_SPEC)))
    with pytest.raises(ValueError, match=r"overlap: expected a share of a window in \(0, 1\)"):
        ContinuationConfig(overlap=1.0)
    assert check_seconds(2.5, TINY_SPEC) == 20000


def test_cli_generate_seconds_writes_long_files(tmp_path, capsys):
    from sda_lab.interface.cli import main

    run = tiny_run(tmp_path)
    assert main(["generate", str(run), "--n", "2", "--seconds", "2.5", "--no-f0", "--quiet",
                 "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "vector latents have no time axis" in out and "decoded windows" in out
    table = pd.read_csv(tmp_path / "o" / "samples.csv")
    assert (table["seconds"] == 2.5).all() and (table["windows"] > 1).all()
    assert table["copy_check"].str.contains("most copy-like of each sample's").all()
    assert (table["nn_window"] < table["windows"]).all()
    for name in table["file"]:
        info = sf.info(tmp_path / "o" / name)
        assert info.samplerate == SR and info.frames == round(2.5 * SR)


def test_cli_generate_checks_seconds_before_loading_the_runs_audio(tmp_path, capsys):
    """A length under one STFT window is refused from the run's metrics.json, before its audio
    folder is read (here gone: loading would fail on that instead)."""
    import json
    import shutil

    from sda_lab.interface.cli import main

    run = tiny_run(tmp_path)
    shutil.rmtree(json.loads((run / "metrics.json").read_text())["folder"])
    assert main(["generate", str(run), "--n", "1", "--seconds", "0.05", "--no-f0", "--quiet",
                 "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert "--seconds: expected a length from 0.128 to" in err and "\n" not in err
