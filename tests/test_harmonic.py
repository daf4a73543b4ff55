"""The harmonic start (sda_lab.representation.harmonic): pitch by subharmonic summation, the comb,
the multiplicative NNLS, and what it buys on a tone against NNLS."""

import math

import pytest
import torch

from sda_lab.representation.harmonic import (HarmonicConfig, harmonic_comb, harmonic_power,
                                             multiplicative_nnls, subharmonic_f0)
from sda_lab.representation.inverse_mel import stft_magnitude
from sda_lab.training.recipes import OWN_AUDIO_RECIPE

SPEC = OWN_AUDIO_RECIPE.audio_spectrogram("db")  # 48 kHz, n_fft 2048, 128 mel bands
SR = SPEC.config.sample_rate


def sawtooth(f0: float, seconds: float = 0.5) -> torch.Tensor:
    """A band-limited sawtooth (every harmonic below 20 kHz, amplitude 1/h): (1, 1, samples)."""
    t = torch.arange(int(SR * seconds), dtype=torch.float64) / SR
    h = torch.arange(1, int(20_000 // f0) + 1, dtype=torch.float64)
    x = (torch.sin(2 * math.pi * f0 * h[:, None] * t) / h[:, None]).sum(0)
    return (0.3 * x / x.abs().max()).float().view(1, 1, -1)


def sc(target, estimate):
    return float((target - estimate).norm() / target.norm())


@pytest.mark.parametrize("f0", [110.0, 233.0, 440.0])
def test_subharmonic_summation_finds_the_pitch_of_a_tone(f0):
    mag = stft_magnitude(SPEC, sawtooth(f0))  # (1, F, T)
    est, strength = subharmonic_f0(mag, SR, SPEC.config.n_fft)
    assert est.shape == strength.shape == (1, mag.shape[-1])
    inner = est[0, 2:-2]  # away from the padded edges
    assert ((inner / f0 - 1).abs() < 0.03).float().mean() > 0.9, inner


def test_a_tone_is_more_harmonic_than_noise():
    tone = stft_magnitude(SPEC, sawtooth(196.0))
    noise = stft_magnitude(SPEC, 0.1 * torch.randn(1, 1, SR // 2, generator=torch.Generator()
                                                   .manual_seed(0)))
    _, h_tone = subharmonic_f0(tone, SR, SPEC.config.n_fft)
    _, h_noise = subharmonic_f0(noise, SR, SPEC.config.n_fft)
    lo, _ = HarmonicConfig().harmonicity
    assert h_noise.median() < lo < 2 * h_noise.median() < h_tone.median(), (h_tone.median(),
                                                                           h_noise.median())


def test_comb_peaks_on_the_harmonics_and_is_flat_below_the_ramp():
    c = HarmonicConfig()
    f0 = torch.full((1, 3), 300.0)
    comb = harmonic_comb(f0, SPEC.config.n_stft, SR, SPEC.config.n_fft, c)  # (1, F, 3)
    bin_hz = SR / SPEC.config.n_fft
    hz = torch.arange(SPEC.config.n_stft) * bin_hz
    assert torch.allclose(comb[0, hz < c.ramp[0]], torch.ones(1))  # NNLS kept where resolved
    on = comb[0, round(6000 / bin_hz), 0]  # 6 kHz is the 20th harmonic of 300 Hz
    off = comb[0, round(6150 / bin_hz), 0]  # half-way to the next one
    assert on > 5 * off
    flat = harmonic_comb(f0, SPEC.config.n_stft, SR, SPEC.config.n_fft, c,
                         harmonicity=torch.full((1, 3), 1.5))  # below the gate: no comb
    assert torch.allclose(flat, torch.ones_like(flat))


def test_multiplicative_nnls_fits_the_mel_and_keeps_zeros():
    x = sawtooth(150.0)
    mel = SPEC.waveform_to_mel(x)
    y = SPEC.mel_to_power(mel).double()  # (1, M, T)
    fb = SPEC.fb.double()
    start = torch.rand(1, fb.shape[1], y.shape[-1], dtype=torch.float64,
                       generator=torch.Generator().manual_seed(0))
    start[:, ::7] = 0
    out = multiplicative_nnls(fb, y, start, 50)
    def residual(p): return float((torch.einsum("mf,bft->bmt", fb, p) - y).norm() / y.norm())
    assert residual(out) < 0.5 * residual(start)
    assert (out[:, ::7] == 0).all() and (out >= 0).all()


def test_harmonic_start_beats_nnls_on_a_bright_tone_and_leaves_noise_alone():
    x = torch.cat([sawtooth(f) for f in (131.0, 175.0, 262.0)])  # (3, 1, samples)
    mel = SPEC.waveform_to_mel(x)
    target = stft_magnitude(SPEC, x)
    nnls = SPEC.mel_to_linear(mel, 100).clamp(min=0)  # (3, F, T) power
    harm = harmonic_power(SPEC, mel, nnls)
    assert sc(target, harm.sqrt()) < 0.85 * sc(target, nnls.sqrt())
    noise = 0.1 * torch.randn(2, 1, SR // 2, generator=torch.Generator().manual_seed(1))
    mel = SPEC.waveform_to_mel(noise)
    target = stft_magnitude(SPEC, noise)
    nnls = SPEC.mel_to_linear(mel, 100).clamp(min=0)
    assert abs(sc(target, harmonic_power(SPEC, mel, nnls).sqrt())
               - sc(target, nnls.sqrt())) < 0.02


@pytest.mark.parametrize("kwargs, message", [
    ({"f0_min": 500.0, "f0_max": 100.0}, "f0_min < f0_max"),
    ({"n_harmonics": 0}, "n_harmonics must be a positive integer"),
    ({"sigma_bins": 0.0}, "must be > 0"),
    ({"ramp": (3000.0, 1000.0)}, "ramp must be"),
    ({"harmonicity": (0.5, 2.0)}, "harmonicity must be"),
])
def test_bad_config_is_one_clear_line(kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        HarmonicConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_compare_starts_scores_both_starts_on_the_same_clips():
    from sda_lab.studies.evaluate import compare_starts

    x = torch.cat([sawtooth(f, 0.25) for f in (131.0, 262.0)])
    row = compare_starts(SPEC, x, seed=0)
    assert set(row) == {"NNLS floor", "harmonic floor", "NNLS + PGHI + fast GL",
                        "harmonic + PGHI + fast GL", "clips where harmonic wins"}
    assert row["harmonic floor"] < row["NNLS floor"]
    assert 0 <= row["clips where harmonic wins"] <= 1
    with pytest.raises(ValueError, match="waveforms"):
        compare_starts(SPEC, x[:, 0])
