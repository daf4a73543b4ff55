"""One audio writer (sda_lab.core._io): scaled down only where it would clip, atomic, and the
gain it applies known beforehand (wav_gain), so figures score what is written."""

import io
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sda_lab.core._io import audio_bytes, wav_gain, write_wav
from sda_lab.interface.plotting import flac_bytes

PACKAGE = Path(__file__).resolve().parents[1] / "sda_lab"


def test_a_loud_waveform_is_scaled_to_full_scale_and_the_gain_returned(tmp_path):
    x = 2.5 * torch.sin(torch.arange(4000) / 7.0).view(1, 1, -1)  # (1, 1, n), peak ~2.5
    expected = wav_gain(x)
    assert expected == pytest.approx(1 / float(x.abs().max()))
    gain = write_wav(tmp_path / "a.wav", x, 16_000)
    assert gain == expected
    y, sr = sf.read(tmp_path / "a.wav")
    assert sr == 16_000 and sf.info(tmp_path / "a.wav").subtype == "PCM_16"
    assert np.abs(y - x.reshape(-1).numpy() * gain).max() < 2 / 32767  # 16-bit rounding only


def test_a_quiet_waveform_is_written_as_it_is(tmp_path):
    x = 0.01 * np.sin(np.arange(4000) / 7.0)
    assert wav_gain(x) == 1.0 and wav_gain(np.ones(3)) == 1.0 and wav_gain(np.zeros(0)) == 1.0
    assert write_wav(tmp_path / "q.wav", x, 8000, subtype="FLOAT") == 1.0
    y, _ = sf.read(tmp_path / "q.wav")
    assert np.abs(y - x).max() < 1e-7  # never scaled up


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


def test_players_are_scaled_like_files_not_clipped():
    x = 2.0 * np.sin(np.arange(4800) / 9.0)  # a sine at twice full scale
    data, _ = sf.read(io.BytesIO(flac_bytes(x, 48_000)))
    wav, _ = sf.read(io.BytesIO(audio_bytes(x, 48_000)[0]))
    assert np.abs(data - x / 2).max() < 2 / 32767  # the same sine at full scale, not clipped
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
