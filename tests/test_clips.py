"""sda_lab.data.clips: AudioClips' defaults, validation and selection."""

import pytest
import torch

from sda_lab.data import AudioClips


def test_audio_clips_defaults_validation_and_select():
    w = torch.zeros(3, 1, 8)
    old = AudioClips(w, ["a", "b", "a"], 8_000)  # no files, no report
    assert old.files == ["clip_00000", "clip_00001", "clip_00002"] and old.report is None
    assert repr(old) == ("AudioClips(3 clips of 8 samples at 8000 Hz from 3 files, "
                         "0 skipped entries)")
    with pytest.raises(ValueError, match=r"labels must have one entry per clip \(3\), got 2"):
        AudioClips(w, ["a", "b"], 8_000)
    with pytest.raises(ValueError, match=r"waveforms must be \(N, 1, samples\)"):
        AudioClips(torch.zeros(3, 8), ["a", "b", "c"], 8_000)
    sub = AudioClips(torch.arange(3.0).view(3, 1, 1), ["a", "b", "c"], 8_000,
                     files=["x", "y", "z"]).select([2, 0])
    assert sub.labels == ["c", "a"] and sub.files == ["z", "x"]
    assert sub.waveforms.flatten().tolist() == [2.0, 0.0]
