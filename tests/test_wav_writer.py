"""One audio writer (sda_lab.core._io): a peak limiter only where it would clip, atomic, and
what it writes known beforehand (limit_peaks), so figures score what is written."""

import io
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sda_lab.core._io import (LIMITER_HOLD_S, audio_bytes, limit_peaks, limited_clause,
                              limiter_gain, write_wav)
from sda_lab.interface.plotting import flac_bytes

PACKAGE = Path(__file__).resolve().parents[1] / "sda_lab"


def test_a_click_beyond_full_scale_is_limited_around_itself_and_the_rest_kept(tmp_path):
    sr = 16_000
    x = 0.5 * np.sin(np.arange(8000) / 7.0)
    x[1000] = 3.0  # one over: a click, 9.5 dB beyond full scale
    expected = limit_peaks(x, sr)
    reduction = write_wav(tmp_path / "a.wav", x, sr)
    assert reduction == pytest.approx(20 * np.log10(3.0), abs=0.01)
    y, rate = sf.read(tmp_path / "a.wav")
    assert rate == sr and sf.info(tmp_path / "a.wav").subtype == "PCM_16"
    assert np.abs(y - expected).max() < 2 / 32767  # 16-bit rounding only
    assert np.abs(y).max() <= 1.0
    # only the samples within twice the hold of the over are touched; the level is kept
    reach = 2 * round(sr * LIMITER_HOLD_S)
    far = np.ones(x.size, bool)
    far[1000 - reach:1000 + reach + 1] = False
    assert np.abs(y[far] - x[far]).max() < 2 / 32767
    assert not np.allclose(y[~far], x[~far], atol=1e-3)
    rms = lambda v: np.sqrt(np.mean(v[2000:] ** 2))  # away from the click
    assert 20 * np.log10(rms(y) / rms(x)) == pytest.approx(0.0, abs=0.01)
    # a whole-file gain would have taken 9.5 dB off everything: not what is written
    assert np.abs(y).max() > 0.49 and np.sqrt(np.mean(y ** 2)) > 0.3


def test_a_quiet_waveform_is_written_as_it_is(tmp_path):
    x = 0.01 * np.sin(np.arange(4000) / 7.0)
    for w in (x, np.ones(3), np.zeros(0), torch.ones(2, 5)):
        assert bool((limiter_gain(w, 8000) == 1.0).all())
    assert write_wav(tmp_path / "q.wav", x, 8000, subtype="FLOAT") == 0.0
    y, _ = sf.read(tmp_path / "q.wav")
    assert np.abs(y - x).max() < 1e-7  # never scaled up


def test_limiting_keeps_a_tensors_type_and_limits_each_row():
    t = torch.zeros(2, 1, 400)
    t[0, 0, 100], t[1, 0, 300] = 4.0, 0.5
    out = limit_peaks(t, 16_000)
    assert out.dtype == t.dtype and out.shape == t.shape
    assert float(out[0].abs().max()) <= 1.0 and float(out[1, 0, 300]) == 0.5  # rows apart


def test_a_time_first_array_is_refused_not_clipped_sample_by_sample():
    time_first = np.full((400, 1), 0.5)
    time_first[100] = 4.0
    with pytest.raises(ValueError, match=r"time on the last axis, got shape \(400, 1\)"):
        limit_peaks(time_first, 16_000)
    assert float(limit_peaks(np.array([4.0]), 16_000)[0]) == pytest.approx(1.0)  # one sample


def test_bad_waveforms_are_refused_in_one_line_and_the_old_file_kept(tmp_path):
    target = tmp_path / "keep.wav"
    write_wav(target, np.zeros(100), 8000)
    before = target.read_bytes()
    for bad, words in ((np.array([0.1, np.nan, 0.2]), "NaN/Inf"),
                       (np.zeros((2, 100)), "mono"), (np.zeros(0), "samples")):
        with pytest.raises(ValueError, match=words) as err:
            write_wav(target, bad, 8000)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="sample rate"):
        write_wav(target, np.zeros(10), 0)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.wav"]  # no temporary file left


def test_players_are_limited_like_files_not_clipped():
    x = 2.0 * np.sin(np.arange(4800) / 9.0)  # a sine at twice full scale
    data, _ = sf.read(io.BytesIO(flac_bytes(x, 48_000)))
    wav, _ = sf.read(io.BytesIO(audio_bytes(x, 48_000)[0]))
    assert np.abs(data).max() <= 1.0 and np.abs(data).max() > 0.95  # at full scale, not beyond
    assert np.abs(data - limit_peaks(x, 48_000)).max() < 2 / 32767  # the limiter, not clipping
    assert np.abs(data - wav).max() < 2 / 32767  # the player holds what a file would


def test_no_other_module_writes_audio_itself():
    """Every WAV or player goes through sda_lab.core._io (the one writer)."""
    writers = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).as_posix() == "core/_io.py":
            continue
        text = path.read_text()
        if re.search(r"\b(sf|soundfile)\.write\(|\bSoundFile\([^)]*['\"]w", text):
            writers.append(path.relative_to(PACKAGE).as_posix())
    assert writers == []


def test_the_printed_clause_says_what_the_limiter_took_off():
    assert limited_clause(0.0) == limited_clause(0.04) == ""
    assert limited_clause(8.34) == ", peaks limited by up to 8.3 dB to avoid clipping"


def test_integer_pcm_and_impossible_rates_are_refused_in_one_line(tmp_path):
    pcm = (30000 * np.sin(np.arange(400) / 7.0)).astype(np.int16)  # scipy-style int16 PCM
    for bad in (pcm, torch.from_numpy(pcm), None, np.zeros(10, complex)):
        with pytest.raises(ValueError, match="expected float samples") as err:
            write_wav(tmp_path / "x.wav", bad, 8000)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="32768"):
        audio_bytes(pcm, 8000)
    for rate in (0, -1, 2 ** 40, float("nan"), True):
        with pytest.raises(ValueError, match="sample rate"):
            limiter_gain(np.full(5, 2.0), rate)
    assert not (tmp_path / "x.wav").exists()
