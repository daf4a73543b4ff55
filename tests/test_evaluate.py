import numpy as np
import pytest
import torch

from sda_lab.data import AudioClips, make_default_dataset
from sda_lab.representation.inverse_mel_fit import fit_inverse_mel
from sda_lab.representation.metrics import spectral_convergence
from sda_lab.studies.evaluate import (compare_inversions, compare_round_trips,
                                      librosa_mel_to_audio, round_trip_rows)

from .conftest import sine


@pytest.fixture(scope="module")
def clips():
    x = torch.cat([sine(220.0, 0.3), sine(660.0, 0.2)])[..., :12_288]  # (2, 1, 12288)
    return AudioClips(x, ["low", "high"], 48_000)


def test_librosa_reference_inverts_our_mels(spec, clips):
    """librosa (same HTK filterbank) inverts our normalised mels back near the clips."""
    mel = spec.waveform_to_mel(clips.waveforms)  # (2, 1, 128, 25)
    np.random.seed(0)
    y = librosa_mel_to_audio(spec, mel, length=12_288, n_iter=16)
    assert y.shape == clips.waveforms.shape
    assert float(spectral_convergence(clips.waveforms, y).max()) < 0.6
    with pytest.raises(ValueError, match=r"3 frame\(s\); Griffin-Lim needs at least 4"):
        librosa_mel_to_audio(spec, mel[..., :3])
    with pytest.raises(ValueError, match="128 mel bands"):
        librosa_mel_to_audio(spec, mel[:, :, :64])


def test_compare_round_trips_scores_lstsq_by_its_name(spec, clips):
    results = compare_round_trips(spec, clips, seed=0, with_lstsq=True)
    assert [r.label for r in results] == ["low", "high"]
    for r in results:
        assert r.reconstruction.shape == r.reference.shape == (1, 1, 12_288)
        assert 0 <= r.spectral_convergence < 1 and r.lstsq_spectral_convergence is not None
    rows = round_trip_rows(results)
    assert "SC lstsq" in rows[0] and not any("seed" in k for k in rows[0])
    assert "SC lstsq" not in round_trip_rows(compare_round_trips(spec, clips))[0]


def test_compare_inversions_scores_every_path_and_the_bound_beats_the_default():
    from .test_inverse_mel import SPEC, TINY

    waves = make_default_dataset(2, seed=0, sample_rate=16_000).waveforms[:, :, :8000]
    inverse = fit_inverse_mel(SPEC, waves, TINY)
    rows = {r["path"]: r for r in compare_inversions(SPEC, waves[:4], inverse, seed=0)}
    assert set(rows) == {
        "floor: sqrt(NNLS(mel)) vs |S|", "floor: harmonic start vs |S|",
        "floor: learned magnitude vs |S|", "reference lstsq + GL", "NNLS default",
        "NNLS + PGHI + fast GL", "harmonic + PGHI + fast GL", "learned + fast GL",
        "learned + PGHI + fast GL", "bound: true |S| + fast GL",
        "bound: true |S| + PGHI + fast GL"}
    assert rows["bound: true |S| + PGHI + fast GL"]["SC"] < rows["NNLS default"]["SC"]
    assert rows["NNLS default"]["x default time"] == 1.0
    assert all(0 <= r["SC"] < 2 for r in rows.values())


def test_phase_start_sc_scores_the_two_bound_paths_as_render_paths_renders_them(clips):
    from sda_lab.representation.spectrogram import AudioSpectrogram, SpectrogramConfig
    from sda_lab.studies.evaluate import phase_start_sc, render_paths

    small = AudioSpectrogram(SpectrogramConfig(sample_rate=48_000, n_fft=512, hop_length=128,
                                               n_mels=32, scale="db", nnls_iters=5,
                                               griffin_lim_iters=8))
    x = clips.waveforms[..., :6144]  # (2, 1, 6144)
    sc = phase_start_sc(small, x, seed=3)
    rendered = render_paths(small, x, seed=3)
    c = small.config
    for init, path in (("random", "bound: true |S| + fast GL"),
                       ("pghi", "bound: true |S| + PGHI + fast GL")):
        expected = spectral_convergence(x, rendered[path][0], c.n_fft, c.hop_length)
        assert sc[init].shape == (2,) and torch.allclose(sc[init], expected, atol=1e-4)
    assert not torch.equal(phase_start_sc(small, x, seed=4)["random"], sc["random"])
