"""PGHI initial phase and fast Griffin-Lim (sda_lab.representation.phase)."""

import math

import pytest
import torch

from sda_lab.representation.metrics import spectral_convergence
from sda_lab.representation.phase import griffin_lim, pghi_phase

N_FFT, HOP, SR = 1024, 256, 16_000
N = SR // 2  # half a second keeps the tests quick


def chirp(seed: int) -> torch.Tensor:
    """A tonal example: a linear chirp whose start frequency depends on ``seed``."""
    t = torch.arange(N) / SR
    f0 = 200.0 + 50 * seed
    return 0.5 * torch.sin(2 * math.pi * (f0 * t + 0.5 * 3000 * t ** 2))  # (N,)


def clicks(seed: int) -> torch.Tensor:
    """A percussive example: short noise bursts every 50 ms."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(N)
    for start in range(100, N - 200, SR // 20):
        x[start:start + 30] = 0.8 * torch.randn(30, generator=g)
    return x  # (N,)


def magnitude(x: torch.Tensor) -> torch.Tensor:
    window = torch.hann_window(N_FFT)
    return torch.stft(x, N_FFT, HOP, window=window, return_complex=True).abs()  # (B, F, T)


@pytest.mark.parametrize("make", [chirp, clicks], ids=["tonal chirp", "percussive clicks"])
@pytest.mark.parametrize("n_iter", [0, 8])
def test_pghi_start_beats_random_and_zero_phase_from_the_true_magnitude(make, n_iter):
    for seed in range(3):
        x = make(seed)[None]  # (1, N)
        mag = magnitude(x)  # (1, F, T)
        scores = {}
        for init in ("pghi", "random", "zero"):
            y = griffin_lim(mag, N_FFT, HOP, n_iter, init=init, length=N,
                            generator=torch.Generator().manual_seed(seed))  # (1, N)
            scores[init] = float(spectral_convergence(x[:, None], y[:, None], N_FFT, HOP))
        assert scores["pghi"] < scores["random"], (seed, scores)
        assert scores["pghi"] < scores["zero"], (seed, scores)


def test_pghi_alone_recovers_most_of_a_chirp():
    """Without any Griffin-Lim iteration the integrated phase already fits a tonal signal."""
    x = chirp(0)[None]
    y = griffin_lim(magnitude(x), N_FFT, HOP, 0, init="pghi", length=N)
    assert float(spectral_convergence(x[:, None], y[:, None], N_FFT, HOP)) < 0.2


def test_true_phase_as_init_is_kept_and_shapes_follow_the_batch():
    x = torch.stack([chirp(1), clicks(1)])  # (2, N)
    spec = torch.stft(x, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)
    y = griffin_lim(spec.abs(), N_FFT, HOP, 0, init=spec.angle(), length=N)  # (2, N)
    assert y.shape == (2, N)
    assert torch.allclose(y, x, atol=1e-4)
    phase = pghi_phase(spec.abs(), N_FFT, HOP)
    assert phase.shape == spec.shape and phase.dtype == torch.float32


def test_silence_gets_a_finite_phase():
    phase = pghi_phase(torch.zeros(1, N_FFT // 2 + 1, 10), N_FFT, HOP)
    assert torch.isfinite(phase).all()


@pytest.mark.parametrize("bad, message", [
    (torch.ones(1, 100, 10), "shape"),
    (-torch.ones(1, N_FFT // 2 + 1, 10), ">= 0"),
    (torch.full((1, N_FFT // 2 + 1, 10), float("nan")), "non-finite"),
    (torch.ones(1, N_FFT // 2 + 1, 10, dtype=torch.int64), "floating"),
])
def test_bad_magnitude_is_one_clear_line(bad, message):
    with pytest.raises(ValueError, match=message) as info:
        griffin_lim(bad, N_FFT, HOP, 1)
    assert "\n" not in str(info.value)


def test_bad_init_and_options_are_named():
    mag = torch.ones(1, N_FFT // 2 + 1, 10)
    with pytest.raises(ValueError, match="init must be one of"):
        griffin_lim(mag, N_FFT, HOP, 1, init="onsets")
    with pytest.raises(ValueError, match="init phase must have"):
        griffin_lim(mag, N_FFT, HOP, 1, init=torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match="momentum"):
        griffin_lim(mag, N_FFT, HOP, 1, momentum=1.0)
    with pytest.raises(TypeError, match="torch.Tensor"):
        pghi_phase(mag.numpy(), N_FFT, HOP)
