"""A harmonic start for mel -> linear: NNLS whose energy sits on the partials of a pitch.

Shapes throughout:

    magnitude   (B, n_stft, T)   linear STFT magnitude, n_stft = n_fft // 2 + 1
    power       (B, n_stft, T)   its square
    mel_power   (B, n_mels, T)   ``fb @ power`` (:meth:`AudioSpectrogram.mel_to_power`)
    f0          (B, T)           Hz

Why
---
Above a few kHz a mel band is wider than the spacing of a tone's partials, so the mel says how
much energy a band holds but not at which bins; NNLS
(:func:`sda_lab.representation.inversion.mel_to_linear`) spreads it smoothly, and spectral
convergence against the peaked truth stays high. The low bands are narrow enough to resolve the
partials, so the pitch can be read there and the unresolved bands' energy put where its partials
are:

1. ``f0`` per frame by subharmonic summation (Hermes 1988, "Measurement of pitch by subharmonic
   summation", JASA 83(1)) on the NNLS magnitude below ``f_max``: the candidate whose
   harmonics, weighted ``0.84 ** (h - 1)`` (the paper's compression), collect the most
   magnitude.
2. A comb ``exp(-d^2 / (2 sigma^2))`` of the distance ``d`` (bins) from each bin to its nearest
   harmonic of ``f0``, faded in from ``ramp[0]`` to ``ramp[1]`` Hz (below that the mel resolves
   the bins and NNLS is kept), normalised to mean 1 over frequency.
3. NNLS power times the comb as the start of Lee & Seung's (2001) multiplicative updates for
   ``min ||fb @ P - mel_power||^2, P >= 0``, which keep the start's zeros and shape while
   fitting the mel again.

It helps material with a pitch (a clarinet, a trumpet, an FM bell) and costs a little on
inharmonic or noisy material, so :class:`~sda_lab.representation.inverse_mel.InverseMelConfig`
``start="auto"`` keeps it only where it scores better on held-back training files. What it buys,
per material: ``benchmarks/bench_hearing.py`` and ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

__all__ = ["HarmonicConfig", "subharmonic_f0", "harmonic_comb", "multiplicative_nnls",
           "harmonic_power", "subharmonic_f0_core", "harmonic_comb_core",
           "multiplicative_nnls_steps"]


@dataclass(frozen=True)
class HarmonicConfig:
    """The harmonic start's settings (Hz, bins, iterations).

    Raises
    ------
    ValueError
        On ``f0_min`` not below ``f0_max``, non-positive sizes, or a ramp that does not rise.
    """

    f0_min: float = 40.0
    f0_max: float = 1500.0
    n_candidates: int = 240  # log-spaced f0 candidates
    n_harmonics: int = 20
    f_max: float = 5000.0  # harmonics summed below this (where the mel resolves them)
    sigma_bins: float = 0.8
    ramp: tuple[float, float] = (1000.0, 3000.0)
    harmonicity: tuple[float, float] = (2.0, 4.0)  # comb off below, full above (peak / mean score)
    iters: int = 50
    comb_floor: float = 1e-3

    def __post_init__(self) -> None:
        if not 0 < self.f0_min < self.f0_max:
            raise ValueError(f"need 0 < f0_min < f0_max, got {self.f0_min}, {self.f0_max}")
        for name in ("n_candidates", "n_harmonics", "iters"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not (self.sigma_bins > 0 and self.f_max > 0 and self.comb_floor > 0):
            raise ValueError(f"sigma_bins, f_max and comb_floor must be > 0, got "
                             f"{self.sigma_bins}, {self.f_max}, {self.comb_floor}")
        if not 0 <= self.ramp[0] < self.ramp[1]:
            raise ValueError(f"ramp must be (low, high) Hz with 0 <= low < high, got {self.ramp}")
        if not 1 <= self.harmonicity[0] < self.harmonicity[1]:
            raise ValueError(f"harmonicity must be (low, high) with 1 <= low < high, got "
                             f"{self.harmonicity}")


def subharmonic_f0(magnitude: torch.Tensor, sample_rate: int, n_fft: int,
                   config: HarmonicConfig = HarmonicConfig()
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame pitch ``(B, T)`` in Hz of ``magnitude (B, n_stft, T)`` by subharmonic
    summation, and its harmonicity ``(B, T)``: the best score over the mean score (1 for a
    flat spectrum, large for a clear pitch).

    Each of ``config.n_candidates`` log-spaced candidates in ``[f0_min, f0_max]`` scores
    ``sum_h 0.84 ** (h - 1) * |S|(h * f0)`` over ``h <= n_harmonics`` with ``h * f0 < f_max``
    (linear interpolation between bins); the best candidate wins (Hermes 1988).
    """
    return subharmonic_f0_core(magnitude, sample_rate, n_fft, config.f0_min, config.f0_max,
                               config.n_candidates, config.n_harmonics, config.f_max)


