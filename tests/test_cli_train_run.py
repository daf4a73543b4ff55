"""``python -m sda_lab train`` as a whole wait: the budget split up front, the inverse kept only
where it beats its start, Ctrl-C and --resume, one training per --out, and what metrics.json
records (fingerprints, the argv given, the data config). Tiny models (tests/test_cli_train.py's
``tiny`` fixture)."""

import json
import shlex
import types
from dataclasses import asdict

import pytest
import torch

import sda_lab.representation.inverse_mel as IM
import sda_lab.representation.inverse_mel_fit as IMF
from sda_lab.interface.cli import main
from sda_lab.interface.commands._train_report import check_written
from sda_lab.interface.commands._train_steps import INVERSE_MARGIN, train_inverse_mel
from sda_lab.representation.inverter import Inverter
from sda_lab.representation.spectrogram import AudioSpectrogram, SpectrogramConfig
from sda_lab.training.budget import (DECODED_FRACTION, HEARING_CLIP_S, HEARING_START_S,
                                     INVERSE_SHARE, MIN_INVERSE_S, MIN_TRAINING_S,
                                     split_budget)
from sda_lab.training.callbacks import LiveState
from sda_lab.training.checkpoint import load_checkpoint
from sda_lab.training.rundir import RunDir

from .test_cli import error_of, write_folder
from .test_cli_train import tiny  # noqa: F401  (a fixture)
from .test_resume import _ctrl_c_at

BASE = ["--quiet", "--latent-dim", "4", "--latent", "vector", "--batch-size", "2"]


def test_a_budget_is_split_up_front_and_the_parts_add_up_to_it():
    plan = split_budget(300.0, 12.0, 60.0)
    assert sum(plan.parts().values()) == pytest.approx(300.0)
    assert plan.loading_s == 12.0 and plan.inverse_s == pytest.approx(
        min(INVERSE_SHARE * 288.0, 60.0 / (1 - DECODED_FRACTION)))
    assert (1 - DECODED_FRACTION) * plan.inverse_s <= 60.0  # the cap of the first fit
    assert plan.hearing_s <= 0.1 * 288.0 and plan.writing_s <= 1.0
    assert plan.training_s > 0.55 * 288.0
    assert "training" in plan.line() and "listening" in plan.line()
    small = split_budget(18.0, 3.0, 60.0)  # --max-minutes 0.3: too short a share to fit one
    assert small.inverse_s == 0 and 0 < small.inverse_skipped < MIN_INVERSE_S
    assert sum(small.parts().values()) == pytest.approx(18.0)
    assert split_budget(300.0, 12.0, None).inverse_s == 0  # --no-inverse-mel
    for spent in (20.0, 16.0):  # nothing left, or too little to train in
        with pytest.raises(ValueError, match="--max-minutes: expected a budget that leaves at "
                                             r"least 5 s to train .* give at least 0.\d+ min"):
            split_budget(18.0, spent, 60.0)
    need = 16.0 + (MIN_TRAINING_S + 1.0) / (0.9 - INVERSE_SHARE)  # what the message asks for
    assert split_budget(need, 16.0, 60.0).training_s >= MIN_TRAINING_S
    # few clips to hear: hearing is sized to them and training gets the rest
    few = split_budget(300.0, 12.0, 60.0, hearing_clips=5)
    assert few.hearing_s == pytest.approx(HEARING_START_S + 5 * HEARING_CLIP_S)
    assert few.hearing_s < plan.hearing_s
    assert few.training_s == pytest.approx(plan.training_s + plan.hearing_s - few.hearing_s)
    assert split_budget(300.0, 12.0, 60.0, hearing_clips=500).hearing_s == plan.hearing_s


