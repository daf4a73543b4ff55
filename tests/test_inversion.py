import numpy as np
import pytest
import torch
import torchaudio.functional as AF
import torchaudio.transforms as T

from sda_lab.representation.inversion import (INVERSION_METHODS, fb_pseudo_inverse, griffin_lim,
                                              mel_to_linear, nnls_step)
from sda_lab.representation.metrics import spectral_convergence
from sda_lab.representation.spectrogram import SpectrogramConfig

from .conftest import sine


def test_methods_are_named_by_algorithm():
    assert INVERSION_METHODS == ("nnls", "lstsq", "nnls_long")
    assert SpectrogramConfig().inversion == "nnls"


def test_nnls_refinement_is_nonnegative_and_fits_better(spec):
    n = 48_000
    t = torch.arange(n) / n
    x = (0.3 * torch.sin(2 * torch.pi * 330 * t) + 0.05 * torch.randn(n)).view(1, 1, n)
    mel = spec.waveform_to_mel(x)
    target = spec.mel_to_power(mel)  # (1, 128, 94)
    start = spec.mel_to_linear(mel)  # clipped least squares
    refined = spec.mel_to_linear(mel, nnls_iters=200)
    assert float(refined.min()) >= 0.0

    def residual(s):
        return float((spec.fb @ s - target).norm())

    assert residual(refined) < 0.8 * residual(start)


def test_lstsq_is_torchaudios_inverse_mel_scale(spec):
    """method="lstsq" is the reference plan's InverseMelScale, number for number."""
    x = sine(amp=0.3) + 0.01 * torch.randn(1, 1, 48_000)
    power = spec.mel_to_power(spec.waveform_to_mel(x))  # (1, 128, 94)
    ref = T.InverseMelScale(n_stft=1025, n_mels=128, sample_rate=48_000)(power)
    ours = mel_to_linear(power, fb=spec.fb, method="lstsq")
    torch.testing.assert_close(ours, ref)


def test_pinv_start_is_the_least_squares_answer(spec):
    x = sine(amp=0.3) + 0.01 * torch.randn(1, 1, 48_000)
    mel = spec.waveform_to_mel(x)
    ours, lstsq = spec.mel_to_linear(mel), spec.mel_to_linear(mel, method="lstsq")
    torch.testing.assert_close(ours, lstsq, rtol=1e-3, atol=1e-4 * float(lstsq.max()))


def test_mel_to_linear_by_keyword_on_any_leading_shape(spec):
    power = spec.mel_to_power(spec.waveform_to_mel(sine(amp=0.3)[..., :8192]))  # (1, 128, 17)
    batched = power.expand(2, 3, 128, 17)  # (2, 3, 128, 17)
    out = mel_to_linear(batched, fb=spec.fb, nnls_iters=5)  # pinv and step computed here
    assert out.shape == (2, 3, 1025, 17)
    same = mel_to_linear(power, fb=spec.fb, nnls_iters=5, pinv=spec.fb_pinv, step=spec.nnls_step)
    torch.testing.assert_close(out[1, 2], same[0], rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(spec.fb_pinv, fb_pseudo_inverse(spec.fb))
    torch.testing.assert_close(spec.nnls_step, nnls_step(spec.fb))
    with pytest.raises(TypeError):
        mel_to_linear(power, spec.fb)  # fb is keyword-only
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 128, frames\).*\(1, 64, 17\)"):
        mel_to_linear(power[:, :64], fb=spec.fb)
    with pytest.raises(ValueError, match="nnls_iters applies to method='nnls' only"):
        mel_to_linear(power, fb=spec.fb, method="lstsq", nnls_iters=5)
    with pytest.raises(ValueError, match=r"method must be one of \('nnls', 'lstsq'\)"):
        mel_to_linear(power, fb=spec.fb, method="nnls_long")


def test_griffin_lim_is_torchaudios_for_the_same_random_state():
    x = sine(amp=0.3)[0, :, :12_288]  # (1, 12288)
    window = torch.hann_window(2048)
    power = torch.stft(x, 2048, 512, window=window, return_complex=True).abs().pow(2)
    torch.manual_seed(3)
    ref = AF.griffinlim(power, window, 2048, 512, 2048, 2.0, 8, 0.99, 12_288, True)
    torch.manual_seed(3)
    ours = griffin_lim(power, n_fft=2048, hop_length=512, n_iter=8, length=12_288)
    torch.testing.assert_close(ours, ref)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    torch.testing.assert_close(griffin_lim(power, n_fft=2048, hop_length=512, n_iter=2,
                                           generator=g1),
                               griffin_lim(power, n_fft=2048, hop_length=512, n_iter=2,
                                           generator=g2))


