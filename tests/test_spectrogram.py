import math

import librosa
import numpy as np
import pytest
import torch

from sda_lab.spectrogram import SpectrogramConfig
from sda_lab.metrics import spectral_convergence

from .conftest import sine


def test_defaults_are_the_seeds():
    c = SpectrogramConfig()
    assert (c.sample_rate, c.n_fft, c.hop_length, c.n_mels, c.f_min, c.power) == (
        48_000, 2048, 512, 128, 0.0, 2.0)
    assert c.f_max == 24_000
    assert c.griffin_lim_iters == 64


def test_seed_task1_verify_script(spec):
    """The seed plan's Task 1 verify script, with sda_lab's module path."""
    waveform = torch.randn(2, 1, 48000)
    mel = spec.waveform_to_mel(waveform)
    assert mel.shape[0] == 2 and mel.shape[1] == 1 and mel.shape[2] == 128
    waveform_back = spec.mel_to_waveform(mel)
    assert waveform_back.shape[0] == 2 and waveform_back.shape[1] == 1
    assert spec.get_mel_shape(48000) == (128, 94)


def test_shapes_and_length(spec):
    x = torch.rand(3, 1, 48_000) - 0.5
    mel = spec.waveform_to_mel(x)
    assert mel.shape == (3, 1, 128, 94)
    assert spec.mel_to_waveform(mel).shape == (3, 1, 47_616)  # GriffinLim's natural length
    assert spec.mel_to_waveform(mel, length=48_000).shape == (3, 1, 48_000)
    assert spec.round_trip(x).shape == x.shape
    for n in (2048, 10_000, 24_000):
        assert spec.waveform_to_mel(x[..., :n]).shape[-2:] == spec.get_mel_shape(n)


def test_transforms_built_once(spec):
    mel_fb = spec.mel_transform.mel_scale.fb
    spec.waveform_to_mel(sine())
    assert spec.mel_transform.mel_scale.fb is mel_fb


def test_dtype_and_device_follow_input(spec):
    x = sine().double()
    mel = spec.waveform_to_mel(x)
    assert mel.dtype == torch.float64
    y = spec.mel_to_waveform(mel, length=x.shape[-1])
    assert y.dtype == torch.float64 and y.device == x.device


def test_log_scale_is_the_parseval_bound(spec):
    window = torch.hann_window(2048)
    assert spec.log_scale == pytest.approx(math.log1p(2048 * float(window.pow(2).sum())))
    assert spec.log_scale == pytest.approx(math.log1p(2048 * 768))


def test_seed_log1p_exceeds_sigmoid_range_but_ours_does_not(spec):
    """The seed's log1p(mel) of a 0.5-amplitude sine peaks near 10.9; ours stays in [0, 1]."""
    x = sine(amp=0.5)
    raw = torch.log1p(spec.mel_transform(x.squeeze(1)))
    assert 10.5 < float(raw.max()) < 11.5
    mel = spec.waveform_to_mel(x)
    assert float(mel.max()) == pytest.approx(float(raw.max()) / spec.log_scale, rel=1e-5)
    assert 0.0 <= float(mel.min()) and float(mel.max()) <= 1.0


@pytest.mark.parametrize("kind", ["sine", "square", "dc", "noise", "clipped", "impulses", "chirp"])
def test_full_scale_audio_stays_within_decoder_range(spec, kind):
    n = 48_000
    t = torch.arange(n) / n
    g = torch.Generator().manual_seed(1)
    signals = {
        "sine": torch.sin(2 * torch.pi * 1000 * t),
        "square": torch.sign(torch.sin(2 * torch.pi * 100 * t)),
        "dc": torch.ones(n),
        "noise": torch.rand(n, generator=g) * 2 - 1,
        "clipped": (5 * torch.randn(n, generator=g)).clamp(-1, 1),
        "impulses": (torch.arange(n) % 512 == 0).float(),
        "chirp": torch.sin(2 * torch.pi * (20 + 12_000 * t) * t),
    }
    mel = spec.waveform_to_mel(signals[kind].view(1, 1, n))
    assert float(mel.min()) >= 0.0
    assert float(mel.max()) <= 1.0
    if kind in ("sine", "square", "dc", "chirp"):
        # concentrated full-scale energy reaches near the top: the bound is not loose by much
        assert float(mel.max()) > 0.75


def test_normalisation_inverts_exactly(spec):
    x = sine(amp=0.3)
    power = spec.mel_transform(x.squeeze(1))
    back = spec.mel_to_power(spec.waveform_to_mel(x))
    torch.testing.assert_close(back, power, rtol=1e-4, atol=1e-6)


