import pytest
import torch

from sda_lab.spectrogram import AudioSpectrogram
from sda_lab.vae import ConvVAE
from sda_lab.widgets import InterpolationExplorer, LatentExplorer, mel_png, traversal


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
    assert all(s.continuous_update is False for s in ex.sliders)
    assert not ex.audio.autoplay and ex.audio.format == "flac" and ex.audio.value[:4] == b"fLaC"
    assert ex.mel.shape == (1, 1, 128, 94)
    assert ex.renderer.last_wave.shape == (1, 1, 48_000)
    # sliders start at the chosen clip's posterior mean, ranged +-3 aggregate std
    torch.testing.assert_close(ex.z, ex.mu[0], atol=1e-2, rtol=0)
    d = ex.order[0]
    assert ex.sliders[0].max - ex.sliders[0].min == pytest.approx(6 * float(ex.scale[d]), rel=1e-3)


def test_moving_a_slider_redraws(setup):
    model, spec, mels = setup
    ex = LatentExplorer(model, spec, mels)
    png, audio, mel = bytes(ex.renderer.image.value), bytes(ex.audio.value), ex.mel.clone()
    seconds = ex.set_dimension(0, ex.sliders[0].value + float(ex.scale[ex.order[0]]))
    assert seconds > 0
    assert bytes(ex.renderer.image.value) != png and bytes(ex.audio.value) != audio
    assert not torch.equal(ex.mel, mel)


def test_start_points_reset_and_randomise(setup):
    model, spec, mels = setup
    ex = LatentExplorer(model, spec, mels, start="zero")
    assert torch.count_nonzero(ex.z) == 0
    ex.randomise()
    assert torch.count_nonzero(ex.z) > 0
    ex.start_menu.value = ("clip", 2)  # through the widget, as a user would
    torch.testing.assert_close(ex.z, ex.mu[2], atol=1e-2, rtol=0)
    ex.sliders[1].value = ex.sliders[1].max
    ex.reset_button.click()
    torch.testing.assert_close(ex.z, ex.mu[2], atol=1e-2, rtol=0)
    with pytest.raises(ValueError, match="start must be one of"):
        LatentExplorer(model, spec, mels, start="middle")
    with pytest.raises(ValueError, match="N >= 2"):
        LatentExplorer(model, spec, mels[:1])


def test_interpolation_walks_the_line(setup):
    model, spec, mels = setup
    ip = InterpolationExplorer(model, spec, mels, a=0, b=1)
    torch.testing.assert_close(ip.latent(0.0), ip.mu[0])
    torch.testing.assert_close(ip.latent(1.0), ip.mu[1])
    mel0 = ip.mel.clone()
    ip.t.value = 1.0
    assert not torch.equal(ip.mel, mel0)


def test_traversal_shape_and_centre(setup):
    model, spec, mels = setup
    z = torch.zeros(64)
    grid = traversal(model, z, [0, 5], (-2.0, 0.0, 2.0), torch.ones(64))
    assert grid.shape == (2, 3, 1, 128, 94)
    torch.testing.assert_close(grid[0, 1], grid[1, 1])  # offset 0 is the same point
    assert mel_png(grid[0, 0])[:4] == b"\x89PNG"


def test_move_effect_and_latency_use_the_slider_path(setup):
    model, spec, mels = setup
    ex = LatentExplorer(model, spec, mels)
    start = ex.z.clone()
    assert ex.move_effect(0) > 0
    torch.testing.assert_close(ex.z, start, atol=1e-2, rtol=0)  # back at the start point
    secs = ex.measure_latency(moves=3)
    assert len(secs) == 3 and all(s > 0 for s in secs)
