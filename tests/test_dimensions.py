"""sda_lab.studies.dimensions: how far each latent dimension moves the decoded mel, and bad input.
Tiny model."""

from __future__ import annotations

import pytest
import torch

from sda_lab.model.vae import ConvVAE
from sda_lab.representation.spectrogram import AudioSpectrogram
from sda_lab.studies.dimensions import dimension_effects, rank_dimensions

from .test_generate import TINY, TINY_SPEC


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = ConvVAE.from_config(TINY).eval()
    spec = AudioSpectrogram(TINY_SPEC)
    g = torch.Generator().manual_seed(0)
    mels = torch.rand(6, 1, TINY.n_mels, TINY.n_frames, generator=g) * 0.6  # (6, 1, 32, 16)
    return model, spec, mels


def test_dimension_effects_zero_for_a_dimension_the_decoder_ignores(tiny):
    model, spec, mels = tiny
    with torch.no_grad():
        model.decoder.fc.weight.mul_(50)
        model.decoder.fc.weight[:, 2] = 0.0  # the decoder does not read z2
    order, _, mu, scale = rank_dimensions(model, mels)
    fx = dimension_effects(model, mu, order, scale, n_sd=2.0)
    assert fx.shape == (6, TINY.latent_dim)
    deaf = order.index(2)
    others = [r for r in range(TINY.latent_dim) if r != deaf]
    assert torch.all(fx[:, others] > 0)
    assert fx[:, deaf].max() < 1e-4 * fx[:, others].min()  # zero up to the batches' rounding
    # a start's column is the decoded change itself, computed one at a time
    z = mu[3].clone()
    z[order[0]] += 2.0 * scale[order[0]]
    by_hand = (model.decode(z[None]) - model.decode(mu[3:4])).abs().mean()
    torch.testing.assert_close(fx[3, 0], by_hand.detach(), rtol=1e-5, atol=1e-7)
    # a larger move changes the mel more on the dimensions the decoder reads
    assert torch.all(dimension_effects(model, mu, order, scale, n_sd=4.0)[:, others]
                     > fx[:, others])


@pytest.mark.parametrize("kwargs, needle", [
    (dict(mu=torch.zeros(3, 5)), "mu must be"),
    (dict(scale=torch.ones(3)), "scale must be"),
    (dict(n_sd=0.0), "n_sd must be"),
    (dict(order=[0, 9]), "order must hold"),
])
def test_dimension_effects_bad_input_is_one_line(tiny, kwargs, needle):
    model, _, mels = tiny
    order, _, mu, scale = rank_dimensions(model, mels)
    args = dict(mu=mu, order=order, scale=scale, n_sd=2.0) | kwargs
    with pytest.raises(ValueError, match=needle) as err:
        dimension_effects(model, **args)
    assert "\n" not in str(err.value)
