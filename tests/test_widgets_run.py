"""The explorer on a run folder, the map on a real folder, live audio previews, and keeping
what you hear (WAV + figure)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from ._widgets_tiny import TINY_SPEC, tiny_setup
from sda_lab.core._io import limit_peaks
from sda_lab.interface.widgets import (PALETTE, InterpolationExplorer, LatentExplorer,
                                       LatestValueWorker, Preview, export_traversal, map_groups)


def _save_run(folder, model, names=("best.pt", "checkpoint.pt"), extra=None):
    from dataclasses import asdict

    from sda_lab.training.checkpoint import save_checkpoint

    for name in names:
        save_checkpoint(folder / name, model, None, None,
                        extra={"spectrogram_config": asdict(TINY_SPEC), **(extra or {})})


def test_from_run_prefers_best_and_reads_the_runs_folder(tmp_path):
    model, _, _, _ = tiny_setup()
    audio = tmp_path / "audio"
    for sub in ("speech", "ui"):
        (audio / sub).mkdir(parents=True)
        for i in range(2):
            rng = np.random.default_rng(i)
            sf.write(audio / sub / f"{sub}{i}.wav", 0.3 * rng.standard_normal(8000), 16_000)
    run = tmp_path / "run"
    _save_run(run, model, extra={"folder": str(audio)})
    other = model.__class__.from_config(model.config)  # different weights in checkpoint.pt
    from sda_lab.training.checkpoint import save_checkpoint

    save_checkpoint(run / "checkpoint.pt", other, None, None,
                    extra={"spectrogram_config": {"sample_rate": 16_000, "n_fft": 512,
                                                  "hop_length": 256, "n_mels": 32}})
    ex = LatentExplorer.from_run(run, n_shown=2)
    assert torch.equal(ex.model.decoder.fc.weight, model.decoder.fc.weight)  # best.pt
    assert ex.spec.config.sample_rate == 16_000
    assert all(lab.split("/")[0] in ("speech", "ui") for lab in ex.labels)  # the run's folder
    (run / "best.pt").unlink()
    ex2 = LatentExplorer.from_run(run, data=torch.rand(3, 1, 32, 16), n_shown=2)
    assert torch.equal(ex2.model.decoder.fc.weight, other.decoder.fc.weight)  # checkpoint.pt


def test_from_run_names_the_folder_and_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"RUN: expected a run folder .*nowhere"):
        LatentExplorer.from_run(tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError) as err:
        LatentExplorer.from_run(tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path) in msg and "best.pt or checkpoint.pt" in msg
    assert "notes.txt" in msg


def test_map_colours_by_sub_folder_when_files_outnumber_colours():
    labels = [f"speech/s{i}.wav@0s" for i in range(6)] + [f"ui/u{i}.oga@0s" for i in range(9)]
    assert map_groups(labels) == ["speech"] * 6 + ["ui"] * 9
    few = ["a.wav@0s", "a.wav@1s", "b.wav@0s"]
    assert map_groups(few) == ["a.wav", "a.wav", "b.wav"]  # few files: one colour per file
    flat = [f"f{i}.wav@0s" for i in range(len(PALETTE) + 2)]
    assert map_groups(flat) == [lab[:-3] for lab in flat]  # no sub-folders: files, reused

    model, spec, _, _ = tiny_setup()
    mels = torch.rand(len(labels), 1, 32, 16)
    ex = LatentExplorer(model, spec, mels, labels, n_shown=2)
    m = ex.map
    assert m.groups == ["speech", "ui"] and len(set(m.points.colors)) == 2
    assert "speech (6)" in m.caption.value and "ui (9)" in m.caption.value  # the legend
    assert list(m.points.names) == labels and m.points.tooltip.fields == ["name"]  # hover


def test_audio_previews_while_values_come_and_the_full_path_when_they_stop():
    model, spec, mels, labels = tiny_setup()
    import threading

    ex = LatentExplorer(model, spec, mels, labels, n_shown=2, preview=Preview(2, 2))
    heard = []
    real = ex.renderer.render_audio
    dragging = threading.Event()  # the first preview lasts until the drag ends, whatever the CPU

    def spy(z, caption="", play=False, preview=False):
        heard.append(preview)
        if len(heard) == 1:
            dragging.wait(30)
        return real(z, caption, play, preview)

    ex.renderer.render_audio = spy
    s = ex.sliders[0]
    for k in range(1, 6):
        s.value = s.value + s.step
    dragging.set()
    ex.wait()
    assert heard[0] is True and heard[-1] is False and heard.count(False) == 1
    assert not ex.renderer.sound.preview and torch.equal(ex.renderer.sound.z, ex.z)
    assert ex.audio_lane.settled == 1


def test_worker_settles_once_on_the_last_value():
    seen = []
    w = LatestValueWorker(lambda v: seen.append(("fn", v)), settle=lambda v: seen.append(("settle", v)))
    w.submit(1)
    w.wait(5)
    w.submit(2)
    w.wait(5)
    assert seen == [("fn", 1), ("settle", 1), ("fn", 2), ("settle", 2)] and w.settled == 2


def test_export_writes_what_you_hear_and_the_figure(tmp_path):
    model, spec, mels, labels = tiny_setup()
    ex = LatentExplorer(model, spec, mels, labels, n_shown=2)
    ex.set_dimension(0, ex.sliders[0].value + 3 * ex.sliders[0].step)
    paths = ex.export(tmp_path / "keep", name="state")
    wave, sr = sf.read(paths["wav"], dtype="float32")
    assert sr == 16_000 and wave.shape == (ex.renderer.samples,)
    heard = ex.renderer.last_wave.reshape(-1).numpy()
    # the file holds what the player plays: the one writer's limiter, only where it clips
    np.testing.assert_allclose(wave, limit_peaks(heard, sr), atol=1e-6)
    assert Image.open(paths["png"]).size[0] > 300
    ip = InterpolationExplorer(model, spec, mels, labels, a=0, b=1)
    out = ip.export(tmp_path / "keep", steps=3)
    assert [p.name for p in out["wav"]] == ["interpolation_t0.00.wav", "interpolation_t0.50.wav",
                                            "interpolation_t1.00.wav"]
    assert out["png"].stat().st_size > 1000
    tr = export_traversal(model, spec, ex.z, [ex.order[0]], (-2.0, 2.0), ex.scale, tmp_path)
    assert len(tr["wav"]) == 2 and tr["wav"][0].name == f"traversal_z{ex.order[0]}_-2sd.wav"
    a, _ = sf.read(tr["wav"][0])
    b, _ = sf.read(tr["wav"][1])
    assert not np.allclose(a, b)  # the two ends of the traversal sound different
    (tmp_path / "file").write_text("x")
    from sda_lab.core._io import WriteError

    with pytest.raises(WriteError, match="expected a folder, got a file"):
        ex.export(tmp_path / "file")


def test_import_changes_no_thread_policy():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", "import os, sda_lab.interface.widgets; "
                          "print(os.environ.get('OMP_WAIT_POLICY'))"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "None", out.stderr[-500:]


def test_from_run_plays_through_the_runs_learned_inverse_mel(tmp_path):
    """A run with inverse_mel.pt: the explorer's full audio is the run's Inverter, the learned
    magnitude + PGHI; without one, the run's NNLS start + PGHI."""
    from sda_lab.data import make_default_dataset
    from sda_lab.representation.inverse_mel import (InverseMelConfig, mel_to_waveform_learned,
                                                    save_inverse_mel)
    from sda_lab.representation.inverse_mel_fit import fit_inverse_mel
    from sda_lab.representation.inverter import Inverter
    from sda_lab.representation.spectrogram import AudioSpectrogram

    model, spec, mels, _ = tiny_setup()
    run = tmp_path / "run"
    _save_run(run, model)
    none_saved = LatentExplorer.from_run(run, mels, n_shown=2).renderer.inverter
    assert none_saved.inverse is None and none_saved.name == Inverter(spec).name
    waves = make_default_dataset(1, sample_rate=16_000).waveforms[:, :, :4000]  # (5, 1, 4000)
    inverse = fit_inverse_mel(spec, waves, InverseMelConfig(hidden=8, kernel_size=3, layers=1,
                                                            nnls_iters=5, batch_size=4,
                                                            max_steps=3))
    save_inverse_mel(run / "inverse_mel.pt", inverse)
    ex = LatentExplorer.from_run(run, mels, n_shown=2, live=False)
    inverter = ex.renderer.inverter
    assert inverter.inverse is not None and "learned" in inverter.name
    mel = ex.renderer._decode(ex.z)  # (1, 1, 32, 16)
    expected = mel_to_waveform_learned(  # (1, 1, samples)
        spec, inverter.inverse, mel, phase="pghi", length=ex.renderer.samples,
        generator=torch.Generator().manual_seed(ex.renderer.seed))
    tol = 1e-3 * float(expected.abs().max())  # FFT threads reorder sums: not bit-equal
    assert torch.allclose(ex.renderer.invert(mel), expected, atol=tol)
    assert not torch.allclose(expected, spec.mel_to_waveform(mel, length=ex.renderer.samples),
                              atol=100 * tol)
    # what is kept is what is heard: the traversal export renders through the same inverter
    tr = export_traversal(ex.model, spec, ex.z, [ex.order[0]], (0.0,), ex.scale,
                          tmp_path / "kept", inverter=inverter)
    kept, rate = sf.read(tr["wav"][0])
    assert np.allclose(kept, limit_peaks(expected[0, 0].numpy(), rate), atol=tol)
    plain = LatentExplorer.from_run(run, mels, n_shown=2, inverter=None)
    assert plain.renderer.inverter is None  # asked for the spectrogram's own inversion
    other = AudioSpectrogram(TINY_SPEC.__class__(sample_rate=16_000, n_fft=512, hop_length=256,
                                                 n_mels=32, scale="db"))
    with pytest.raises(ValueError, match="another spectrogram config"):
        LatentExplorer(model, other, mels, inverter=inverter, show_map=False)


