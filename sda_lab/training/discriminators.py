"""HiFi-GAN's discriminators and GAN losses (Kong, Kim & Bae 2020; github.com/jik876/hifi-gan
``models.py``), used by :mod:`sda_lab.training.vocoder`.

- **multi-period discriminator**: per period ``p`` in ``mpd_periods`` (2, 3, 5, 7, 11) the
  waveform ``(B, 1, L)`` is reflect-padded to a multiple of ``p`` and folded to
  ``(B, 1, L / p, p)``; 2-D convolutions with ``(5, 1)`` kernels, stride 3, then a ``(5, 1)``
  one, then a ``(3, 1)`` one to a single channel; weight normalisation, leaky ReLU 0.1;
- **multi-scale discriminator**: 1-D grouped convolutions on the waveform and on it average-pooled
  (kernel 4, stride 2) once and twice (``msd_scales``), spectral normalisation on the first
  scale, weight normalisation on the others;
- **losses**: least-squares GAN (discriminator ``(1 - D(y))^2 + D(G(x))^2``, generator
  ``(1 - D(G(x)))^2``) and feature matching (L1 between the discriminators' feature maps of
  real and generated audio).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

__all__ = ["PeriodDiscriminator", "MultiPeriodDiscriminator", "ScaleDiscriminator",
           "MultiScaleDiscriminator", "discriminator_loss", "generator_loss", "feature_loss"]

LRELU = 0.1


def _groups(groups: int, c_in: int, c_out: int) -> int:
    return math.gcd(groups, math.gcd(c_in, c_out))


class PeriodDiscriminator(nn.Module):
    """HiFi-GAN's ``DiscriminatorP``: ``(B, 1, L)`` -> ``(score (B, n), feature maps)``."""

    def __init__(self, period: int, channels: Sequence[int]) -> None:
        super().__init__()
        self.period = period
        widths = [1, *channels]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(widths[i], widths[i + 1], (5, 1),
                                  (3, 1) if i < len(channels) - 1 else 1, padding=(2, 0)))
            for i in range(len(channels)))
        self.conv_post = weight_norm(nn.Conv2d(widths[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, length = x.shape
        if length % self.period:
            pad = self.period - length % self.period
            x = nn.functional.pad(x, (0, pad), "reflect")  # (B, 1, L + pad)
            length += pad
        x = x.view(b, c, length // self.period, self.period)  # (B, 1, L / p, p)
        features = []
        for conv in self.convs:
            x = nn.functional.leaky_relu(conv(x), LRELU)  # (B, C, H, p)
            features.append(x)
        x = self.conv_post(x)  # (B, 1, H, p)
        features.append(x)
        return x.flatten(1), features  # (B, H * p)


class MultiPeriodDiscriminator(nn.Module):
    """One :class:`PeriodDiscriminator` per period; returns ``(scores, feature maps)`` lists."""

    def __init__(self, config: VocoderConfig) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, config.mpd_channels)
                                            for p in config.mpd_periods)

    def forward(self, x: torch.Tensor):
        out = [d(x) for d in self.discriminators]
        return [s for s, _ in out], [f for _, f in out]


# HiFi-GAN's DiscriminatorS: (kernel, stride, groups, padding) of each convolution
_SCALE_LAYERS = ((15, 1, 1, 7), (41, 2, 4, 20), (41, 2, 16, 20), (41, 4, 16, 20),
                 (41, 4, 16, 20), (41, 1, 16, 20), (5, 1, 1, 2))


class ScaleDiscriminator(nn.Module):
    """HiFi-GAN's ``DiscriminatorS`` with ``len(channels)`` convolutions (its first
    ``len(channels)`` layer shapes, the last one's kernel 5): ``(B, 1, L)`` -> ``(score, maps)``."""

    def __init__(self, channels: Sequence[int], spectral: bool = False) -> None:
        super().__init__()
        norm = spectral_norm if spectral else weight_norm
        widths = [1, *channels]
        layers = [*_SCALE_LAYERS[:len(channels) - 1], _SCALE_LAYERS[-1]]
        self.convs = nn.ModuleList(
            norm(nn.Conv1d(widths[i], widths[i + 1], k, s,
                           groups=_groups(g, widths[i], widths[i + 1]), padding=p))
            for i, (k, s, g, p) in enumerate(layers))
        self.conv_post = norm(nn.Conv1d(widths[-1], 1, 3, 1, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for conv in self.convs:
            x = nn.functional.leaky_relu(conv(x), LRELU)  # (B, C, L')
            features.append(x)
        x = self.conv_post(x)  # (B, 1, L')
        features.append(x)
        return x.flatten(1), features


class MultiScaleDiscriminator(nn.Module):
    """``msd_scales`` :class:`ScaleDiscriminator`, the first with spectral normalisation, each
    after one more average pooling (kernel 4, stride 2, padding 2)."""

    def __init__(self, config: VocoderConfig) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(ScaleDiscriminator(config.msd_channels, i == 0)
                                            for i in range(config.msd_scales))
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, x: torch.Tensor):
        scores, features = [], []
        for i, d in enumerate(self.discriminators):
            if i:
                x = self.pool(x)  # (B, 1, L / 2^i)
            s, f = d(x)
            scores.append(s)
            features.append(f)
        return scores, features


def discriminator_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN: sum over discriminators of ``mean((1 - D(y))^2) + mean(D(G(x))^2)``."""
    return sum(torch.mean((1 - r) ** 2) + torch.mean(f ** 2) for r, f in zip(real, fake))


def generator_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN: sum over discriminators of ``mean((1 - D(G(x)))^2)``."""
    return sum(torch.mean((1 - f) ** 2) for f in fake)


def feature_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """Feature matching: sum over discriminators and layers of ``mean|map(y) - map(G(x))|``
    (the real maps detached)."""
    return sum(torch.mean(torch.abs(r.detach() - f))
               for rs, fs in zip(real, fake) for r, f in zip(rs, fs))
