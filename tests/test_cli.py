"""``python -m sda_lab train``: a real subprocess on a tiny folder, and its one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sda_lab.cli import main
from sda_lab.train import load_checkpoint

REPO = Path(__file__).resolve().parents[1]


def _write_folder(folder: Path, names=("a.wav", "b.flac", "c.ogg", "sub/d.wav"), sr=22050):
    for i, name in enumerate(names):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(1.05 * sr)) / sr
        x = 0.5 * np.sin(2 * np.pi * (220 + 110 * i) * t) * np.exp(-2 * t)
        sf.write(path, x, sr)
    (folder / "notes.txt").write_text("not audio")
    return folder


def _run(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "sda_lab", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_train_writes_checkpoints_and_metrics(tmp_path):
    folder = _write_folder(tmp_path / "audio")
    out = tmp_path / "run"
    proc = _run("train", folder, "--out", out, "--max-steps", 3, "--seed", 1,
                "--latent-dim", 8, "--batch-size", 2)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "training" in proc.stderr  # the progress bar
    m = json.loads((out / "metrics.json").read_text())
    for key in ("train_recon", "train_baseline", "val_recon", "val_baseline", "n_train_clips",
                "n_val_clips", "val_files", "alarm", "train_config", "model_config",
                "spectrogram_config", "report", "wall_s"):
        assert key in m, key
    assert m["n_train_clips"] == 3 and m["n_val_clips"] == 1 and len(m["val_files"]) == 1
    assert m["val_files"][0] not in m["train_files"]
    assert m["steps"] == 3 and m["stop_reason"].startswith("max_steps")
    assert m["train_config"]["seed"] == 1 and m["model_config"]["latent_dim"] == 8
    assert m["train_config"]["epochs"] is None  # a step budget without --epochs
    assert isinstance(m["alarm"]["fired"], bool) and m["alarm"]["why"]
    assert m["alarm"]["fired"] == (m["val_recon"] >= 0.9 * m["val_baseline"]
                                   or m["active_units"] == 0)
    assert len(m["report"]) == 5 and {r["file"] for r in m["report"]} >= {"notes.txt"}
    assert m["val_baseline"] > 0 and m["train_baseline"] > 0
    ck = load_checkpoint(out / "checkpoint.pt", device="cpu")
    assert ck.model.latent_dim == 8 and ck.history.steps[-1] == 3
    assert ck.spectrogram().config.n_mels == m["spectrogram_config"]["n_mels"]
    best = load_checkpoint(out / "best.pt", device="cpu")
    assert best.history.best_epoch == m["best_epoch"]


def test_missing_folder_is_one_line_from_the_real_command(tmp_path):
    proc = _run("train", tmp_path / "nope", "--out", tmp_path / "run")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("sda-lab: error: audio folder not found")


def _error_of(capsys, argv):
    with pytest.raises(SystemExit) as info:
        sys.exit(main(argv))
    err = capsys.readouterr().err
    lines = [s for s in err.splitlines() if not s.startswith("sda-lab: warning:")]
    assert len(lines) == 1, err
    return info.value.code, lines[0]


def test_no_usable_audio(tmp_path, capsys):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "readme.txt").write_text("nothing here")
    code, line = _error_of(capsys, ["train", str(folder), "--out", str(tmp_path / "o")])
    assert code == 1 and "no usable 1 s clips" in line and "readme.txt" in line


def test_split_impossible_with_one_file(tmp_path, capsys):
    folder = _write_folder(tmp_path / "one", names=("only.wav",))
    code, line = _error_of(capsys, ["train", str(folder), "--out", str(tmp_path / "o")])
    assert code == 1 and "at least 2 files, found 1 (only.wav)" in line


def test_unknown_validation_file(tmp_path, capsys):
    folder = _write_folder(tmp_path / "a")
    code, line = _error_of(capsys, ["train", str(folder), "--out", str(tmp_path / "o"),
                                    "--val-files", "zzz.wav"])
    assert code == 1 and "'zzz.wav' is not one of the 4 files" in line


@pytest.mark.parametrize("argv, match", [
    (["train", "x", "--out", "o", "--val-fraction", "1.5"], "expected a fraction in [0, 1)"),
    (["train", "x", "--out", "o", "--max-steps", "0"], "expected a positive integer"),
    (["train", "x", "--out", "o", "--cut", "beats"], "invalid choice: 'beats'"),
    (["train", "x"], "the following arguments are required: --out"),
    (["fly"], "invalid choice: 'fly'"),
])
def test_bad_options(capsys, argv, match):
    code, line = _error_of(capsys, argv)
    assert code == 2 and line.startswith("sda-lab: error:") and match in line


def test_out_is_a_file(tmp_path, capsys):
    folder = _write_folder(tmp_path / "a")
    (tmp_path / "file").write_text("x")
    code, line = _error_of(capsys, ["train", str(folder), "--out", str(tmp_path / "file")])
    assert code == 1 and "--out must be a folder" in line


@pytest.mark.parametrize("scale", [None, "log1p", "db"])
def test_scale_is_stored_in_the_checkpoint(tmp_path, capsys, scale):
    """No --scale: the recipe's representation (dB); --scale picks either one."""
    from sda_lab.train import OWN_AUDIO_SCALE, OWN_AUDIO_TRAIN

    folder = _write_folder(tmp_path / "a")
    out = tmp_path / "run"
    code = main(["train", str(folder), "--out", str(out), "--max-steps", "1",
                 *(["--scale", scale] if scale else []),
                 "--latent-dim", "4", "--quiet", "--val-fraction", "0"])
    assert code == 0, capsys.readouterr().err
    ck = load_checkpoint(out / "checkpoint.pt", device="cpu")
    assert ck.spectrogram().config.scale == (scale or OWN_AUDIO_SCALE) == (scale or "db")
    assert ck.train_config.kl_weight == OWN_AUDIO_TRAIN.kl_weight
    m = json.loads((out / "metrics.json").read_text())
    assert m["val_recon"] is None and m["n_val_clips"] == 0 and m["val_files"] == []
    assert m["alarm"]["fired"] == (m["train_recon"] >= 0.9 * m["train_baseline"]
                                   or m["active_units"] == 0)
