import math

import librosa
import numpy as np
import pytest
import torch

from sda_lab.representation.metrics import spectral_convergence
from sda_lab.representation.spectrogram import SpectrogramConfig

from .conftest import sine


def test_defaults_are_the_reference_plans():
    c = SpectrogramConfig()
    assert (c.sample_rate, c.n_fft, c.hop_length, c.n_mels, c.f_min, c.power) == (
        48_000, 2048, 512, 128, 0.0, 2.0)
    assert c.f_max == 24_000
    assert c.griffin_lim_iters == 64


def test_reference_plan_task1_verify_script(spec):
    """The reference plan's Task 1 verify script, with sda_lab's module path."""
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


def test_is_a_module_whose_tensors_are_buffers(spec):
    from torch import nn

    assert isinstance(spec, nn.Module)
    names = {n for n, _ in spec.named_buffers()}
    assert {"fb_pinv", "nnls_step", "mel_transform.mel_scale.fb",
            "mel_transform.spectrogram.window"} <= names
    assert spec.fb.shape == (128, 1025) and spec.fb_pinv.shape == (1025, 128)
    assert not list(spec.parameters())
    torch.testing.assert_close(spec(sine()), spec.waveform_to_mel(sine()))  # __call__ = forward


def test_to_moves_and_converts_every_buffer():
    from sda_lab.representation.spectrogram import AudioSpectrogram

    spec = AudioSpectrogram().to(torch.float64)
    assert {b.dtype for b in spec.buffers()} == {torch.float64}
    assert spec.mel_to_power(torch.full((1, 1, 128, 4), 0.5)).dtype == torch.float64
    x = sine(amp=0.3)
    torch.testing.assert_close(spec.waveform_to_mel(x), AudioSpectrogram().waveform_to_mel(x),
                               rtol=1e-5, atol=1e-6)
    assert spec.waveform_to_mel(x).dtype == torch.float32  # the input's dtype comes back
    assert spec.mel_to_linear(spec.waveform_to_mel(x)[..., :6], nnls_iters=3).dtype == torch.float64
    y = spec.mel_to_waveform(spec.waveform_to_mel(x)[..., :6])  # float64 Griffin-Lim inside
    assert y.shape == (1, 1, 2560) and y.dtype == torch.float32 and bool(torch.isfinite(y).all())
    meta = AudioSpectrogram().to("meta")
    assert {b.device.type for b in meta.buffers()} == {"meta"}
    assert meta.fb.device.type == "meta" and meta.window.device.type == "meta"


def test_pickle_and_deepcopy_round_trip(spec):
    import copy
    import pickle

    x = sine(amp=0.3)
    mel = spec.waveform_to_mel(x)
    for other in (pickle.loads(pickle.dumps(spec)), copy.deepcopy(spec)):
        assert other.config == spec.config
        for (n, a), (m, b) in zip(spec.named_buffers(), other.named_buffers()):
            assert n == m and torch.equal(a, b) and a.data_ptr() != b.data_ptr()
        torch.testing.assert_close(other.waveform_to_mel(x), mel)
        torch.manual_seed(0)
        y = other.mel_to_waveform(mel[..., :8])
        torch.manual_seed(0)
        torch.testing.assert_close(y, spec.mel_to_waveform(mel[..., :8]))


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


def test_reference_log1p_exceeds_sigmoid_range_but_ours_does_not(spec):
    """The plan's log1p(mel) of a 0.5-amplitude sine peaks near 10.9; ours stays in [0, 1]."""
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


# -- the value scale ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def spec_db():
    from sda_lab.representation.spectrogram import AudioSpectrogram

    return AudioSpectrogram(SpectrogramConfig(scale="db"))


def _full_scale(kind):
    n = 48_000
    t = torch.arange(n) / n
    g = torch.Generator().manual_seed(1)
    return {
        "sine": torch.sin(2 * torch.pi * 1000 * t),
        "square": torch.sign(torch.sin(2 * torch.pi * 100 * t)),
        "noise": torch.rand(n, generator=g) * 2 - 1,
        "clipped": (5 * torch.randn(n, generator=g)).clamp(-1, 1),
        "impulses": (torch.arange(n) % 512 == 0).float(),
    }[kind].view(1, 1, n)


