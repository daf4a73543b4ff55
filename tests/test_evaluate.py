import numpy as np
import pytest
import torch

from sda_lab.data import AudioClips
from sda_lab.evaluate import compare_round_trips, librosa_mel_to_audio, round_trip_rows
from sda_lab.metrics import spectral_convergence

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


def test_old_seed_path_names_warn(spec, clips):
    with pytest.warns(FutureWarning, match="with_seed_path is deprecated; use with_lstsq"):
        results = compare_round_trips(spec, clips, with_seed_path=True)
    with pytest.warns(FutureWarning, match="use lstsq_spectral_convergence"):
        assert results[0].seed_path_spectral_convergence == results[0].lstsq_spectral_convergence


def test_path_scoring_lives_in_evaluate_and_the_old_import_path_still_works():
    """render_paths / compare_inversions moved from sda_lab.inverse_mel to sda_lab.evaluate;
    notebook 08 imports them from the old module first, in a fresh interpreter."""
    import subprocess
    import sys

    code = ("from sda_lab.inverse_mel import compare_inversions, render_paths\n"
            "import sda_lab.evaluate as E\n"
            "assert compare_inversions is E.compare_inversions and render_paths is E.render_paths\n"
            "assert compare_inversions.__module__ == 'sda_lab.evaluate'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr

