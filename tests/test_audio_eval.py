"""What a run sounds like: audio figures of the three paths and the verdict read from them."""

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from sda_lab.core._io import limit_peaks
from sda_lab.representation.inverter import Inverter
from sda_lab.representation.spectrogram import AudioSpectrogram, SpectrogramConfig
from sda_lab.representation.metrics import level_db
from sda_lab.training.audio_eval import (AVERAGE_RATIO, LEARNED_SHARE, AudioEvaluation,
                                        evaluate_audio, judge, share_of_the_way)

SPEC = AudioSpectrogram(SpectrogramConfig(sample_rate=16_000, n_fft=512, hop_length=128,
                                          n_mels=32, scale="db"))


class Stub(nn.Module):
    """A model whose posterior mean is the mel itself and whose decoder returns ``f(mean)``."""

    def __init__(self, decode=lambda mu: mu):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.shape, self.f = None, decode
        self.config = SimpleNamespace(n_mels=SPEC.config.n_mels)  # what refining checks

    def encode(self, x):
        self.shape = x.shape
        return x.flatten(1), x.flatten(1)

    def decode(self, mu, shape):
        return self.f(mu.view(shape))


def clips(n=4, seconds=0.5):
    g = torch.Generator().manual_seed(0)
    t = torch.arange(int(16_000 * seconds)) / 16_000
    waves = []
    for i in range(n):
        f0 = 220.0 * (1 + i)
        tone = sum(torch.sin(2 * math.pi * f0 * k * t) / k for k in range(1, 6))
        waves.append(0.3 * tone * torch.exp(-3 * t) + 0.01 * torch.randn(t.shape, generator=g))
    return torch.stack(waves).unsqueeze(1)  # (n, 1, samples)


def run(model, waves, indices=(2, 3)):
    files = [f"f{i}.wav" for i in range(len(waves))]
    train = SPEC.waveform_to_mel(waves[:2])  # (2, 1, 32, T)
    return evaluate_audio(model, SPEC, waves, files, list(indices), train, Inverter(SPEC))


def test_a_model_that_returns_its_input_sounds_like_the_mel_round_trip():
    ev = run(Stub(), clips())
    assert list(ev.files["file"]) == ["f2.wav", "f3.wav"] and ev.on == "validation"
    # the same mels through the same inversion: equal but for the rounding of an iterative
    # inversion (FISTA, Griffin-Lim) on tensors of another memory layout
    for figure, tol in (("spectral_convergence", 5e-3), ("log_spectral_distance_db", 0.05),
                        ("level_db", 0.05)):
        assert ev.mean("model", figure) == pytest.approx(ev.mean("mel_round_trip", figure),
                                                         abs=tol)
    assert ev.sc_ratio == pytest.approx(1.0, abs=0.01)
    assert ev.mean("model", "spectral_convergence") < 0.5 * ev.mean("average_sound",
                                                                     "spectral_convergence")
    v = judge(ev, active_units=3)
    assert v.kind == "learned" and ev.share == pytest.approx(1.0, abs=0.02)
    assert ("as close as the mel round trip" in v.sentence if ev.share >= 1 else
            "1.0x the error of the mel round trip" in v.sentence)
    assert ev.inversion == "NNLS magnitude + PGHI + fast Griffin-Lim"
    summary = ev.summary()
    assert summary["files_scored"] == 2 and len(summary["files"]) == 2
    assert summary["model"]["level_db_worst_file"] == pytest.approx(ev.worst_level_db())


def test_a_model_that_plays_the_average_is_at_the_average_and_no_units_is_collapse():
    waves = clips()
    mean = SPEC.waveform_to_mel(waves[:2]).mean(0, keepdim=True)
    ev = run(Stub(lambda mu: mean.expand_as(mu)), waves)
    assert ev.mean("model", "spectral_convergence") == pytest.approx(
        ev.mean("average_sound", "spectral_convergence"), rel=1e-4)
    assert judge(ev, active_units=3).kind == "at the average"
    said = judge(ev, active_units=3).sentence  # what it sounds like, even at the average
    assert "the error of the mel round trip" in said and "(worst file" in said
    assert judge(ev, active_units=0).kind == "collapsed"