def test_mel_matches_librosa(spec):
    """Our forward mel is librosa's HTK mel of the same audio (same filterbank, same STFT)."""
    x = sine(freq=330.0, amp=0.5)
    ours = spec.mel_to_power(spec.waveform_to_mel(x))[0].numpy()
    ref = librosa.feature.melspectrogram(
        y=x[0, 0].numpy(), sr=48_000, n_fft=2048, hop_length=512, n_mels=128, htk=True,
        norm=None, pad_mode="reflect")
    np.testing.assert_allclose(ours, ref, rtol=2e-3, atol=1e-2 * ref.max() * 1e-3)


def test_round_trip_quality_on_a_tone(spec):
    """A steady harmonic tone comes back with spectral convergence well under 0.3."""
    n = 48_000
    t = torch.arange(n) / n
    x = sum(0.2 / k * torch.sin(2 * torch.pi * 220 * k * t) for k in range(1, 6)).view(1, 1, n)
    y = spec.round_trip(x)
    assert float(spectral_convergence(x, y)) < 0.3


def test_inverse_mel_runs_on_cpu(spec):
    mel = spec.waveform_to_mel(sine())
    assert spec.inverse_mel.fb.device.type == "cpu"
    assert spec.mel_to_linear(mel).device.type == "cpu"


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.zeros(48_000), r"shape \(batch, 1, samples\).*rank 1"),
        (torch.zeros(1, 2, 48_000), r"mono.*2 channels.*mix down"),
        (torch.zeros(1, 1, 48_000, dtype=torch.int16), r"floating dtype.*int16"),
        (torch.full((1, 1, 48_000), float("nan")), r"non-finite.*48000 NaN"),
        (torch.zeros(0, 1, 48_000), r"empty"),
        (torch.zeros(1, 1, 1000), r"1000 samples, fewer than one FFT window \(2048\)"),
    ],
)
def test_bad_waveforms_get_clear_errors(spec, bad, match):
    with pytest.raises(ValueError, match=match):
        spec.waveform_to_mel(bad)


def test_bad_mels_get_clear_errors(spec):
    with pytest.raises(ValueError, match=r"128 mel bands, got 64"):
        spec.mel_to_waveform(torch.zeros(1, 1, 64, 94))
    with pytest.raises(ValueError, match=r"shape \(batch, 1, 128, frames\)"):
        spec.mel_to_waveform(torch.zeros(128, 94))
    with pytest.raises(ValueError, match="non-finite"):
        spec.mel_to_waveform(torch.full((1, 1, 128, 94), float("inf")))
    with pytest.raises(ValueError, match="length must be a positive"):
        spec.mel_to_waveform(torch.zeros(1, 1, 128, 94), length=0)
    with pytest.raises(TypeError, match="torch.Tensor"):
        spec.waveform_to_mel(np.zeros((1, 1, 48_000)))


def test_bad_config():
    with pytest.raises(ValueError, match="hop_length"):
        SpectrogramConfig(hop_length=4096)
    with pytest.raises(ValueError, match="f_max"):
        SpectrogramConfig(f_max=30_000)


def test_nnls_refinement_is_nonnegative_and_fits_better(spec):
    n = 48_000
    t = torch.arange(n) / n
    x = (0.3 * torch.sin(2 * torch.pi * 330 * t) + 0.05 * torch.randn(n)).view(1, 1, n)
    mel = spec.waveform_to_mel(x)
    target = spec.mel_to_power(mel)  # (1, 128, 94)
    seed_estimate = spec.mel_to_linear(mel)  # least squares + ReLU
    refined = spec.mel_to_linear(mel, nnls_iters=200)
    assert float(refined.min()) >= 0.0

    def residual(s):
        return float((spec._fb @ s - target).norm())

    assert residual(refined) < 0.8 * residual(seed_estimate)


def test_quality_inversion_beats_the_seed_path(spec):
    n = 48_000
    t = torch.arange(n) / n
    x = sum(0.15 / k * torch.sin(2 * torch.pi * 196 * k * t) for k in range(1, 8)).view(1, 1, n)
    mel = spec.waveform_to_mel(x)
    torch.manual_seed(0)
    plain = spec.mel_to_waveform(mel, length=n)
    torch.manual_seed(0)
    better = spec.mel_to_waveform(mel, length=n, quality=True)
    assert better.shape == plain.shape == x.shape
    assert float(spectral_convergence(x, better)) < float(spectral_convergence(x, plain))
