"""Interactive latent-space explorers (ipywidgets 8; JupyterLab 4 and Notebook 7).

:class:`LatentExplorer` puts one slider per latent dimension over a starting point, dimensions
ranked by how much information they carry, and redraws the decoded mel, the waveform and an audio
player when a slider is released. :class:`InterpolationExplorer` walks the straight line between
two clips' posterior means. Both work headless: ``update()`` can be called directly (nbval), and
each returns the time its kernel-side work took.

Sliders use ``continuous_update=False``: a drag is one decode + Griffin-Lim, not dozens queued.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence

import ipywidgets as W
import numpy as np
import torch
from matplotlib.figure import Figure

from .losses import kl_per_dimension
from .plotting import flac_bytes
from .spectrogram import AudioSpectrogram
from .vae import ConvVAE, encode_dataset

STARTS = ("clip", "prior", "zero")


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    return buf.getvalue()


def mel_png(mel: torch.Tensor, width: int = 4, height: int = 2.4) -> bytes:
    """A normalised mel ``(..., n_mels, T)`` as a PNG (magma, low frequencies at the bottom)."""
    m = mel.detach().float().cpu().reshape(mel.shape[-2], mel.shape[-1]).numpy()
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0.1, 0.2, 0.87, 0.76))
    ax.imshow(m, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xlabel("frame", fontsize=8)
    ax.set_ylabel("mel band", fontsize=8)
    ax.tick_params(labelsize=7)
    return _png(fig)


def waveform_png(wave: torch.Tensor, sample_rate: int, width: int = 4, height: int = 1.6) -> bytes:
    x = wave.detach().float().cpu().reshape(-1).numpy()
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0.1, 0.3, 0.87, 0.65))
    ax.plot(np.arange(len(x)) / sample_rate, x, lw=0.4)
    ax.set_ylim(-1, 1)
    ax.set_xlabel("seconds", fontsize=8)
    ax.tick_params(labelsize=7)
    return _png(fig)


class _Renderer:
    """Decode a latent, invert it to audio, and draw both: shared by the two explorers."""

    def __init__(self, model: ConvVAE, spec: AudioSpectrogram, seed: int = 0) -> None:
        self.model = model.eval()
        self.spec = spec
        self.seed = seed
        # 1 s clips (the default) come back at exactly 1 s; other lengths at Griffin-Lim's own
        one_second = spec.config.sample_rate
        frames = model.config.n_frames
        self.samples = (one_second if spec.get_mel_shape(one_second)[1] == frames
                        else (frames - 1) * spec.config.hop_length)
        self.image = W.Image(format="png", layout=W.Layout(width="400px"))
        self.wave_image = W.Image(format="png", layout=W.Layout(width="400px"))
        self.audio = W.Audio(format="flac", autoplay=False, controls=True)
        self.status = W.HTML()
        self.last_mel: torch.Tensor | None = None
        self.last_wave: torch.Tensor | None = None

    @torch.no_grad()
    def render(self, z: torch.Tensor) -> float:
        t0 = time.perf_counter()
        device = next(self.model.parameters()).device
        mel = self.model.decode(z.view(1, -1).to(device)).cpu()  # (1, 1, n_mels, T)
        torch.manual_seed(self.seed)  # same phase init every time: only z changes the sound
        wave = self.spec.mel_to_waveform(mel, length=self.samples)  # (1, 1, samples)
        self.image.value = mel_png(mel)
        self.wave_image.value = waveform_png(wave, self.spec.config.sample_rate)
        self.audio.value = flac_bytes(wave, self.spec.config.sample_rate)
        self.last_mel, self.last_wave = mel, wave
        elapsed = time.perf_counter() - t0
        self.status.value = f"<small>decode + Griffin-Lim + redraw: {1000 * elapsed:.0f} ms</small>"
        return elapsed

    def output_box(self) -> W.VBox:
        return W.VBox([self.image, self.wave_image, self.audio, self.status])


class LatentExplorer:
    """Sliders over latent dimensions with the decoded mel, waveform and audio.

    Parameters
    ----------
    model : ConvVAE
        A trained model (see :func:`sda_lab.train.load_or_train_default`).
    spec : AudioSpectrogram
    mels : Tensor
        ``(N, 1, n_mels, T)`` data used to rank dimensions, set slider ranges and offer start
        clips.
    labels : sequence of str, optional
        One per clip, shown in the start menu.
    n_shown : int
        Sliders in the main panel (highest-KL dimensions); the rest sit in an accordion below.
    sd_range : float
        Each slider spans ``start +- sd_range`` standard deviations of the aggregate posterior
        of its dimension, ``sqrt(Var_x[mu] + E_x[sigma^2])``.
    """

    def __init__(self, model: ConvVAE, spec: AudioSpectrogram, mels: torch.Tensor,
                 labels: Sequence[str] | None = None, n_shown: int = 8, sd_range: float = 3.0,
                 start: str = "clip", clip_index: int = 0, seed: int = 0) -> None:
        if start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {start!r}")
        if mels.dim() != 4 or mels.shape[0] < 2:
            raise ValueError(f"mels must be (N >= 2, 1, n_mels, T), got {tuple(mels.shape)}")
        self.renderer = _Renderer(model, spec, seed)
        self.model = model
        self.labels = list(labels) if labels is not None else [f"clip {i}" for i in range(len(mels))]
        mu, logvar = encode_dataset(model, mels)  # (N, D), (N, D)
        self.mu = mu.cpu()
        self.kl_per_dim = kl_per_dimension(mu, logvar).mean(0).cpu()  # (D,)
        self.order = torch.argsort(self.kl_per_dim, descending=True).tolist()  # ranked dims
        self.scale = (mu.var(0) + logvar.exp().mean(0)).sqrt().cpu()  # (D,) aggregate std
        self.sd_range = sd_range
        self.generator = torch.Generator().manual_seed(seed)
        D = model.latent_dim

        start_options = [(f"clip: {lab}", ("clip", i)) for i, lab in enumerate(self.labels)]
        start_options += [("prior sample", ("prior", 0)), ("zero", ("zero", 0))]
        initial = ("clip", clip_index) if start == "clip" else (start, 0)
        self.start_menu = W.Dropdown(options=start_options, value=initial, description="start")
        self.reset_button = W.Button(description="reset", icon="undo")
        self.random_button = W.Button(description="randomise", icon="random")
        self.sliders: list[W.FloatSlider] = []
        for rank, d in enumerate(self.order):
            self.sliders.append(W.FloatSlider(
                value=0.0, min=-1.0, max=1.0, step=0.01, continuous_update=False,
                description=f"#{rank + 1} z{d}", readout_format=".2f",
                tooltip=f"latent dimension {d}, KL {self.kl_per_dim[d]:.2f} nats",
                layout=W.Layout(width="380px"),
            ))
        self._suspend = False
        self.start_z = torch.zeros(D)
        self.last_seconds = 0.0
        self.set_start(initial)
        for s in self.sliders:
            s.observe(self._on_slider, names="value")
        self.start_menu.observe(lambda ch: self.set_start(ch["new"]), names="value")
        self.reset_button.on_click(lambda _: self.set_start(self.start_menu.value))
        self.random_button.on_click(lambda _: self.randomise())

        shown, rest = self.sliders[:n_shown], self.sliders[n_shown:]
        more = W.Accordion(children=[W.VBox(rest)], titles=(f"dimensions ranked {n_shown + 1}"
                                                            f"-{D} (less informative)",))
        more.selected_index = None
        controls = W.VBox([W.HBox([self.start_menu, self.reset_button, self.random_button]),
                           W.HTML("<b>latent dimensions, most informative first</b> "
                                  "(range: start &plusmn; 3 std)"), *shown, more])
        self.widget = W.HBox([controls, self.renderer.output_box()])

    # -- state ---------------------------------------------------------------------------------

    @property
    def z(self) -> torch.Tensor:
        """The latent the sliders describe, ``(D,)``."""
        z = torch.zeros(self.model.latent_dim)
        for s, d in zip(self.sliders, self.order):
            z[d] = s.value
        return z

    def _start_point(self, choice: tuple[str, int]) -> torch.Tensor:
        kind, i = choice
        if kind == "clip":
            return self.mu[i].clone()
        if kind == "prior":
            return torch.randn(self.model.latent_dim, generator=self.generator)
        return torch.zeros(self.model.latent_dim)

    def set_start(self, choice: tuple[str, int]) -> float:
        """Centre every slider on a start point and redraw once."""
        self.start_z = self._start_point(choice)
        self._set_values(self.start_z, recentre=True)
        return self.update()

    def randomise(self) -> float:
        """Draw every dimension from its aggregate posterior N(mean, std) and redraw."""
        z = self.mu.mean(0) + self.scale * torch.randn(self.model.latent_dim,
                                                       generator=self.generator)
        self._set_values(z, recentre=False)
        return self.update()

    def _set_values(self, z: torch.Tensor, recentre: bool) -> None:
        self._suspend = True
        try:
            for s, d in zip(self.sliders, self.order):
                if recentre:
                    lo = float(z[d] - self.sd_range * self.scale[d])
                    hi = float(z[d] + self.sd_range * self.scale[d])
                    # widen before narrowing so min <= max holds at every step
                    s.min, s.max = min(lo, s.min), max(hi, s.max)
                    s.min, s.max = lo, hi
                s.value = float(z[d].clamp(s.min, s.max))
        finally:
            self._suspend = False

    def set_dimension(self, rank: int, value: float) -> float:
        """Move the slider of the ``rank``-th most informative dimension (0-based), as a user
        would; returns the update's kernel-side seconds."""
        self.sliders[rank].value = value  # fires _on_slider -> update
        return self.last_seconds

    def move_effect(self, rank: int, n_sd: float = 2.0) -> float:
        """Mean absolute change of the decoded mel when the ``rank``-th dimension moves ``n_sd``
        aggregate-posterior standard deviations from the start point (through the real slider
        path). The explorer is left back at its start point."""
        self.set_start(self.start_menu.value)
        before = self.mel.clone()
        d = self.order[rank]
        self.set_dimension(rank, self.sliders[rank].value + n_sd * float(self.scale[d]))
        change = float((self.mel - before).abs().mean())
        self.set_start(self.start_menu.value)
        return change

    def measure_latency(self, moves: int = 10, step: float = 0.05) -> list[float]:
        """Seconds of kernel-side work for ``moves`` slider releases on the top 8 dimensions."""
        seconds = []
        for k in range(moves):
            rank = k % min(8, len(self.sliders))
            nudge = step if k % 2 == 0 else -step
            seconds.append(self.set_dimension(rank, float(self.sliders[rank].value) + nudge))
        return seconds

    def _on_slider(self, change) -> None:
        if not self._suspend:
            self.update()

    def update(self) -> float:
        """Decode the current latent and redraw; returns the seconds it took."""
        self.last_seconds = self.renderer.render(self.z)
        return self.last_seconds

    @property
    def mel(self) -> torch.Tensor:
        return self.renderer.last_mel

    @property
    def audio(self) -> W.Audio:
        return self.renderer.audio

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


