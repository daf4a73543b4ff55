"""A WAV whose header says its data is empty (a recorder stopped before it wrote the sizes)
while seconds of audio follow: the loader reads them and its report says the header was wrong."""

import struct
import warnings

import numpy as np
import pytest
import soundfile as sf

from sda_lab.data import DataConfig, load_folder
from sda_lab.data._audio_read import read_mono

SR = 16_000


def zero_sizes(path):
    """Set the RIFF size and the data chunk's size of ``path`` to 0, as an unfinished header."""
    raw = bytearray(path.read_bytes())
    at = raw.find(b"data")
    raw[4:8] = struct.pack("<I", 0)
    raw[at + 4:at + 8] = struct.pack("<I", 0)
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("subtype, channels", [("PCM_16", 1), ("PCM_24", 2), ("FLOAT", 1)])
def test_an_empty_data_size_with_audio_after_it_is_read_whole(tmp_path, subtype, channels):
    x = 0.5 * np.sin(2 * np.pi * 220 * np.arange(3 * SR) / SR)  # 3 s
    path = tmp_path / "take.wav"
    sf.write(path, np.stack([x] * channels, axis=1), SR, subtype=subtype)
    zero_sizes(path)
    assert sf.info(path).frames == 0  # libsndfile alone believes the header
    read = read_mono(path)
    assert read.mono.shape == (3 * SR,)
    assert np.abs(read.mono - x).max() < 1e-3
    assert "header" in read.header_note and "3 s" in read.header_note


def test_the_loader_uses_it_and_its_report_says_the_header_was_wrong(tmp_path):
    x = 0.5 * np.sin(2 * np.pi * 220 * np.arange(3 * SR) / SR)
    sf.write(tmp_path / "take.wav", x, SR, subtype="PCM_16")
    zero_sizes(tmp_path / "take.wav")
    sf.write(tmp_path / "fine.wav", x, SR, subtype="PCM_16")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clips = load_folder(tmp_path, DataConfig(sample_rate=SR, clip_seconds=1.0))
    rep = clips.report.set_index("file")
    assert rep.loc["take.wav", "status"] == "ok" and rep.loc["take.wav", "clips"] == 3
    assert "header wrong" in rep.loc["take.wav", "note"]
    assert rep.loc["take.wav", "duration_s"] == pytest.approx(3.0)
    assert any("take.wav" in str(w.message) and "header" in str(w.message) for w in caught)
    assert rep.loc["fine.wav", "note"] in ("", None) or "header" not in rep.loc["fine.wav", "note"]
    take = clips.waveforms[[i for i, f in enumerate(clips.files) if f == "take.wav"]]
    fine = clips.waveforms[[i for i, f in enumerate(clips.files) if f == "fine.wav"]]
    assert (take - fine).abs().max() < 1e-6  # the same audio as the intact file


def test_a_header_with_no_audio_after_it_is_still_empty(tmp_path):
    path = tmp_path / "nothing.wav"
    sf.write(path, np.zeros(0), SR, subtype="PCM_16")
    clips_dir = tmp_path
    sf.write(tmp_path / "fine.wav", 0.5 * np.ones(SR), SR)
    assert read_mono(path).mono.shape == (0,) and read_mono(path).header_note == ""
    rep = load_folder(clips_dir, DataConfig(sample_rate=SR)).report.set_index("file")
    assert rep.loc["nothing.wav", "status"] == "skipped"
    assert "empty" in rep.loc["nothing.wav", "reason"]
