"""``python -m sda_lab train`` runs end to end, with a tiny model (the recipe's model shrunk).

One real subprocess run keeps the progress bar and the command honest; the rest call ``main``
in-process with :func:`tiny_recipe` in place of the own-audio recipe's 3.1 M-parameter model.
"""

import ast
import errno
import json
import re
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import sda_lab.data.split
import sda_lab.representation.inverse_mel as IM
import sda_lab.training.own_audio
import sda_lab.training.recipes
from sda_lab.interface.cli import main
from sda_lab.interface.commands._train_report import _ratio
from sda_lab.training.rundir import RUN_FILES
from sda_lab.representation.inverse_mel import INVERSE_MEL_FILE
from sda_lab.training.checkpoint import load_checkpoint
from sda_lab.training.audio_eval import AVERAGE_RATIO, LEARNED_SHARE, VERDICTS, share_of_the_way
from sda_lab.training.loop import TrainingDiverged

from .test_cli import error_of, run_cli, write_folder


@pytest.fixture
def tiny(monkeypatch):
    """The CLI trains ``VAEConfig(channels=(4, 8))`` instead of the full model."""
    recipe = sda_lab.training.recipes.OWN_AUDIO_RECIPE
    monkeypatch.setattr(sda_lab.training.recipes, "OWN_AUDIO_RECIPE",
                        replace(recipe, model=replace(recipe.model, channels=(4, 8))))


def test_the_real_command_writes_checkpoints_and_metrics(tmp_path):
    folder = write_folder(tmp_path / "audio")
    out = tmp_path / "run"
    proc = run_cli("train", folder, "--out", out, "--max-steps", 2, "--seed", 1,
                   "--latent-dim", 4, "--latent", "vector", "--batch-size", 2, "--no-inverse-mel")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "training" in proc.stderr  # the progress bar
    assert "\r" not in proc.stderr  # a pipe gets the bar as lines, not redraws
    assert any(line.startswith("training: 100%") for line in proc.stderr.splitlines())
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_train_clips"] == 3 and m["n_val_clips"] == 1 and len(m["val_files"]) == 1
    assert m["val_files"][0] not in m["train_files"]
    assert m["steps"] == 2 and m["stop_reason"].startswith("max_steps")
    assert m["train_config"]["seed"] == 1 and m["model_config"]["latent_dim"] == 4
    assert m["train_config"]["epochs"] is None  # a step budget without --epochs
    assert m["val_ratio"] == pytest.approx(m["val_recon"] / m["val_baseline"])
    assert isinstance(m["mel_verdict"]["fired"], bool) and m["mel_verdict"]["why"]
    assert m["verdict"]["kind"] in VERDICTS and m["verdict"]["sentence"]
    assert m["audio"]["on"] == "validation" and m["audio"]["files_scored"] == 1
    explore = proc.stdout.splitlines()[-1].split("LatentExplorer.from_run(", 1)[1]
    assert ast.literal_eval(explore.rstrip(")")) == str(out)  # Python as printed
    assert proc.stdout.count("verdict: ") == 1
    assert f"verdict: {m['verdict']['sentence']}" in proc.stdout
    ck = load_checkpoint(out / "checkpoint.pt", device="cpu")
    assert ck.model.latent_dim == 4 and ck.history.steps[-1] == 2
    assert ck.spectrogram().config.n_mels == m["spectrogram_config"]["n_mels"]
    best = load_checkpoint(out / "best.pt", device="cpu")
    assert best.history.best_epoch == m["best_epoch"]


