"""Augmentation for small training sets: on the waveform (random gain, time shift, speed,
mixup of two clips) before the mel, and on the mel (SpecAugment's masks on the model's input,
a shift along the mel axis).

Applied by :func:`sda_lab.training.loop.train` to every training batch when ``TrainConfig.augment``
is set (off by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchaudio.functional as AF

__all__ = ["AugmentConfig", "augment_waveforms", "mixup_waveforms", "augment_mels",
           "SPEC_AUGMENT", "NO_WAVEFORM"]

# SpecAugment's masks as `python -m sda_lab train --spec-augment` sets them: up to 16 of 128 mel
# rows and 12 of 94 frames (1/8 of each axis, near Park et al.'s LibriSpeech F=27 of 80, T=100)
SPEC_AUGMENT = {"freq_mask": 16, "time_mask": 12}
NO_WAVEFORM = {"gain_db": 0.0, "max_shift_s": 0.0, "speed": 0.0}  # every waveform part off


@dataclass
class AugmentConfig:
    """Random waveform augmentation applied to every training batch before the mel.

    Each clip independently gets a gain, a time shift and a speed factor (all uniform/random,
    from a generator seeded by ``TrainConfig.seed``). Cheap: one resample per distinct speed
    factor per batch, no pitch shifter. The mel-domain parts (``freq_mask``, ``time_mask``,
    ``mel_shift``) and ``mixup`` are off by default; with every waveform part at 0 the
    precomputed mels are used and no mel is recomputed per batch.

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
    mixup : float
        Mixup (Zhang et al. 2018) on the waveform: with this probability a clip is replaced by
        ``lam * a + (1 - lam) * b``, ``b`` another clip of the batch, ``lam ~ U(0.3, 0.7)``; the
        mix is both input and target (an autoencoder has no labels to mix). 0 disables it.
    freq_mask, time_mask : int
        SpecAugment (Park et al. 2019): one band of up to ``freq_mask`` mel rows and one span of
        up to ``time_mask`` frames (widths uniform from 0) are set to 0 (silence) in the model's
        *input* only; the target stays whole, so the model learns to fill them in (a denoising
        autoencoder). 0 disables each.
    mel_shift : int
        A shift of the whole mel by up to ``mel_shift`` rows up or down (uniform, the gap
        filled with silence), input and target alike: a cheap pitch shift (the mel scale is
        near-logarithmic above 1 kHz). 0 disables it.
    """

    gain_db: float = 6.0
    max_shift_s: float = 0.05
    speed: float = 0.05
    mixup: float = 0.0
    freq_mask: int = 0
    time_mask: int = 0
    mel_shift: int = 0

    def __post_init__(self) -> None:
        if self.gain_db < 0 or self.max_shift_s < 0 or not 0 <= self.speed < 0.5:
            raise ValueError(f"AugmentConfig needs gain_db >= 0, max_shift_s >= 0 and "
                             f"0 <= speed < 0.5, got {self}")
        if not 0 <= self.mixup <= 1 or min(self.freq_mask, self.time_mask, self.mel_shift) < 0:
            raise ValueError(f"AugmentConfig needs 0 <= mixup <= 1 and freq_mask, time_mask, "
                             f"mel_shift >= 0, got {self}")

    @property
    def on_waveform(self) -> bool:
        """True when a part works on the waveform (so each batch needs a fresh mel)."""
        return bool(self.gain_db or self.max_shift_s or self.speed or self.mixup)


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


def mixup_waveforms(waves: torch.Tensor, p: float, generator: torch.Generator | None = None
                    ) -> torch.Tensor:
    """Mix each clip, with probability ``p``, with another of the batch: ``(B, 1, S)`` ->
    ``(B, 1, S)``, ``lam * a + (1 - lam) * b`` with ``lam ~ U(0.3, 0.7)`` (see
    :class:`AugmentConfig`); the peak stays <= 1 where both clips' peaks were."""
    b = waves.shape[0]
    if p <= 0 or b < 2:
        return waves
    dev = waves.device
    which = torch.rand(b, generator=generator) < p  # (B,)
    partner = (torch.arange(b) + torch.randint(1, b, (b,), generator=generator)) % b  # never self
    lam = 0.3 + 0.4 * torch.rand(b, generator=generator)  # (B,)
    lam = torch.where(which, lam, torch.ones(b)).to(dev).view(b, 1, 1)
    return lam * waves + (1 - lam) * waves[partner.to(dev)]  # (B, 1, S)


def augment_mels(mels: torch.Tensor, config: AugmentConfig,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The mel-domain parts of ``config`` on a batch ``(B, 1, n_mels, T)`` in [0, 1]:
    ``(inputs, targets)``, each ``(B, 1, n_mels, T)``. ``mel_shift`` moves both; the
    SpecAugment masks (``freq_mask``, ``time_mask``) zero parts of ``inputs`` only.
    Random draws come from ``generator`` (CPU)."""
    if mels.dim() != 4 or mels.shape[1] != 1:
        raise ValueError(f"mels must be (batch, 1, n_mels, frames), got {tuple(mels.shape)}")
    b, _, m, t = mels.shape
    dev = mels.device
    target = mels
    if config.mel_shift > 0:
        k = torch.randint(-config.mel_shift, config.mel_shift + 1, (b,), generator=generator)
        rows = torch.arange(m).view(1, m) - k.view(b, 1)  # (B, M): source row of each row
        valid = ((rows >= 0) & (rows < m)).to(dev).view(b, 1, m, 1)
        index = rows.clamp(0, m - 1).to(dev).view(b, 1, m, 1).expand(b, 1, m, t)
        target = torch.gather(mels, 2, index) * valid  # (B, 1, M, T), gap is silence
    inputs = target
    if config.freq_mask > 0 or config.time_mask > 0:
        keep = torch.ones(b, 1, m, t)
        for size, axis, n in ((config.freq_mask, 2, m), (config.time_mask, 3, t)):
            if size <= 0:
                continue
            width = torch.randint(0, min(size, n) + 1, (b,), generator=generator)  # (B,)
            start = (torch.rand(b, generator=generator) * (n - width + 1)).long()  # (B,)
            pos = torch.arange(n).view(1, n)
            band = (pos >= start.view(b, 1)) & (pos < (start + width).view(b, 1))  # (B, n)
            shape = (b, 1, n, 1) if axis == 2 else (b, 1, 1, n)
            keep = keep * (~band).float().view(shape)
        inputs = target * keep.to(dev)  # (B, 1, M, T)
    return inputs, target
