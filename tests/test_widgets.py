import threading

import numpy as np
import pytest
import soundfile as sf
import torch

from sda_lab.interface.widgets import (PCA2, SLIDER_STEPS, InterpolationExplorer, LatentExplorer,
                                       LatestValueWorker, label_groups, mel_image_png, mel_png,
                                       traversal, waveform_image_png)
from sda_lab.model.vae import ConvVAE, VAEConfig
from sda_lab.representation.spectrogram import AudioSpectrogram, SpectrogramConfig


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = ConvVAE().eval()
    with torch.no_grad():  # an untrained decoder barely listens to z; make it listen
        model.decoder.fc.weight.mul_(50)
    spec = AudioSpectrogram()
    mels = torch.rand(6, 1, 128, 94) * 0.5  # (6, 1, 128, 94)
    return model, spec, mels


def test_explorer_builds_ranks_and_renders(setup):
    model, spec, mels = setup
    ex = LatentExplorer(model, spec, mels, labels=list("abcdef"), n_shown=8)
    assert len(ex.sliders) == 64
    kl = ex.kl_per_dim
    assert [float(kl[d]) for d in ex.order] == sorted(kl.tolist(), reverse=True)
    assert all(s.continuous_update is True for s in ex.sliders)  # live while dragged
    assert not ex.audio.autoplay and ex.audio.format == "flac" and ex.audio.value[:4] == b"fLaC"
    assert ex.mel.shape == (1, 1, 128, 94)
    assert ex.renderer.last_wave.shape == (1, 1, 48_000)
    # sliders start at the chosen clip's posterior mean, ranged +-3 aggregate std, step 1 %
    torch.testing.assert_close(ex.z, ex.mu[0], atol=1e-2, rtol=0)
    d = ex.order[0]
    s = ex.sliders[0]
    assert s.max - s.min == pytest.approx(6 * float(ex.scale[d]), rel=1e-3)
    assert s.step == pytest.approx((s.max - s.min) / SLIDER_STEPS, rel=1e-6)
    # the short text a reader without a kernel sees, not the widget tree
    bundle = ex._repr_mimebundle_()
    assert "LatentExplorer" in bundle["text/plain"] and "HBox" not in bundle["text/plain"]
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_moving_a_slider_redraws(setup):
    model, spec, mels = setup
    ex = LatentExplorer(model, spec, mels)
    png, audio, mel = bytes(ex.renderer.image.value), bytes(ex.audio.value), ex.mel.clone()
    seconds = ex.set_dimension(0, ex.sliders[0].value + float(ex.scale[ex.order[0]]))
    assert seconds > 0
    assert bytes(ex.renderer.image.value) != png and bytes(ex.audio.value) != audio
    assert not torch.equal(ex.mel, mel)
    # the status line names the rendered value, as the slider's readout shows it
    shown = format(ex.sliders[0].value, ex.sliders[0].readout_format)
    assert ex.renderer.status.value.count(f"{ex.sliders[0].description} = {shown}") == 2


def test_worker_coalesces_and_the_latest_value_wins():
    gate = threading.Event()
    seen, running, overlap = [], [0], []

    def slow(v):
        running[0] += 1
        overlap.append(running[0])
        gate.wait(5)
        seen.append(v)
        running[0] -= 1

    w = LatestValueWorker(slow)
    for v in range(50):  # the first call blocks on the gate while 49 more arrive
        w.submit(v)
    gate.set()
    assert w.wait(10)
    assert seen[0] == 0 and seen[-1] == 49  # the last value is always rendered
    assert len(seen) <= 3 < w.submitted  # intermediate values dropped, not queued
    assert max(overlap) == 1  # never two renders at once
    assert w.completed == len(seen) and w.error is None


def test_worker_survives_an_error():
    calls = []

    def fn(v):
        calls.append(v)
        if v == "bad":
            raise RuntimeError("boom")

    w = LatestValueWorker(fn)
    w.submit("bad")
    w.wait(5)
    w.submit("good")
    w.wait(5)
    assert calls == ["bad", "good"] and "boom" in w.error


def test_live_drag_ends_on_the_final_value(setup):
    model, spec, mels = setup
    ex = LatentExplorer(model, spec, mels)
    stats = ex.simulate_drag(rank=0, changes=12, rate_hz=40)
    assert stats.final_matches
    assert stats.picture_renders + stats.audio_renders >= 1
    assert ex.picture_lane.completed <= ex.picture_lane.submitted
    torch.testing.assert_close(ex.renderer.sound.z, ex.z)
    torch.testing.assert_close(ex.renderer.picture.z, ex.z)