def test_report_and_no_validation(tmp_path, capsys, tiny):
    folder = write_folder(tmp_path / "a")
    out = tmp_path / "run"
    code = main(["train", str(folder), "--out", str(out), "--max-steps", "1", "--quiet",
                 "--latent-dim", "4", "--latent", "vector", "--val-fraction", "0", "--scale", "log1p",
                 "--no-inverse-mel"])
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "nothing held out for validation" in printed
    m = json.loads((out / "metrics.json").read_text())
    assert m["val_recon"] is None and m["val_ratio"] is None and m["val_files"] == []
    assert m["val_ratio_note"] == "nothing held out for validation"
    assert len(m["report"]) == 4 and "notes.txt" not in {r["file"] for r in m["report"]}
    ck = load_checkpoint(out / "checkpoint.pt", device="cpu")
    assert ck.spectrogram().config.scale == "log1p"


def test_the_split_is_drawn_once(tmp_path, capsys, monkeypatch, tiny):
    folder = write_folder(tmp_path / "a")
    draws = []
    real = sda_lab.data.split.split_by_file

    def counting(clips, val_fraction=0.2, seed=0, val_files=None, groups=None):
        if val_files is None and val_fraction > 0:
            draws.append(val_fraction)
        return real(clips, val_fraction, seed, val_files, groups)

    monkeypatch.setattr(sda_lab.data.split, "split_by_file", counting)
    code = main(["train", str(folder), "--out", str(tmp_path / "o"), "--max-steps", "1",
                 "--quiet", "--latent-dim", "4", "--latent", "vector", "--no-inverse-mel"])
    assert code == 0, capsys.readouterr().err
    assert draws == [0.2]


def test_copies_of_one_recording_are_held_out_together_and_said(tmp_path, capsys, tiny):
    """Two quieter copies of a.wav (a pack's velocity layers): the split holds out the three
    or none, the run says so and keeps the groups; --val-files holding out one copy alone is
    told that its figures flatter the model."""
    from pathlib import Path

    import soundfile as sf

    folder = write_folder(tmp_path / "a")
    x, sr = sf.read(folder / "a.wav")
    sf.write(folder / "a_soft.wav", 0.5 * x, sr)
    sf.write(folder / "a_softer.wav", 0.2 * x, sr)
    group = {"a.wav", "a_soft.wav", "a_softer.wav"}
    for seed in range(4):
        out = tmp_path / f"o{seed}"
        assert main(["train", str(folder), "--out", str(out), "--max-steps", "1", "--quiet",
                     "--latent-dim", "4", "--latent", "vector", "--no-inverse-mel",
                     "--val-fraction", "0.4", "--seed", str(seed)]) == 0
        printed = capsys.readouterr().out
        assert ("one recording up to gain: 3 files in 1 group (a.wav = a_soft.wav = "
                "a_softer.wav): each group is held out or trained on whole") in printed
        m = json.loads((out / "metrics.json").read_text())
        held = {Path(f).name for f in m["val_files"]}
        assert group <= held or group.isdisjoint(held)
        assert [[Path(f).name for f in g] for g in m["same_recordings"]] == [sorted(group)]
    assert main(["train", str(folder), "--out", str(tmp_path / "chosen"), "--max-steps", "1",
                 "--quiet", "--latent-dim", "4", "--latent", "vector", "--no-inverse-mel",
                 "--val-files", "a_soft.wav"]) == 0
    assert ("; note: held-out a_soft.wav is a copy of training file a.wav: the held-out "
            "figures flatter the model on it") in capsys.readouterr().out


def test_overwrite_replaces_the_earlier_run_whole(tmp_path, capsys, tiny):
    folder = write_folder(tmp_path / "a")
    out = tmp_path / "run"
    out.mkdir()
    for name in ("checkpoint.pt", "best.pt", "inverse_mel.pt"):
        (out / name).write_text("earlier")
    (out / "metrics.json").write_text('{"earlier": true}')
    argv = ["train", str(folder), "--out", str(out), "--max-steps", "1", "--quiet",
            "--latent-dim", "4", "--latent", "vector", "--no-inverse-mel"]
    code, line = error_of(capsys, argv)
    assert code == 1 and "--overwrite" in line
    assert (out / "metrics.json").read_text() == '{"earlier": true}'
    assert main([*argv, "--overwrite"]) == 0, capsys.readouterr().err
    m = json.loads((out / "metrics.json").read_text())
    assert "earlier" not in m and m["steps"] == 1
    for name in ("checkpoint.pt", "best.pt"):
        assert load_checkpoint(out / name, device="cpu").history.steps[-1] == 1
    assert not (out / "inverse_mel.pt").exists()  # an earlier run's inverse is not heard again


