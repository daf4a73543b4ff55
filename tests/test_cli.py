"""``python -m sda_lab``: the parser, option checks before any work, one-line errors naming flags.

Runs that train are in ``tests/test_cli_train.py``.
"""

import argparse
import errno
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sda_lab.interface import cli
from sda_lab.interface.cli import build_parser, main
from sda_lab.interface.commands import _options

REPO = Path(__file__).resolve().parents[1]


def write_folder(folder: Path, names=("a.wav", "b.flac", "c.ogg", "sub/d.wav"), sr=22050,
                 seconds=1.05):
    """Decaying sines of different pitch, one per name, plus a note that is not audio."""
    for i, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(seconds * sr)) / sr
        x = 0.5 * np.sin(2 * np.pi * (220 + 110 * i) * t) * np.exp(-2 * t)
        sf.write(path, x, sr)
    (folder / "notes.txt").write_text("not audio")
    return folder


def run_cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "sda_lab", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def error_of(capsys, argv):
    """Exit code and the one error line of ``main(argv)`` (warnings aside)."""
    with pytest.raises(SystemExit) as info:
        sys.exit(main(argv))
    err = capsys.readouterr().err
    lines = [s for s in err.splitlines() if not s.startswith("sda-lab: warning:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return info.value.code, lines[0]


def test_missing_folder_is_one_line_from_the_real_command(tmp_path):
    proc = run_cli("train", tmp_path / "nope", "--out", tmp_path / "run")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("sda-lab: error: audio folder not found")


@pytest.mark.parametrize("argv, line", [
    (["--seed", "-1"], "--seed: expected a non-negative integer, got '-1'"),
    (["--seed", "1.5"], "--seed: expected a non-negative integer, got '1.5'"),
    (["--seed", str(2**40)], "--seed: expected a non-negative integer up to"),
    (["--val-fraction", "1.5"], "--val-fraction: expected a fraction in [0, 1), got '1.5'"),
    (["--max-steps", "0"], "--max-steps: expected a positive integer, got '0'"),
    (["--lr", "nan"], "--lr: expected a positive number, got 'nan'"),
    (["--kl-weight", "-1"], "--kl-weight: expected a number >= 0, got '-1'"),
    (["--cut", "beats"], "--cut: invalid choice: 'beats'"),
    (["--device", "gpu"], "--device: expected one of cpu, cuda, cuda:N, mps, got 'gpu'"),
])
def test_bad_option_names_the_flag_before_the_folder_is_read(tmp_path, capsys, argv, line):
    """The folder does not exist: the option's error comes first, naming the flag."""
    code, got = error_of(capsys, ["train", str(tmp_path / "nope"), "--out",
                                  str(tmp_path / "o"), *argv])
    assert code == 2 and got.startswith(f"sda-lab: error: {line}"), got
    assert "argument" not in got and not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv, match", [
    (["train", "x"], "the following arguments are required: --out"),
    (["fly"], "invalid choice: 'fly'"),
])
def test_bad_command_lines(capsys, argv, match):
    code, line = error_of(capsys, argv)
    assert code == 2 and line.startswith("sda-lab: error:") and match in line


@pytest.mark.parametrize("name, attr", [("cuda", "cuda"), ("cuda:0", "cuda"), ("mps", "mps")])
def test_device_missing_on_this_machine_is_one_line(tmp_path, capsys, monkeypatch, name, attr):
    if attr == "cuda":
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    else:
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    code, line = error_of(capsys, ["train", str(tmp_path), "--out", str(tmp_path / "o"),
                                   "--device", name])
    assert code == 2 and line.startswith(f"sda-lab: error: --device: expected a device this "
                                         f"machine has, got '{name}'")
    assert "not available here" in line


def test_out_is_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code, line = error_of(capsys, ["train", str(tmp_path / "nope"), "--out",
                                   str(tmp_path / "file")])
    assert code == 1 and "--out: expected a folder, got a file" in line


def test_out_unwritable_is_checked_before_the_folder(tmp_path, capsys, monkeypatch):
    """A folder that cannot be written (simulated: root ignores chmod) fails before loading."""
    import sda_lab.core._io as io_mod

    def refuse(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(io_mod.tempfile, "mkstemp", refuse)
    code, line = error_of(capsys, ["train", str(tmp_path / "nope"), "--out",
                                   str(tmp_path / "o")])
    assert code == 1 and line.startswith("sda-lab: error: --out: cannot write to")
    assert "permission denied" in line


def test_a_refused_run_leaves_no_empty_out_folder(tmp_path, capsys):
    (tmp_path / "kept").mkdir()  # a folder that was there stays
    for out in (tmp_path / "a" / "b" / "run", tmp_path / "kept"):
        code, line = error_of(capsys, ["train", str(tmp_path / "nope"), "--out", str(out)])
        assert code == 1 and "audio folder not found" in line, line
    assert not (tmp_path / "a").exists() and (tmp_path / "kept").is_dir()


@pytest.mark.parametrize("name", ["checkpoint.pt", "best.pt", "metrics.json"])
def test_out_holding_a_run_is_refused_before_the_folder(tmp_path, capsys, name):
    out = tmp_path / "run"
    out.mkdir()
    (out / name).write_text("earlier run")
    code, line = error_of(capsys, ["train", str(tmp_path / "nope"), "--out", str(out)])
    assert code == 1 and line.startswith("sda-lab: error: --out: expected a folder without "
                                         "another run")
    assert name in line and "--overwrite" in line
    assert (out / name).read_text() == "earlier run"


def test_no_usable_audio(tmp_path, capsys):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "readme.txt").write_text("nothing here")
    (folder / "noise.bin").write_bytes(b"\x01" * 100)
    code, line = error_of(capsys, ["train", str(folder), "--out", str(tmp_path / "o")])
    assert code == 1 and "no usable 1 s clips" in line and "noise.bin" in line


