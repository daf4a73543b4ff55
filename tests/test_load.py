import errno
import os
import shutil
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import sda_lab.data.folders as folders_mod
from sda_lab.data import (REPORT_COLUMNS, AudioClips, DataConfig, NoUsableAudioError,
                          example_folder, load_folder, user_or_example_folder)
from sda_lab.representation.spectrogram import AudioSpectrogram


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
    # 2.5 s -> two whole clips, the 0.5 s tail padded into a third; the short file padded
    assert clips.waveforms.shape == (4, 1, 48_000)
    assert clips.labels == ["sub/short.ogg@0s", "tone.wav@0s", "tone.wav@1s", "tone.wav@2s"]
    assert clips.files == ["sub/short.ogg", "tone.wav", "tone.wav", "tone.wav"]
    # mono mix of 0.5 and 0.3 amplitude sines peaks near 0.4
    assert 0.3 < float(clips.waveforms[1:].abs().max()) < 0.45
    reasons = " ".join(clips.skipped)
    assert "broken.wav: unreadable" in reasons
    assert "quiet.flac@0s: silent" in reasons
    # 10,000 samples: a short file is kept, padded with silence (short_files="pad")
    assert "short.ogg" not in reasons


# -- load_folder on many formats ------------------------------------------------------------


SHARED_AUDIO = Path(os.environ.get("SDA_LAB_EXTRA_AUDIO") or "/nonexistent-sda-lab-extra-audio")


def _tone(seconds, sr, amp=0.5, freq=440.0, channels=1):
    t = np.arange(int(round(seconds * sr))) / sr
    x = amp * np.sin(2 * np.pi * freq * t)
    return np.stack([x] * channels, 1) if channels > 1 else x