def test_griffin_lim_from_the_true_phase_returns_the_signal():
    x = sine(amp=0.3)[0, :, :12_288]  # (1, 12288)
    window = torch.hann_window(2048)
    stft = torch.stft(x, 2048, 512, window=window, return_complex=True)  # (1, 1025, 25)
    for phase in (stft, stft.angle()):  # complex or radians
        y = griffin_lim(stft.abs(), n_fft=2048, hop_length=512, n_iter=0, power=1.0,
                        length=12_288, init_phase=phase)
        torch.testing.assert_close(y, x, atol=1e-5, rtol=0)
    noisy = griffin_lim(stft.abs(), n_fft=2048, hop_length=512, n_iter=0, power=1.0,
                        length=12_288)
    assert float((noisy - x).abs().max()) > 0.05  # a random start is far off


def test_griffin_lim_errors():
    s = torch.ones(1, 1025, 6)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\), got 1.5"):
        griffin_lim(s, n_fft=2048, hop_length=512, momentum=1.5)
    with pytest.raises(ValueError,
                       match=r"\(\.\.\., 1025, frames\) for n_fft=2048, got \(1, 513, 6\)"):
        griffin_lim(s[:, :513], n_fft=2048, hop_length=512)
    with pytest.raises(ValueError, match="init_phase must have the spectrogram's shape"):
        griffin_lim(s, n_fft=2048, hop_length=512, init_phase=torch.zeros(1, 1025, 5))
    with pytest.raises(TypeError):
        griffin_lim(s, 2048, 512)  # keyword-only


def test_nnls_long_beats_nnls(spec):
    n = 48_000
    t = torch.arange(n) / n
    x = sum(0.15 / k * torch.sin(2 * torch.pi * 196 * k * t) for k in range(1, 8)).view(1, 1, n)
    mel = spec.waveform_to_mel(x)
    torch.manual_seed(0)
    plain = spec.mel_to_waveform(mel, length=n)
    torch.manual_seed(0)
    better = spec.mel_to_waveform(mel, length=n, method="nnls_long")
    assert better.shape == plain.shape == x.shape
    assert float(spectral_convergence(x, better)) < float(spectral_convergence(x, plain))


def test_default_inversion_beats_lstsq_and_librosa_on_the_default_set(spec):
    from sda_lab.data import make_default_dataset
    from sda_lab.studies.evaluate import librosa_mel_to_audio

    x = make_default_dataset(1).waveforms[:, :, :24_000]  # (5, 1, 24000), one of each kind
    mel = spec.waveform_to_mel(x)
    sc = {}
    for method in ("lstsq", "nnls"):
        torch.manual_seed(0)
        y = spec.mel_to_waveform(mel, length=24_000, method=method)
        sc[method] = float(spectral_convergence(x, y).mean())
    np.random.seed(0)
    sc["librosa"] = float(spectral_convergence(x, librosa_mel_to_audio(spec, mel, 24_000)).mean())
    assert sc["nnls"] < 0.9 * sc["lstsq"], sc
    assert sc["nnls"] < sc["librosa"], sc


def test_unknown_method_names_are_refused(spec):
    mel = spec.waveform_to_mel(sine(amp=0.3))[..., :6]  # (1, 1, 128, 6): cheap
    for old in ("seed", "quality", "fast"):
        with pytest.raises(ValueError, match="method must be one of"):
            spec.mel_to_waveform(mel, method=old)
        with pytest.raises(ValueError, match="inversion must be one of"):
            SpectrogramConfig(inversion=old)


@pytest.mark.parametrize("method", ["lstsq", "nnls", "nnls_long"])
def test_minimal_frames_boundary(spec, method):
    assert spec.config.min_frames == 4
    mel = spec.waveform_to_mel(sine(amp=0.3))  # (1, 1, 128, 94)
    for frames in (1, 3):
        with pytest.raises(ValueError, match=rf"{frames} frame\(s\); Griffin-Lim needs at least 4"):
            spec.mel_to_waveform(mel[..., :frames], method=method)
    assert spec.mel_to_waveform(mel[..., :4], method=method).shape == (1, 1, 1536)
    assert spec.mel_to_waveform(mel[..., :4], length=2047, method=method).shape == (1, 1, 2047)


def test_length_must_fit_the_frames(spec):
    mel = torch.full((1, 1, 128, 6), 0.3)
    with pytest.raises(ValueError, match=r"length 48000 does not fit a mel of 6 frames.*2560 to 3071"):
        spec.mel_to_waveform(mel, length=48_000)
    with pytest.raises(ValueError, match=r"length 3072 does not fit"):
        spec.mel_to_waveform(mel, length=3072)
    assert spec.mel_to_waveform(mel, length=3071).shape == (1, 1, 3071)
