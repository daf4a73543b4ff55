"""sda_lab.studies.prior: the Gaussian mixture fitted on posterior means, N(0, I), the in-range
share and the prior comparison. Tiny model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from sda_lab.studies import prior as P
from sda_lab.studies.descriptors import DESCRIPTORS

from .test_generate import TINY, TINY_SPEC


def _clusters(n=40, d=3):
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[4.0] * d, [-4.0] * d])
    return centres[torch.arange(n) % 2] + 0.2 * torch.randn(n, d, generator=g)  # (n, d)


def test_gmm_prior_finds_the_clusters_where_normal_does_not():
    mu = _clusters()
    gmm = P.fit_gmm_prior(mu, max_components=4)
    assert len(gmm.mixture.weights_) == 2  # BIC picks two components
    z = gmm.sample(200, seed=1)
    assert z.shape == (200, 3) and z.dtype == torch.float32
    assert (z.abs().mean(1) > 3).float().mean() > 0.95  # near the clusters, not the hole at 0
    assert torch.equal(z, gmm.sample(200, seed=1)) and not torch.equal(z, gmm.sample(200, seed=2))
    normal = P.normal_prior(3).sample(2000, seed=0)
    assert normal.std().item() == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("bad, needle", [
    (torch.zeros(1, 3), "N >= 2"),
    (torch.zeros(5), "N >= 2"),
    (torch.full((4, 2), float("nan")), "NaN"),
])
def test_gmm_prior_bad_input(bad, needle):
    with pytest.raises(ValueError, match=needle):
        P.fit_gmm_prior(bad)


def test_sample_needs_a_positive_count():
    with pytest.raises(ValueError, match="positive"):
        P.normal_prior(2).sample(0)


def test_in_range_share():
    ref = pd.DataFrame({k: [0.0, 1.0] for k in DESCRIPTORS})
    samples = pd.DataFrame({k: [0.5, 2.0, 0.2, 0.9] for k in DESCRIPTORS})
    samples["f0_hz"] = [np.nan, np.nan, 0.5, 3.0]  # unpitched samples are skipped
    share = P.in_range_share(samples, ref)
    assert share["loudness_db"] == 0.75
    assert share["f0_hz"] == 0.5
    assert share["all"] == 0.5  # sample 1 out on every descriptor, sample 3 on f0


def test_compare_priors_rows_and_ranges():
    from sda_lab.model.vae import ConvVAE, encode_dataset
    from sda_lab.representation.spectrogram import AudioSpectrogram

    torch.manual_seed(0)
    model = ConvVAE.from_config(TINY).eval()
    spec = AudioSpectrogram(TINY_SPEC)
    mels = torch.rand(6, 1, TINY.n_mels, TINY.n_frames, generator=torch.Generator().manual_seed(0))
    mu, _ = encode_dataset(model, mels)
    priors = {"gmm": P.fit_gmm_prior(mu), "normal": P.normal_prior(TINY.latent_dim)}
    table = P.compare_priors(model, spec, mels, priors, n=4)
    assert list(table.index) == ["gmm", "normal", "training means"]
    assert table.loc["gmm", "n"] == 4 and table.loc["training means", "n"] == 6
    for col in ("in_range_all", "in_range_centroid_hz", "inversion_mse", "reencode_mse"):
        assert table[col].between(0, 1).all(), col
