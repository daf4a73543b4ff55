"""The learned inverse mel (sda_lab.representation.inverse_mel): trains, saves, loads, inverts,
refuses bad input."""

from dataclasses import replace

import pytest
import torch

from sda_lab.data import make_default_dataset
from sda_lab.representation.inverse_mel import (InverseMelConfig, load_inverse_mel,
                                                mel_to_magnitude, mel_to_waveform_learned,
                                                save_inverse_mel, stft_magnitude)
from sda_lab.representation.inverse_mel_fit import fit_inverse_mel
from sda_lab.representation.metrics import spectral_convergence
from sda_lab.representation.spectrogram import AudioSpectrogram, SpectrogramConfig

SPEC = AudioSpectrogram(SpectrogramConfig(sample_rate=16_000, n_fft=512, hop_length=128,
                                          n_mels=32, scale="db", nnls_iters=10,
                                          griffin_lim_iters=4))
TINY = InverseMelConfig(hidden=16, kernel_size=3, layers=1, nnls_iters=10, batch_size=4,
                        lr=3e-3, max_steps=30)


@pytest.fixture(scope="module")
def clips():
    return make_default_dataset(2, seed=0, sample_rate=16_000).waveforms[:, :, :8000]


@pytest.fixture(scope="module")
def inverse(clips):
    return fit_inverse_mel(SPEC, clips, TINY)


def test_training_lowers_the_loss_below_the_nnls_start(inverse):
    h = inverse.history
    assert h["steps"] == TINY.max_steps
    assert sum(h["loss"][-5:]) / 5 < h["start_loss"]


@pytest.mark.parametrize("start", ["nnls", "harmonic", "auto"])
def test_untrained_inverse_is_exactly_its_start(clips, start):
    untrained = fit_inverse_mel(SPEC, clips, replace(TINY, max_steps=None, max_seconds=1e-9,
                                                     start=start))
    assert untrained.history["steps"] == 0
    assert untrained.start == (start if start != "auto" else untrained.start)
    assert untrained.start in ("nnls", "harmonic")
    mel = SPEC.waveform_to_mel(clips[:2])
    begin = mel_to_magnitude(SPEC, mel, start=untrained.start)  # TINY's 10 NNLS steps
    assert torch.allclose(mel_to_magnitude(SPEC, mel, untrained), begin, rtol=1e-4, atol=1e-3)


