"""``generate``: a bounded --n, samples written batch by batch (an interrupt keeps them),
near-silent and broken samples found and said, the pitch column explained, and the run's own
recorded file list (not the folder's current contents)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

import sda_lab.studies.generate as gen
from sda_lab.interface.cli import main

from .test_generate import FILES, SR, VAL_FILES, tiny_run


def _metrics(run, **changes):
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.update(changes)
    (run / "metrics.json").write_text(json.dumps(metrics))
    return metrics


def test_n_above_the_bound_is_one_line_before_any_work(tmp_path, capsys):
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as exc:
        main(["generate", str(tmp_path), "--n", "1000000", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1
    assert "--n: expected a number of sounds from 1 to 10000, got '1000000'" in err
    with pytest.raises(ValueError, match="--n: expected a number of sounds from 1 to 10000"):
        gen.generate_run(tmp_path / "no-run", out, n=10_001)
    assert not out.exists()


def _interrupt_on_second_batch(monkeypatch):
    real, calls = gen.invert, []

    def invert(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(gen, "invert", invert)


def test_an_interrupt_keeps_the_batches_written_and_their_table(tmp_path, monkeypatch, capsys):
    run = tiny_run(tmp_path)
    _interrupt_on_second_batch(monkeypatch)
    out = tmp_path / "o"
    code = main(["generate", str(run), "--n", str(gen.BATCH + 5), "--no-f0", "--keep-silent",
                 "--out", str(out)])
    assert code == 130
    err = capsys.readouterr().err.strip()
    assert f"interrupted after {gen.BATCH} of {gen.BATCH + 5} samples" in err
    table = pd.read_csv(out / "samples.csv", keep_default_na=False)
    assert len(table) == gen.BATCH
    written = sorted(p.name for p in out.glob("*.wav"))
    assert written == sorted(f for f in table["file"] if f) and len(written) >= 1
    assert not list(out.glob(".*.tmp"))  # no half-written file


def _with_bad_samples(monkeypatch):
    """The first batch's sample 1 silent, 2 at -80 dBFS, 3 holding a NaN, 0 a 440 Hz tone."""
    real = gen.invert

    def invert(spec, mels, seed=0, inverter=None, **kwargs):
        waves = real(spec, mels, seed=seed, inverter=inverter, **kwargs).clone()
        if waves.shape[0] < 4:
            return waves
        t = torch.arange(waves.shape[-1]) / SR
        waves[0, 0] = 0.5 * torch.sin(2 * np.pi * 440 * t)
        waves[1] = 0.0
        waves[2] = 1e-4 * torch.randn(waves.shape[-1], generator=torch.Generator().manual_seed(0))
        waves[3, 0, 100] = float("nan")
        return waves

    monkeypatch.setattr(gen, "invert", invert)


