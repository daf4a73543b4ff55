import numpy as np
import pytest
import soundfile as sf
import torch

from sda_lab.data import KINDS, load_folder, make_default_dataset, synthesize_clip


def test_default_set_shape_labels_and_range():
    d = make_default_dataset(3)
    assert d.waveforms.shape == (15, 1, 48_000)
    assert d.waveforms.dtype == torch.float32
    assert d.labels[:5] == list(KINDS)
    assert float(d.waveforms.abs().amax()) == pytest.approx(0.8, rel=1e-4)
    for label in KINDS:
        assert d.by_label(label).shape == (3, 1, 48_000)
    firsts, labels = d.first_of_each()
    assert labels == list(KINDS) and firsts.shape == (5, 1, 48_000)


def test_default_set_is_deterministic_and_prefix_stable():
    a = make_default_dataset(2).waveforms
    b = make_default_dataset(4).waveforms
    torch.testing.assert_close(a, b[:10], rtol=0, atol=0)
    assert not torch.equal(make_default_dataset(1, seed=1).waveforms, a[:5])


def test_clips_are_varied():
    d = make_default_dataset(4)
    flat = d.waveforms.flatten(1)
    corr = torch.corrcoef(flat)
    off_diag = corr[~torch.eye(len(flat), dtype=torch.bool)]
    assert float(off_diag.abs().max()) < 0.9  # no two clips are near-copies


def test_unknown_kind_and_bad_count():
    with pytest.raises(ValueError, match="kind must be one of"):
        synthesize_clip("violin", 0)
    with pytest.raises(ValueError, match="at least 1"):
        make_default_dataset(0)


def _write(path, data, sr):
    sf.write(str(path), data, sr)


def test_load_folder_mixes_resamples_cuts_and_skips(tmp_path):
    sr = 22_050
    t = np.arange(int(2.5 * sr)) / sr
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 220 * t), 0.3 * np.sin(2 * np.pi * 330 * t)], 1)
    _write(tmp_path / "tone.wav", stereo, sr)
    sub = tmp_path / "sub"
    sub.mkdir()
    _write(sub / "quiet.flac", np.zeros(48_000 * 2), 48_000)
    _write(sub / "short.ogg", 0.5 * np.sin(2 * np.pi * 440 * np.arange(10_000) / 48_000), 48_000)
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really a wav")
    (tmp_path / "notes.txt").write_text("ignored")

    with pytest.warns(UserWarning, match="broken.wav"):
        clips = load_folder(tmp_path)
    assert clips.waveforms.shape == (2, 1, 48_000)  # 2.5 s -> two whole clips
    assert clips.labels == ["tone.wav@0s", "tone.wav@1s"]
    # mono mix of 0.5 and 0.3 amplitude sines peaks near 0.4
    assert 0.3 < float(clips.waveforms.abs().max()) < 0.45
    reasons = " ".join(clips.skipped)
    assert "broken.wav: unreadable" in reasons
    assert "quiet.flac@0s: silent" in reasons
    assert "short.ogg: shorter than 1 s" in reasons


def test_load_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="audio folder not found"):
        load_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="no usable 1 s clips.*no .wav/.flac/.ogg files"):
        load_folder(tmp_path)