def sawtooths(f0s, sr=16_000, seconds=0.5):
    t = torch.arange(int(sr * seconds)) / sr
    x = torch.stack([sum(torch.sin(2 * torch.pi * f * h * t) / h
                         for h in range(1, int(7000 // f) + 1)) for f in f0s])
    return (0.3 * x / x.abs().amax(dim=1, keepdim=True)).unsqueeze(1)  # (N, 1, samples)


def test_auto_start_takes_the_harmonic_start_on_tones_and_scores_both():
    tones = sawtooths([98.0, 123.0, 147.0, 165.0, 196.0, 220.0])
    inv = fit_inverse_mel(SPEC, tones[:4], replace(TINY, max_steps=1), val_waveforms=tones[4:])
    sc = inv.history["start_sc"]
    assert set(sc) == {"nnls", "harmonic"} and inv.start == "harmonic"
    assert sc["harmonic"] < sc["nnls"]
    # the audio of all six clips through the start, PGHI and fast Griffin-Lim chose it
    y = mel_to_waveform_learned(SPEC, None, SPEC.waveform_to_mel(tones), "pghi",
                                tones.shape[-1], generator=torch.Generator().manual_seed(0),
                                start="harmonic")
    by_hand = spectral_convergence(tones, y, SPEC.config.n_fft, SPEC.config.hop_length).mean()
    assert sc["harmonic"] == pytest.approx(float(by_hand), rel=1e-4)
    fixed = fit_inverse_mel(SPEC, tones[:4], replace(TINY, max_steps=1, start="nnls"))
    assert fixed.start == "nnls" and fixed.history["start_sc"] == {}


def test_save_load_round_trip_gives_identical_outputs(inverse, clips, tmp_path):
    path = save_inverse_mel(tmp_path / "inv.pt", inverse)
    back = load_inverse_mel(path)
    mel = SPEC.waveform_to_mel(clips[:3])
    assert torch.equal(mel_to_magnitude(SPEC, mel, inverse), mel_to_magnitude(SPEC, mel, back))
    assert back.config == inverse.config and back.history["steps"] == inverse.history["steps"]
    assert back.start == inverse.start
    assert [p.name for p in tmp_path.iterdir()] == ["inv.pt"]  # no temporary file left
    payload = torch.load(path, weights_only=True)
    del payload["start"]  # a file written before the harmonic start
    torch.save(payload, tmp_path / "old.pt")
    assert load_inverse_mel(tmp_path / "old.pt").start == "nnls"


def test_waveform_through_each_phase_start(inverse, clips):
    x = clips[:2]
    mel = SPEC.waveform_to_mel(x)
    for phase in ("pghi", "random", "zero"):
        y = mel_to_waveform_learned(SPEC, inverse, mel, phase=phase, length=x.shape[-1])
        assert y.shape == x.shape and torch.isfinite(y).all()
    assert stft_magnitude(SPEC, x).shape == (2, SPEC.config.n_stft, mel.shape[-1])


def test_bad_input_is_one_clear_line(inverse, clips, tmp_path):
    mel = SPEC.waveform_to_mel(clips[:1])
    cases = [
        (lambda: mel_to_waveform_learned(SPEC, inverse, mel, phase="onsets"), "phase must be"),
        (lambda: mel_to_magnitude(SPEC, mel[:, :, :16], inverse), "32 mel bands"),
        (lambda: mel_to_magnitude(AudioSpectrogram(replace(SPEC.config, scale="log1p")), mel,
                                  inverse), "another spectrogram config"),
        (lambda: fit_inverse_mel(SPEC, clips[:, 0], TINY), "shape"),
        (lambda: InverseMelConfig(kernel_size=4), "kernel_size must be odd"),
        (lambda: InverseMelConfig(start="lstsq"), "start must be one of"),
        (lambda: mel_to_magnitude(SPEC, mel, start="comb"), "start must be one of"),
        (lambda: load_inverse_mel(tmp_path / "missing.pt"), "not found"),
    ]
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    cases.append((lambda: load_inverse_mel(tmp_path / "junk.pt"), "not a readable inverse mel"))
    torch.save({"format": 1}, tmp_path / "other.pt")
    cases.append((lambda: load_inverse_mel(tmp_path / "other.pt"), "not an sda-lab inverse mel"))
    for call, message in cases:
        with pytest.raises((ValueError, FileNotFoundError), match=message) as info:
            call()
        assert "\n" not in str(info.value), str(info.value)
    # a run whose inverse_mel.pt is unreadable is heard through the NNLS start, said once;
    # asked for the learned inverse by name, it is refused
    from sda_lab.representation.inverse_mel import INVERSE_MEL_FILE
    from sda_lab.representation.inverter import Inverter

    (tmp_path / INVERSE_MEL_FILE).write_bytes(b"truncated")
    with pytest.warns(UserWarning, match="not a readable inverse mel.*heard through the NNLS"):
        assert Inverter.for_run(tmp_path, SPEC).inverse is None
    with pytest.raises(ValueError, match="not a readable inverse mel"):
        Inverter.for_run(tmp_path, SPEC, learned=True)


def test_validation_keeps_the_best_weights_and_never_loses_to_its_start(clips):
    train, val = clips[:6], clips[6:]
    wild = fit_inverse_mel(SPEC, train, replace(TINY, lr=3.0, max_steps=6), val_waveforms=val,
                           eval_every=2)
    h = wild.history
    assert [s for s, _ in h["val_loss"]] == [0, 2, 4, 6]
    best = min(h["val_loss"], key=lambda p: p[1])
    assert h["best_step"] == best[0]
    assert best[1] <= h["val_loss"][0][1]  # the start (step 0) is a candidate
    if h["best_step"] == 0:  # a diverged run falls back to exactly its start
        mel = SPEC.waveform_to_mel(val)
        assert torch.allclose(mel_to_magnitude(SPEC, mel, wild),
                              mel_to_magnitude(SPEC, mel, start=wild.start), rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="eval_every"):
        fit_inverse_mel(SPEC, train, TINY, val_waveforms=val, eval_every=0)


def _blurred(mel: torch.Tensor) -> torch.Tensor:
    """A model's kind of error: each mel smoothed over 3 bands and 3 frames, and quieter."""
    return torch.nn.functional.avg_pool2d(mel, 3, stride=1, padding=1,
                                          count_include_pad=False) - 0.1  # (B, 1, n_mels, T)


def test_fine_tuning_on_given_mels_starts_from_the_inverse_and_learns_to_hear_them(inverse,
                                                                                     clips):
    from sda_lab.representation.inverse_mel import _floor
    from sda_lab.representation.inverse_mel_fit import magnitude_loss

    train, val = clips[:6], clips[6:]
    blurred, val_blurred = (_blurred(SPEC.waveform_to_mel(x)) for x in (train, val))
    other = replace(TINY, hidden=8, max_steps=40, start="harmonic")  # init's shape and start win
    tuned = fit_inverse_mel(SPEC, train, other, val_waveforms=val, eval_every=10,
                            mels=blurred, val_mels=val_blurred, init=inverse)
    h = tuned.history
    assert h["inputs"] == "given" and inverse.history["inputs"] == "analysed"
    assert tuned.start == inverse.start and tuned.config.hidden == TINY.hidden

    def loss(inv):
        est = mel_to_magnitude(SPEC, val_blurred, inv)  # (B, n_stft, T)
        return float(magnitude_loss(est, stft_magnitude(SPEC, val), _floor(SPEC)))

    assert h["val_loss"][0][1] == pytest.approx(loss(inverse), rel=1e-4)  # step 0: the init
    assert loss(tuned) < loss(inverse)  # it hears blurred mels better than the inverse it began as
    with pytest.raises(ValueError, match=r"mels: expected one mel .* per clip, shape \(6, 1, 32"):
        fit_inverse_mel(SPEC, train, TINY, mels=blurred[:3], init=inverse)


def test_many_clips_are_inverted_under_a_bar_to_the_same_sound(inverse, clips, capsys):
    """Past PROGRESS_CLIPS clips ``progress=True`` inverts them in parts under a bar: each
    clip's inversion is its own, only the random phases of its quietest bins are drawn in
    another order, so every clip sounds as in one call."""
    from sda_lab.representation.inverter import PROGRESS_CLIPS, Inverter

    inverter = Inverter(SPEC, inverse)
    mel = SPEC.waveform_to_mel(torch.cat([clips, clips])[:PROGRESS_CLIPS + 3])  # (19, 1, M, T)
    whole = inverter(mel, clips.shape[-1], torch.Generator().manual_seed(0))
    assert "invert" not in capsys.readouterr().err
    parts = inverter(mel, clips.shape[-1], torch.Generator().manual_seed(0), progress=True)
    assert "invert" in capsys.readouterr().err  # the bar
    torch.testing.assert_close(parts[:PROGRESS_CLIPS], whole[:PROGRESS_CLIPS])  # the first part
    sc = spectral_convergence(whole, parts, SPEC.config.n_fft, SPEC.config.hop_length)  # (19,)
    assert float(sc.max()) < 0.02, sc