def test_start_points_reset_and_randomise(setup):
    model, spec, mels = setup
    ex = LatentExplorer(model, spec, mels, start="zero")
    assert torch.count_nonzero(ex.z) == 0
    ex.randomise()
    assert torch.count_nonzero(ex.z) > 0
    ex.start_menu.value = ("clip", 2)  # through the widget, as a user would
    torch.testing.assert_close(ex.z, ex.mu[2], atol=1e-2, rtol=0)
    ex.sliders[1].value = ex.sliders[1].max
    ex.wait()
    ex.reset_button.click()
    torch.testing.assert_close(ex.z, ex.mu[2], atol=1e-2, rtol=0)
    with pytest.raises(ValueError, match="start must be one of"):
        LatentExplorer(model, spec, mels, start="middle")
    with pytest.raises(ValueError, match="N >= 2"):
        LatentExplorer(model, spec, mels[:1])


def test_bad_mels_are_refused_with_what_was_expected(setup):
    model, spec, mels = setup
    with pytest.raises(ValueError, match=r"mels are empty: expected \(N >= 2, 1, 128, 94\)"):
        LatentExplorer(model, spec, mels[:0])
    with pytest.raises(ValueError, match="128 mel bands, got 64"):
        LatentExplorer(model, spec, torch.rand(3, 1, 64, 94))
    with pytest.raises(ValueError, match="94 frames"):
        LatentExplorer(model, spec, torch.rand(3, 1, 128, 40))
    with pytest.raises(ValueError, match=r"\(N >= 2, 1, 128, 94\)"):
        LatentExplorer(model, spec, torch.rand(3, 128, 94))
    with pytest.raises(ValueError, match="one entry per clip"):
        LatentExplorer(model, spec, mels, labels=["a"])


def test_latent_map_projects_picks_and_places(setup):
    model, spec, mels = setup
    ex = LatentExplorer(model, spec, mels, labels=["a.wav@0s", "a.wav@1s", "b.wav@0s",
                                                   "c", "c", "d"])
    m = ex.map
    assert m.groups == ["a.wav", "b.wav", "c", "d"]
    ex_share = m.explained
    assert 0 < float(ex_share[1]) <= float(ex_share[0]) and float(ex_share.sum()) <= 1 + 1e-6
    assert "% of the variance shown" in m.caption.value
    # the cross follows the current latent
    x, y = m.pca.project(ex.z).tolist()
    assert m.marker.x[0] == pytest.approx(x, abs=1e-5) and m.marker.y[0] == pytest.approx(y, abs=1e-5)
    # a click on point 4 starts from clip 4 and plays it
    m._clicked(m.points, {"data": {"index": 4}})
    assert ex.start_menu.value == ("clip", 4) and ex.audio.autoplay
    torch.testing.assert_close(ex.z, ex.mu[4], atol=1e-2, rtol=0)
    # a genuine move afterwards redraws, and its render does not autoplay (test_widgets_play.py
    # drives the browser's echoes)
    drawn = ex.picture_lane.completed
    ex.set_dimension(0, ex.sliders[0].value + ex.sliders[0].step)
    assert ex.picture_lane.completed > drawn and not ex.audio.autoplay
    # dropping the cross at a place starts from that point of the plane
    m._dropped(m.marker, {"point": {"x": 0.5, "y": -0.25}, "index": 0})
    assert ex.start_menu.value == ("map", 0)
    torch.testing.assert_close(m.pca.project(ex.z), torch.tensor([0.5, -0.25]), atol=0.05, rtol=0)


def test_pca_matches_the_covariance_eigenvectors():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(200, 5, generator=g) * torch.tensor([3.0, 2.0, 0.5, 0.2, 0.1])
    pca = PCA2.fit(z)
    cov = np.cov(z.numpy(), rowvar=False)
    evals, evecs = np.linalg.eigh(cov)
    np.testing.assert_allclose(pca.explained.numpy(), evals[::-1][:2] / evals.sum(), rtol=1e-4)
    np.testing.assert_allclose(np.abs(pca.components.numpy()), np.abs(evecs[:, ::-1][:, :2]),
                               atol=1e-4)
    xy = torch.tensor([[1.0, -2.0]])
    torch.testing.assert_close(pca.project(pca.lift(xy)), xy, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="N >= 2"):
        PCA2.fit(z[:1])
    assert label_groups(["x.wav@3s", "drum"]) == ["x.wav", "drum"]


def test_from_checkpoint_uses_its_spectrogram_and_reads_a_folder(tmp_path):
    from sda_lab.training.checkpoint import save_checkpoint

    torch.manual_seed(0)
    cfg = SpectrogramConfig(sample_rate=16_000, n_fft=512, hop_length=256, n_mels=32)
    spec = AudioSpectrogram(cfg)
    frames = spec.get_mel_shape(16_000)[1]
    model = ConvVAE.from_config(VAEConfig(latent_dim=8, n_mels=32, n_frames=frames,
                                          channels=(8, 16), dropout=0.0))
    path = save_checkpoint(tmp_path / "m.pt", model, None, None,
                           extra={"spectrogram_config": {"sample_rate": 16_000, "n_fft": 512,
                                                         "hop_length": 256, "n_mels": 32}})
    folder = tmp_path / "audio"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.wav", "b.flac"):
        sf.write(folder / name, 0.3 * rng.standard_normal(44_100 * 2), 44_100)
    (folder / "broken.wav").write_bytes(b"not audio")
    with pytest.warns(UserWarning, match="broken.wav"):
        ex = LatentExplorer.from_checkpoint(path, mels_or_folder=folder, n_shown=4)
    assert ex.spec.config.n_mels == 32 and ex.spec.config.sample_rate == 16_000
    assert len(ex.labels) == 4 and ex.map.groups == ["a.wav", "b.flac"]
    assert ex.renderer.last_wave.shape == (1, 1, 16_000)
    # the default data set when no clips are given, cut to the model's length
    ex2 = LatentExplorer.from_checkpoint(path, show_map=False)
    assert len(ex2.labels) == 20 and ex2.map is None
    # mels made with another representation are refused, naming both sizes
    with pytest.raises(ValueError, match="32 mel bands, got 128"):
        LatentExplorer.from_checkpoint(path, mels_or_folder=torch.rand(4, 1, 128, 94))
    with pytest.raises(FileNotFoundError):
        LatentExplorer.from_checkpoint(tmp_path / "missing.pt")