def test_the_average_sound_is_heard_through_the_round_trip_inversion_not_the_models():
    class Loud:  # an inverse fitted to the model's mels, far off on anything else
        name = "loud"

        def __call__(self, mel, length):
            return 30 * Inverter(SPEC)(mel, length)

    waves = clips()
    files = [f"f{i}.wav" for i in range(len(waves))]
    train = SPEC.waveform_to_mel(waves[:2])
    ev = evaluate_audio(Stub(), SPEC, waves, files, [2, 3], train, Loud(),
                        round_trip_inverter=Inverter(SPEC))
    plain = run(Stub(), waves)
    for figure in ("average_sound_spectral_convergence", "average_sound_level_db"):
        assert list(ev.files[figure]) == pytest.approx(list(plain.files[figure]), abs=0.05)
    assert ev.mean("model", "level_db") > plain.mean("model", "level_db") + 5  # the model's path
    assert ev.inversion == "loud (the mel round trip: NNLS magnitude + PGHI + fast Griffin-Lim)"


def test_a_quieter_model_is_heard_quieter_and_a_clipping_one_as_written():
    waves = clips()
    quiet = run(Stub(lambda mu: (mu - 0.1).clamp(min=0)), waves)  # 10 dB down (-100 dB floor)
    assert quiet.mean("model", "level_db") == pytest.approx(-10, abs=1.0)
    assert "dB quieter than the input" in judge(quiet, 3).sentence
    loud = run(Stub(lambda mu: (mu + 0.3).clamp(max=1)), waves)  # 30 dB up: it would clip
    x = waves[2:4]  # the scored clips, inverted in one batch as the evaluation does
    y = Inverter(SPEC)((SPEC.waveform_to_mel(x) + 0.3).clamp(max=1), x.shape[-1])
    written = limit_peaks(y, SPEC.config.sample_rate)[1:]
    x = x[1:]
    assert 0.9 < float(written.abs().max()) <= 1.0 + 1e-6
    # the iterative inversion differs in rounding between calls; limited peaks feel it a little
    assert loud.files["model_level_db"].iloc[1] == pytest.approx(float(level_db(x, written)[0]),
                                                                 abs=0.1)
    assert float(level_db(x, y[1:])[0]) > loud.files["model_level_db"].iloc[1] + 10  # unlimited


def test_every_figure_is_judged_by_the_threshold():
    def ev(model_sc, avg_sc, mel_sc=0.2, model_lsd=3.0):
        import pandas as pd

        row = {"file": "a", "clips": 1}
        for path, sc in (("model", model_sc), ("mel_round_trip", mel_sc),
                         ("average_sound", avg_sc)):
            row.update({f"{path}_spectral_convergence": sc, f"{path}_log_spectral_distance_db": 3.0,
                        f"{path}_level_db": -0.5})
        row["model_log_spectral_distance_db"] = model_lsd
        return AudioEvaluation(pd.DataFrame([row]), "validation", "x", 0.0)

    # between the average sound (0.8) and the mel round trip (0.2): halfway is SC 0.5
    assert judge(ev(AVERAGE_RATIO * 0.8 - 1e-6, 0.8), 2).kind == "partly learned"
    assert judge(ev(AVERAGE_RATIO * 0.8, 0.8), 2).kind == "at the average"
    assert judge(ev(0.5 + 1e-6, 0.8), 2).kind == "partly learned"
    assert judge(ev(0.5 - 1e-6, 0.8), 2).kind == "learned"
    assert share_of_the_way(0.5, 0.2, 0.8) == pytest.approx(LEARNED_SHARE)
    assert "67% of the way from nothing learned" in judge(ev(0.4, 0.8), 2).sentence
    assert "at the input's level" in judge(ev(0.4, 0.8), 2).sentence
    # an average sound far louder than a quiet file: nothing learned is silence's 1.0, so a
    # model that plays about silence is at the average, not "learned" (a near-silent file)
    assert ev(0.997, 183.0, 0.516).nothing_learned_sc == 1.0
    assert judge(ev(0.997, 183.0, 0.516), 2).kind == "at the average"
    # the mel round trip no closer than the average sound: no share, no model to tell apart
    assert math.isnan(ev(0.1, 0.128, 0.129).share)
    assert "cannot be told apart" in judge(ev(0.1, 0.128, 0.129), 2).sentence
    # a model as close as the mel round trip (or closer), or a perfect round trip
    assert "as close as the mel round trip" in judge(ev(0.15, 0.8), 2).sentence
    assert judge(ev(0.0, 0.8, 0.0), 2).kind == "learned"
    assert "than silence" not in judge(ev(0.4, 0.8), 2).sentence
    # the verdict reads the spectral convergence; a log-spectral distance further than the
    # average sound's (quiet bins) is said beside it, not hidden
    assert "log-spectral distance" not in judge(ev(0.4, 0.8), 2).sentence
    assert "further than the average sound's (3.5 against 3.0 dB)" in judge(
        ev(0.4, 0.8, model_lsd=3.5), 2).sentence


