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
                                                save_inverse_mel)
from sda_lab.representation.inverse_mel_fit import fit_inverse_mel
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
    assert "NNLS magnitude + PGHI" in printed and "spectral convergence" in printed
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
                 "nnls", "--overwrite"]) == 0
    assert "NNLS magnitude + PGHI" in capsys.readouterr().out
    assert sf.info(out).frames == CLIP  # default: one clip of the model
    before = out.read_bytes()
    code, err = main(["listen", str(runs[1]), str(audio), "--out", str(out)]), (
        capsys.readouterr().err)
    assert code == 1 and f"--out: {out} exists; choose another name or pass --overwrite" in err
    assert out.read_bytes() == before  # nothing lost


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


def test_errors_are_one_line_naming_the_path_or_flag(runs, audio, tmp_path, capsys,
                                                     monkeypatch):
    out = str(tmp_path / "o.wav")
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    assert "RUN" in one_line_error(capsys, ["listen", str(tmp_path / "nope"), str(audio),
                                            "--out", out], 1)
    assert "FILE: no such file" in one_line_error(
        capsys, ["listen", str(runs[0]), str(tmp_path / "missing.wav"), "--out", out], 1)
    assert "FILE: expected an audio file, got a folder" in one_line_error(
        capsys, ["listen", str(runs[0]), str(tmp_path), "--out", out], 1)
    (tmp_path / "loop_a.wav").symlink_to(tmp_path / "loop_b.wav")
    (tmp_path / "loop_b.wav").symlink_to(tmp_path / "loop_a.wav")
    assert "FILE: a symlink that leads to no file (broken, or a loop)" in one_line_error(
        capsys, ["listen", str(runs[0]), str(tmp_path / "loop_a.wav"), "--out", out], 1)
    real_open = open

    def refuse(path, *args, **kwargs):  # as the OS refuses a file without read permission
        if str(path) == str(audio):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr("builtins.open", refuse)
        line = one_line_error(capsys, ["listen", str(runs[0]), str(audio), "--out", out], 1)
    assert line == f"sda-lab: error: FILE: permission denied: {audio}"
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
    eight = tmp_path / "eight.wav"  # 8 Hz: resampling it would take gigabytes, and it is no audio
    sf.write(eight, np.full(16, 0.1, np.float32), 8)
    assert "sample rate 8 Hz: expected at least 1000 Hz" in one_line_error(
        capsys, ["listen", str(runs[0]), str(eight), "--out", out], 1)
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


@pytest.fixture(scope="module")
def loud(tmp_path_factory):
    """Full-scale noise at the run's rate, stored exactly (float WAV): its reconstruction
    peaks above 1, so the writer limits it."""
    path = tmp_path_factory.mktemp("loud") / "noise.wav"
    rng = np.random.default_rng(0)
    sf.write(path, rng.uniform(-1, 1, 8000), 16_000, subtype="FLOAT")
    return path


def test_figures_are_those_of_the_file_as_written(runs, loud, tmp_path, capsys):
    from sda_lab.representation.metrics import log_spectral_distance, spectral_convergence

    out = tmp_path / "heard.wav"
    assert main(["listen", str(runs[0]), str(loud), "--out", str(out), "--seconds", "0.5"]) == 0
    printed = capsys.readouterr().out
    assert "peaks limited by" in printed  # the case that matters: the writer changed it
    x = torch.from_numpy(sf.read(loud)[0]).float().view(1, 1, -1)
    y = torch.from_numpy(sf.read(out)[0]).float().view(1, 1, -1)  # what the file holds
    sc = float(spectral_convergence(x, y, 512, 128)[0])
    lsd = float(log_spectral_distance(x, y, 512, 128)[0])
    level = 20 * np.log10(float(y.pow(2).mean().sqrt() / x.pow(2).mean().sqrt()))
    said = printed.split("spectral convergence ")[1]
    assert abs(float(said.split(",")[0]) - sc) < 2e-3
    assert abs(float(said.split("log-spectral distance ")[1].split(" dB")[0]) - lsd) < 0.02
    assert abs(float(said.split("level ")[1].split(" dB")[0]) - level) < 0.06
    assert level < -0.5  # scaled down: the figure says the file is quieter than the input


def test_a_silent_input_says_the_ratios_are_undefined(runs, tmp_path, capsys):
    silent = tmp_path / "silence.wav"
    sf.write(silent, np.zeros(8000), 16_000)
    out = tmp_path / "heard.wav"
    assert main(["listen", str(runs[0]), str(silent), "--out", str(out)]) == 0
    lines = [s for s in capsys.readouterr().out.splitlines() if "spectral convergence" in s]
    assert len(lines) == 1 and "undefined" in lines[0] and "silent" in lines[0], lines
    assert not any(ch.isdigit() for ch in lines[0].split("undefined")[0])  # no number given
    assert out.is_file()


