"""The embedded default set (sda_lab/data/synth.py)."""

import numpy as np
import pytest
import torch

from sda_lab.data import KINDS, make_default_dataset, synthesize_clip
from sda_lab.data.synth import PEAK


def test_default_set_shape_labels_and_range():
    d = make_default_dataset(3)
    assert d.waveforms.shape == (15, 1, 48_000)
    assert d.waveforms.dtype == torch.float32
    assert d.labels[:5] == list(KINDS)
    assert float(d.waveforms.abs().amax()) == pytest.approx(PEAK, rel=1e-4)
    for label in KINDS:
        assert d.by_label(label).shape == (3, 1, 48_000)
    firsts, labels = d.first_of_each()
    assert labels == list(KINDS) and firsts.shape == (5, 1, 48_000)


def test_default_set_is_deterministic_and_prefix_stable():
    a = make_default_dataset(2).waveforms
    b = make_default_dataset(4).waveforms
    torch.testing.assert_close(a, b[:10], rtol=0, atol=0)
    assert not torch.equal(make_default_dataset(1, seed=1).waveforms, a[:5])


def test_a_subset_of_kinds_holds_the_same_clips_as_the_full_set():
    full = make_default_dataset(2)
    drums = make_default_dataset(2, kinds=("drum",))
    assert drums.labels == ["drum", "drum"] and drums.files == ["drum_000", "drum_001"]
    torch.testing.assert_close(drums.waveforms, full.by_label("drum"), rtol=0, atol=0)


def test_clips_are_varied():
    d = make_default_dataset(4)
    flat = d.waveforms.flatten(1)
    corr = torch.corrcoef(flat)
    off_diag = corr[~torch.eye(len(flat), dtype=torch.bool)]
    assert float(off_diag.abs().max()) < 0.9  # no two clips are near-copies


def test_clip_length_follows_rate_and_seconds_and_ends_in_silence():
    x = synthesize_clip("bell", 0, sample_rate=16_000, seconds=0.5)
    assert x.shape == (8_000,) and x.dtype == np.float32
    assert float(np.abs(x).max()) == pytest.approx(PEAK, rel=1e-4)
    assert x[-1] == 0.0  # the 10 ms fade-out ends at zero: no click


def test_unknown_kind_and_bad_count():
    with pytest.raises(ValueError, match="kind must be one of"):
        synthesize_clip("violin", 0)
    with pytest.raises(ValueError, match="at least 1"):
        make_default_dataset(0)


def test_default_set_has_one_pseudo_file_per_clip():
    d = make_default_dataset(2)
    assert d.files[:6] == ["pluck_000", "bell_000", "drum_000", "vowel_000", "sweep_000",
                           "pluck_001"]
    assert len(set(d.files)) == len(d) and d.report is None
    assert "10 clips of 1 s at 48 kHz" in d.summary()