class InterpolationExplorer:
    """Two clips, a slider ``t`` along the straight line between their posterior means."""

    def __init__(self, model: ConvVAE, spec: AudioSpectrogram, mels: torch.Tensor,
                 labels: Sequence[str] | None = None, a: int = 0, b: int = 1, seed: int = 0) -> None:
        self.renderer = _Renderer(model, spec, seed)
        self.mu = encode_dataset(model, mels)[0].cpu()  # (N, D)
        labels = list(labels) if labels is not None else [f"clip {i}" for i in range(len(mels))]
        options = [(f"{i}: {lab}", i) for i, lab in enumerate(labels)]
        self.a = W.Dropdown(options=options, value=a, description="from")
        self.b = W.Dropdown(options=options, value=b, description="to")
        self.t = W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.05, continuous_update=False,
                               description="t", layout=W.Layout(width="380px"))
        for w in (self.a, self.b, self.t):
            w.observe(lambda _: self.update(), names="value")
        self.last_seconds = 0.0
        self.update()
        self.widget = W.HBox([W.VBox([self.a, self.b, self.t]), self.renderer.output_box()])

    def latent(self, t: float | None = None) -> torch.Tensor:
        t = self.t.value if t is None else t
        return (1 - t) * self.mu[self.a.value] + t * self.mu[self.b.value]  # (D,)

    def update(self) -> float:
        self.last_seconds = self.renderer.render(self.latent())
        return self.last_seconds

    @property
    def mel(self) -> torch.Tensor:
        return self.renderer.last_mel

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


@torch.no_grad()
def traversal(model: ConvVAE, z: torch.Tensor, dims: Sequence[int], offsets: Sequence[float],
              scale: torch.Tensor) -> torch.Tensor:
    """Decode ``z`` with each of ``dims`` moved by ``offsets`` (in units of ``scale[d]``).

    Returns ``(len(dims), len(offsets), 1, n_mels, T)``.
    """
    model.eval()
    device = next(model.parameters()).device
    zs = z.repeat(len(dims), len(offsets), 1)  # (n_dims, n_offsets, D)
    for i, d in enumerate(dims):
        for j, o in enumerate(offsets):
            zs[i, j, d] = z[d] + o * scale[d]
    mels = model.decode(zs.flatten(0, 1).to(device)).cpu()  # (n_dims * n_offsets, 1, M, T)
    return mels.view(len(dims), len(offsets), *mels.shape[1:])