def test_a_short_file_is_scored_without_the_zeros_that_filled_its_clip():
    from sda_lab.representation.metrics import log_spectral_distance

    from sda_lab.training.audio_eval import _sounding

    waves = clips()
    waves[2, :, 3000:] = 0  # a 3000-sample one-shot, zero-padded to its 8000-sample clip
    ev = run(Stub(), waves)
    x = waves[2:4]  # the scored clips, inverted in one batch as the evaluation does
    y = limit_peaks(Inverter(SPEC)(SPEC.waveform_to_mel(x), x.shape[-1]), 16_000)
    n = _sounding(x[:1], SPEC.config.n_fft)
    assert n == 3000 and _sounding(torch.zeros(1, 1, 800), 512) == 800
    trimmed = float(log_spectral_distance(x[:1, :, :n], y[:1, :, :n], 512, 128)[0])
    padded = float(log_spectral_distance(x[:1], y[:1], 512, 128)[0])
    got = ev.files["mel_round_trip_log_spectral_distance_db"].iloc[0]
    assert got == pytest.approx(trimmed, abs=0.1) and abs(padded - trimmed) > 0.5


def test_a_file_further_than_silence_is_said_whatever_the_mean():
    import pandas as pd

    rows = []
    for name, model_sc in (("a", 0.2), ("b", 0.3), ("c", 1.3)):
        row = {"file": name, "clips": 1}
        for path, sc in (("model", model_sc), ("mel_round_trip", 0.15), ("average_sound", 0.95)):
            row.update({f"{path}_spectral_convergence": sc,
                        f"{path}_log_spectral_distance_db": 3.0, f"{path}_level_db": 0.0})
        rows.append(row)
    verdict = judge(AudioEvaluation(pd.DataFrame(rows), "validation", "x", 0.0), 2)
    assert verdict.kind == "partly learned"  # mean 0.6 of 0.95 .. 0.15
    assert "1 of 3 files came out further from the input than silence is" in verdict.sentence
    assert "up to 1.30" in verdict.sentence


def test_nothing_to_score_is_one_line():
    with pytest.raises(ValueError, match="expected clips to score, got none"):
        run(Stub(), clips(), indices=())


def test_a_refined_posterior_is_heard_and_the_encoders_mean_beside_it():
    from sda_lab.training.config import TrainConfig

    class Biased(Stub):  # the encoder's mean 0.15 below the mel; the decoder returns its input
        def encode(self, x):
            return x.flatten(1) - 0.15, torch.zeros_like(x.flatten(1))

    waves = clips()
    files = [f"f{i}.wav" for i in range(len(waves))]
    train = SPEC.waveform_to_mel(waves[:2])
    config = TrainConfig(kl_weight=0.0, free_bits=0.0, posterior_steps=60)
    ev = evaluate_audio(Biased(), SPEC, waves, files, [2, 3], train, Inverter(SPEC),
                        train_config=config)
    plain = evaluate_audio(Biased(), SPEC, waves, files, [2, 3], train, Inverter(SPEC))
    assert ev.paths[-1] == "encoder_mean" and plain.paths == ("model", "mel_round_trip",
                                                              "average_sound")
    # the encoder's mean is what the unrefined run hears: 15 dB quiet
    assert list(ev.files["encoder_mean_level_db"]) == pytest.approx(
        list(plain.files["model_level_db"]), abs=0.05)
    assert plain.mean("model", "level_db") < -10
    # refined, the clips come back to the mel round trip
    assert ev.mean("model", "level_db") == pytest.approx(ev.mean("mel_round_trip", "level_db"),
                                                         abs=0.5)
    assert ev.sc_ratio < 1.1 < plain.sc_ratio
    summary = ev.summary()
    assert summary["posterior_steps"] == 60 and "level_db_worst_file" in summary["encoder_mean"]
    assert "encoder mean" in ev.table().index


def test_the_train_command_prints_the_encoders_mean_beside_the_refined_path():
    from sda_lab.interface.commands._train_report import audio_table
    from sda_lab.training.config import TrainConfig

    waves = clips()
    files = [f"f{i}.wav" for i in range(len(waves))]
    train = SPEC.waveform_to_mel(waves[:2])
    refined = evaluate_audio(Stub(), SPEC, waves, files, [2, 3], train, Inverter(SPEC),
                             train_config=TrainConfig(posterior_steps=2, kl_weight=0.0))
    lines = audio_table(refined.summary()).splitlines()
    assert [line.split()[0] for line in lines[2:6]] == ["through", "encoder's", "mel", "average"]
    assert "refined by 2 gradient steps" in "\n".join(lines)
    plain = audio_table(run(Stub(), waves).summary())
    assert "encoder's mean" not in plain and "refined" not in plain