def subharmonic_f0_core(magnitude: torch.Tensor, sample_rate: int, n_fft: int, f0_min: float,
                        f0_max: float, n_candidates: int, n_harmonics: int, f_max: float
                        ) -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`subharmonic_f0` with the config's fields as arguments (TorchScript-able)."""
    b, n_stft, t = magnitude.shape[0], magnitude.shape[1], magnitude.shape[2]
    bin_hz = sample_rate / n_fft
    cand = torch.exp(torch.linspace(math.log(f0_min), math.log(f0_max), n_candidates,
                                    dtype=magnitude.dtype, device=magnitude.device))  # (C,)
    score = torch.zeros(b, n_candidates, t, dtype=magnitude.dtype,
                        device=magnitude.device)  # (B, C, T)
    for h in range(1, n_harmonics + 1):
        f = cand * h
        keep = (f < min(f_max, sample_rate / 2)).to(magnitude.dtype)  # (C,)
        pos = (f / bin_hz).clamp(max=n_stft - 2)
        i0 = pos.floor().long()
        w = (pos - i0)[None, :, None]  # (1, C, 1)
        at = magnitude[:, i0] * (1 - w) + magnitude[:, i0 + 1] * w  # (B, C, T)
        score += (0.84 ** (h - 1)) * keep[None, :, None] * at
    best, which = score.max(dim=1)  # (B, T) each
    return cand[which], best / score.mean(dim=1).clamp(min=1e-30)


def harmonic_comb(f0: torch.Tensor, n_stft: int, sample_rate: int, n_fft: int,
                  config: HarmonicConfig = HarmonicConfig(),
                  harmonicity: torch.Tensor | None = None) -> torch.Tensor:
    """Weights ``(B, n_stft, T)``: a Gaussian bump (``sigma_bins``) on every harmonic of
    ``f0 (B, T)``, normalised to mean 1 over frequency, faded in over ``config.ramp`` Hz (1
    below it) and, given ``harmonicity (B, T)``, over ``config.harmonicity`` (1 in frames
    without a clear pitch); floored at ``comb_floor``."""
    return harmonic_comb_core(f0, n_stft, sample_rate, n_fft, config.sigma_bins,
                              config.ramp[0], config.ramp[1], config.comb_floor, harmonicity,
                              config.harmonicity[0], config.harmonicity[1])


def harmonic_comb_core(f0: torch.Tensor, n_stft: int, sample_rate: int, n_fft: int,
                       sigma_bins: float, ramp_lo: float, ramp_hi: float, comb_floor: float,
                       harmonicity: Optional[torch.Tensor], harmonicity_lo: float,
                       harmonicity_hi: float) -> torch.Tensor:
    """:func:`harmonic_comb` with the config's fields as arguments (TorchScript-able)."""
    bin_hz = sample_rate / n_fft
    hz = torch.arange(n_stft, dtype=f0.dtype, device=f0.device) * bin_hz  # (F,)
    f0 = f0[:, None, :]  # (B, 1, T)
    d = (hz[None, :, None] - torch.round(hz[None, :, None] / f0).clamp(min=1) * f0) / bin_hz
    comb = torch.exp(-0.5 * (d / sigma_bins) ** 2)  # (B, F, T)
    comb = comb / comb.mean(dim=1, keepdim=True).clamp(min=1e-12)
    fade = ((hz - ramp_lo) / (ramp_hi - ramp_lo)).clamp(0, 1)[None, :, None]  # (1, F, 1)
    if harmonicity is not None:
        strength = ((harmonicity - harmonicity_lo) / (harmonicity_hi - harmonicity_lo))
        fade = fade * strength.clamp(0, 1)[:, None, :]  # (B, F, T)
    return (1 + fade * (comb - 1)).clamp(min=comb_floor)  # (B, F, T)


def multiplicative_nnls(fb: torch.Tensor, mel_power: torch.Tensor, start: torch.Tensor,
                        iters: int) -> torch.Tensor:
    """Lee & Seung's (2001) multiplicative updates ``P <- P * fb^T y / (fb^T fb P)`` for
    ``min ||fb @ P - y||^2, P >= 0``: ``fb (n_mels, n_stft)``, ``mel_power (B, n_mels, T)``,
    ``start (B, n_stft, T) >= 0`` -> ``(B, n_stft, T)``. Zeros of the start stay zero."""
    num = torch.einsum("mf,bmt->bft", fb, mel_power)  # (B, F, T)
    return multiplicative_nnls_steps(fb, num, start, iters)


def multiplicative_nnls_steps(fb: torch.Tensor, num: torch.Tensor, p: torch.Tensor,
                              iters: int) -> torch.Tensor:
    """``iters`` of :func:`multiplicative_nnls`'s updates from ``p`` ``(B, n_stft, T)``, given
    ``num = fb^T y`` ``(B, n_stft, T)``: so they can be split over calls (TorchScript-able)."""
    for _ in range(iters):
        fit = torch.einsum("mf,bft->bmt", fb, p)  # (B, M, T)
        p = p * num / torch.einsum("mf,bmt->bft", fb, fit).clamp(min=1e-30)  # (B, F, T)
    return p


def harmonic_power(spec, mel: torch.Tensor, nnls_power: torch.Tensor,
                   config: HarmonicConfig = HarmonicConfig()) -> torch.Tensor:
    """The harmonic start's linear power ``(B, n_stft, T)`` of a normalised mel
    ``(B, 1, n_mels, T)``, given its NNLS power ``(B, n_stft, T)`` (steps 1-3 above)."""
    c = spec.config
    f0, strength = subharmonic_f0(nnls_power.clamp(min=0).sqrt(), c.sample_rate, c.n_fft,
                                  config)  # (B, T) each
    comb = harmonic_comb(f0, nnls_power.shape[1], c.sample_rate, c.n_fft, config,
                         strength)  # (B, F, T)
    fb = spec.fb.to(nnls_power.device, nnls_power.dtype)  # (M, F)
    mel_power = spec.mel_to_power(mel).to(nnls_power.dtype)  # (B, M, T)
    return multiplicative_nnls(fb, mel_power, nnls_power.clamp(min=0) * comb, config.iters)