def test_a_fine_tuning_share_too_short_to_fit_goes_to_training(tmp_path, monkeypatch):
    from sda_lab.interface.commands import _train_steps

    # --max-minutes 1: the inverse part (15.6 s) fits, its fine-tuning's third (5.2 s) would not
    plan = split_budget(60.0, 8.0, 60.0)
    whole = INVERSE_SHARE * 52.0
    assert DECODED_FRACTION * whole < MIN_INVERSE_S <= (1 - DECODED_FRACTION) * whole
    assert plan.fine_tune_s == 0 and plan.fine_tune_skipped == pytest.approx(
        DECODED_FRACTION * whole)
    assert plan.inverse_s == pytest.approx((1 - DECODED_FRACTION) * whole)
    assert plan.training_s == pytest.approx(52.0 - plan.writing_s - plan.hearing_s
                                            - plan.inverse_s)
    assert sum(plan.parts().values()) == pytest.approx(60.0)
    assert "not fine-tuned on decoded mels (that share, 5.2 s" in plan.line()
    assert "training has it" in plan.line()
    # --max-minutes 0.6: the first fit's two thirds (6.7 s) are too short as well: no fit
    short = split_budget(36.0, 2.0, 60.0)
    assert short.inverse_s == 0 and short.fine_tune_skipped == 0
    assert short.inverse_skipped == pytest.approx((1 - DECODED_FRACTION) * INVERSE_SHARE * 34.0)
    assert "no learned inverse mel (its share, 6.8 s, is under the 10 s" in short.line()
    assert short.training_s == pytest.approx(34.0 - short.hearing_s - short.writing_s)
    five = split_budget(300.0, 12.0, 60.0)  # a share long enough: both fits planned
    assert five.fine_tune_s == pytest.approx(DECODED_FRACTION * five.inverse_s)
    assert five.fine_tune_skipped == 0
    # the first fit is handed the whole inverse part; the fine-tuning is skipped with its reason
    seconds = []
    monkeypatch.setattr(_train_steps, "train_inverse_mel",
                        lambda *a: seconds.append(a[6]) or {"trained": True})
    monkeypatch.setattr(_train_steps, "collapsed", lambda r: False)
    args = types.SimpleNamespace(no_inverse_mel=False, inverse_mel_minutes=1.0, quiet=True)
    run = types.SimpleNamespace(spectrogram=None, clips=None, train_idx=[0, 1])
    entry = _train_steps.inverse_entry_for(args, run, RunDir(tmp_path), 0, plan, None, False,
                                           None, 4)
    assert seconds == [pytest.approx(plan.inverse_s)]
    assert entry["decoded"]["kept"] is False and "5.2 s, is under the 10 s" in entry[
        "decoded"]["note"]


def test_the_clips_to_hear_are_those_hear_scores():
    """At most 2 clips from each of the first 24 files by name: hearing's share is sized to
    them, not to every held-out clip."""
    from sda_lab.interface.commands._train_steps import HEAR_MAX_FILES, clips_to_hear

    files = [f"f{k:02d}.wav" for k in range(30) for _ in range(3)]  # 30 files of 3 clips
    assert HEAR_MAX_FILES == 24 and clips_to_hear(files, list(range(90))) == 48
    assert clips_to_hear(files, [0, 3, 4]) == 3  # f00's first clip, f01's first two


def test_max_minutes_is_the_whole_wait_and_each_part_gets_its_printed_share(
        tmp_path, capsys, monkeypatch, tiny):
    monkeypatch.setattr("sda_lab.training.budget.MIN_INVERSE_S", 0.0)  # fit in a small share
    folder = write_folder(tmp_path / "a", names=[f"f{i}.wav" for i in range(5)])
    out = tmp_path / "run"
    code = main(["train", str(folder), "--out", str(out), "--max-minutes", "0.25", *BASE])
    printed = capsys.readouterr().out
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    planned = m["budget"]["planned"]
    assert m["budget"]["total_s"] == 15.0 and sum(planned.values()) == pytest.approx(15.0)
    assert m["train_config"]["max_minutes"] * 60 == pytest.approx(planned["training_s"])
    first = (1 - DECODED_FRACTION) * planned["inverse_s"]
    assert m["inverse_mel"]["config"]["max_seconds"] == pytest.approx(first)
    assert "kept" in m["inverse_mel"]["decoded"]  # the fine-tuning on decoded mels ran too
    assert m["stop_reason"].startswith("max_minutes") and m["audio"]["files_scored"] >= 1
    line = next(s for s in printed.splitlines() if s.startswith("time budget 0.25 min"))
    assert f"training {planned['training_s']:.1f} s" in line
    assert "of the 15 s budget" in printed
    # --quiet: no bar was shown, so the closing lines name none
    assert "spectral error" in printed and "progress bar" not in printed


