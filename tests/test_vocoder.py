"""The per-run HiFi-GAN vocoder: the V2 generator's size and shapes, a training step, resume,
RUN/vocoder.pt (atomic, refuses another representation), Inverter.for_run using it only when
kept, and ``train-vocoder``'s one-line errors. Tiny configs and the tiny run of
tests/test_generate.py (32 mels at 8 kHz, hop 512)."""

from __future__ import annotations

import math
from dataclasses import asdict, replace

import pytest
import torch

from sda_lab.representation.inverter import Inverter
from sda_lab.representation.spectrogram import AudioSpectrogram
from sda_lab.representation.vocoder import (VOCODER_FILE, HiFiGANGenerator, Vocoder,
                                            VocoderConfig, load_vocoder, save_vocoder)
from tests.test_generate import TINY_SPEC, tiny_run

torch.set_num_threads(1)

# a generator and discriminators a few thousand parameters big, at hop 512 (8 * 8 * 4 * 2)
TINY_VOC = VocoderConfig(upsample_initial_channel=16, resblock_kernel_sizes=(3,),
                         resblock_dilation_sizes=((1, 3),), mpd_periods=(2, 3),
                         mpd_channels=(4, 8), msd_scales=2, msd_channels=(4, 8),
                         segment_frames=4, batch_size=2, lr=2e-3)


def _vocoder(kept: str | None = None, spec_config=TINY_SPEC, seed: int = 0) -> Vocoder:
    torch.manual_seed(seed)
    g = HiFiGANGenerator(spec_config.n_mels, TINY_VOC).eval()
    return Vocoder(g, asdict(AudioSpectrogram(spec_config).config), TINY_VOC,
                   {"kept": kept, "steps": 0})


def test_v2_generator_at_hop_512_has_about_0_9_m_parameters_and_t_times_hop_samples():
    """HiFi-GAN V2 has 0.92 M parameters at 80 mels and hop 256; our 128 mel bands add
    (128 - 80) * 128 * 7 weights to the first convolution and the rate-4 stage's kernel 8 a few
    thousand, so the count lies between 0.92 M and 1.0 M."""
    config = VocoderConfig()
    assert config.hop_length == 512
    g = HiFiGANGenerator(128, config)
    n = sum(p.numel() for p in g.parameters())
    assert 0.92e6 < n < 1.0e6
    with torch.no_grad():
        y = g(torch.rand(2, 1, 128, 5))  # (2, 1, 128, 5) mel
    assert y.shape == (2, 1, 5 * 512) and y.abs().max() < 1


def test_config_refuses_rates_whose_kernels_do_not_fit_in_one_line():
    with pytest.raises(ValueError, match="upsample_kernel_sizes") as exc:
        VocoderConfig(upsample_rates=(8, 8, 4, 2), upsample_kernel_sizes=(16, 16, 3, 4))
    assert "\n" not in str(exc.value)
    with pytest.raises(ValueError, match="batch_size"):
        VocoderConfig(batch_size=0)


def test_training_steps_lower_the_mel_l1_of_a_fixed_batch():
    from sda_lab.training.vocoder import _build, training_step

    spec = AudioSpectrogram(TINY_SPEC)
    t = torch.arange(4 * 512) / TINY_SPEC.sample_rate
    y = (0.5 * torch.sin(2 * math.pi * 440 * t)).view(1, 1, -1).repeat(2, 1, 1)  # (2, 1, 2048)
    mel = spec.waveform_to_mel(y)[..., :4]  # (2, 1, 32, 4)
    config = replace(TINY_VOC, lr=1e-2)
    parts = _build(TINY_SPEC.n_mels, config, seed=0)
    first = training_step(parts, spec, mel, y, config, adversarial=True)
    assert {"discriminator", "feature_matching", "adversarial", "mel_l1"} <= set(first)
    assert all(math.isfinite(v) for v in first.values())
    losses = [training_step(parts, spec, mel, y, config, adversarial=False)["mel_l1"]
              for _ in range(20)]
    assert sum(losses[-3:]) / 3 < 0.98 * first["mel_l1"]


def _train(run, **kw):
    from sda_lab.studies.vocoder import train_run_vocoder

    return train_run_vocoder(run, TINY_VOC, generator=0, **kw)


def test_resume_goes_on_from_the_saved_step_and_ends_where_one_run_ends(tmp_path):
    once = tiny_run(tmp_path / "a")
    twice = tiny_run(tmp_path / "b")
    whole = _train(once, max_steps=4)
    first = _train(twice, max_steps=2)
    assert first.vocoder.history["steps"] == 2
    second = _train(twice, max_steps=4)
    h = second.vocoder.history
    assert h["steps"] == 4 and [e["step"] for e in h["evaluations"]] == [2, 4]
    for a, b in zip(whole.vocoder.generator.state_dict().values(),
                    load_vocoder(twice / VOCODER_FILE).generator.state_dict().values()):
        assert torch.equal(a, b)
    assert second.kept in ("vocoder", "inverter") and h["kept"] == second.kept


def test_resume_refuses_another_config_and_restart_starts_over(tmp_path):
    run = tiny_run(tmp_path)
    _train(run, max_steps=1)
    from sda_lab.studies.vocoder import train_run_vocoder

    with pytest.raises(ValueError, match="another config") as exc:
        train_run_vocoder(run, replace(TINY_VOC, lr=1e-3), max_steps=2)
    assert "\n" not in str(exc.value)
    again = _train(run, max_steps=1, resume=False)
    assert again.vocoder.history["steps"] == 1 and len(again.vocoder.history["evaluations"]) == 1


