"""A tiny VAE and tiny mels for tests of loop logic (the full 3.1 M-parameter model is for
notebooks and benchmarks)."""

import torch

from sda_lab.model.vae import VAEConfig
from sda_lab.training.config import TrainConfig

TINY = VAEConfig(latent_dim=4, dropout=0.0, n_mels=32, n_frames=16, channels=(4, 8))


def tiny_mels(n: int = 12, seed: int = 0) -> torch.Tensor:
    """``(n, 1, 32, 16)`` mels in [0, 0.8]: a Gaussian band at a random mel row switched on at
    a random frame, so clips differ (the mean-mel baseline is well above 0)."""
    g = torch.Generator().manual_seed(seed)
    f = torch.arange(32).view(1, 1, 32, 1).float()
    t = torch.arange(16).view(1, 1, 1, 16).float()
    centre = torch.randint(4, 28, (n, 1, 1, 1), generator=g).float()
    onset = torch.randint(0, 8, (n, 1, 1, 1), generator=g).float()
    return 0.8 * torch.exp(-(f - centre) ** 2 / 8) * (t >= onset)  # (n, 1, 32, 16)


def small(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": 3, "batch_size": 4, "device": "cpu", **kw})