def _fake_fit(spec, best_loss):
    """What fit_inverse_mel returns when its best pick-set loss is ``best_loss`` against a
    start's 1.0."""
    config = IM.InverseMelConfig(hidden=4, kernel_size=3, layers=1, nnls_iters=2)
    net = IM.InverseMelNet(spec.config.n_mels, spec.config.n_stft, config)
    torch.nn.init.normal_(net.out.weight)
    history = {"val_loss": [(0, 1.0), (25, best_loss)], "best_step": 25, "steps": 30,
               "seconds": 1.0, "start_sc": {}, "loss": [], "start_loss": 1.0}
    return IM.InverseMel(net, asdict(spec.config), config, history, "harmonic")


@pytest.mark.parametrize("best_loss, kept", [(1 - INVERSE_MARGIN / 2, "start"), (0.9, "learned")])
def test_an_inverse_that_does_not_beat_its_start_by_the_margin_keeps_the_start(
        tmp_path, capsys, monkeypatch, best_loss, kept):
    spec = AudioSpectrogram(SpectrogramConfig(sample_rate=16_000, n_fft=512, hop_length=256,
                                              n_mels=32))
    fake = _fake_fit(spec, best_loss)
    monkeypatch.setattr(IMF, "fit_inverse_mel", lambda *a, **k: fake)
    clips = types.SimpleNamespace(files=[f"f{i}.wav" for i in range(5)],
                                  waveforms=torch.zeros(5, 1, 4000))
    args = types.SimpleNamespace(quiet=True)
    entry = train_inverse_mel(args, spec, clips, list(range(5)), tmp_path, 0, 30.0)
    lines = [s for s in capsys.readouterr().out.splitlines() if "kept" in s]
    assert len(lines) == 1 and entry["kept"] == kept and entry["margin"] == INVERSE_MARGIN
    saved = IM.load_inverse_mel(tmp_path / IM.INVERSE_MEL_FILE)
    heard = Inverter.for_run(tmp_path, spec)
    if kept == "start":
        assert "kept its harmonic start" in lines[0] and "1% below" in lines[0]
        assert saved.history["kept"] == "start" and not saved.net.out.weight.any()
        assert heard.inverse is None and heard.start == "harmonic"  # the start, said so
        assert "learned" not in heard.name
    else:
        assert heard.inverse is not None and "learned" in heard.name


def test_a_fit_that_never_beat_its_start_says_so(tmp_path, capsys, monkeypatch):
    spec = AudioSpectrogram(SpectrogramConfig(sample_rate=16_000, n_fft=512, hop_length=256,
                                              n_mels=32))
    fake = _fake_fit(spec, 1.2)
    fake.history.update(best_step=0)  # the start's weights were the best on the pick set
    monkeypatch.setattr(IMF, "fit_inverse_mel", lambda *a, **k: fake)
    clips = types.SimpleNamespace(files=[f"f{i}.wav" for i in range(5)],
                                  waveforms=torch.zeros(5, 1, 4000))
    entry = train_inverse_mel(types.SimpleNamespace(quiet=True), spec, clips, list(range(5)),
                              tmp_path, 0, 30.0)
    line = next(s for s in capsys.readouterr().out.splitlines() if "kept" in s)
    assert entry["kept"] == "start" and entry["best_step"] == 0
    assert "no step of the fit came below the start's pick-set magnitude loss, 1 (30" in line