def test_an_interrupted_overwrite_keeps_the_earlier_run(tmp_path, capsys, tiny, monkeypatch):
    """--overwrite sets the finished run aside; a Ctrl-C in the new one never costs it."""
    folder = write_folder(tmp_path / "a")
    out = tmp_path / "run"
    out.mkdir()
    for name in ("checkpoint.pt", "best.pt"):
        (out / name).write_text("earlier")
    (out / "metrics.json").write_text('{"earlier": true}')

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sda_lab.training.own_audio, "train_on_clips", interrupted)
    code = main(["train", str(folder), "--out", str(out), "--max-steps", "1", "--quiet",
                 "--latent-dim", "4", "--latent", "vector", "--no-inverse-mel", "--overwrite"])
    assert code == 130
    kept = out / "previous-run"
    assert (kept / "metrics.json").read_text() == '{"earlier": true}'
    assert sorted(p.name for p in kept.iterdir()) == ["best.pt", "checkpoint.pt", "metrics.json"]
    assert "previous-run" in capsys.readouterr().out


def test_saved_files_get_the_usual_permissions(tmp_path, capsys, tiny):
    """Atomic writes go through mkstemp (mode 0600): a run must still be readable by others."""
    import os
    import stat

    out = tmp_path / "run"
    assert main(["train", str(write_folder(tmp_path / "a")), "--out", str(out), "--max-steps",
                 "1", "--quiet", "--latent-dim", "4", "--latent", "vector", "--no-inverse-mel"]) == 0
    mask = os.umask(0)
    os.umask(mask)
    for name in ("checkpoint.pt", "best.pt", "metrics.json"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~mask, name


def test_an_earlier_inverse_mel_alone_is_an_earlier_run(tmp_path, capsys, tiny):
    out = tmp_path / "run"
    out.mkdir()
    (out / INVERSE_MEL_FILE).write_text("earlier")
    assert INVERSE_MEL_FILE in RUN_FILES
    code, line = error_of(capsys, ["train", str(write_folder(tmp_path / "a")), "--out",
                                   str(out), "--no-inverse-mel"])
    assert code == 1 and "--overwrite" in line and INVERSE_MEL_FILE in line


@pytest.fixture
def tiny_inverse(monkeypatch):
    """The CLI fits a 1-layer, 8-channel inverse mel for at most 3 steps."""
    real = IM.InverseMelConfig

    def tiny_config(**overrides):
        return real(**{"hidden": 8, "layers": 1, "kernel_size": 3, "nnls_iters": 5,
                       "max_steps": 3, **overrides})

    monkeypatch.setattr(IM, "InverseMelConfig", tiny_config)


def test_train_writes_a_learned_inverse_mel_picked_on_other_training_files(
        tmp_path, capsys, monkeypatch, tiny, tiny_inverse):
    # a 1-step model may use no latent unit; the fine-tuning is skipped for such a one
    monkeypatch.setattr("sda_lab.interface.commands._train_steps.collapsed", lambda r: False)
    folder = write_folder(tmp_path / "a", names=[f"f{i}.wav" for i in range(6)])
    out = tmp_path / "run"
    code = main(["train", str(folder), "--out", str(out), "--max-steps", "1", "--quiet",
                 "--latent-dim", "4", "--latent", "vector", "--inverse-mel-minutes", "2"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "learned inverse mel: start" in printed and "pick-set magnitude loss" in printed
    assert "inverse_mel.pt" in printed
    m = json.loads((out / "metrics.json").read_text())
    e = m["inverse_mel"]
    assert e["trained"] is True and e["file"] == INVERSE_MEL_FILE
    assert 1 <= e["steps"] <= 3 and e["config"]["max_seconds"] == pytest.approx(120)
    assert e["pick_files"] and not set(e["pick_files"]) & set(m["val_files"])
    assert set(e["pick_files"]) < set(m["train_files"])
    assert e["fit_clips"] + e["pick_clips"] == m["n_train_clips"]
    assert e["pick_loss"] <= e["pick_start_loss"]
    sc = e["start_sc"]  # "auto": the start with the lower pick-set SC
    assert set(sc) == {"nnls", "harmonic"} and sc[e["start"]] == min(sc.values())
    assert e["kept"] == ("learned" if e["pick_loss"] <= 0.99 * e["pick_start_loss"] else "start")
    inv = IM.load_inverse_mel(out / INVERSE_MEL_FILE)
    spec = load_checkpoint(out / "checkpoint.pt", device="cpu").spectrogram()
    inv.check_spectrogram(spec)  # trained on the run's own representation
    assert inv.history["steps"] == e["steps"]
    d = e["decoded"]  # then fine-tuned on the model's decoded mels, half the time
    assert 1 <= d["steps"] <= 3 and d["kept"] == (d["pick_sc"] <= 0.99 * d["pick_before_sc"])
    assert d["pick_loss"] <= d["pick_before_loss"]  # the weights picked: never worse than it
    assert (out / IM.DECODED_INVERSE_MEL_FILE).is_file() == d["kept"]
    assert "fine-tuning it on the model's decoded mels" in printed


def test_no_inverse_mel_writes_none(tmp_path, capsys, tiny):
    out = tmp_path / "run"
    code = main(["train", str(write_folder(tmp_path / "a")), "--out", str(out),
                 "--max-steps", "1", "--quiet", "--latent-dim", "4", "--latent", "vector", "--no-inverse-mel"])
    assert code == 0, capsys.readouterr().err
    assert not (out / INVERSE_MEL_FILE).exists()
    assert json.loads((out / "metrics.json").read_text())["inverse_mel"] == {
        "trained": False, "note": "--no-inverse-mel"}


def test_one_training_file_skips_the_inverse_mel_with_a_note(tmp_path, capsys, tiny):
    folder = write_folder(tmp_path / "a", names=("long.wav", "v.wav"), seconds=2.1)
    out = tmp_path / "run"
    code = main(["train", str(folder), "--out", str(out), "--max-steps", "1", "--quiet",
                 "--latent-dim", "4", "--latent", "vector", "--val-files", "v.wav"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    notes = [s for s in captured.out.splitlines() if "skipped the learned inverse mel" in s]
    assert len(notes) == 1 and "1 training recording" in notes[0]
    assert not (out / INVERSE_MEL_FILE).exists()
    assert json.loads((out / "metrics.json").read_text())["inverse_mel"]["trained"] is False


@pytest.mark.parametrize("value", ["0", "-1", "nan", "soon"])
def test_inverse_mel_minutes_must_be_positive(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as info:
        main(["train", str(tmp_path), "--out", str(tmp_path / "o"),
              "--inverse-mel-minutes", value])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert "--inverse-mel-minutes: expected a positive number" in err and repr(value) in err


def test_bad_option_does_not_touch_an_earlier_run_even_with_overwrite(tmp_path, capsys, tiny):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text("{}")
    code, line = error_of(capsys, ["train", str(tmp_path / "nope"), "--out", str(out),
                                   "--overwrite"])
    assert code == 1 and "audio folder not found" in line
    assert (out / "metrics.json").read_text() == "{}"


def test_disk_full_while_saving_is_one_line(tmp_path, capsys, monkeypatch, tiny):
    folder = write_folder(tmp_path / "a")
    out = tmp_path / "run"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    code, line = error_of(capsys, ["train", str(folder), "--out", str(out), "--max-steps", "1",
                                   "--quiet", "--latent-dim", "4", "--latent", "vector"])
    assert code == 1 and line.startswith("sda-lab: error: no space left on the device")
    # no half-written or temporary file: the folder the run made is left empty, so removed
    assert not out.exists()


def test_diverged_run_reaches_the_user_as_one_line(tmp_path, capsys, monkeypatch, tiny):
    """Whatever the trainer's TrainingDiverged says, the CLI prints it as training diverged."""
    folder = write_folder(tmp_path / "a")

    def diverge(*args, **kwargs):
        raise TrainingDiverged("loss became nan at epoch 0, step 3; try a lower lr "
                                 "(now 1e+30)")

    monkeypatch.setattr(sda_lab.training.own_audio, "train_on_clips", diverge)
    code, line = error_of(capsys, ["train", str(folder), "--out", str(tmp_path / "o"),
                                   "--lr", "1e30", "--quiet"])
    assert code == 1
    assert line == ("sda-lab: error: training diverged: loss became nan at epoch 0, step 3; "
                    "try a lower lr (now 1e+30)")


def test_diverged_run_is_one_line_naming_the_step(tmp_path, capsys, tiny):
    folder = write_folder(tmp_path / "a")
    code, line = error_of(capsys, ["train", str(folder), "--out", str(tmp_path / "o"),
                                   "--lr", "1e30", "--max-steps", "6", "--batch-size", "1",
                                   "--quiet", "--latent-dim", "4", "--latent", "vector"])
    assert code == 1 and line.startswith("sda-lab: error: training diverged")
    assert re.search(r"\bstep \d+", line)  # where it happened
    assert "lr 1e+30" in line  # with what
    assert "try a lower learning rate" in line and "--lr" in line  # and what to try
    assert "grad_clip" in line


def _two_kinds(folder):
    """Six files, two kinds (decaying sines near 660 Hz and near 330 Hz), so a held-out file
    has its kind in the training set and a few steps beat the mean mel on it."""
    folder.mkdir(parents=True)
    sr = 22050
    t = np.arange(int(1.05 * sr)) / sr
    for i in range(6):
        f = (330 if i % 2 else 660) * (1 + 0.01 * i)
        sf.write(folder / f"c{i}.wav", 0.5 * np.sin(2 * np.pi * f * t) * np.exp(-(1 + i % 3) * t),
                 sr)
    return folder


def test_a_run_that_learns_is_judged_by_its_audio_and_prints_no_warning(tmp_path, capsys, tiny):
    folder = _two_kinds(tmp_path / "a")
    # 300 steps: the spectral-convergence term of the recipe learns slower than MSE alone (at
    # 100 steps seeds 0-2 sat at the average); seeds 0, 1, 2 all learn by 300
    argv = ["train", str(folder), "--out", str(tmp_path / "o"), "--max-steps", "300",
            "--batch-size", "5", "--lr", "3e-3", "--kl-weight", "0", "--seed", "1",
            "--val-files", "c0.wav", "--quiet", "--latent-dim", "4", "--latent", "vector", "--no-inverse-mel"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["mel_verdict"]["kind"] == "learned", m["mel_verdict"]
    audio = m["audio"]
    sc, nothing = audio["model"]["spectral_convergence"], audio["nothing_learned_sc"]
    assert nothing == pytest.approx(min(audio["average_sound"]["spectral_convergence"], 1.0))
    # the verdict the user reads follows the audio figures printed beside it
    share = share_of_the_way(sc, audio["mel_round_trip"]["spectral_convergence"], nothing)
    assert audio["share_of_the_way"] == pytest.approx(share)
    assert m["verdict"]["kind"] == ("at the average" if sc >= AVERAGE_RATIO * nothing else
                                    "learned" if share >= LEARNED_SHARE else "partly learned")
    assert f"spectral convergence {sc:.2f} on held-out files" in m["verdict"]["sentence"]
    assert f"verdict: {m['verdict']['sentence']}" in out
    assert "what the run sounds like, on 1 held-out file," in out
    assert f"{audio['mel_round_trip']['spectral_convergence']:.3f}" in out
    assert [str(w.message) for w in caught] == []
    assert "warning" not in err.lower() and "Traceback" not in err


def test_nothing_held_out_is_heard_on_training_files_and_said_not_validated(tmp_path, capsys,
                                                                             tiny):
    folder = _two_kinds(tmp_path / "a")
    code = main(["train", str(folder), "--out", str(tmp_path / "o"), "--max-steps", "300",
                 "--batch-size", "6", "--lr", "3e-3", "--kl-weight", "0", "--seed", "1",
                 "--val-fraction", "0", "--quiet", "--latent-dim", "4", "--latent", "vector", "--no-inverse-mel"])
    out = capsys.readouterr().out
    assert code == 0
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["mel_verdict"]["kind"] == "not_validated", m["mel_verdict"]
    assert m["audio"]["on"] == "training"
    assert "training files (none held out)" in m["verdict"]["sentence"]
    assert "training files (nothing was held out)" in out


def _looped_tone(path, freq, sr=48_000, seconds=3):
    n = sr // 1000 * 1000  # whole periods: every 1 s clip is the same samples
    t = np.arange(sr) / sr
    one = 0.5 * np.sin(2 * np.pi * freq * t)
    sf.write(path, np.tile(one, seconds)[: n * seconds], sr, subtype="FLOAT")


@pytest.mark.parametrize("tones", [(1000,), (1000, 2000)])
def test_identical_clips_are_a_clear_line_not_a_format_error(tmp_path, capsys, tones, tiny):
    """One looped tone (all clips identical), or two (each side of the split one tone)."""
    folder = tmp_path / "tones"
    folder.mkdir()
    for f in tones:
        _looped_tone(folder / f"tone{f}.wav", f)
    argv = ["train", str(folder), "--out", str(tmp_path / "o"), "--max-steps", "1", "--quiet",
            "--latent-dim", "4", "--latent", "vector"]
    if len(tones) == 1:
        argv += ["--val-fraction", "0"]
    code, line = error_of(capsys, argv)
    assert code == 1 and "all the same mel" in line and "mean-mel baseline" in line
    assert "NoneType" not in line


def test_ratio_is_null_with_a_reason_for_a_zero_baseline():
    assert _ratio(0.5, 0.0) == (None, pytest.approx(_ratio(0.5, 0.0)[1]))
    value, why = _ratio(0.5, 0.0)
    assert value is None and "baseline is 0" in why
    assert _ratio(0.5, 2.0) == (0.25, "")
    assert _ratio(None, 2.0)[0] is None


def test_latent_sequence_and_mel_augmentation_options(tmp_path, capsys, tiny):
    """--latent sequence with a latent size that does not divide into its frames is one line
    naming --latent-dim and a size that does; that size trains, with the mel augmentations."""
    folder = write_folder(tmp_path / "a")
    base = ["train", str(folder), "--max-steps", "2", "--quiet", "--no-inverse-mel",
            "--latent", "sequence"]
    code, line = error_of(capsys, [*base, "--out", str(tmp_path / "bad"), "--latent-dim", "5"])
    assert code == 1 and "--latent-dim" in line and "latent frames" in line, line
    size = re.search(r"e\.g\. (\d+)", line).group(1)
    out = tmp_path / "run"
    code = main([*base, "--out", str(out), "--latent-dim", size, "--spec-augment",
                 "--mel-shift", "2", "--mixup", "0.5", "--dropout", "0.1"])
    assert code == 0, capsys.readouterr().err
    m = json.loads((out / "metrics.json").read_text())
    assert m["model_config"]["latent"] == "sequence" and m["model_config"]["dropout"] == 0.1
    aug = m["train_config"]["augment"]
    assert (aug["freq_mask"], aug["mel_shift"], aug["mixup"], aug["gain_db"]) == (16, 2, 0.5, 0)
    ck = load_checkpoint(out / "checkpoint.pt", device="cpu")
    assert ck.model.config.latent == "sequence" and ck.model.latent_dim == int(size)


def test_latent_option_defaults_follow_the_latent_asked_for():
    """The recipe's latent comes with its sizes; --latent vector alone is the plan's vector."""
    import argparse

    from sda_lab.interface.commands.train import _configs, add_parser
    from sda_lab.training.recipes import OWN_AUDIO_RECIPE

    recipe_model = OWN_AUDIO_RECIPE.model
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    shipped = _configs(parser.parse_args(["train", "x", "--out", "o"]))[0]
    assert (shipped.latent, shipped.latent_dim, shipped.time_halvings) == (
        recipe_model.latent, recipe_model.latent_dim, recipe_model.time_halvings)
    other = "vector" if recipe_model.latent == "sequence" else "sequence"
    args = ["train", "x", "--out", "o", "--latent", other]
    if other == "vector":
        plan = _configs(parser.parse_args(args))[0]
        assert (plan.latent_dim, plan.time_halvings, plan.latent_frames) == (64, None, 6)


def test_training_option_defaults_are_the_recipe_and_zero_turns_its_parts_off():
    """No option: the recipe's own training config (augmentation and weight average included);
    --mel-shift 0 --ema-decay 0: neither; --ema-decay D: that decay."""
    import argparse

    from sda_lab.interface.commands.train import _configs, add_parser
    from sda_lab.training.recipes import OWN_AUDIO_RECIPE

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    model, train_cfg, _ = _configs(parser.parse_args(["train", "x", "--out", "o"]))
    assert model == OWN_AUDIO_RECIPE.model and train_cfg == OWN_AUDIO_RECIPE.train
    off = _configs(parser.parse_args(["train", "x", "--out", "o", "--mel-shift", "0",
                                      "--ema-decay", "0"]))[1]
    assert off.augment is None and off.ema_decay is None
    assert _configs(parser.parse_args(["train", "x", "--out", "o", "--ema-decay", "0.9"])
                    )[1].ema_decay == 0.9


def test_metrics_are_strict_json_at_any_depth():
    """A NaN inside the audio figures (a share of the way with no gap) once stopped metrics.json
    from being written at all."""
    from sda_lab.interface.commands._train_report import _finite

    nested = {"audio": {"share_of_the_way": float("nan"), "files": [{"x": float("inf")}]},
              "history": {"val_recon": [1.0, float("nan")]}, "steps": 3}
    clean = _finite(nested)
    assert clean == {"audio": {"share_of_the_way": None, "files": [{"x": None}]},
                     "history": {"val_recon": [1.0, None]}, "steps": 3}
    json.dumps(clean, allow_nan=False)  # would raise on any NaN left



def test_stopped_line_names_the_flag_or_the_interrupt():
    from sda_lab.interface.commands._train_report import stopped_line

    assert stopped_line("max_steps: the budget of 9 optimiser steps was reached in epoch 9") == (
        "training stopped by --max-steps: the budget of 9 optimiser steps was reached in epoch 9")
    assert stopped_line("interrupted: Ctrl-C after 7 steps, in epoch 8") == (
        "training interrupted: Ctrl-C after 7 steps, in epoch 8")


def test_recent_fall_reads_the_last_fifth_of_the_steps():
    from sda_lab.interface.commands._train_report import recent_fall

    steps = [100, 200, 300, 400, 500, 600]
    assert recent_fall([1.0, 0.8, 0.6, 0.5, 0.4, 0.3], steps) == pytest.approx(1 - 0.3 / 0.5)
    assert recent_fall([0.5, 0.4, 0.3, 0.3, 0.3, 0.33], steps) == pytest.approx(1 - 0.33 / 0.3)
    assert recent_fall([1.0, 0.5, 0.4, 0.3], [1, 2, 3, 4]) is None  # too few epochs
    # no epoch ended before the last fifth began
    assert recent_fall([1.0] * 5, [500, 520, 540, 560, 600]) is None


def test_a_budget_that_ends_while_learning_names_the_resume_command(tmp_path):
    from sda_lab.interface.commands._train_report import still_learning_line

    def metrics(curve, stop="max_minutes: the budget of 5 min was reached"):
        history = {"val_recon": curve, "train_recon": curve,
                   "steps": [100, 200, 300, 400, 500, 600]}
        return {"history": history, "stop_reason": stop, "val_recon": curve[-1],
                "folder": "/resolved/elsewhere"}  # the command prints the folder as given

    out = tmp_path / "run 1"
    line = still_learning_line(metrics([1.0, 0.8, 0.6, 0.5, 0.4, 0.3]), "my sounds", out)
    assert "held-out mel MSE fell 40% over the last fifth" in line
    assert line.endswith(f"python -m sda_lab train 'my sounds' --out '{out}' --resume "
                         "--max-minutes 5")
    flat = metrics([1.0, 0.8, 0.6, 0.5, 0.5, 0.48])  # 4% over the last fifth
    assert still_learning_line(flat, "my sounds", out) is None
    interrupted = metrics([1.0, 0.8, 0.6, 0.5, 0.4, 0.3], stop="interrupted: Ctrl-C after 600")
    assert still_learning_line(interrupted, "my sounds", out) is None
    # metrics.json holds NaN and Inf as null: no line, no error
    assert still_learning_line(metrics([1.0, 0.8, 0.6, 0.5, 0.4, None]), "s", out) is None
    assert still_learning_line(metrics([1.0, 0.8, 0.6, float("nan"), 0.4, 0.3]), "s", out) is None


def test_the_copies_line_shows_the_largest_groups_with_their_sizes():
    from sda_lab.interface.commands.train import _copies_line

    groups = {f"hit_35_{v}.wav": "hit_35_a.wav" for v in "abc"}  # two notes, one sample
    groups |= {f"hit_36_{v}.wav": "hit_35_a.wav" for v in "abc"}
    groups |= {f"k{i}_{v}.wav": f"k{i}_a.wav" for i in range(4) for v in "ab"}
    line = _copies_line(groups, [])
    assert line.startswith("one recording up to gain: 14 files in 5 groups (hit_35_a.wav = "
                           "hit_35_b.wav = hit_35_c.wav = ... (6 files); k0_a.wav = k0_b.wav; ")
    assert "; 2 more in metrics.json's same_recordings)" in line


def test_val_files_are_checked_against_the_folder_before_any_audio_is_read(tmp_path, capsys,
                                                                            tiny):
    folder = write_folder(tmp_path / "audio")
    other = write_folder(tmp_path / "other", names=("a.wav",))
    argv = ["train", str(folder), "--out", str(tmp_path / "o"), "--max-steps", "1", "--quiet",
            "--latent-dim", "4", "--latent", "vector", "--no-inverse-mel", "--val-files"]
    code, line = error_of(capsys, argv + [str(other / "a.wav")])
    assert line == (f"sda-lab: error: --val-files: expected files under FOLDER "
                    f"({folder.resolve()}), got {other / 'a.wav'}")
    code, line = error_of(capsys, argv + ["zzz.wav"])
    assert line.endswith("): validation file 'zzz.wav' is not one of the 4 files (a.wav, b.flac, "
                         "c.ogg, sub/d.wav)")
    assert not (tmp_path / "o").exists()
    assert main(argv + [str(folder / "sub" / "d.wav")]) == 0  # a path under FOLDER: its name
    printed = capsys.readouterr().out
    assert printed.startswith("Found")  # the folder is read after the check, not before
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert [Path(f).name for f in m["val_files"]] == ["d.wav"]
