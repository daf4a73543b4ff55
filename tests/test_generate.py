"""sda_lab.studies.generate and ``python -m sda_lab generate``: run folders, nearest clips, the
copying check, WAV + CSV output, one-line errors. Tiny model (4 latents, 32 mels, 16 frames at 8
kHz)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from sda_lab.model.vae import ConvVAE, VAEConfig
from sda_lab.representation.spectrogram import AudioSpectrogram, SpectrogramConfig
from sda_lab.training.checkpoint import save_checkpoint

SR = 8000
TINY = VAEConfig(latent_dim=4, dropout=0.0, n_mels=32, n_frames=16, channels=(4, 8))
TINY_SPEC = SpectrogramConfig(sample_rate=SR, n_fft=1024, hop_length=512, n_mels=32)
FILES = {"a_sine.wav": 220.0, "b_sine.wav": 440.0, "c_sine.wav": 880.0, "d_noise.wav": None}
VAL_FILES = ["c_sine.wav"]


def _clip(freq, seed: int) -> np.ndarray:
    t = np.arange(SR) / SR
    if freq is None:
        return (0.3 * np.random.default_rng(seed).standard_normal(SR)).clip(-1, 1)
    return 0.5 * np.sin(2 * np.pi * freq * t) * np.exp(-3 * t)


def tiny_run(root: Path, val_files=VAL_FILES, seed: int = 0) -> Path:
    """A run folder as ``python -m sda_lab train`` writes it: best.pt of a tiny untrained VAE
    (spectrogram config in extra), metrics.json naming the audio folder and held-out files,
    and an audio folder of 4 two-clip WAVs."""
    audio = root / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    for i, (name, freq) in enumerate(FILES.items()):
        sf.write(audio / name, np.concatenate([_clip(freq, i), 0.5 * _clip(freq, i + 10)]), SR)
    run = root / "run"
    torch.manual_seed(seed)
    model = ConvVAE.from_config(TINY).eval()
    spec = AudioSpectrogram(TINY_SPEC)
    save_checkpoint(run / "best.pt", model, None, None,
                    extra={"spectrogram_config": asdict(spec.config), "val_files": val_files})
    metrics = {"folder": str(audio.resolve()), "val_files": list(val_files),
               "train_files": sorted(set(FILES) - set(val_files)),
               "spectrogram_config": asdict(spec.config), "model_config": asdict(TINY),
               "argv": ["train", str(audio), "--out", str(run)]}
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


def test_load_run_splits_by_the_recorded_files(tmp_path):
    from sda_lab.studies.generate import load_run

    run = load_run(tiny_run(tmp_path))
    assert len(run.clips) == 8
    held = {run.clips.files[i] for i in run.val_idx}
    assert held == set(VAL_FILES)
    assert not held & {run.clips.files[i] for i in run.train_idx}
    assert run.train_mels.shape == (6, 1, 32, 16)


def test_load_run_names_a_missing_training_folder(tmp_path):
    from sda_lab.studies.generate import load_run

    run = tiny_run(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["folder"] = str(tmp_path / "gone")
    (run / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(FileNotFoundError, match="training clips not found.*gone"):
        load_run(run)


def test_copying_check_flags_a_copy_not_a_smooth_average():
    """A copy is near one training clip and far from the rest; the average mel is near all of
    them (the smooth sound an absolute distance mistook for a copy) and is not one."""
    from sda_lab.studies.copying import COPY_RATIO, copy_summary, nearest_clips

    g = torch.Generator().manual_seed(0)
    train = torch.rand(10, 1, 8, 8, generator=g)
    val = torch.rand(4, 1, 8, 8, generator=g)
    copies = train[:5] + 1e-3 * torch.randn(5, 1, 8, 8, generator=g)  # (5, 1, 8, 8)
    average = train.mean(0, keepdim=True).expand(3, -1, -1, -1)  # (3, 1, 8, 8)
    near = nearest_clips(torch.cat([copies, average]), train, val)
    assert near["nn_train_index"].tolist()[:5] == [0, 1, 2, 3, 4]
    assert near["copy"].tolist() == [True] * 5 + [False] * 3
    # the average is closer to its nearest training clip than any copy's second-nearest is,
    # yet not a copy: what makes a copy is one clip standing out
    assert (near["relative_distance"][5:] > 0.8).all()
    assert (near["nn_train_mse"][5:] < near["nn_val_mse"][5:]).all()
    refs = {"reconstructions": np.array([0.1, 0.2, 0.5, 0.9]), "heldout": np.array([0.9, 0.95])}
    check = copy_summary(near["relative_distance"].to_numpy(), refs)
    assert check["copies"] == 5 and check["n"] == 8 and check["copy_share"] == 5 / 8
    assert check["reconstruction_share"] == 0.5 and check["heldout_share"] == 0.0
    assert check["n_heldout"] == 2 and check["n_reconstructions"] == 4 and COPY_RATIO == 1 / 3
    alone = copy_summary(np.array([0.9]), {"reconstructions": np.array([0.9]), "heldout": None})
    assert alone["heldout_share"] is None and alone["n_heldout"] == 0


def test_copying_sentence_says_when_the_check_cannot_tell():
    from sda_lab.studies.copying import copy_summary, copying_sentence

    blurry = copy_summary(np.array([0.9, 0.8]), {"reconstructions": np.array([0.7, 0.8]),
                                                  "heldout": np.array([0.9])})
    assert copying_sentence(blurry).startswith("cannot tell per sample whether a sample is a copy")
    assert "samples are copies of a training clip" not in copying_sentence(blurry)
    sharp = copy_summary(np.array([0.1, 0.8]), {"reconstructions": np.array([0.1, 0.2]),
                                                 "heldout": np.array([0.9])})
    assert (blurry["can_tell"], sharp["can_tell"]) == (False, True)
    assert "1 of 2 samples are copies" in copying_sentence(sharp)
    assert "cannot tell" not in copying_sentence(sharp)
    assert "2 of 2 of the model's reconstructions of its own training clips count" in (
        copying_sentence(sharp))
    assert copying_sentence(sharp).endswith("held-out clips as near a training clip as a copy: "
                                            "0 of 1")
    twin = copy_summary(np.array([0.8]), {"reconstructions": np.array([0.1]),
                                          "heldout": np.array([0.1, 0.9])})
    assert "held-out clips as near a training clip as a copy: 1 of 2 (the folder holds " in (
        copying_sentence(twin))


def test_copying_check_clears_no_sample_it_would_likely_miss():
    """A check that flags 2 of 20 of the model's own reconstructions would miss most copies:
    "0 of 8 samples are copies" is not what it shows. It says so, and says what the samples'
    distances show as a set: further than the reconstructions, or not."""
    from sda_lab.studies.copying import MIN_SENSITIVITY, copy_summary, copying_sentence

    recon = np.r_[0.2, 0.3, np.linspace(0.4, 0.6, 18)]  # 2 of 20 flagged
    far = copy_summary(np.linspace(0.7, 0.9, 8), {"reconstructions": recon, "heldout": None})
    assert far["reconstruction_share"] == 0.1 < MIN_SENSITIVITY and not far["can_tell"]
    line = copying_sentence(far)
    assert line.startswith("cannot tell per sample") and "only 2 of 20" in line
    assert "0 of 8 samples flagged" in line and "0 of 8 samples are copies" not in line
    assert far["further_p"] < 0.001 and "lie further from their nearest training clip" in line
    near = copy_summary(recon[::-2][:8], {"reconstructions": recon, "heldout": None})
    assert near["further_p"] > 0.05 and "not shown to lie further" in copying_sentence(near)
    assert copying_sentence(near).count("some may be this model's renderings of training") == 1
    same = copy_summary(np.full(8, 0.9), {"reconstructions": recon, "heldout": None})
    assert same["n_distinct"] == 1 and same["further_p"] is None  # one sound made 8 times
    assert "too few distinct samples (1; the test needs 5) to compare" in copying_sentence(same)
    half = copy_summary(np.array([0.8]), {"reconstructions": np.array([0.1, 0.9]),
                                          "heldout": None})
    assert half["can_tell"]  # half the reconstructions flagged: an unflagged sample is cleared


def test_copying_check_of_a_model_that_hands_back_its_training_clips(tmp_path):
    """The model's own reconstructions, passed off as samples, are copies exactly as often as
    its reconstructions are (the reference the check reports)."""
    from sda_lab.model.vae import encode_dataset
    from sda_lab.studies.copying import copying_check
    from sda_lab.studies.generate import load_run
    from sda_lab.studies.prior import decode_samples

    run = load_run(tiny_run(tmp_path))
    mu, _ = encode_dataset(run.model, run.train_mels)
    handed_back = decode_samples(run.model, mu)  # (N_train, 1, n_mels, T)
    check = copying_check(run.model, handed_back, run.train_mels, run.val_mels)
    assert check["copy_share"] == check["reconstruction_share"]
    assert check["n"] == len(run.train_idx) and check["n_heldout"] == len(run.val_idx)
    exact = copying_check(run.model, run.train_mels, run.train_mels, run.val_mels)
    assert exact["copy_share"] == 1.0  # the training clips themselves


def test_generate_checks_copying_without_held_out_files(tmp_path, capsys):
    from sda_lab.interface.cli import main

    run = tiny_run(tmp_path, val_files=[])
    assert main(["generate", str(run), "--n", "2", "--no-f0", "--quiet",
                 "--out", str(tmp_path / "o")]) == 0
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("copying check")]
    assert len(line) == 1 and ("of 2 samples are copies" in line[0]
                               or "of 2 samples flagged" in line[0])  # counted, or cannot tell
    assert "held-out" not in line[0]
    assert "copy" in pd.read_csv(tmp_path / "o" / "samples.csv").columns


def test_generate_writes_wavs_and_table(tmp_path):
    from sda_lab.studies.generate import generate_run

    out = tmp_path / "out"
    table, check = generate_run(tiny_run(tmp_path), out, n=3, prior="gmm", seed=1, f0=False)
    wavs = sorted(out.glob("*.wav"))
    assert [w.name for w in wavs] == ["sample_000.wav", "sample_001.wav", "sample_002.wav"]
    data, sr = sf.read(wavs[0])
    assert sr == SR and data.shape == (SR,) and np.abs(data).max() <= 1.0
    csv = pd.read_csv(out / "samples.csv")
    for col in ("file", "prior", "seed", "loudness_db", "centroid_hz", "nn_train_mse",
                "nn_train_clip", "nn_val_mse", "nn_val_clip", "relative_distance", "copy"):
        assert col in csv.columns
    assert (csv["nn_val_clip"].str.startswith("c_sine.wav")).all()
    assert check["n"] == 3
    flagged = csv["copy"].astype(str) == "True"
    assert check["copies"] == int(flagged.sum())
    if not check["can_tell"]:  # the check would miss most copies: no sample is cleared
        assert (csv["copy"][~flagged] == "cannot tell").all()
    else:
        assert (csv["copy"][~flagged].astype(str) == "False").all()
    again, _ = generate_run(tiny_run(tmp_path), tmp_path / "again", n=3, prior="gmm", seed=1,
                            f0=False)
    assert np.allclose(again["nn_train_mse"], table["nn_train_mse"])  # the seed decides


@pytest.mark.parametrize("argv, needle", [
    (["--n", "0"], "--n: expected a number of sounds from 1 to 10000, got '0'"),
    (["--prior", "flow"], "--prior: invalid choice: 'flow'"),
    (["--seed", "-1"], "--seed: expected a non-negative integer"),
])
def test_cli_bad_options_are_one_line(tmp_path, capsys, argv, needle):
    from sda_lab.interface.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["generate", str(tmp_path), "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and needle in err and len(err.splitlines()) == 1


def test_cli_no_such_run_is_one_line(tmp_path, capsys):
    from sda_lab.interface.cli import main

    assert main(["generate", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sda-lab: error: RUN:") and "nope" in err and len(err.splitlines()) == 1


def test_cli_generate_end_to_end(tmp_path, capsys):
    from sda_lab.interface.cli import main

    run = tiny_run(tmp_path)
    assert main(["generate", str(run), "--n", "2", "--prior", "normal", "--no-f0",
                 "--out", str(tmp_path / "o")]) == 0
    assert "copying check" in capsys.readouterr().out
    assert len(pd.read_csv(tmp_path / "o" / "samples.csv")) == 2


@pytest.mark.parametrize("kind, expect", [
    ("partly learned", "blurred outlines"), ("at the average", "no closer to your files"),
    ("collapsed", "about one sound"), ("collapse", "about one sound"),  # interrupted: the alarm's
    ("at_average", "no closer to your files"),
    ("no_generalisation", "no closer to your files"), ("learned", None)])
def test_generate_says_what_to_expect_from_a_run_not_judged_learned(tmp_path, capsys, kind, expect):
    import json

    from sda_lab.interface.cli import main

    run = tiny_run(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["verdict"] = {"kind": kind, "sentence": f"{kind}: (the figures)"}
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert main(["generate", str(run), "--n", "1", "--no-f0", "--out", str(tmp_path / "o")]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if "verdict is" in line]
    assert (notes == [] if expect is None else len(notes) == 1 and expect in notes[0])


def test_generate_plays_through_the_runs_learned_inverse_mel(tmp_path):
    """A run with inverse_mel.pt: the samples are its learned magnitude + PGHI, and the table
    says so; without one, the run's NNLS start + PGHI (Inverter.for_run)."""
    from sda_lab.data import make_default_dataset
    from sda_lab.representation.inverse_mel import (InverseMelConfig, mel_to_waveform_learned,
                                                    save_inverse_mel)
    from sda_lab.representation.inverse_mel_fit import fit_inverse_mel
    from sda_lab.representation.inverter import Inverter
    from sda_lab.studies.generate import generate_run, load_run, prior_for, sample_sounds

    run_dir = tiny_run(tmp_path)
    spec = AudioSpectrogram(TINY_SPEC)
    plain, _ = generate_run(run_dir, tmp_path / "plain", n=2, seed=1, f0=False)
    assert (plain["inversion"] == Inverter(spec).name).all()
    assert plain["inversion"][0].startswith("NNLS magnitude + PGHI")
    waves = make_default_dataset(1, sample_rate=SR).waveforms[:, :, :SR]  # (5, 1, SR)
    inverse = fit_inverse_mel(spec, waves, InverseMelConfig(hidden=8, kernel_size=3, layers=1,
                                                            nnls_iters=5, batch_size=4,
                                                            max_steps=3))
    save_inverse_mel(run_dir / "inverse_mel.pt", inverse)
    table, _ = generate_run(run_dir, tmp_path / "learned", n=2, seed=1, f0=False)
    assert (table["inversion"] == Inverter(spec, inverse).name).all()
    assert table["inversion"][0].startswith("learned inverse mel")
    run = load_run(run_dir)
    _, mels, heard = sample_sounds(run.model, run.spec, prior_for(run, "gmm", 1), 2, 1,
                                   Inverter(run.spec, inverse))  # heard: (2, 1, samples)
    expected = mel_to_waveform_learned(spec, inverse, mels, "pghi", length=heard.shape[-1],
                                       generator=torch.Generator().manual_seed(1))
    assert torch.allclose(heard, expected, atol=1e-3 * float(expected.abs().max()))
    written, _ = sf.read(tmp_path / "learned" / "sample_000.wav")
    peak = max(1.0, float(heard[0].abs().max()))
    assert np.allclose(written, heard[0, 0].numpy() / peak, atol=2e-4)  # 16-bit PCM