def _mixed_folder(root):
    """A folder the way a user fills it; returns {file: clips expected with the defaults}."""
    sr = 44_100
    sf.write(root / "f32.wav", _tone(2.0, sr), sr, subtype="FLOAT")  # 2 clips
    sf.write(root / "i16.wav", _tone(1.6, sr), sr, subtype="PCM_16")  # 1 + 0.6 s tail padded
    # 22.05 kHz stereo 24-bit, 1.3 s: one clip, the 0.3 s tail dropped
    sf.write(root / "i24.wav", _tone(1.3, 22_050, channels=2), 22_050, subtype="PCM_24")
    sf.write(root / "UPPER.WAV", _tone(1.0, sr), sr, subtype="PCM_16")
    sf.write(root / "f.flac", _tone(2.0, 48_000, channels=2), 48_000)
    sf.write(root / "v.ogg", _tone(1.0, sr), sr, format="OGG", subtype="VORBIS")
    sf.write(root / "a.aiff", _tone(1.0, sr), sr, format="AIFF", subtype="PCM_16")
    sf.write(root / "short.wav", _tone(0.3, sr), sr)  # padded to 1 s
    sf.write(root / "almost.wav", _tone(1.0, sr)[:44_099], sr)  # one sample short: a whole clip
    sf.write(root / "loud.wav", _tone(1.0, sr, amp=3.0), sr, subtype="FLOAT")
    nan = _tone(1.0, sr)
    nan[100] = np.nan
    sf.write(root / "nan.wav", nan, sr, subtype="FLOAT")
    sf.write(root / "silent.flac", np.zeros(2 * sr), sr)
    (root / "notes.txt").write_text("take 3 was the good one\n")
    (root / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    (root / "broken.wav").write_bytes(b"RIFF not really a wav")
    (root / "empty.wav").write_bytes(b"")
    (root / ".DS_Store").write_bytes(bytes(32))
    sf.write(root / "whole.wav", _tone(4.0, sr), sr, subtype="PCM_16")
    raw = (root / "whole.wav").read_bytes()
    (root / "truncated.wav").write_bytes(raw[: len(raw) // 2])  # header says 4 s, 2 s are there
    (root / "whole.wav").unlink()
    (root / "sub").mkdir()
    sf.write(root / "sub" / "deep.flac", _tone(1.0, sr), sr)
    (root / ".git").mkdir()
    sf.write(root / ".git" / "not_entered.wav", _tone(1.0, sr), sr)
    return {"f32.wav": 2, "i16.wav": 2, "i24.wav": 1, "UPPER.WAV": 1, "f.flac": 2, "v.ogg": 1,
            "a.aiff": 1, "short.wav": 1, "almost.wav": 1, "loud.wav": 1, "truncated.wav": 2,
            "sub/deep.flac": 1}


SKIPPED = {  # file -> start of the reason
    "nan.wav": "NaN/Inf samples (1 of 44100)", "silent.flac": "silent (below -50 dBFS)",
    "cover.png": "not audio (", "broken.wav": "unreadable (", "empty.wav": "empty (0 bytes)",
}
IGNORED = ("notes.txt", ".DS_Store")  # documents and hidden files: not in the report at all


def _load(path, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clips = load_folder(path, DataConfig(**kw))
    return clips, [str(w.message) for w in caught]


def test_every_file_is_loaded_or_skipped_with_its_reason(tmp_path):
    expected = _mixed_folder(tmp_path)
    clips, warned = _load(tmp_path)
    rep = clips.report.set_index("file")
    assert list(clips.report.columns) == list(REPORT_COLUMNS)
    assert sorted(rep.index) == sorted([*expected, *SKIPPED])  # .git/ is not entered
    ok = rep[rep.status == "ok"]
    assert ok["clips"].to_dict() == expected
    assert (ok["reason"] == "").all()
    for name, reason in SKIPPED.items():
        assert rep.loc[name, "status"] == "skipped" and rep.loc[name, "clips"] == 0
        assert rep.loc[name, "reason"].startswith(reason), (name, rep.loc[name, "reason"])
        assert any(s.startswith(f"{name}: {reason}") for s in clips.skipped)
    assert rep.loc["silent.flac", "silent_clips"] == 2
    assert rep.loc["i16.wav", "padded_clips"] == 1 and rep.loc["short.wav", "padded_clips"] == 1
    assert "last 0.3 s dropped" in rep.loc["i24.wav", "note"]
    # what libsndfile says each file is, whatever the extension says
    assert rep.loc["UPPER.WAV", ["format", "subtype"]].tolist() == ["WAV", "PCM_16"]
    assert rep.loc["f32.wav", "subtype"] == "FLOAT" and rep.loc["i24.wav", "subtype"] == "PCM_24"
    assert rep.loc["v.ogg", "format"] == "OGG" and rep.loc["a.aiff", "format"] == "AIFF"
    assert rep.loc["i24.wav", ["sample_rate", "channels"]].tolist() == [22_050, 2]
    assert rep.loc["truncated.wav", "duration_s"] == pytest.approx(2.0, abs=0.01)
    assert rep.loc["loud.wav", "peak_dbfs"] == pytest.approx(20 * np.log10(3.0), abs=0.01)
    # clips, labels and files agree
    assert clips.waveforms.shape == (sum(expected.values()), 1, 48_000)
    assert len(clips.labels) == len(clips.files) == len(clips)
    assert all(lab.split("@")[0] == f for lab, f in zip(clips.labels, clips.files))
    assert {f: clips.files.count(f) for f in set(clips.files)} == expected
    # warnings name the broken audio and the loud file, never the notes, image or .DS_Store
    assert sorted(w.split(" ")[1] if w.startswith("skipping") else w.split(" ")[0]
                  for w in warned) == ["broken.wav:", "empty.wav:", "loud.wav", "nan.wav:"]
    assert "loud.wav peaks at 3 (+9.5 dBFS)" in " ".join(warned)
    # the short file: 0.3 s of tone, then silence
    short = clips.waveforms[clips.files.index("short.wav"), 0]
    assert float(short[: 14_000].abs().max()) > 0.4 and float(short[14_500:].abs().max()) == 0
    summary = clips.summary()
    assert "Found 17 files: 12 used, 5 skipped. 16 clips of 1 s at 48 kHz" in summary
    assert not set(IGNORED) & set(rep.index)


def test_loud_files_are_normalised_or_clipped_and_their_mel_stays_in_range(tmp_path):
    sf.write(tmp_path / "loud.wav", _tone(1.0, 48_000, amp=3.0), 48_000, subtype="FLOAT")
    spec = AudioSpectrogram()
    norm, warned = _load(tmp_path)
    assert float(norm.waveforms.abs().max()) == pytest.approx(1.0, abs=1e-3)
    assert "peak-normalised" in norm.report.loc[0, "note"] and "normalised to 1.0" in warned[0]
    clipped, warned = _load(tmp_path, too_loud="clip")
    x = clipped.waveforms[0, 0]
    assert float(x.abs().max()) <= 1.0 and float((x.abs() == 1.0).float().mean()) > 0.5
    assert "clipped to [-1, 1]" in warned[0]
    for clips in (norm, clipped):
        mel = spec.waveform_to_mel(clips.waveforms)
        assert 0.0 <= float(mel.min()) and float(mel.max()) <= 1.0


def test_short_files_skip_keeps_whole_clips_only(tmp_path):
    _mixed_folder(tmp_path)
    clips, _ = _load(tmp_path, short_files="skip")
    rep = clips.report.set_index("file")
    assert rep.loc["short.wav", "status"] == "skipped"
    assert rep.loc["short.wav", "reason"].startswith("shorter than a clip (0.3 s < 1 s")
    assert rep.loc["almost.wav", "clips"] == 1  # 44,099 samples at 44.1 kHz is a whole clip
    assert "short.wav" not in clips.files and len(clips) == 15


def test_grid_tail_rule_and_clip_length_other_than_one_second(tmp_path):
    sr = 48_000
    sf.write(tmp_path / "a.wav", _tone(2.0, sr), sr)
    clips, _ = _load(tmp_path, clip_seconds=0.75, sample_rate=16_000)
    # 2 s = 0.75 + 0.75 + 0.5 (>= half a clip: padded and kept)
    assert clips.waveforms.shape == (3, 1, 12_000)
    assert clips.labels == ["a.wav@0s", "a.wav@0.75s", "a.wav@1.5s"]
    assert float(clips.waveforms[2, 0, 8_100:].abs().max()) == 0  # padding after 0.5 s
    clips, _ = _load(tmp_path, clip_seconds=0.6)  # 3 x 0.6 + 0.2 s tail: dropped
    assert len(clips) == 3 and "last 0.2 s dropped" in clips.report.loc[0, "note"]


def _bursts(sr, seconds, onsets):
    x = np.zeros(int(seconds * sr))
    rng = np.random.default_rng(0)
    for o in onsets:
        n = int(0.3 * sr)
        t = np.arange(n) / sr
        burst = (np.sin(2 * np.pi * 330 * t) + 0.3 * rng.normal(size=n)) * np.exp(-t / 0.05)
        x[int(o * sr): int(o * sr) + n] += 0.5 * burst
    return x


def test_onset_cut_starts_clips_at_onsets_without_overlap(tmp_path):
    sr = 48_000
    # 1.3 s lies inside the clip from 0.5 s; 3.7 s leaves 0.3 s: less than half a clip
    sf.write(tmp_path / "hits.wav", _bursts(sr, 4.0, [0.5, 1.3, 2.2, 3.7]), sr)
    clips, _ = _load(tmp_path, cut="onset")
    starts = [float(lab.split("@")[1].rstrip("s")) for lab in clips.labels]
    assert len(starts) == 2
    for got, want in zip(starts, [0.5, 2.2]):
        assert want - 0.05 <= got <= want + 0.005  # backtracked to just before the attack
    assert starts[1] - starts[0] >= 1.0
    onset_clip = clips.waveforms[0, 0]
    assert float(onset_clip[: int(0.5 * sr - starts[0] * sr) - 100].abs().max()) < 1e-3
    grid, _ = _load(tmp_path)
    assert len(grid) == 4


def test_load_folder_bad_input_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="audio folder not found"):
        load_folder(tmp_path / "missing")
    (tmp_path / "x.wav").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="expected a folder"):
        load_folder(tmp_path / "x.wav")
    for kw, msg in [({"short_files": "trim"}, "short_files must be one of"),
                    ({"cut": "random"}, "cut must be one of"),
                    ({"too_loud": "ignore"}, "too_loud must be one of"),
                    ({"clip_seconds": 0}, "clip_seconds must be positive"),
                    ({"sample_rate": -1}, "sample_rate must be a positive int")]:
        with pytest.raises(ValueError, match=msg):
            load_folder(tmp_path, DataConfig(**kw))


def test_nothing_usable_lists_every_file_and_why(tmp_path):
    with pytest.raises(NoUsableAudioError, match="no usable 1 s clips .*found no files"):
        load_folder(tmp_path)
    (tmp_path / "readme.md").write_text("# my sounds")
    sf.write(tmp_path / "quiet.wav", np.zeros(48_000), 48_000)
    sf.write(tmp_path / "blip.wav", _tone(0.2, 48_000), 48_000)
    with pytest.raises(NoUsableAudioError) as err:
        load_folder(tmp_path, DataConfig(short_files="skip"))
    msg = str(err.value)
    assert "found 2 files, none usable" in msg and "readme.md" not in msg
    assert "blip.wav: shorter than a clip" in msg and "short_files='pad' keeps it" in msg
    assert "quiet.wav: silent" in msg
    assert isinstance(err.value, ValueError) and len(err.value.report) == 2


@pytest.mark.parametrize("fmt, subtype, ext, sr", [("MP3", "MPEG_LAYER_III", "mp3", 44_100),
                                                   ("OGG", "OPUS", "opus", 48_000),
                                                   ("OGG", "VORBIS", "oga", 44_100),
                                                   ("AIFF", "PCM_24", "aif", 44_100),
                                                   ("CAF", "PCM_16", "caf", 44_100)])
def test_other_formats_libsndfile_reads(tmp_path, fmt, subtype, ext, sr):
    if fmt not in sf.available_formats() or subtype not in sf.available_subtypes(fmt):
        pytest.skip(f"this libsndfile ({sf.__libsndfile_version__}) has no {fmt}/{subtype}")
    sf.write(tmp_path / f"x.{ext}", _tone(1.5, sr, channels=2), sr, format=fmt, subtype=subtype)
    clips, warned = _load(tmp_path)
    assert clips.report.loc[0, "status"] == "ok" and len(clips) == 2 and not warned


def test_bundled_examples_load_and_user_folder_wins_once_it_has_audio(tmp_path, monkeypatch):
    clips, warned = _load(example_folder())
    rep = clips.report
    assert not warned and (rep.status == "ok").sum() == 12
    ok = rep[rep.status == "ok"]
    assert set(ok.file.str.rsplit(".", n=1).str[1]) == {"flac", "wav", "WAV", "ogg", "aiff"}
    assert (ok.clips >= 1).all() and len(clips) == ok.clips.sum()
    notes = rep[rep.status != "ok"].set_index("file").reason.str.split(" ").str[:2].str.join(" ")
    assert notes.to_dict() == {}  # README.md and FREEPATS-COPYRIGHT.txt are documents
    assert clips.report["file"].tolist() == sorted(clips.report["file"])
    data_dir = tmp_path / "data"
    (data_dir / "user").mkdir(parents=True)
    shutil.copytree(example_folder(), data_dir / "examples")
    (data_dir / "user" / "README.md").write_text("Put your audio here.")
    monkeypatch.setattr(folders_mod, "_DATA_DIR", data_dir)
    assert user_or_example_folder() == data_dir / "examples"
    sf.write(data_dir / "user" / "mine.flac", _tone(1.0, 44_100), 44_100)
    assert user_or_example_folder() == data_dir / "user"
    shutil.rmtree(data_dir / "examples")
    with pytest.raises(FileNotFoundError, match="bundled examples not found"):
        example_folder()


@pytest.mark.skipif(not SHARED_AUDIO.is_dir(), reason="SDA_LAB_EXTRA_AUDIO is not set to a "
                    "folder of real recordings")
@pytest.mark.parametrize("folder", ["drum-one-shots", "instruments"])
def test_shared_real_audio_every_file_loaded_or_explained(folder):
    path = SHARED_AUDIO / folder
    clips, _ = _load(path)
    rep = clips.report
    on_disk = sorted(p.relative_to(path).as_posix() for p in path.rglob("*")
                     if p.is_file() and not folders_mod.is_ignored(p.relative_to(path).as_posix()))
    assert sorted(rep.file) == on_disk
    assert ((rep.status == "ok") | (rep.reason.str.len() > 0)).all()
    readable = rep[rep.sample_rate.notna()]  # libsndfile opened it
    assert len(readable) >= 6
    assert (readable.clips >= 1).all(), readable[readable.clips < 1]
    assert float(clips.waveforms.abs().max()) <= 1.0
    assert {f: clips.files.count(f) for f in set(clips.files)} == \
        dict(zip(rep.file[rep.clips > 0], rep.clips[rep.clips > 0]))


# -- issue 19: the loader reports everything it cannot use; memory grows with what is kept ----


def test_a_file_name_that_is_not_utf8_is_read(tmp_path):
    name = b"caf\xe9 kick.wav"  # Latin-1 bytes, as on old sample CDs
    sf.write(os.path.join(os.fsencode(tmp_path), name), _tone(1.0, 48_000), 48_000)
    clips, warned = _load(tmp_path)
    assert not warned and len(clips) == 1
    row = clips.report.iloc[0]
    assert row["status"] == "ok" and row["file"] == "caf\\xe9 kick.wav"
    assert clips.report.to_json()  # printable and storable


def test_symlinked_folder_is_followed_and_a_loop_reported(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    sf.write(real / "hit.wav", _tone(1.0, 48_000), 48_000)
    top = tmp_path / "top"
    top.mkdir()
    (top / "linked").symlink_to(real, target_is_directory=True)
    (real / "back").symlink_to(top, target_is_directory=True)  # a loop
    clips, _ = _load(top)
    rep = clips.report.set_index("file")
    assert clips.files == ["linked/hit.wav"]
    assert "symlinked folder linked" in rep.loc["linked/hit.wav", "note"]
    assert "loop" in rep.loc["linked/back/", "reason"]


def test_a_broken_or_looping_file_symlink_is_reported_and_skipped(tmp_path):
    sf.write(tmp_path / "hit.wav", _tone(1.0, 48_000), 48_000)
    (tmp_path / "broken.wav").symlink_to(tmp_path / "gone" / "x.wav")
    (tmp_path / "a.wav").symlink_to(tmp_path / "b.wav")
    (tmp_path / "b.wav").symlink_to(tmp_path / "a.wav")  # a loop of two links
    clips, warned = _load(tmp_path)
    rep = clips.report.set_index("file")
    assert clips.files == ["hit.wav"] and len(rep) == 4  # each link a row, none dropped
    assert rep.loc["broken.wav", "reason"] == "broken symlink (its target does not exist)"
    assert rep.loc["a.wav", "reason"].startswith("symlink not followed (")
    assert set(rep.loc[["broken.wav", "a.wav", "b.wav"], "format"]) == {"symlink"}
    assert sum("not reading broken.wav: broken symlink" in w for w in warned) == 1


def test_unreadable_file_and_folder_say_permission_denied(tmp_path, monkeypatch):
    sf.write(tmp_path / "ok.wav", _tone(1.0, 48_000), 48_000)
    sf.write(tmp_path / "locked.wav", _tone(1.0, 48_000), 48_000)
    (tmp_path / "private").mkdir()
    sf.write(tmp_path / "private" / "x.wav", _tone(1.0, 48_000), 48_000)
    if os.geteuid() == 0:  # root reads through chmod: simulate the OS's refusal
        real_open, real_scandir = os.open, os.scandir

        def fake_open(path, *a, **k):
            if os.fsdecode(path).endswith("locked.wav"):
                raise PermissionError(errno.EACCES, "Permission denied", path)
            return real_open(path, *a, **k)

        def fake_scandir(path="."):
            if os.fsdecode(path).endswith("private"):
                raise PermissionError(errno.EACCES, "Permission denied", path)
            return real_scandir(path)

        monkeypatch.setattr(os, "open", fake_open)
        monkeypatch.setattr(os, "scandir", fake_scandir)
    else:
        (tmp_path / "locked.wav").chmod(0)
        (tmp_path / "private").chmod(0)
    try:
        clips, warned = _load(tmp_path)
    finally:
        (tmp_path / "locked.wav").chmod(0o644)
        (tmp_path / "private").chmod(0o755)
    rep = clips.report.set_index("file")
    assert clips.files == ["ok.wav"]
    assert rep.loc["locked.wav", "reason"] == "permission denied"
    assert rep.loc["private/", "reason"].startswith("permission denied")
    assert any("private/" in w for w in warned)


def test_onset_cut_keeps_a_hit_at_zero_and_accounts_for_every_second(tmp_path):
    sr = 48_000
    sf.write(tmp_path / "hits.wav", _bursts(sr, 2.5, [0.0, 1.3]), sr)
    sf.write(tmp_path / "late.wav", _bursts(sr, 2.5, [0.7]), sr)
    clips, _ = _load(tmp_path, cut="onset")
    starts = {f: [] for f in ("hits.wav", "late.wav")}
    for lab in clips.labels:
        f, t = lab.split("@")
        starts[f].append(float(t.rstrip("s")))
    assert starts["hits.wav"][0] == 0.0 and len(starts["hits.wav"]) == 2
    assert 1.25 <= starts["hits.wav"][1] <= 1.305
    rep = clips.report.set_index("file")
    # hits.wav: 0-1 s and 1.29-2.29 s used; late.wav: ~0.7 s before its onset, 0.8 s tail
    assert rep.loc["hits.wav", "seconds_unused"] == pytest.approx(
        2.5 - 1.0 - 1.0, abs=0.02)
    assert rep.loc["late.wav", "seconds_unused"] == pytest.approx(2.5 - 1.0, abs=0.02)
    assert "before the first onset unused" in rep.loc["late.wav", "note"]


def test_grid_cut_reports_the_dropped_tail_as_unused(tmp_path):
    sf.write(tmp_path / "a.wav", _tone(2.3, 48_000), 48_000)
    clips, _ = _load(tmp_path)
    assert clips.report.loc[0, "seconds_unused"] == pytest.approx(0.3, abs=1e-3)


def test_user_readme_is_not_a_skipped_file_but_unknown_files_are(tmp_path):
    (tmp_path / "README.md").write_text("Put your audio here.")
    (tmp_path / "LICENSE").write_text("CC0")
    (tmp_path / "patch.syx").write_bytes(b"\xf0\x43\x00\xf7")
    sf.write(tmp_path / "a.wav", _tone(1.0, 48_000), 48_000)
    clips, _ = _load(tmp_path)
    assert sorted(clips.report.file) == ["a.wav", "patch.syx"]
    assert "1 not audio" in clips.summary()


def test_long_multichannel_file_is_read_in_blocks(tmp_path):
    """Peak numpy memory while loading a 4-channel file: about the mono signal plus its clips,
    not the whole 4-channel array next to them (that was > 5x the mono size)."""
    sr, seconds = 48_000, 30
    x = (0.3 * np.sin(2 * np.pi * 220 * np.arange(sr * seconds) / sr))[:, None]
    sf.write(tmp_path / "long.wav", np.repeat(x, 4, axis=1), sr, subtype="FLOAT")
    mono_bytes = sr * seconds * 4
    tracemalloc.start()
    try:
        clips = load_folder(tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(clips) == 30
    assert peak < 3.5 * mono_bytes, peak / mono_bytes


def test_block_resampling_equals_resampling_the_whole_signal(monkeypatch):
    import torchaudio.functional as AF

    import sda_lab.data._audio_read as R

    monkeypatch.setattr(R, "RESAMPLE_BLOCK_S", 0.25)
    x = np.random.default_rng(0).standard_normal(44_100 + 123).astype(np.float32)
    got = R.resample(x, 44_100, 48_000)
    want = AF.resample(torch.from_numpy(x), 44_100, 48_000).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_a_rate_whose_ratio_does_not_reduce_is_resampled_and_a_sub_audio_rate_skipped(tmp_path):
    """44101 Hz reduces to 44101/48000 with 48 kHz: torchaudio's polyphase filter for it would
    take gigabytes (a helper's listen was killed at 24 GB); it goes through soxr, keeps the
    tone's pitch and its length contract. An 8 Hz file is no audio: skipped in one line."""
    import sda_lab.data._audio_read as R

    sr = 44_101
    t = np.arange(sr // 2) / sr
    x = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    tracemalloc.start()
    try:
        y = R.resample(x, sr, 48_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert y.shape == (-(-len(x) * 48_000 // sr),) and peak < 50 * x.nbytes
    mid = y[4800:19200]  # 0.3 s away from the edges: a 1 kHz tone at 48 kHz
    want = 0.5 * np.sin(2 * np.pi * 1000.0 * np.arange(4800, 19200) / 48_000)
    assert np.abs(mid - want).max() < 1e-2
    sf.write(tmp_path / "odd.wav", np.concatenate([x, x, x]), sr)
    sf.write(tmp_path / "eight.wav", np.zeros(16, np.float32) + 0.1, 8)
    with pytest.warns(UserWarning, match="sample rate 8 Hz: expected at least 1000 Hz"):
        clips = load_folder(tmp_path)
    report = clips.report.set_index("file")
    assert report.loc["odd.wav", "status"] == "ok"
    assert report.loc["eight.wav", "status"] == "skipped"


def test_a_data_config_carries_the_options_and_is_checked_when_built(tmp_path):
    """``load_folder(path, DataConfig(...))``: the config's fields are what used to be eight
    loose arguments; a bad value fails when the config is built, naming the field."""
    sf.write(tmp_path / "a.wav", _tone(2.0, 22050), 22050)
    clips = load_folder(tmp_path, DataConfig(sample_rate=16_000, clip_seconds=0.5))
    assert clips.sample_rate == 16_000 and clips.waveforms.shape == (4, 1, 8_000)
    assert len(load_folder(tmp_path)) == 2  # the defaults: 1 s at 48 kHz
    with pytest.raises(TypeError, match="config must be a DataConfig"):
        load_folder(tmp_path, 16_000)
    with pytest.raises(ValueError, match="silence_db must be a number"):
        DataConfig(silence_db=float("nan"))