def test_interpolation_walks_the_line(setup):
    model, spec, mels = setup
    ip = InterpolationExplorer(model, spec, mels, a=0, b=1)
    torch.testing.assert_close(ip.latent(0.0), ip.mu[0])
    torch.testing.assert_close(ip.latent(1.0), ip.mu[1])
    mel0 = ip.mel.clone()
    ip.t.value = 1.0
    ip.wait()
    assert not torch.equal(ip.mel, mel0)
    torch.testing.assert_close(ip.renderer.sound.z, ip.latent(1.0))


def test_traversal_shape_and_centre(setup):
    model, spec, mels = setup
    z = torch.zeros(64)
    grid = traversal(model, z, [0, 5], (-2.0, 0.0, 2.0), torch.ones(64))
    assert grid.shape == (2, 3, 1, 128, 94)
    torch.testing.assert_close(grid[0, 1], grid[1, 1])  # offset 0 is the same point
    assert mel_png(grid[0, 0])[:4] == b"\x89PNG"


def test_fast_images_have_the_requested_size():
    from io import BytesIO

    from PIL import Image

    mel = torch.zeros(1, 1, 128, 94)
    mel[..., :10, :] = 1.0  # loud low bands
    img = np.asarray(Image.open(BytesIO(mel_image_png(mel, 200, 100))))
    assert img.shape == (100, 200, 3)
    assert img[-1].mean() > img[0].mean()  # low frequencies at the bottom
    wave = torch.zeros(1, 1, 4800)
    wave[..., 2400:] = 0.9 * torch.sin(torch.arange(2400) * 0.3)  # loud second half
    img = np.asarray(Image.open(BytesIO(waveform_image_png(wave, 100, 50))))
    assert img.shape == (50, 100, 3)
    col_quiet, col_loud = img[:, 10], img[:, 90]
    assert (col_loud.sum(1) < 600).sum() > (col_quiet.sum(1) < 600).sum()  # more ink when loud


def test_snapshot_and_latency_use_the_slider_path(setup):
    model, spec, mels = setup
    ex = LatentExplorer(model, spec, mels)
    start = ex.z.clone()
    assert ex.move_effect(0) > 0
    fx = ex.dimension_effects()  # (6 clips, 64): every start, every ranked dimension
    assert fx.shape == (6, 64)
    ex.set_start(("clip", 2))
    # the slider path rounds the value to the slider's step (1 % of its range)
    assert abs(ex.move_effect(0) - float(fx[2, 0])) < 0.05 * float(fx[2, 0])
    torch.testing.assert_close(ex.z, start, atol=1e-2, rtol=0)  # back at the start point
    secs = ex.measure_latency(moves=3)
    assert len(secs) == 3 and all(s > 0 for s in secs)
    fig = ex.snapshot()
    assert len(fig.axes) == 3
    assert ex.snapshot_image().data[:4] == b"\x89PNG"


def test_the_longer_row_continues_the_current_sound():
    """"play longer": a sound of the slider's length from the current position (another
    position, another sound), how it was continued, and an error said in the row's status
    line."""
    from ._widgets_tiny import tiny_setup

    model, spec, mels, labels = tiny_setup()
    ex = LatentExplorer(model, spec, mels, labels, seed=0)
    ex.longer_row.seconds.value = 2.5
    wave = ex.longer_row.play(autoplay=False)  # (1, samples)
    assert wave.shape == (1, round(2.5 * spec.config.sample_rate))
    assert ex.longer_row.audio in ex.longer_row.widget.children
    assert "independent prior sample" in ex.longer_row.status.value  # a vector latent, said so
    first = ex.longer(1.0)[0]
    ex.pick(1, play=False)
    assert not torch.allclose(ex.longer(1.0)[0], first)
    with pytest.raises(ValueError, match="seconds"):
        ex.longer(0.0)
    ex.longer_row.seconds.value = 2.0
    ex.longer = lambda seconds: (_ for _ in ()).throw(ValueError("seconds: bad"))
    assert ex.longer_row.play() is None and "seconds: bad" in ex.longer_row.status.value