def test_generate_hears_a_run_that_kept_its_harmonic_start_through_that_start(tmp_path):
    """An inverse_mel.pt whose fit did not beat its start (history kept "start") is heard as
    that start: the harmonic magnitude + PGHI, named so in samples.csv, no network."""
    from sda_lab.representation.inverse_mel import (INVERSE_MEL_FILE, InverseMel,
                                                    InverseMelConfig, InverseMelNet,
                                                    save_inverse_mel)
    from sda_lab.representation.inverter import Inverter
    from sda_lab.studies.generate import generate_run, load_run, prior_for, sample_sounds

    run_dir = tiny_run(tmp_path)
    spec = AudioSpectrogram(TINY_SPEC)
    c = spec.config
    config = InverseMelConfig(hidden=8, layers=1, kernel_size=3, nnls_iters=5, start="harmonic")
    save_inverse_mel(run_dir / INVERSE_MEL_FILE, InverseMel(
        InverseMelNet(c.n_mels, c.n_stft, config).eval(), asdict(c), config, {"kept": "start"},
        "harmonic"))
    table, _ = generate_run(run_dir, tmp_path / "o", n=2, seed=1, f0=False)
    said = table["inversion"].tolist()
    assert said == [Inverter(spec, start="harmonic").name] * 2
    assert "harmonic" in said[0] and "learned" not in said[0]
    run = load_run(run_dir)
    prior = prior_for(run, "gmm", 1)
    _, mels, heard = sample_sounds(run.model, run.spec, prior, 2, 1,
                                   Inverter(run.spec, start="harmonic"))  # (2, 1, samples)
    _, _, nnls = sample_sounds(run.model, run.spec, prior, 2, 1, Inverter(run.spec))
    tol = 1e-3 * float(heard.abs().max())
    assert not torch.allclose(heard, nnls, atol=10 * tol)  # the test could tell them apart
    written, _ = sf.read(tmp_path / "o" / "sample_000.wav")
    peak = max(1.0, float(heard[0].abs().max()))
    assert np.allclose(written, heard[0, 0].numpy() / peak, atol=2e-4 + tol)  # 16-bit PCM


def test_generate_says_when_its_samples_are_much_quieter_than_the_training_clips(tmp_path):
    from sda_lab.interface.commands.generate import QUIET_DB, _level_line
    from sda_lab.representation.metrics import loudest_frame_dbfs
    from sda_lab.studies.generate import load_run

    run = load_run(tiny_run(tmp_path))
    train = float(np.median(loudest_frame_dbfs(run.clips.waveforms[run.train_idx], SR).numpy()))
    assert f"the training clips' {train:.1f} dBFS" in _level_line(np.array([train]), run)
    assert "quieter" not in _level_line(np.array([train - QUIET_DB + 1]), run)
    quiet = _level_line(np.array([train - 30, train - 32, 0.0]), run)
    assert "the samples are 30 dB quieter than your sounds" in quiet