def test_from_run_says_when_its_folder_moved_and_takes_data_pointing_at_it(tmp_path):
    """Never the synthetic clips in place of the run's own: a moved folder is one line naming
    it and data=; data= explores the run's own files there (a file added since is left out,
    and said)."""
    import json
    import shutil
    import warnings

    from sda_lab.data.folders import file_fingerprints

    model, _, _, _ = tiny_setup()
    audio = tmp_path / "audio"
    audio.mkdir()
    for i in range(3):
        sf.write(audio / f"f{i}.wav", 0.3 * np.random.default_rng(i).standard_normal(8000),
                 16_000)
    run = tmp_path / "run"
    _save_run(run, model, extra={"folder": str(audio)})
    (run / "metrics.json").write_text(json.dumps({
        "folder": str(audio), "train_files": ["f0.wav", "f1.wav"], "val_files": ["f2.wav"],
        "fingerprints": file_fingerprints(audio)}))
    assert LatentExplorer.from_run(run, n_shown=2).labels[0].startswith("f0.wav")
    moved = tmp_path / "elsewhere"
    shutil.move(audio, moved)
    with pytest.raises(FileNotFoundError) as err:
        LatentExplorer.from_run(run, n_shown=2)
    msg = str(err.value)
    assert "\n" not in msg and str(audio) in msg and "gone or moved" in msg and "data=" in msg
    sf.write(moved / "new.wav", 0.3 * np.random.default_rng(9).standard_normal(8000), 16_000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ex = LatentExplorer.from_run(run, data=moved, n_shown=2)
    assert sorted({lab.split("@")[0] for lab in ex.labels}) == ["f0.wav", "f1.wav", "f2.wav"]
    assert any("new.wav" in str(w.message) and "not used" in str(w.message) for w in caught)


def test_a_clip_starts_where_the_run_hears_it_refined_posterior():
    from sda_lab.training.config import TrainConfig
    from sda_lab.training.posterior import refine_posterior

    model, spec, mels, labels = tiny_setup()
    config = TrainConfig(kl_weight=1e-3, free_bits=0.0, posterior_steps=20)
    ex = LatentExplorer(model, spec, mels, labels, live=False, show_map=False,
                        train_config=config)
    refined = refine_posterior(model, mels[:1], config, spec.mel_magnitude)[0][0]
    assert torch.equal(ex.clip_latent(0), refined) and not torch.allclose(refined, ex.mu[0])
    steps = torch.tensor([s.step for s in ex.sliders])  # the sliders hold it to their step
    assert (ex.z[ex.order] - refined[ex.order]).abs().le(steps).all()
    plain = LatentExplorer(model, spec, mels, labels, live=False, show_map=False)
    assert torch.equal(plain.clip_latent(0), plain.mu[0])