@pytest.mark.parametrize("heard_sc, kept", [(0.5, True), (1 - INVERSE_MARGIN / 2, False)])
def test_what_the_model_makes_is_heard_through_the_inverse_fine_tuned_on_it_where_kept(
        tmp_path, capsys, monkeypatch, tiny, heard_sc, kept):
    """Kept where the pick clips' decoded mels are heard closer through it (spectral
    convergence, here given: 1.0 through the inverse it started from)."""
    import sda_lab.interface.commands._train_steps as steps

    folder = write_folder(tmp_path / "a", names=[f"f{i}.wav" for i in range(6)])
    from sda_lab.training.recipes import OWN_AUDIO_RECIPE

    spec = OWN_AUDIO_RECIPE.audio_spectrogram()  # the CLI's representation
    fits = []

    def fake_fit(spec_, waves, config, **kwargs):  # the inverse, then its fine-tuning
        fits.append({**kwargs, "config": config})
        if kwargs.get("mels") is None:
            return _fake_fit(spec, 0.9)
        tuned = _fake_fit(spec, 0.5)
        tuned.history["inputs"] = "given"
        return tuned

    monkeypatch.setattr(IMF, "fit_inverse_mel", fake_fit)
    monkeypatch.setattr(steps, "collapsed", lambda result: False)  # a 1-step model may be
    def heard(spec, inverse, mels, waves):  # takes 0.1 s, as hearing the pick clips takes time
        import time

        time.sleep(0.1)
        return heard_sc if inverse.history.get("inputs") == "given" else 1.0

    monkeypatch.setattr(steps, "_heard_sc", heard)
    out = tmp_path / "run"
    stale = out / IM.DECODED_INVERSE_MEL_FILE  # another model's, from an earlier fit
    out.mkdir()
    stale.write_bytes(b"another model's")
    assert main(["train", str(folder), "--out", str(out), "--max-steps", "1", "--overwrite",
                 *BASE]) == 0
    printed = capsys.readouterr().out
    assert [k.get("init") is not None for k in fits] == [False, True]  # from the inverse itself
    assert fits[1]["config"].max_seconds <= 30.0 - 0.2  # both hearings inside its 30 s
    decoded = fits[1]["mels"]  # the heard model's decoded mels of the fit clips
    assert decoded.shape[1:] == (1, spec.config.n_mels, fits[1]["mels"].shape[-1])
    entry = json.loads((out / "metrics.json").read_text())["inverse_mel"]["decoded"]
    assert entry["kept"] is kept and stale.is_file() is kept
    assert entry["pick_sc"] == heard_sc and entry["pick_before_sc"] == 1.0
    heard = Inverter.for_run(out, spec)  # what the model makes
    round_trip = Inverter.for_run(out, spec, mels="analysed")
    assert "fitted to the decoded mels" not in round_trip.name
    assert ("fitted to the decoded mels" in heard.name) is kept
    wrote = next(s for s in printed.splitlines() if s.startswith("wrote "))
    assert (IM.DECODED_INVERSE_MEL_FILE in wrote) is kept
    with pytest.raises(ValueError, match="mels: expected one of decoded, analysed, got 'raw'"):
        Inverter.for_run(out, spec, mels="raw")
    stale.write_bytes(b"the model before --resume")  # fitted to the model before more steps
    assert main(["train", str(folder), "--out", str(out), "--resume", "--max-steps", "2",
                 "--quiet"]) == 0
    assert [k.get("init") is not None for k in fits] == [False, True, True]  # inverse kept
    assert stale.is_file() is kept
    if kept:
        assert IM.load_inverse_mel(stale).history["inputs"] == "given"  # refitted, not the old
        _a_decoded_inverse_that_does_not_fit_is_warned_about_and_left_out(out, spec, tmp_path)