def test_ctrl_c_keeps_the_last_finished_step(tmp_path, monkeypatch):
    import sda_lab.training.vocoder as tv

    run = tiny_run(tmp_path)
    real, calls = tv.training_step, []

    def step(*args, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(tv, "training_step", step)
    with pytest.raises(KeyboardInterrupt):
        _train(run, max_steps=10)
    assert load_vocoder(run / VOCODER_FILE).history["steps"] == 2


def test_save_is_atomic_and_a_vocoder_refuses_another_spectrogram(tmp_path, monkeypatch):
    path = tmp_path / VOCODER_FILE
    save_vocoder(path, _vocoder("inverter"))
    before = path.read_bytes()

    def broken(obj, f, *a, **kw):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError):
        save_vocoder(path, _vocoder("vocoder"))
    monkeypatch.undo()
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [VOCODER_FILE]
    other = AudioSpectrogram(replace(TINY_SPEC, n_mels=24))
    with pytest.raises(ValueError, match="another spectrogram config") as exc:
        Inverter(other, vocoder=load_vocoder(path))
    assert "\n" not in str(exc.value)


def test_an_unreadable_vocoder_is_warned_about_and_the_run_heard_without_it(tmp_path, capsys):
    """A truncated RUN/vocoder.pt: for_run warns in one line and uses the run's own inversion;
    train-vocoder refuses it in one line naming --restart."""
    from sda_lab.interface.cli import main

    run = tiny_run(tmp_path)
    save_vocoder(run / VOCODER_FILE, _vocoder("vocoder"))
    whole = (run / VOCODER_FILE).read_bytes()
    (run / VOCODER_FILE).write_bytes(whole[: len(whole) // 2])
    with pytest.warns(UserWarning) as caught:
        inverter = Inverter.for_run(run, AudioSpectrogram(TINY_SPEC))
    assert inverter.vocoder is None and "--restart" in str(caught[0].message)
    assert "\n" not in str(caught[0].message)
    assert main(["train-vocoder", str(run), "--max-minutes", "1", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--restart" in err
    assert (run / VOCODER_FILE).read_bytes() == whole[: len(whole) // 2]  # left as it was


@pytest.mark.parametrize("kept", ["vocoder", "inverter"])
def test_for_run_hears_the_vocoder_only_when_its_record_says_kept(tmp_path, kept):
    run = tiny_run(tmp_path)
    spec = AudioSpectrogram(TINY_SPEC)
    voc = _vocoder(kept)
    save_vocoder(run / VOCODER_FILE, voc)
    inverter = Inverter.for_run(run, spec)
    mel = spec.waveform_to_mel(0.3 * torch.randn(1, 1, 8000, generator=torch.Generator()
                                                 .manual_seed(1)))  # (1, 1, 32, 16)
    if kept == "vocoder":
        assert inverter.name == "per-run HiFi-GAN vocoder"
        assert "not exported" in inverter.scripted_name
        assert torch.equal(inverter(mel, 8000), voc(mel, 8000))
    else:
        assert inverter.vocoder is None and "vocoder" not in inverter.name
    without = Inverter.for_run(run, spec, vocoder=False)
    assert without.vocoder is None and without.name == Inverter(spec).name


def _cli(argv, capsys):
    from sda_lab.interface.cli import main

    try:
        code = main(["train-vocoder", *argv])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr()


@pytest.mark.parametrize("argv, needle", [
    (["--max-minutes", "0"], "--max-minutes: expected a positive number of minutes"),
    (["--max-minutes", "abc"], "--max-minutes: expected a positive number of minutes"),
    (["--max-minutes", "1", "--max-steps", "0"], "--max-steps: expected a positive integer"),
])
def test_cli_bad_options_are_one_line(tmp_path, capsys, argv, needle):
    code, out = _cli([str(tmp_path), *argv], capsys)
    err = out.err.strip()
    assert code == 2 and needle in err and len(err.splitlines()) == 1


def test_cli_missing_or_unfinished_run_is_one_line(tmp_path, capsys):
    code, out = _cli([str(tmp_path / "nope"), "--max-minutes", "1"], capsys)
    assert code == 1 and out.err.startswith("sda-lab: error: RUN:")
    assert len(out.err.strip().splitlines()) == 1
    run = tiny_run(tmp_path)
    (run / "metrics.json").unlink()
    code, out = _cli([str(run), "--max-minutes", "1"], capsys)
    assert code == 1 and "has no metrics.json" in out.err and len(out.err.strip().splitlines()) == 1


def test_cli_trains_resumes_and_says_whether_the_vocoder_is_kept(tmp_path, capsys, monkeypatch):
    import sda_lab.training.vocoder as tv

    monkeypatch.setattr(tv, "VocoderConfig", lambda: TINY_VOC)
    run = tiny_run(tmp_path)
    code, out = _cli([str(run), "--max-minutes", "1", "--max-steps", "2", "--quiet"], capsys)
    assert code == 0 and "to step 2" in out.out and "mel round trip" in out.out
    assert "the vocoder is kept" in out.out or "the vocoder is not kept" in out.out
    code, out = _cli([str(run), "--max-minutes", "1", "--max-steps", "3", "--quiet"], capsys)
    assert code == 0 and "to step 3 (went on from step 2)" in out.out


def test_a_runs_vocoder_is_one_of_its_files():
    """``train --overwrite`` sets RUN_FILES aside with the run, so a new run in the folder is
    not heard through the old run's vocoder (possibly of another representation)."""
    from sda_lab.training.rundir import RUN_FILES

    assert VOCODER_FILE in RUN_FILES
