import pytest
import torch

from sda_lab.representation.metrics import (log_spectral_distance, mel_consistency,
                                            spectral_convergence)

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


# -- mel consistency ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def five_clips():
    from sda_lab.data import make_default_dataset

    return make_default_dataset(1).waveforms  # (5, 1, 48000), one of each kind


def test_mel_consistency_is_zero_for_the_audio_itself(spec, five_clips):
    mel = spec.waveform_to_mel(five_clips)
    c = mel_consistency(spec, mel, waveform=five_clips)
    assert c.shape == (5,)
    assert float(c.max()) < 1e-5


def test_true_mels_are_more_consistent_than_impossible_ones(spec, five_clips):
    mel = spec.waveform_to_mel(five_clips)  # (5, 1, 128, 94)
    g = torch.Generator().manual_seed(0)
    random = torch.rand(mel.shape, generator=g) * mel.max()  # no audio has this mel
    shuffled = mel[..., torch.randperm(mel.shape[-1], generator=g)]  # frames out of order
    true = mel_consistency(spec, mel)
    # measured: true 0.09, random 0.53, shuffled 0.41 (means over the five kinds)
    assert float(true.mean()) < 0.5 * float(mel_consistency(spec, random).mean())
    assert float(true.mean()) < 0.7 * float(mel_consistency(spec, shuffled).mean())


def test_default_inversion_is_more_consistent_than_lstsq(spec, five_clips):
    mel = spec.waveform_to_mel(five_clips)
    torch.manual_seed(0)
    ours = float(mel_consistency(spec, mel).mean())
    torch.manual_seed(0)
    lstsq = float(mel_consistency(spec, mel, method="lstsq").mean())
    assert ours < 0.8 * lstsq  # measured 0.09 vs 0.18


def test_mel_consistency_checks(spec):
    with pytest.raises(ValueError, match=r"4 frames; mel_consistency needs at least 5"):
        mel_consistency(spec, torch.full((1, 1, 128, 4), 0.3))
    with pytest.raises(ValueError, match=r"expected \(1, 1, 128, 10\)"):
        mel_consistency(spec, torch.full((1, 1, 128, 10), 0.3), waveform=sine())
    with pytest.raises(ValueError, match="128 mel bands"):
        mel_consistency(spec, torch.zeros(1, 1, 64, 10))