def _a_decoded_inverse_that_does_not_fit_is_warned_about_and_left_out(out, spec, tmp_path):
    import shutil
    import warnings

    decoded = out / IM.DECODED_INVERSE_MEL_FILE
    good = decoded.read_bytes()
    other = tmp_path / "other"  # another run's copy: same file, another checkpoint
    shutil.copytree(out, other)
    torch.save({"not": "this run's model"}, other / "best.pt")
    decoded.write_bytes(good[:100])  # truncated
    for run, why in ((other, "fitted to another model"), (out, "not a readable inverse mel")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            heard = Inverter.for_run(run, spec)
        assert "fitted to the decoded mels" not in heard.name  # inverse_mel.pt instead
        lines = [str(w.message) for w in caught]
        assert len(lines) == 1 and why in lines[0] and "inverse_mel.pt instead" in lines[0]


def test_resume_refits_an_unreadable_inverse(tmp_path, capsys, monkeypatch, tiny):
    from sda_lab.training.recipes import OWN_AUDIO_RECIPE

    folder = write_folder(tmp_path / "a", names=[f"f{i}.wav" for i in range(6)])
    spec = OWN_AUDIO_RECIPE.audio_spectrogram()
    fits = []
    monkeypatch.setattr(IMF, "fit_inverse_mel",
                        lambda *a, **k: fits.append(k) or _fake_fit(spec, 0.9))
    monkeypatch.setattr("sda_lab.interface.commands._train_steps.collapsed", lambda r: False)
    out = tmp_path / "run"
    assert main(["train", str(folder), "--out", str(out), "--max-steps", "1", *BASE]) == 0
    (out / IM.INVERSE_MEL_FILE).write_bytes(b"truncated")
    capsys.readouterr()
    assert main(["train", str(folder), "--out", str(out), "--resume", "--max-steps", "2",
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "is not a readable inverse mel" in printed and "fitted again after training" in printed
    assert [k.get("init") is None for k in fits][-2:] == [True, False]  # the inverse, then tuned
    IM.load_inverse_mel(out / IM.INVERSE_MEL_FILE)  # readable again


def test_resume_without_a_checkpoint_says_how_to_start_the_run(tmp_path, capsys):
    """The advice works as given: a folder with other files in it needs --overwrite."""
    folder = write_folder(tmp_path / "a", names=[f"f{i}.wav" for i in range(4)])
    out = tmp_path / "run"
    out.mkdir()
    code, line = error_of(capsys, ["train", str(folder), "--out", str(out), "--resume"])
    assert code == 1 and line.endswith("got no checkpoint.pt; start the run without --resume")
    (out / "notes.txt").write_text("mine")  # not a run's: no --overwrite needed
    code, line = error_of(capsys, ["train", str(folder), "--out", str(out), "--resume"])
    assert code == 1 and line.endswith("start the run without --resume")
    (out / "metrics.json").write_text("{}")  # what a run stopped before its checkpoint left
    code, line = error_of(capsys, ["train", str(folder), "--out", str(out), "--resume"])
    assert code == 1 and ("start the run again with --overwrite in place of --resume (the "
                          "folder holds metrics.json)") in line
    code, line = error_of(capsys, ["train", str(folder), "--out", str(out), *BASE])
    assert code == 1 and "--overwrite" in line  # what the advice avoids


def test_resume_names_an_inverse_budget_for_a_run_without_an_inverse(tmp_path, capsys, tiny):
    folder = write_folder(tmp_path / "a", names=[f"f{i}.wav" for i in range(4)])
    out = tmp_path / "run"
    assert main(["train", str(folder), "--out", str(out), "--max-steps", "1", "--no-inverse-mel",
                 *BASE]) == 0
    before = (out / "metrics.json").read_bytes()
    code, line = error_of(capsys, ["train", str(folder), "--out", str(out), "--resume",
                                   "--inverse-mel-minutes", "0.5", "--max-steps", "2"])
    assert code == 1 and line.startswith("sda-lab: error: --inverse-mel-minutes: expected a run "
                                         "with a learned inverse mel") and "--no-inverse-mel" in line
    assert (out / "metrics.json").read_bytes() == before  # nothing trained
    code, line = error_of(capsys, ["train", str(folder), "--out", str(out), "--resume",
                                   "--inverse-mel", "1"])  # a shortened flag is not taken
    assert code == 2 and "unrecognized arguments: --inverse-mel 1" in line
    code, line = error_of(capsys, ["train", str(folder), "--out", str(out), "--resume",
                                   "--no-inverse-mel"])  # the run's own: refused like the rest
    assert code == 1 and "expected the run's own settings, got --no-inverse-mel" in line
    code, line = error_of(capsys, ["train", str(folder), "--out", str(out), "--resume"])
    assert code == 1 and ("got none, and the run's own (--max-steps 1) is spent at 1 steps; "
                          "give one, e.g. --max-steps 2") in line  # no budget flag was given
    code, line = error_of(capsys, ["train", str(folder), "--out", str(out), "--resume",
                                   "--max-steps", "1"])  # given, and as spent
    assert code == 1 and "got --max-steps 1, spent at 1 steps" in line
    assert (out / "metrics.json").read_bytes() == before


def test_a_collapsed_model_is_not_fine_tuned_on_its_decoded_mels(tmp_path, capsys):
    from sda_lab.interface.commands._train_steps import inverse_entry_for

    result = types.SimpleNamespace(history=types.SimpleNamespace(active_units=[3, 0]))
    args = types.SimpleNamespace(no_inverse_mel=False, inverse_mel_minutes=1.0, quiet=True)
    entry = inverse_entry_for(args, result, RunDir(tmp_path), 0, None, None, True,
                              {"inverse_mel": {"trained": True}}, 4)
    assert entry["decoded"]["kept"] is False and "collapsed" in entry["decoded"]["note"]
    line = capsys.readouterr().out.strip()
    assert line.startswith("learned inverse mel: not fine-tuned") and "collapsed" in line


def test_a_kept_inverse_leaves_its_first_share_to_training_and_the_rest_to_its_fine_tuning(
        tmp_path, monkeypatch):
    from sda_lab.interface.commands import _train_steps

    plan = split_budget(300.0, 12.0, 60.0)
    kept = split_budget(300.0, 12.0, 60.0, fine_tune_only=True)  # --resume, inverse readable
    assert kept.inverse_s == pytest.approx(DECODED_FRACTION * plan.inverse_s)
    assert kept.training_s == pytest.approx(plan.training_s + plan.inverse_s - kept.inverse_s)
    assert "fine-tuning the kept inverse mel" in kept.line()
    assert sum(kept.parts().values()) == pytest.approx(300.0)
    # a share too short for the fine-tuning goes to training, and the line says the kept
    # inverse is not fine-tuned (not "no learned inverse mel")
    short = split_budget(40.0, 3.0, 60.0, fine_tune_only=True)
    assert short.inverse_s == 0 and 0 < short.inverse_skipped < MIN_INVERSE_S
    assert "the kept inverse mel, not fine-tuned (its share" in short.line()
    seconds = []
    monkeypatch.setattr(_train_steps, "train_decoded_inverse",
                        lambda args, result, path, seed, s, groups: seconds.append(s)
                        or {"kept": True})
    monkeypatch.setattr(_train_steps, "collapsed", lambda r: False)
    args = types.SimpleNamespace(no_inverse_mel=False, inverse_mel_minutes=1.0, quiet=True)
    entry = _train_steps.inverse_entry_for(args, None, RunDir(tmp_path), 0, kept, None, True,
                                           {"inverse_mel": {"trained": True}}, 4)
    assert seconds == [pytest.approx(kept.inverse_s)] and entry["decoded"] == {"kept": True}
    assert entry["trained"] and "kept from before --resume" in entry["note"]
    RunDir(tmp_path).decoded_inverse_mel.write_bytes(b"fitted before --resume")
    entry = _train_steps.inverse_entry_for(args, None, RunDir(tmp_path), 0, short, None, True,
                                           {"inverse_mel": {"trained": True}}, 4)
    assert entry["trained"] and "is under the 10 s" in entry["decoded"]["note"]
    assert "earlier fine-tuning, fitted to the model before --resume, is removed" in entry[
        "decoded"]["note"] and len(seconds) == 1


def test_an_interrupted_resume_does_not_record_the_fine_tuning_it_removed(tmp_path):
    from sda_lab.interface.commands._train_steps import inverse_entry_for

    out = RunDir(tmp_path)
    out.decoded_inverse_mel.write_bytes(b"fitted to the model before --resume")
    args = types.SimpleNamespace(no_inverse_mel=False, inverse_mel_minutes=1.0, quiet=True)
    earlier = {"inverse_mel": {"trained": True, "decoded": {"kept": True}}}
    entry = inverse_entry_for(args, None, out, 0, None, object(), True, earlier, 4)
    assert entry["trained"] and "decoded" not in entry  # metrics.json names no missing file
    assert not out.decoded_inverse_mel.exists()


def test_ctrl_c_writes_what_finished_and_resume_ends_as_the_uninterrupted_run(
        tmp_path, capsys, monkeypatch, tiny):
    folder = write_folder(tmp_path / "a")
    steps = ["--max-steps", "6", "--seed", "1", "--no-inverse-mel", *BASE]
    whole = ["train", str(folder), "--out", str(tmp_path / "whole"), *steps]
    assert main(whole) == 0
    told = capsys.readouterr().out
    m = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert m["argv"] == whole[1:] or m["argv"] == whole  # the argv given to main, not sys.argv
    assert set(m["fingerprints"]) == set(m["train_files"]) | set(m["val_files"])
    assert all(len(f["sha256"]) == 64 for f in m["fingerprints"].values())
    assert m["data_config"]["short_files"] == "pad" and m["folder"] == str(folder.resolve())
    assert told.index("training stopped by --max-steps") < told.index("verdict: ")
    assert "alarm" not in told and told.count("verdict: ") == 1

    out = tmp_path / "cut 'one'"
    _ctrl_c_at(monkeypatch, 3)
    assert main(["train", str(folder), "--out", str(out), *steps]) == 130
    err = capsys.readouterr().err
    assert "interrupted after 3 steps" in err
    go_on = shlex.split(err.split("go on with: ", 1)[1].strip())  # as a shell reads it
    assert go_on[-4:] == [str(folder), "--out", str(out), "--resume"]
    cut = json.loads((out / "metrics.json").read_text())  # what finished is on disk
    assert cut["interrupted"] is True and cut["steps"] == 3
    assert load_checkpoint(out / "checkpoint.pt", device="cpu").resume["step_count"] == 3
    monkeypatch.undo()
    code, line = error_of(capsys, ["train", str(folder), "--out", str(out), "--resume",
                                   "--lr", "0.1"])
    assert code == 1 and "--resume" in line and "--lr" in line
    assert main(["train", str(folder), "--out", str(out), "--resume", "--quiet"]) == 0
    done = json.loads((out / "metrics.json").read_text())
    assert done["steps"] == 6 and done["val_files"] == m["val_files"]
    assert not (out / "inverse_mel.pt").exists()  # the run's own --no-inverse-mel is kept
    a = load_checkpoint(tmp_path / "whole" / "checkpoint.pt", device="cpu").model.state_dict()
    b = load_checkpoint(out / "checkpoint.pt", device="cpu").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_second_training_into_the_same_out_is_refused_in_one_line(tmp_path, capsys, tiny):
    folder = write_folder(tmp_path / "a")
    out = tmp_path / "run"
    out.mkdir()
    with RunDir(out).lock():
        code, line = error_of(capsys, ["train", str(folder), "--out", str(out),
                                       "--max-steps", "1", *BASE])
        assert code == 1 and line.startswith("sda-lab: error: --out:")
        assert "in use by another training" in line and "process" in line
        assert RunDir(out).files() == []  # nothing written, nothing reported


def test_wrote_is_never_said_of_files_another_process_replaced(tmp_path):
    run = RunDir(tmp_path)
    for p in (run.checkpoint, run.best):
        p.write_bytes(b"x")
    run.metrics.write_text(json.dumps({"run_id": "theirs"}))
    with pytest.raises(OSError, match="changed under this run"):
        check_written(run, "mine", {"trained": False})
    run.metrics.write_text(json.dumps({"run_id": "mine"}))
    assert check_written(run, "mine", {"trained": False})[-1] == run.metrics
    with pytest.raises(OSError, match="inverse_mel.pt missing"):
        check_written(run, "mine", {"trained": True})


def test_the_bar_ends_on_the_numbers_it_showed():
    bar = types.SimpleNamespace(text=None)
    bar.set_postfix_str = lambda text, refresh=False: setattr(bar, "text", text)
    state = types.SimpleNamespace(live="held-out spectral error 0.42x the average · 3 active "
                                       "units", history=types.SimpleNamespace(alarm_kind="learned"))
    LiveState(bar).on_train_end(state)
    assert bar.text == state.live


def test_an_interrupted_overwrite_keeps_the_earlier_run_and_a_later_one_is_refused(
        tmp_path, capsys, monkeypatch, tiny):
    folder = write_folder(tmp_path / "a")
    out = tmp_path / "run"
    steps = ["--max-steps", "4", "--no-inverse-mel", *BASE]
    assert main(["train", str(folder), "--out", str(out), *steps]) == 0
    finished = (out / "best.pt").read_bytes()
    _ctrl_c_at(monkeypatch, 2)
    assert main(["train", str(folder), "--out", str(out), "--overwrite", *steps]) == 130
    err = capsys.readouterr().err
    assert "the earlier run is still kept in" in err
    assert (out / "previous-run" / "best.pt").read_bytes() == finished  # nothing lost
    monkeypatch.undo()
    code, line = error_of(capsys, ["train", str(folder), "--out", str(out), "--overwrite",
                                   *steps])
    assert code == 1 and "previous-run" in line and "move its files back" in line
    assert (out / "previous-run" / "best.pt").read_bytes() == finished


def test_a_huge_latent_and_a_changed_setting_on_resume_are_named_before_any_work(tmp_path, capsys):
    folder = write_folder(tmp_path / "a")
    code, line = error_of(capsys, ["train", str(folder), "--out", str(tmp_path / "r"),
                                   "--latent-dim", "999999999"])
    assert code == 1 and "--latent-dim: expected 1 to 4096, got 999999999" in line
    code, line = error_of(capsys, ["train", str(folder), "--out", str(tmp_path / "r"),
                                   "--resume", "--latent-dim", "8"])
    assert code == 1 and line.startswith("sda-lab: error: --resume: expected the run's own "
                                         "settings, got --latent-dim")
    # an option given at its default value may not be the run's own: named too
    for given in (["--lr-schedule", "constant"], ["--lr-schedule=constant"],
                  ["--ema-decay", "0.99"]):
        code, line = error_of(capsys, ["train", str(folder), "--out", str(tmp_path / "r"),
                                       "--resume", *given])
        assert code == 1 and f"got {given[0].split('=')[0]}" in line, line
    assert not (tmp_path / "r").exists()  # nothing was made


def test_the_inverse_mels_pick_files_are_whole_recordings(tmp_path, monkeypatch):
    """Files that are one recording up to gain (``groups``) are all fit or all pick, so the
    weights are not picked on copies of what they were fitted to; training files that are one
    recording leave nothing to pick on, which is said, not raised."""
    spec = AudioSpectrogram(SpectrogramConfig(sample_rate=16_000, n_fft=512, hop_length=256,
                                              n_mels=32))
    monkeypatch.setattr(IMF, "fit_inverse_mel", lambda *a, **k: _fake_fit(spec, 0.9))
    files = [f"f{i}.wav" for i in range(10)]
    clips = types.SimpleNamespace(files=files, waveforms=torch.zeros(10, 1, 4000))
    groups = {f: "f0.wav" for f in files[:4]} | {f: "f4.wav" for f in files[4:8]}
    args = types.SimpleNamespace(quiet=True)
    seen = set()
    for seed in range(40):
        entry = train_inverse_mel(args, spec, clips, list(range(10)), tmp_path, seed, 30.0,
                                  groups)
        picked = {groups.get(f, f) for f in entry["pick_files"]}
        assert all(groups.get(f, f) not in picked or f in entry["pick_files"] for f in files)
        seen |= picked
    assert "f0.wav" in seen and "f4.wav" in seen  # the groups were picked, whole
    one = {f: "f0.wav" for f in files}
    entry = train_inverse_mel(args, spec, clips, list(range(10)), tmp_path, 0, 30.0, one)
    assert not entry["trained"] and "2 different recordings" in entry["note"]


def test_training_files_that_are_one_recording_fit_no_inverse_and_say_so(tmp_path, capsys):
    from sda_lab.interface.commands._train_steps import inverse_entry_for

    args = types.SimpleNamespace(no_inverse_mel=False, inverse_mel_minutes=1.0, quiet=True)
    entry = inverse_entry_for(args, None, RunDir(tmp_path), 0, None, None, False, None, 1)
    assert not entry["trained"] and "1 training recording" in entry["note"]
    assert "NNLS" in capsys.readouterr().out


@pytest.mark.parametrize("share, fitted", [(0.03, True), (1e-4, False)])
def test_the_decoding_for_the_fine_tuning_stays_inside_its_share(tmp_path, capsys, monkeypatch,
                                                                 tiny, share, fitted):
    """The pick clips are decoded first and timed; only as many fit clips as the decoding's
    share holds are decoded (spread over them), and none are fitted where fewer than 2 fit."""
    import time

    import sda_lab.interface.commands._train_steps as steps
    import sda_lab.training.posterior as posterior

    folder = write_folder(tmp_path / "a", names=[f"f{i}.wav" for i in range(8)])
    from sda_lab.training.recipes import OWN_AUDIO_RECIPE

    spec = OWN_AUDIO_RECIPE.audio_spectrogram()
    fits = []

    def fake_fit(spec_, waves, config, **kwargs):
        fits.append(kwargs)
        return _fake_fit(spec, 0.9)

    def slow(model, mels, *args, **kwargs):  # 0.2 s a clip
        time.sleep(0.2 * mels.shape[0])
        return mels.clone()

    monkeypatch.setattr(IMF, "fit_inverse_mel", fake_fit)
    monkeypatch.setattr(posterior, "heard_reconstruction", slow)
    monkeypatch.setattr(steps, "collapsed", lambda result: False)
    monkeypatch.setattr(steps, "_heard_sc", lambda *a: 1.0)
    monkeypatch.setattr(steps, "DECODING_SHARE", share)  # of 30 s: 0.9 s (2-3 clips), or 3 ms
    out = tmp_path / "run"
    assert main(["train", str(folder), "--out", str(out), "--max-steps", "1", *BASE]) == 0
    printed = capsys.readouterr().out
    entry = json.loads((out / "metrics.json").read_text())["inverse_mel"]["decoded"]
    if fitted:
        n = entry["fit_clips"]
        assert 2 <= n == len(fits[1]["mels"]) < entry["training_fit_clips"]
        assert f"decoded mels of {n} clips (of {entry['training_fit_clips']}" in printed
    else:
        assert len(fits) == 1 and entry["kept"] is False  # the first fit only
        assert "holds 0 of the" in entry["note"] and entry["note"] in printed