def test_near_silent_and_broken_samples_are_dropped_counted_and_said(tmp_path, monkeypatch,
                                                                      capsys):
    run = tiny_run(tmp_path)
    _with_bad_samples(monkeypatch)
    out = tmp_path / "o"
    assert main(["generate", str(run), "--n", "6", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "wrote 3 WAV files" in printed
    assert "3 of 6 samples failed the check: 2 near-silent" in printed and "1 broken" in printed
    table = pd.read_csv(out / "samples.csv", keep_default_na=False)
    assert table["status"].str.startswith("dropped: near-silent").tolist()[1:3] == [True, True]
    assert table["status"][3].startswith("dropped: broken")
    assert (table["file"][1:4] == "").all() and (table["status"][[0, 4, 5]] == "kept").all()
    assert table["loudest_20ms_dbfs"][2] == pytest.approx(-80, abs=1.5)
    assert sorted(p.name for p in out.glob("*.wav")) == ["sample_000.wav", "sample_004.wav",
                                                         "sample_005.wav"]
    # --keep-silent writes the near-silent ones (never a broken one) and says so
    assert main(["generate", str(run), "--n", "6", "--keep-silent", "--no-f0", "--out",
                 str(tmp_path / "k")]) == 0
    assert "2 near-silent are kept (--keep-silent)" in capsys.readouterr().out
    kept = pd.read_csv(tmp_path / "k" / "samples.csv", keep_default_na=False)
    assert kept["status"][1].startswith("kept: near-silent") and kept["file"][1]
    assert kept["file"][3] == "" and not (tmp_path / "k" / "sample_003.wav").exists()


def test_the_pitch_column_is_filled_or_says_why_not(tmp_path, monkeypatch, capsys):
    run = tiny_run(tmp_path)
    _with_bad_samples(monkeypatch)
    table, _ = gen.generate_run(run, tmp_path / "o", n=6, seed=1, f0=True)
    assert table["f0_hz"][0] == pytest.approx(440, rel=0.03) and table["f0_note"][0] == ""
    for hz, note in zip(table["f0_hz"], table["f0_note"]):
        assert np.isfinite(hz) != bool(note), (hz, note)  # filled, or a stated reason
    assert table["f0_note"][1].startswith("no pitch: near-silent")
    assert table["f0_note"][3].startswith("no pitch: broken")
    plain, _ = gen.generate_run(run, tmp_path / "p", n=2, seed=1, f0=False)
    assert (plain["f0_note"] == "not estimated (--no-f0)").all()


def test_generate_uses_the_runs_recorded_files_not_the_folders_current_ones(tmp_path, capsys):
    from sda_lab.data.folders import file_fingerprints

    run = tiny_run(tmp_path)
    audio = tmp_path / "audio"
    _metrics(run, fingerprints=file_fingerprints(audio, list(FILES)))
    t = np.arange(2 * SR) / SR
    sf.write(audio / "e_added_later.wav", 0.5 * np.sin(2 * np.pi * 300 * t), SR)
    loaded = gen.load_run(run)
    assert "e_added_later.wav" not in set(loaded.clips.files)
    assert any("e_added_later.wav" in n and "not among the run's files" in n
               for n in loaded.notes)
    assert {loaded.clips.files[i] for i in loaded.train_idx} == set(FILES) - set(VAL_FILES)
    assert main(["generate", str(run), "--n", "3", "--no-f0", "--out", str(tmp_path / "o")]) == 0
    printed = capsys.readouterr().out
    assert sum("e_added_later.wav" in line for line in printed.splitlines()) == 1
    table = pd.read_csv(tmp_path / "o" / "samples.csv")
    assert not table["nn_train_clip"].str.contains("e_added_later").any()
    # a training file changed and one gone: each said in one line, neither used
    sf.write(audio / "a_sine.wav", 0.1 * np.sin(2 * np.pi * 500 * t), SR)
    (audio / "b_sine.wav").unlink()
    loaded = gen.load_run(run)
    notes = " | ".join(loaded.notes)
    assert "changed since training" in notes and "a_sine.wav" in notes
    assert "gone" in notes and "b_sine.wav" in notes
    assert {loaded.clips.files[i] for i in loaded.train_idx} == {"d_noise.wav"}
    assert all("\n" not in n for n in loaded.notes)


def test_a_run_without_fingerprints_says_files_are_matched_by_name(tmp_path):
    loaded = gen.load_run(tiny_run(tmp_path))
    assert any("no fingerprints" in n for n in loaded.notes)
    assert {loaded.clips.files[i] for i in loaded.val_idx} == set(VAL_FILES)


def test_generate_never_writes_over_earlier_samples_or_into_the_training_folder(tmp_path, capsys):
    from .test_cli import error_of
    from .test_generate import tiny_run

    run = tiny_run(tmp_path)
    audio = tmp_path / "audio"
    before = sorted(p.name for p in audio.iterdir())
    code, line = error_of(capsys, ["generate", str(run), "--out", str(audio / "new"), "--n", "1"])
    assert code == 1 and "outside the run's training folder" in line, line
    earlier = tmp_path / "mine"
    earlier.mkdir()
    (earlier / "samples.csv").write_text("notes")
    code, line = error_of(capsys, ["generate", str(run), "--out", str(earlier), "--n", "1"])
    assert code == 1 and "without earlier samples" in line and "samples.csv" in line, line
    assert (earlier / "samples.csv").read_text() == "notes"
    assert sorted(p.name for p in audio.iterdir()) == before


def test_listen_never_writes_over_one_of_the_runs_training_files(tmp_path, capsys):
    from .test_cli import error_of
    from .test_generate import FILES, tiny_run

    run = tiny_run(tmp_path)
    audio = tmp_path / "audio"
    name = sorted(FILES)[0]
    kept = (audio / name).read_bytes()
    other = tmp_path / "in.wav"
    other.write_bytes(kept)
    code, line = error_of(capsys, ["listen", str(run), str(other), "--out", str(audio / name)])
    assert code == 1 and "one of RUN's training files" in line, line
    assert (audio / name).read_bytes() == kept