def test_split_error_names_the_flag_not_the_keyword(tmp_path, capsys):
    folder = write_folder(tmp_path / "one", names=("only.wav",))
    code, line = error_of(capsys, ["train", str(folder), "--out", str(tmp_path / "o")])
    assert code == 1 and "at least 2 files, found 1 (only.wav)" in line
    assert "--val-fraction" in line and "val_fraction" not in line.replace("--val-fraction", "")


def test_unknown_validation_file(tmp_path, capsys):
    folder = write_folder(tmp_path / "a")
    code, line = error_of(capsys, ["train", str(folder), "--out", str(tmp_path / "o"),
                                   "--val-files", "zzz.wav"])
    assert code == 1 and "--val-files: expected files under FOLDER" in line and "'zzz.wav'" in line


def test_option_lists_come_from_their_modules():
    from sda_lab.data import load as data
    from sda_lab.representation import spectrogram

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    choices = {a.dest: a.choices for a in train._actions if a.choices}
    assert choices["cut"] is data.CUTS and choices["short_files"] is data.SHORT_FILES
    assert choices["scale"] is spectrogram.SCALES


def test_only_existing_command_modules_are_registered(monkeypatch):
    monkeypatch.setattr(cli, "COMMAND_MODULES",
                        ("sda_lab.interface.commands.train",
                         "sda_lab.interface.commands.no_such_command"))
    subs = build_parser()._subparsers._group_actions[0].choices
    assert list(subs) == ["train"]


def test_errors_from_deeper_name_flags_and_full_disks():
    line = _options.error_line(ValueError("needs 2 files; train without validation "
                                          "(val_fraction=0) or set max_steps, see "
                                          "TrainConfig.max_steps in /x/val_fraction.py"))
    assert line == ("needs 2 files; train without validation (--val-fraction=0) or set "
                    "--max-steps, see TrainConfig.max_steps in /x/val_fraction.py")
    full = OSError(errno.ENOSPC, "No space left on device", "/runs/x/checkpoint.pt")
    assert _options.error_line(full) == ("no space left on the device while writing "
                                         "/runs/x/checkpoint.pt")
    torch_full = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos "
                              "64 vs 0\nwrite failed")
    assert _options.error_line(torch_full).startswith("no space left on the device")


def test_diverged_run_says_so():
    from sda_lab.training.loop import TrainingDiverged

    line = _options.error_line(TrainingDiverged("loss became nan at epoch 0, step 3"))
    assert line.startswith("training diverged: loss became nan at epoch 0, step 3")


def test_option_types_are_argparse_types():
    with pytest.raises(argparse.ArgumentTypeError, match="got 'inf'"):
        _options.positive_float("inf")
    assert _options.fraction("0") == 0.0 and _options.seed("7") == 7
    assert _options.device("CPU") == "cpu"


@pytest.mark.parametrize("argv, flag", [
    (["train", "", "--out", "x"], "FOLDER"), (["train", "d", "--out", ""], "--out"),
    (["listen", "r", "", "--out", "o.wav"], "FILE"), (["generate", "r", "--out", " "], "--out"),
    (["export", "", "--out", "m.ts"], "RUN")])
def test_an_empty_path_is_refused_not_taken_for_the_current_folder(argv, flag, capsys):
    code, line = error_of(capsys, argv)
    assert code == 2 and line.startswith(f"sda-lab: error: {flag}: expected a path, got an empty")


def test_ctrl_c_while_the_command_starts_is_one_line(tmp_path):
    """SIGINT while ``python -m sda_lab`` imports torch (seconds): one line, status 130."""
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "sda_lab", "train", str(tmp_path / "nope"),
                             "--out", str(tmp_path / "o")], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)  # inside the imports (torch alone takes longer)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, err, out) == (130, "sda-lab: interrupted before any work started\n",
                                           "")


def test_ctrl_c_before_train_wrote_anything_says_nothing_was_written(tmp_path, capsys,
                                                                     monkeypatch):
    import sda_lab.interface.commands.train as train_cmd

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_cmd, "run", interrupted)
    folder = write_folder(tmp_path / "a")
    argv = ["train", str(folder), "--out", str(tmp_path / "o")]
    assert cli.main(argv) == 130
    assert capsys.readouterr().err == "sda-lab: interrupted; nothing was written\n"
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "checkpoint.pt").write_bytes(b"a run's last checkpoint")
    assert cli.main(argv) == 130
    assert capsys.readouterr().err == ("sda-lab: interrupted; the last checkpoint written is "
                                       "kept\n")