def test_an_out_that_is_an_input_is_refused_before_any_work(runs, tmp_path, capsys):
    folder = tmp_path / "rec"
    folder.mkdir()
    original = folder / "take.wav"
    sf.write(original, 0.3 * np.sin(np.arange(8000) / 5.0), 16_000)
    before = original.read_bytes()
    (folder / "link.wav").symlink_to(original)
    import os

    os.link(original, folder / "hard.wav")
    for out in (original, folder / "sub" / ".." / "take.wav", folder / "link.wav",
                folder / "hard.wav"):
        (folder / "sub").mkdir(exist_ok=True)
        err = one_line_error(capsys, ["listen", str(runs[0]), str(original), "--out", str(out)],
                             1)
        assert "--out" in err and "FILE" in err and "input" in err, err
    # the input named through the link, the output the real path: refused too
    err = one_line_error(capsys, ["listen", str(runs[0]), str(folder / "link.wav"), "--out",
                                  str(original)], 1)
    assert "--out" in err
    assert original.read_bytes() == before


def test_posterior_steps_without_the_vae_is_one_line(runs, audio, tmp_path, capsys):
    out = tmp_path / "o.wav"
    err = one_line_error(capsys, ["listen", str(runs[0]), str(audio), "--out", str(out),
                                  "--posterior-steps", "5"], 1)
    assert "--posterior-steps: expected with --through vae" in err and "got --through mel" in err
    assert not out.exists()


@pytest.mark.parametrize("seconds, code, expected", [("1e306", 2, "at most 3600"),
                                                     ("inf", 2, "at most 3600"),
                                                     ("1e-9", 1, "FFT window")])
def test_seconds_out_of_range_is_one_line_naming_seconds(runs, audio, tmp_path, capsys,
                                                         seconds, code, expected):
    out = tmp_path / "o.wav"
    err = one_line_error(capsys, ["listen", str(runs[0]), str(audio), "--out", str(out),
                                  "--seconds", seconds], code)
    assert "--seconds" in err and expected in err, err
    assert seconds in err or repr(float(seconds)) in err, err
    assert "FILE" not in err
    assert not out.exists()


def test_listen_hears_through_the_runs_one_inverter(runs, audio, tmp_path, capsys):
    """What listen writes is the run's Inverter (as the run's audio figures and the export hear
    it), through the one writer's limiter."""
    from sda_lab.core._io import limit_peaks
    from sda_lab.interface.commands.listen import _read
    from sda_lab.representation.inverter import Inverter

    out = tmp_path / "heard.wav"
    assert main(["listen", str(runs[1]), str(audio), "--out", str(out), "--seed", "3"]) == 0
    x = _read(str(audio), 16_000, CLIP)  # (1, 1, CLIP)
    inverter = Inverter.for_run(runs[1], SPEC)
    assert inverter.inverse is not None
    y = inverter(SPEC.waveform_to_mel(x), CLIP, generator=torch.Generator().manual_seed(3))
    expected = limit_peaks(y, 16_000)[0, 0].numpy()
    written, _ = sf.read(out)
    tol = max(1e-3 * float(np.abs(expected).max()), 2 / 32767)  # float sums, 16-bit rounding
    assert np.abs(written - expected).max() < tol
    assert inverter.name in capsys.readouterr().out


@pytest.mark.parametrize("sc, level, says", [
    (1.2, -2.0, "spectral convergence 1.200 (further from the input than silence is)"),
    (0.4, 0.01, "level +0.0 dB (at the input's level;"),
    (0.4, 2.0, "level +2.0 dB (louder;"),
    (0.4, -0.6, "level -0.6 dB (at the input's level;"),  # under 1 dB, as the verdict says
])
def test_listen_says_what_its_figures_mean(monkeypatch, capsys, sc, level, says):
    import argparse

    from sda_lab.interface.commands import listen as command

    figures = {"spectral_convergence": sc, "log_spectral_distance_db": 3.0, "level_db": level,
               "silent_input": False, "input_dbfs": -10.0, "inversion": "x", "samples": 100,
               "sample_rate": 100, "file_seconds": None, "out": "o.wav", "limited_db": 0.0,
               "posterior_steps": 100}
    monkeypatch.setattr(command, "listen", lambda *a, **k: figures)
    args = argparse.Namespace(run="r", file="f", out="o.wav", through="vae", seconds=None,
                              inversion="auto", seed=0, posterior_steps=None, overwrite=False)
    assert command.run(args) == 0
    out = capsys.readouterr().out
    assert says in out and ("than silence" in out) == (sc >= 1)
    assert "through vae, the posterior mean refined by 100 steps" in out


def test_too_many_posterior_steps_and_a_ctrl_c_are_one_line(runs, audio, tmp_path, capsys,
                                                           monkeypatch):
    from sda_lab.interface.commands import listen as command

    out = tmp_path / "o.wav"
    err = one_line_error(capsys, ["listen", str(runs[0]), str(audio), "--out", str(out),
                                  "--through", "vae", "--posterior-steps", "10001"], 2)
    assert "--posterior-steps: expected an integer from 0 to 10000, got '10001'" in err, err

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "listen", interrupted)
    assert main(["listen", str(runs[0]), str(audio), "--out", str(out)]) == 130
    assert capsys.readouterr().err.strip() == "sda-lab: interrupted; no file was half-written"
    assert not out.exists()
