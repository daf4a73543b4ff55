"""Waveform augmentation for small training sets: random gain, time shift and speed.

Applied by :func:`sda_lab.train.train` to every training batch before the mel when
``TrainConfig.augment`` is set (off by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchaudio.functional as AF

__all__ = ["AugmentConfig", "augment_waveforms"]


@dataclass
class AugmentConfig:
    """Random waveform augmentation applied to every training batch before the mel.

    Each clip independently gets a gain, a time shift and a speed factor (all uniform/random,
    from a generator seeded by ``TrainConfig.seed``). Cheap: one resample per distinct speed
    factor per batch, no pitch shifter.

    Attributes
    ----------
    gain_db : float
        Gain drawn uniformly from ``[-gain_db, +gain_db]`` dB, then lowered where needed so the
        clip's peak stays <= 1 (the representation's full scale).
    max_shift_s : float
        Shift drawn uniformly from ``[-max_shift_s, +max_shift_s]`` seconds; the gap is filled
        with silence (no wrap-around).
    speed : float
        Speed factor drawn from ``{1 - speed, 1, 1 + speed}`` (resampling, so pitch and tempo
        change together, Ko et al. 2015, *Audio augmentation for speech recognition*); the
        result is cropped or zero-padded to the clip length. 0 disables it.
    """

    gain_db: float = 6.0
    max_shift_s: float = 0.05
    speed: float = 0.05

    def __post_init__(self) -> None:
        if self.gain_db < 0 or self.max_shift_s < 0 or not 0 <= self.speed < 0.5:
            raise ValueError(f"AugmentConfig needs gain_db >= 0, max_shift_s >= 0 and "
                             f"0 <= speed < 0.5, got {self}")


def augment_waveforms(waves: torch.Tensor, config: AugmentConfig, sample_rate: int,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Randomly gain, shift and speed-perturb a batch of clips: ``(B, 1, S)`` -> ``(B, 1, S)``.

    See :class:`AugmentConfig`. Random draws come from ``generator`` (CPU); the work runs on the
    input's device.
    """
    if waves.dim() != 3 or waves.shape[1] != 1:
        raise ValueError(f"waves must be (batch, 1, samples), got {tuple(waves.shape)}")
    b, _, s = waves.shape
    dev = waves.device
    out = waves
    if config.speed > 0:
        choice = torch.randint(0, 3, (b,), generator=generator)  # 0: slower, 1: same, 2: faster
        parts = out.clone()
        for k, factor in ((0, 1 - config.speed), (2, 1 + config.speed)):
            idx = (choice == k).nonzero().flatten().to(dev)
            if idx.numel() == 0:
                continue
            # playing samples recorded at orig_freq back at 100 changes speed by orig_freq/100
            y = AF.resample(out[idx, 0], orig_freq=round(100 * factor), new_freq=100)  # (n, S')
            y = y[:, :s] if y.shape[1] >= s else F.pad(y, (0, s - y.shape[1]))  # (n, S)
            parts[idx, 0] = y
        out = parts
    if config.max_shift_s > 0:
        max_shift = int(round(config.max_shift_s * sample_rate))
        shifts = torch.randint(-max_shift, max_shift + 1, (b,), generator=generator).tolist()
        shifted = torch.zeros_like(out)  # (B, 1, S)
        for i, k in enumerate(shifts):
            if k >= 0:
                shifted[i, :, k:] = out[i, :, :s - k]
            else:
                shifted[i, :, :s + k] = out[i, :, -k:]
        out = shifted
    if config.gain_db > 0:
        db = (torch.rand(b, generator=generator) * 2 - 1) * config.gain_db  # (B,)
        gain = (10 ** (db / 20)).to(dev)
        peak = out.abs().amax(dim=(1, 2)).clamp(min=1e-9)  # (B,)
        gain = torch.minimum(gain, 1.0 / peak)
        out = out * gain.view(b, 1, 1)  # (B, 1, S)
    return out
