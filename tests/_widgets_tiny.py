"""A tiny model and representation for the explorer tests: renders take milliseconds."""

import torch

from sda_lab.model.vae import ConvVAE, VAEConfig
from sda_lab.representation.spectrogram import AudioSpectrogram, SpectrogramConfig

TINY_SPEC = SpectrogramConfig(sample_rate=16_000, n_fft=512, hop_length=256, n_mels=32)
TINY_VAE = VAEConfig(latent_dim=4, dropout=0.0, n_mels=32, n_frames=16, channels=(4, 8))


def tiny_setup(n: int = 6, seed: int = 0):
    """(model, spec, mels (n, 1, 32, 16), labels): an untrained decoder made to listen to z."""
    torch.manual_seed(seed)
    model = ConvVAE.from_config(TINY_VAE).eval()
    with torch.no_grad():
        model.decoder.fc.weight.mul_(50)
        model.encoder.fc_mu.weight.mul_(200)  # clips far apart on the map
        model.encoder.fc_logvar.bias.fill_(-4.0)
    g = torch.Generator().manual_seed(seed)
    mels = torch.rand(n, 1, 32, 16, generator=g) * torch.rand(n, 1, 1, 1, generator=g)  # (n, 1, 32, 16)
    return model, AudioSpectrogram(TINY_SPEC), mels, [f"clip{i}.wav@0s" for i in range(n)]
