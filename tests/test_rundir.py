"""A run folder as a type: the one run_checkpoint, its data found or said missing, its lock."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sda_lab.training.rundir import LOCK_FILE, RunDir, RunLocked

PACKAGE = Path(__file__).resolve().parents[1] / "sda_lab"


def test_there_is_one_run_checkpoint_and_it_prefers_best(tmp_path):
    ruled = [p for p in PACKAGE.rglob("*.py") if '("best.pt", "checkpoint.pt")' in p.read_text()]
    assert ruled == [PACKAGE / "core" / "run_layout.py"]  # the order is written once
    run = RunDir(tmp_path)
    with pytest.raises(FileNotFoundError, match="holds no run: expected best.pt or checkpoint"):
        run.run_checkpoint()
    run.checkpoint.write_bytes(b"x")
    assert run.run_checkpoint() == run.checkpoint
    run.best.write_bytes(b"x")
    assert run.run_checkpoint() == run.best
    with pytest.raises(FileNotFoundError, match="which is not a folder"):
        RunDir(tmp_path / "nowhere").run_checkpoint()


def test_the_data_folder_is_found_or_said_gone_in_one_line(tmp_path):
    audio, run = tmp_path / "audio", RunDir(tmp_path / "run")
    audio.mkdir()
    run.path.mkdir()
    with pytest.raises(FileNotFoundError, match="records no training folder.*data="):
        run.find_data()
    run.metrics.write_text(f'{{"folder": "{audio}"}}')
    assert run.find_data() == audio
    assert run.find_data(tmp_path) == tmp_path  # data= wins
    audio.rmdir()
    with pytest.raises(FileNotFoundError) as err:
        run.find_data()
    assert "gone or moved" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(FileNotFoundError, match="data: expected the run's training folder"):
        run.find_data(tmp_path / "nope")


def test_a_second_lock_is_refused_naming_the_holder_and_a_dead_ones_lock_is_taken(tmp_path):
    run = RunDir(tmp_path)
    (tmp_path / LOCK_FILE).write_text("999999999")  # left by a process that died
    with run.lock():
        assert (tmp_path / LOCK_FILE).read_text() == str(os.getpid())
        with pytest.raises(RunLocked) as err:  # flock: another open file, same process too
            run.lock().acquire()
        assert f"process {os.getpid()}" in str(err.value) and str(tmp_path) in str(err.value)
        child = subprocess.run(
            [sys.executable, "-c", "import sys; from sda_lab.training.rundir import RunDir, "
             "RunLocked\ntry:\n    RunDir(sys.argv[1]).lock().acquire()\nexcept RunLocked:\n"
             "    sys.exit(3)", str(tmp_path)], capture_output=True, text=True, timeout=120)
        assert child.returncode == 3, child.stderr
    assert not (tmp_path / LOCK_FILE).exists()  # released at exit
    with run.lock():
        pass
