import pytest
import torch

from sda_lab.metrics import log_spectral_distance, spectral_convergence

from .conftest import sine


def test_identical_signals_score_zero():
    x = sine()
    assert float(spectral_convergence(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(log_spectral_distance(x, x)) == pytest.approx(0.0, abs=1e-4)


def test_silence_estimate_has_convergence_one():
    x = sine()
    assert float(spectral_convergence(x, torch.zeros_like(x))) == pytest.approx(1.0, abs=1e-6)


def test_metrics_ignore_phase_but_not_magnitude():
    n = 48_000
    t = torch.arange(n) / n
    fade = torch.hann_window(n, periodic=False)  # keeps the clip edges out of it
    x = (fade * torch.sin(2 * torch.pi * 440 * t)).view(1, 1, n)
    shifted = (fade * torch.cos(2 * torch.pi * 440 * t)).view(1, 1, n)  # same magnitudes
    louder = 2 * x
    assert float(spectral_convergence(x, shifted)) < 0.02
    assert float(spectral_convergence(x, louder)) == pytest.approx(1.0, rel=1e-4)
    noise = torch.randn(1, 1, n) * 0.1  # energy in every bin, so no bin sits at the floor
    assert float(log_spectral_distance(noise, 2 * noise)) == pytest.approx(6.0206, rel=1e-3)


def test_per_clip_and_checks():
    x = torch.randn(3, 1, 8000) * 0.1
    assert spectral_convergence(x, x * 0.5).shape == (3,)
    with pytest.raises(ValueError, match="batch sizes differ"):
        spectral_convergence(x, x[:2])
    with pytest.raises(ValueError, match="mono"):
        spectral_convergence(x.expand(3, 2, 8000), x)