@pytest.mark.parametrize("kind", ["sine", "square", "noise", "clipped", "impulses"])
def test_db_scale_keeps_full_scale_audio_in_range(spec, spec_db, kind):
    x = _full_scale(kind)
    for s in (spec, spec_db):
        mel = s.waveform_to_mel(x)
        assert 0.0 <= float(mel.min()) and float(mel.max()) <= 1.0, (s.config.scale, kind)
    if kind in ("sine", "square"):  # concentrated energy reaches near 0 dB
        assert float(spec_db.waveform_to_mel(x).max()) > 0.9


@pytest.mark.parametrize("scale", ["log1p", "db"])
def test_both_scales_invert_exactly_above_the_floor(scale):
    from sda_lab.representation.spectrogram import AudioSpectrogram

    s = AudioSpectrogram(SpectrogramConfig(scale=scale))
    x = sine(amp=0.3) + 0.01 * torch.randn(1, 1, 48_000)
    power = s.mel_transform(x.squeeze(1))  # (1, 128, 94)
    back = s.mel_to_power(s.waveform_to_mel(x))
    above = power > s.floor_power * 10  # everything here: noise keeps every band well up
    assert float(above.float().mean()) > 0.99
    torch.testing.assert_close(back[above], power[above], rtol=1e-4, atol=1e-6)


def test_db_scale_formula_and_floor(spec_db):
    c = spec_db.config
    assert spec_db.floor_power == pytest.approx(spec_db.max_mel_power * 1e-10)
    p = torch.tensor([[[spec_db.max_mel_power, spec_db.max_mel_power * 1e-5,
                        spec_db.floor_power, spec_db.floor_power / 10, 0.0]]])  # (1, 1, 5)
    mel = spec_db.power_to_mel(p)
    torch.testing.assert_close(mel, torch.tensor([[[1.0, 0.5, 0.0, 0.0, 0.0]]]), atol=1e-6,
                               rtol=0)
    full = mel.expand(1, c.n_mels, 5).unsqueeze(1)  # (1, 1, 128, 5)
    back = spec_db.mel_to_power(full)[0, 0]
    assert float(back[0]) == pytest.approx(spec_db.max_mel_power, rel=1e-5)
    assert float(back[1]) == pytest.approx(spec_db.max_mel_power * 1e-5, rel=1e-4)
    assert back[2:].eq(0).all()  # at or below the floor: zero power, not the floor's
    # a decoder's slight undershoot is silence too
    assert spec_db.mel_to_power(torch.full((1, 1, 128, 4), -0.01)).eq(0).all()


def test_db_scale_spreads_values_wider_than_log1p(spec, spec_db):
    from sda_lab.data import make_default_dataset
    from sda_lab.representation.spectrogram import value_stats

    x = make_default_dataset(2).waveforms  # (10, 1, 48000)
    lin, db = value_stats(spec.waveform_to_mel(x)), value_stats(spec_db.waveform_to_mel(x))
    assert db["std"] > 1.3 * lin["std"]  # measured 0.22 vs 0.14
    assert db["iqr"] > 10 * lin["iqr"]  # measured 0.25 vs 0.003
    assert db["below_low"] < lin["below_low"] - 0.1  # measured 0.61 vs 0.83


def test_value_stats():
    from sda_lab.representation.spectrogram import value_stats

    st = value_stats(torch.linspace(0, 1, 101))
    assert st["median"] == pytest.approx(0.5)
    assert st["iqr"] == pytest.approx(0.5)
    assert value_stats(torch.linspace(0, 1, 101), low=0.045)["below_low"] == pytest.approx(5 / 101)
    with pytest.raises(ValueError, match="empty"):
        value_stats(torch.zeros(0))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"scale": "linear"}, r"scale must be one of \('log1p', 'db'\), got 'linear'"),
        ({"scale": "db", "db_floor": 0.0}, r"db_floor must be a finite negative.*got 0.0"),
        ({"db_floor": float("nan")}, r"db_floor must be a finite negative.*got nan"),
        ({"inversion": "lbfgs"}, r"inversion must be one of.*'lbfgs'"),
        ({"nnls_iters": -1}, r"nnls_iters must be 0 or more, got -1"),
        ({"griffin_lim_iters": 0}, r"griffin_lim_iters must be at least 1, got 0"),
    ],
)
def test_bad_new_config_fields(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SpectrogramConfig(**kwargs)
