"""The frame multiple a model pads to follows its encoder's depth (``2 ** len(channels)``)."""

import pytest
import torch

from sda_lab.model.vae import ConvVAE, VAEConfig


@pytest.mark.parametrize("channels, frames", [((4, 8, 16), 20), ((4, 8, 16), 17), ((4, 8), 6)])
def test_a_shallower_encoder_takes_the_frames_its_own_padding_allows(channels, frames):
    """3 layers pad to a multiple of 8: 20 frames -> 24 (a fixed 16 would say 32 and refuse)."""
    cfg = VAEConfig(latent_dim=4, dropout=0.0, n_mels=32, n_frames=frames, channels=channels)
    assert cfg.time_multiple == 2 ** len(channels)
    model = ConvVAE(cfg).eval()
    x = torch.rand(2, 1, 32, frames)
    recon, mu, _ = model(x)
    assert recon.shape == x.shape and mu.shape == (2, 4)
    shorter = cfg.padded_frames - cfg.time_multiple  # one multiple less pads elsewhere
    if shorter >= 1:
        with pytest.raises(ValueError, match=rf"accepts {shorter + 1}\.\.{cfg.padded_frames} "):
            model(torch.rand(2, 1, 32, shorter))
