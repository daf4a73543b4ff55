"""``python -m sda_lab listen``: a file through a tiny run's mel (and VAE), as WAV, with scores."""

import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sda_lab.interface.cli import main
from sda_lab.model.vae import ConvVAE, VAEConfig
from sda_lab.representation.inverse_mel import (INVERSE_MEL_FILE, InverseMelConfig,
                                                fit_inverse_mel, save_inverse_mel)
from sda_lab.representation.spectrogram import AudioSpectrogram, SpectrogramConfig
from sda_lab.training.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[1]
SPEC = AudioSpectrogram(SpectrogramConfig(sample_rate=16_000, n_fft=512, hop_length=128,
                                          n_mels=32, scale="db", nnls_iters=5,
                                          griffin_lim_iters=4))
CLIP = 15 * 128  # samples of a 16-frame clip (what the model decodes)


def make_run(folder: Path, learned: bool) -> Path:
    torch.manual_seed(0)
    model = ConvVAE.from_config(VAEConfig(latent_dim=4, dropout=0.0, n_mels=32, n_frames=16,
                                          channels=(4, 8)))
    save_checkpoint(folder / "checkpoint.pt", model, None, None,
                    extra={"spectrogram_config": asdict(SPEC.config)})
    if learned:
        t = torch.arange(4 * CLIP).float() / 16_000
        waves = (0.3 * torch.sin(2 * np.pi * 440 * t)).view(4, 1, CLIP)  # (4, 1, CLIP)
        inverse = fit_inverse_mel(SPEC, waves, InverseMelConfig(
            hidden=8, kernel_size=3, layers=1, nnls_iters=5, batch_size=2, max_steps=2))
        save_inverse_mel(folder / INVERSE_MEL_FILE, inverse)
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    return make_run(base / "plain", False), make_run(base / "learned", True)


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """A stereo 22.05 kHz file: the command must mix it down and resample it."""
    path = tmp_path_factory.mktemp("audio") / "tone.wav"
    t = np.arange(22_050) / 22_050
    tone = 0.4 * np.sin(2 * np.pi * 330 * t) * np.exp(-3 * t)
    sf.write(path, np.stack([tone, 0.5 * tone], axis=1), 22_050)
    return path


def test_mel_path_writes_the_first_seconds_and_prints_scores(runs, audio, tmp_path, capsys):
    out = tmp_path / "heard.wav"
    assert main(["listen", str(runs[0]), str(audio), "--out", str(out), "--seconds", "0.25"]) == 0
    y, sr = sf.read(out)
    assert sr == 16_000 and y.shape == (4000,)
    printed = capsys.readouterr().out
    assert "NNLS default" in printed and "spectral convergence" in printed
    sc = float(printed.split("spectral convergence ")[1].split(",")[0])
    assert 0 < sc < 1  # a 4-iteration inversion is rough, but it is the input's sound


def test_vae_path_uses_the_learned_inverse_across_clips(runs, audio, tmp_path, capsys):
    out = tmp_path / "vae.wav"
    n = CLIP + 700  # two clips, the last one padded
    code = main(["listen", str(runs[1]), str(audio), "--out", str(out), "--through", "vae",
                 "--seconds", str(n / 16_000)])
    assert code == 0
    assert sf.info(out).frames == n
    assert "learned inverse mel" in capsys.readouterr().out
    assert main(["listen", str(runs[1]), str(audio), "--out", str(out), "--inversion",
                 "nnls"]) == 0
    assert "NNLS default" in capsys.readouterr().out
    assert sf.info(out).frames == CLIP  # default: one clip of the model


def one_line_error(capsys, argv, code):
    with pytest.raises(SystemExit) if code == 2 else _nothing():
        assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("sda-lab: error:") and "\n" not in err, err
    return err


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_errors_are_one_line_naming_the_path_or_flag(runs, audio, tmp_path, capsys):
    out = str(tmp_path / "o.wav")
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    assert "RUN" in one_line_error(capsys, ["listen", str(tmp_path / "nope"), str(audio),
                                            "--out", out], 1)
    assert "FILE: no such file" in one_line_error(
        capsys, ["listen", str(runs[0]), str(tmp_path / "missing.wav"), "--out", out], 1)
    assert "not readable audio" in one_line_error(capsys, ["listen", str(runs[0]), str(junk),
                                                           "--out", out], 1)
    assert "--out" in one_line_error(capsys, ["listen", str(runs[0]), str(audio), "--out",
                                              str(tmp_path / "o.mp3")], 1)
    assert "--inversion learned" in one_line_error(
        capsys, ["listen", str(runs[0]), str(audio), "--out", out, "--inversion", "learned"], 1)
    assert "--through" in one_line_error(capsys, ["listen", str(runs[0]), str(audio), "--out",
                                                  out, "--through", "latent"], 2)
    assert "--seconds" in one_line_error(capsys, ["listen", str(runs[0]), str(audio), "--out",
                                                  out, "--seconds", "-1"], 2)
    assert not Path(out).exists()


def test_the_real_command_lists_listen_and_fails_in_one_line(tmp_path):
    helped = subprocess.run([sys.executable, "-m", "sda_lab", "listen", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0 and "--through" in helped.stdout
    failed = subprocess.run([sys.executable, "-m", "sda_lab", "listen", str(tmp_path / "none"),
                             str(tmp_path / "x.wav"), "--out", str(tmp_path / "o.wav")],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1 and "RUN" in failed.stderr
