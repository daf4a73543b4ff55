"""Interactive latent-space explorers (ipywidgets 8 and bqplot; JupyterLab 4 and Notebook 7).

:class:`LatentExplorer` puts one slider per latent dimension over a starting point, dimensions
ranked by how much information they carry, and redraws the decoded mel, the waveform and an audio
player *while* a slider is dragged. Beside it, a :class:`LatentMap` shows the data set's posterior
means projected on their first two principal components; clicking a clip there starts the
explorer from it and plays it, and dragging the cross sets the start to any place of that plane.
:class:`InterpolationExplorer` walks the straight line between two clips' posterior means.

Live updates without a queue
----------------------------
Sliders send every value while they move (``continuous_update=True``). Each change only stores
the newest latent; two background *lanes* (:class:`LatestValueWorker`) render it, each with at
most one render in flight, and when a render finishes the lane renders again only if a newer
value arrived in the meantime: stale values are dropped, never queued, and the last value always
gets rendered. The picture lane (decode + mel image + map marker, tens of ms) therefore updates
several times as often as the audio lane (decode + Griffin-Lim + FLAC, about 0.15 s on 2 cores).
``update()`` renders both synchronously, for tests and benchmarks; ``live=False`` makes the
sliders use it directly.

Everything works headless (nbval): ``update()``, ``set_dimension()``, ``simulate_drag()`` and
``snapshot()`` need no browser.
"""

from __future__ import annotations

import io
import math
import statistics
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ipywidgets as W
import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from PIL import Image

from .losses import kl_per_dimension
from .plotting import flac_bytes
from .spectrogram import AudioSpectrogram, SpectrogramConfig
from .utils import set_thread_policy
from .vae import ConvVAE, encode_dataset

set_thread_policy()

STARTS = ("clip", "prior", "zero")
SLIDER_STEPS = 100  # a slider's step is its range / 100: an arrow key moves 1 %, not 0.01 units
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")  # matplotlib's tab10
_RNG_LOCK = threading.Lock()  # Griffin-Lim seeds torch's global generator; one render at a time


# -- images ------------------------------------------------------------------------------------

def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    return buf.getvalue()


def mel_png(mel: torch.Tensor, width: int = 4, height: int = 2.4) -> bytes:
    """A normalised mel ``(..., n_mels, T)`` as a PNG with axes (magma, low frequencies at the
    bottom). About 70 ms; the live explorer uses :func:`mel_image_png`."""
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
    """A waveform ``(..., samples)`` as a PNG with a time axis in seconds (matplotlib)."""
    x = wave.detach().float().cpu().reshape(-1).numpy()
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0.1, 0.3, 0.87, 0.65))
    ax.plot(np.arange(len(x)) / sample_rate, x, lw=0.4)
    ax.set_ylim(-1, 1)
    ax.set_xlabel("seconds", fontsize=8)
    ax.tick_params(labelsize=7)
    return _png(fig)


def _rgb_png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def mel_image_png(mel: torch.Tensor, width: int = 400, height: int = 200) -> bytes:
    """A normalised mel ``(..., n_mels, T)`` as a ``width`` x ``height`` pixel PNG without axes
    (magma over [0, 1], low frequencies at the bottom). A few ms, for live redraws."""
    m = mel.detach().float().cpu().reshape(mel.shape[-2], mel.shape[-1]).clamp(0, 1).numpy()
    rgb = colormaps["magma"](m[::-1], bytes=True)[..., :3]  # (n_mels, T, 3), high bands on top
    img = Image.fromarray(np.ascontiguousarray(rgb)).resize((width, height), Image.NEAREST)
    return _rgb_png(np.asarray(img))


def waveform_image_png(wave: torch.Tensor, width: int = 400, height: int = 90) -> bytes:
    """A waveform ``(..., samples)`` in [-1, 1] as a min/max envelope, ``width`` x ``height``
    pixels, no axes (one column per ``samples / width`` samples). About 1 ms."""
    x = wave.detach().float().cpu().reshape(-1).clamp(-1, 1).numpy()
    n = (len(x) // width) * width
    cols = x[:n].reshape(width, -1) if n else np.zeros((width, 1), np.float32)  # (width, k)
    top = ((1 - cols.max(1)) / 2 * (height - 1)).round()  # (width,) pixel row of the maximum
    bottom = ((1 - cols.min(1)) / 2 * (height - 1)).round()  # (width,)
    rows = np.arange(height)[:, None]  # (height, 1)
    ink = (rows >= top[None, :]) & (rows <= bottom[None, :])  # (height, width)
    rgb = np.full((height, width, 3), 255, np.uint8)
    rgb[height // 2] = (200, 200, 200)
    rgb[ink] = (31, 119, 180)
    return _rgb_png(rgb)


# -- the coalescing worker ---------------------------------------------------------------------

_EMPTY = object()


class LatestValueWorker:
    """Run ``fn(value)`` on a background thread for the newest submitted value only.

    :meth:`submit` stores the value and returns at once. If no render is running, a thread
    starts one; when it finishes it runs again only if a newer value arrived meanwhile. So at
    most one call is in flight, intermediate values are dropped (never queued), and the last
    submitted value is always the last one rendered.

    Attributes
    ----------
    submitted, completed : int
        Values submitted and calls finished.
    seconds : list[float]
        Duration of every finished call.
    error : str | None
        The last exception's traceback, if a call raised (the worker keeps going).
    """

    def __init__(self, fn: Callable[[object], None], name: str = "render") -> None:
        self._fn = fn
        self._name = name
        self._lock = threading.Lock()
        self._pending: object = _EMPTY
        self._running = False
        self._idle = threading.Event()
        self._idle.set()
        self.submitted = 0
        self.completed = 0
        self.seconds: list[float] = []
        self.finished_at: list[float] = []  # perf_counter() at the end of each call
        self.error: str | None = None

    def submit(self, value: object) -> None:
        with self._lock:
            self._pending = value
            self.submitted += 1
            if self._running:
                return
            self._running = True
            self._idle.clear()
        threading.Thread(target=self._loop, name=f"sda-lab {self._name}", daemon=True).start()

    def _loop(self) -> None:
        while True:
            with self._lock:
                if self._pending is _EMPTY:
                    self._running = False
                    self._idle.set()
                    return
                value, self._pending = self._pending, _EMPTY
            t0 = time.perf_counter()
            try:
                self._fn(value)
            except Exception:  # shown in the explorer's status line; the worker keeps serving
                self.error = traceback.format_exc()
            t1 = time.perf_counter()
            self.seconds.append(t1 - t0)
            self.finished_at.append(t1)
            self.completed += 1

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    def wait(self, timeout: float | None = 60.0) -> bool:
        """Block until nothing is pending or running; False if ``timeout`` seconds passed."""
        return self._idle.wait(timeout)


# -- rendering ---------------------------------------------------------------------------------

@dataclass
class Rendered:
    """What one lane last drew: the latent ``(D,)``, a caption and the seconds it took."""

    z: torch.Tensor | None = None
    caption: str = ""
    seconds: float = 0.0


class _Renderer:
    """Decode a latent, invert it to audio, and draw both: shared by the two explorers.

    ``render_picture`` (decoder + mel image, tens of ms) and ``render_audio`` (decoder +
    Griffin-Lim + FLAC + waveform image) can run on different threads; ``render`` runs both.
    """

    def __init__(self, model: ConvVAE, spec: AudioSpectrogram, seed: int = 0) -> None:
        self.model = model.eval()
        self.spec = spec
        self.seed = seed
        # 1 s clips (the default) come back at exactly 1 s; other lengths at Griffin-Lim's own
        one_second = spec.config.sample_rate
        frames = model.config.n_frames
        self.samples = (one_second if spec.get_mel_shape(one_second)[1] == frames
                        else (frames - 1) * spec.config.hop_length)
        self.image = W.Image(format="png", layout=W.Layout(width="400px", height="200px"))
        self.wave_image = W.Image(format="png", layout=W.Layout(width="400px", height="90px"))
        self.audio = W.Audio(format="flac", autoplay=False, controls=True)
        self.status = W.HTML()
        self.last_mel: torch.Tensor | None = None  # (1, 1, n_mels, T), from the picture lane
        self.last_wave: torch.Tensor | None = None  # (1, 1, samples), from the audio lane
        self.picture = Rendered()
        self.sound = Rendered()
        self.on_picture: Callable[[torch.Tensor], None] | None = None  # e.g. move a map marker
        self._status_lock = threading.Lock()

    @torch.no_grad()
    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        device = next(self.model.parameters()).device
        return self.model.decode(z.view(1, -1).to(device)).cpu()  # (1, 1, n_mels, T)

    def render_picture(self, z: torch.Tensor, caption: str = "") -> float:
        t0 = time.perf_counter()
        mel = self._decode(z)  # (1, 1, n_mels, T)
        self.image.value = mel_image_png(mel)
        self.last_mel = mel
        if self.on_picture is not None:
            self.on_picture(z)
        self.picture = Rendered(z.clone(), caption, time.perf_counter() - t0)
        self._show_status()
        return self.picture.seconds

    @torch.no_grad()
    def render_audio(self, z: torch.Tensor, caption: str = "") -> float:
        t0 = time.perf_counter()
        mel = self._decode(z)  # (1, 1, n_mels, T)
        with _RNG_LOCK:
            torch.manual_seed(self.seed)  # same phase init every time: only z changes the sound
            wave = self.spec.mel_to_waveform(mel, length=self.samples)  # (1, 1, samples)
        self.wave_image.value = waveform_image_png(wave)
        self.audio.value = flac_bytes(wave, self.spec.config.sample_rate)
        self.last_wave = wave
        self.sound = Rendered(z.clone(), caption, time.perf_counter() - t0)
        self._show_status()
        return self.sound.seconds

    def render(self, z: torch.Tensor, caption: str = "") -> float:
        """Picture and audio for ``z`` ``(D,)`` in the calling thread; returns the seconds."""
        return self.render_picture(z, caption) + self.render_audio(z, caption)

    def _show_status(self, error: str | None = None) -> None:
        with self._status_lock:
            p, s = self.picture, self.sound
            html = (f"<small>picture {p.caption} <i>({1000 * p.seconds:.0f} ms)</i> &middot; "
                    f"audio {s.caption} <i>({1000 * s.seconds:.0f} ms: decode + Griffin-Lim)</i>"
                    "</small>")
            if error:
                html += f"<br><small style='color:#b00'>render failed: {error}</small>"
            self.status.value = html

    def output_box(self) -> W.VBox:
        cap = "<small style='color:#555'>{}</small>"
        return W.VBox([W.HTML(cap.format("decoded mel: frames &rarr;, mel bands &uarr; (low at "
                                         "the bottom), magma over [0, 1]")),
                       self.image,
                       W.HTML(cap.format("waveform after Griffin-Lim, &plusmn;1 full scale")),
                       self.wave_image, self.audio, self.status])


# -- the latent map ----------------------------------------------------------------------------

@dataclass
class PCA2:
    """The first two principal components of a set of latents.

    ``mean`` ``(D,)``, ``components`` ``(D, 2)`` (unit columns, sign fixed so each column's
    largest loading is positive) and ``explained`` ``(2,)``: each component's share of the total
    variance. Computed by SVD of the centred ``(N, D)`` matrix (Pearson's PCA).
    """

    mean: torch.Tensor
    components: torch.Tensor
    explained: torch.Tensor

    @classmethod
    def fit(cls, z: torch.Tensor) -> "PCA2":
        if z.dim() != 2 or z.shape[0] < 2:
            raise ValueError(f"PCA needs an (N >= 2, D) matrix, got {tuple(z.shape)}")
        z = z.detach().double().cpu()
        mean = z.mean(0)  # (D,)
        _, s, vh = torch.linalg.svd(z - mean, full_matrices=False)  # s (k,), vh (k, D)
        comps = vh[:2].T.clone()  # (D, <=2)
        if comps.shape[1] < 2:  # D == 1: a flat second axis
            comps = torch.cat([comps, torch.zeros_like(comps)], 1)  # (D, 2)
        signs = torch.sign(comps.gather(0, comps.abs().argmax(0, keepdim=True)))  # (1, 2)
        comps = comps * torch.where(signs == 0, torch.ones_like(signs), signs)
        var = s.pow(2)
        total = float(var.sum())
        explained = torch.zeros(2, dtype=torch.float64)
        if total > 0:
            explained[: min(2, len(var))] = var[:2] / total
        return cls(mean.float(), comps.float(), explained.float())

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """``(..., D)`` -> ``(..., 2)`` coordinates in the plane."""
        return (z.float() - self.mean) @ self.components

    def lift(self, xy: torch.Tensor) -> torch.Tensor:
        """``(..., 2)`` -> the latent ``(..., D)`` at that place of the plane."""
        return self.mean + xy.float() @ self.components.T


def label_groups(labels: Sequence[str]) -> list[str]:
    """Colour groups for the map: the file of ``"file.wav@3s"`` labels, else the label itself."""
    return [lab.rsplit("@", 1)[0] for lab in labels]


class LatentMap:
    """A bqplot scatter of posterior means on their first two principal components.

    Points are coloured by :func:`label_groups` (at most ten colours, then reused); a red cross
    marks the explorer's current latent. Clicking a point calls ``on_pick(index)``; dragging the
    cross and letting go calls ``on_place(z)`` with the latent at that place of the plane.
    """

    def __init__(self, mu: torch.Tensor, labels: Sequence[str],
                 on_pick: Callable[[int], None] | None = None,
                 on_place: Callable[[torch.Tensor], None] | None = None) -> None:
        import bqplot as bq

        self.pca = PCA2.fit(mu)
        self.xy = self.pca.project(mu.cpu())  # (N, 2)
        self.on_pick, self.on_place = on_pick, on_place
        groups = label_groups(labels)
        self.groups = list(dict.fromkeys(groups))
        colour = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(self.groups)}
        sx, sy = bq.LinearScale(), bq.LinearScale()
        self.points = bq.Scatter(
            x=self.xy[:, 0].numpy(), y=self.xy[:, 1].numpy(), scales={"x": sx, "y": sy},
            colors=[colour[g] for g in groups], default_size=36, stroke="white",
            names=list(labels), display_names=False, interactions={"click": "select"},
            selected_style={"stroke": "black", "stroke-width": 2}, unselected_style={},
            tooltip=bq.Tooltip(fields=["name"]))
        self.points.on_element_click(self._clicked)
        self.marker = bq.Scatter(x=[0.0], y=[0.0], scales={"x": sx, "y": sy}, marker="cross",
                                 colors=["#d62728"], stroke="black", default_size=160,
                                 enable_move=True)
        self.marker.on_drag_end(self._dropped)
        ex = self.explained
        axes = [bq.Axis(scale=sx, side="bottom", label=f"PC1 ({100 * ex[0]:.0f} % of variance)"),
                bq.Axis(scale=sy, side="left",
                        label=f"PC2 ({100 * ex[1]:.0f} %)")]
        self.figure = bq.Figure(marks=[self.points, self.marker], axes=axes,
                                fig_margin={"top": 10, "bottom": 40, "left": 50, "right": 10},
                                layout=W.Layout(width="400px", height="300px"))
        legend = " ".join(f"<span style='color:{colour[g]}'>&#9679;</span>&nbsp;{g}"
                          for g in self.groups[:20])
        if len(self.groups) > 20:
            legend += f" &hellip; ({len(self.groups)} groups)"
        self.caption = W.HTML(
            f"<small><b>latent map</b>: posterior means on their first two principal components "
            f"({100 * float(ex.sum()):.0f} % of the variance shown); click a clip to start from "
            f"it and play it, or drag the red cross to a place.<br>{legend}</small>",
            layout=W.Layout(width="400px"))
        self.widget = W.VBox([self.caption, self.figure])
        self.picked: int | None = None

    @property
    def explained(self) -> torch.Tensor:
        """Share of the variance on PC1 and PC2, ``(2,)``."""
        return self.pca.explained

    def show(self, z: torch.Tensor) -> None:
        """Move the cross to latent ``z`` ``(D,)``."""
        x, y = self.pca.project(z.cpu()).tolist()
        with self.marker.hold_sync():
            self.marker.x, self.marker.y = [x], [y]

    def pick(self, index: int) -> None:
        """What a click on point ``index`` does."""
        self.picked = index
        self.points.selected = [index]
        if self.on_pick is not None:
            self.on_pick(index)

    def place(self, x: float, y: float) -> None:
        """What dropping the cross at ``(x, y)`` does."""
        if self.on_place is not None:
            self.on_place(self.pca.lift(torch.tensor([x, y])))

    def _clicked(self, _mark, event: dict) -> None:
        self.pick(int(event["data"]["index"]))

    def _dropped(self, _mark, event: dict) -> None:
        point = event.get("point", {})
        self.place(float(point["x"]), float(point["y"]))


# -- inputs ------------------------------------------------------------------------------------

def check_explorer_mels(model: ConvVAE, mels: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``mels`` is ``(N >= 2, 1, n_mels, T)`` float32 for ``model``."""
    c = model.config
    expected = f"(N >= 2, 1, {c.n_mels}, {c.n_frames})"
    if not isinstance(mels, torch.Tensor):
        raise TypeError(f"mels must be a torch.Tensor {expected}, got {type(mels).__name__}")
    if mels.dim() != 4 or mels.shape[1] != 1:
        raise ValueError(f"mels must be {expected} for this model, got {tuple(mels.shape)}")
    if mels.shape[0] == 0:
        raise ValueError(f"mels are empty: expected {expected}, got {tuple(mels.shape)}")
    if mels.shape[0] < 2:
        raise ValueError(f"mels must be {expected}: the explorer needs at least two clips to "
                         f"rank dimensions and set ranges, got {mels.shape[0]}")
    model.encoder.check_input(mels)  # n_mels, frames, dtype, with the model's own message
    if not torch.isfinite(mels).all():
        raise ValueError("mels contain NaN or infinite values")


def _clip_seconds(model: ConvVAE, spec: AudioSpectrogram) -> float:
    sr = spec.config.sample_rate
    if spec.get_mel_shape(sr)[1] == model.config.n_frames:
        return 1.0
    return (model.config.n_frames - 1) * spec.config.hop_length / sr


def spectrogram_for(extra: dict | None) -> AudioSpectrogram:
    """The :class:`AudioSpectrogram` a checkpoint was trained with: its
    ``extra["spectrogram_config"]`` (a dict or a :class:`SpectrogramConfig`), else the default."""
    cfg = (extra or {}).get("spectrogram_config")
    if cfg is None:
        return AudioSpectrogram()
    if isinstance(cfg, SpectrogramConfig):
        return AudioSpectrogram(cfg)
    if isinstance(cfg, dict):
        return AudioSpectrogram(SpectrogramConfig(**cfg))
    raise TypeError(f"extra['spectrogram_config'] must be a dict or SpectrogramConfig, got "
                    f"{type(cfg).__name__}")


def mels_for(model: ConvVAE, spec: AudioSpectrogram, mels_or_folder=None,
             labels: Sequence[str] | None = None) -> tuple[torch.Tensor, list[str]]:
    """Mels ``(N, 1, n_mels, T)`` and labels for an explorer on ``model``.

    ``mels_or_folder`` is a mel tensor, a waveform tensor ``(N, 1, samples)``, an
    :class:`~sda_lab.data.AudioClips`, a folder of audio (read with
    :func:`~sda_lab.data.load_folder` into clips of the model's length) or None (the default
    data set, 4 clips of each kind).
    """
    from .data import AudioClips, load_folder, make_default_dataset

    if mels_or_folder is None:
        clips = make_default_dataset(4, sample_rate=spec.config.sample_rate)
        n = int(round(_clip_seconds(model, spec) * spec.config.sample_rate))
        waves = clips.waveforms[..., :n]  # (N, 1, <= n)
        waves = torch.nn.functional.pad(waves, (0, n - waves.shape[-1]))  # (N, 1, n)
        clips = AudioClips(waves, clips.labels, clips.sample_rate)
    elif isinstance(mels_or_folder, (str, Path)):
        clips = load_folder(mels_or_folder, sample_rate=spec.config.sample_rate,
                            clip_seconds=_clip_seconds(model, spec))
    elif isinstance(mels_or_folder, AudioClips):
        clips = mels_or_folder
    elif isinstance(mels_or_folder, torch.Tensor):
        x = mels_or_folder
        if x.dim() == 3:  # waveforms (N, 1, samples)
            x = spec.waveform_to_mel(x)  # (N, 1, n_mels, T)
        return x, list(labels) if labels is not None else [f"clip {i}" for i in range(len(x))]
    else:
        raise TypeError("mels_or_folder must be a mel or waveform tensor, AudioClips, a folder "
                        f"path or None, got {type(mels_or_folder).__name__}")
    return spec.waveform_to_mel(clips.waveforms), list(labels or clips.labels)  # (N, 1, M, T)


# -- the explorer ------------------------------------------------------------------------------

@dataclass
class DragStats:
    """What :meth:`LatentExplorer.simulate_drag` measured (seconds, renders per second)."""

    changes: int
    seconds: float
    picture_renders: int
    audio_renders: int
    picture_per_s: float
    audio_per_s: float
    picture_ms: float  # median duration of one picture render
    audio_ms: float  # median duration of one audio render
    settle_ms: float  # from the last change until both lanes show it
    final_matches: bool  # both lanes' last render is the final slider value
    picture_ms_all: list[float] = field(default_factory=list, repr=False)
    audio_ms_all: list[float] = field(default_factory=list, repr=False)


class LatentExplorer:
    """Sliders over latent dimensions with the decoded mel, waveform, audio and a latent map.

    Parameters
    ----------
    model : ConvVAE
        A trained model (see :func:`sda_lab.train.load_or_train_default`,
        :meth:`from_checkpoint`).
    spec : AudioSpectrogram
        The representation the model was trained on (inverts decoded mels to audio).
    mels : Tensor
        ``(N >= 2, 1, n_mels, T)`` data used to rank dimensions, set slider ranges, offer start
        clips and draw the map; ``n_mels`` and ``T`` must fit the model.
    labels : sequence of str, optional
        One per clip, shown in the start menu and map (coloured by file for ``"f.wav@2s"``).
    n_shown : int
        Sliders in the main panel (highest-KL dimensions); the rest sit in an accordion below.
    sd_range : float
        Each slider spans ``start +- sd_range`` standard deviations of the aggregate posterior
        of its dimension, ``sqrt(Var_x[mu] + E_x[sigma^2])``; its step is 1/100 of that span.
    live : bool
        True: sliders update while dragged, through the two coalescing lanes. False: each
        change renders synchronously in the observer.
    show_map : bool
        Draw the latent map (bqplot).

    Raises
    ------
    ValueError
        ``start`` not in :data:`STARTS`, or ``mels`` empty, of one clip, or not the model's
        ``(n_mels, frames)``.
    """

    def __init__(self, model: ConvVAE, spec: AudioSpectrogram, mels: torch.Tensor,
                 labels: Sequence[str] | None = None, n_shown: int = 8, sd_range: float = 3.0,
                 start: str = "clip", clip_index: int = 0, seed: int = 0, live: bool = True,
                 show_map: bool = True) -> None:
        if start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {start!r}")
        check_explorer_mels(model, mels)
        if labels is not None and len(labels) != len(mels):
            raise ValueError(f"labels must have one entry per clip: {len(mels)} clips, "
                             f"{len(labels)} labels")
        if not 0 <= clip_index < len(mels):
            raise ValueError(f"clip_index must be in [0, {len(mels)}), got {clip_index}")
        self.renderer = _Renderer(model, spec, seed)
        self.model = model
        self.spec = spec
        self.live = live
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
        start_options += [("prior sample", ("prior", 0)), ("zero", ("zero", 0)),
                          ("place on the map", ("map", 0))]
        initial = ("clip", clip_index) if start == "clip" else (start, 0)
        self.start_menu = W.Dropdown(options=start_options, value=initial, description="start")
        self.reset_button = W.Button(description="reset", icon="undo")
        self.random_button = W.Button(description="randomise", icon="random")
        self.sliders: list[W.FloatSlider] = []
        for rank, d in enumerate(self.order):
            self.sliders.append(W.FloatSlider(
                value=0.0, min=-1.0, max=1.0, step=0.02, continuous_update=live,
                description=f"#{rank + 1} z{d}", readout_format=".2f",
                tooltip=f"latent dimension {d}, KL {self.kl_per_dim[d]:.2f} nats",
                layout=W.Layout(width="380px"),
            ))
        self._suspend = False
        self._moved = 0  # rank of the slider moved last (named in the status line)
        self.start_z = torch.zeros(D)
        self._map_z = torch.zeros(D)
        self.last_seconds = 0.0
        self.picture_lane = LatestValueWorker(self._render_picture_job, "picture")
        self.audio_lane = LatestValueWorker(self._render_audio_job, "audio")
        self.map = (LatentMap(self.mu, self.labels, on_pick=self.pick, on_place=self.place)
                    if show_map else None)
        if self.map is not None:
            self.renderer.on_picture = self.map.show
        self.set_start(initial)
        for rank, s in enumerate(self.sliders):
            s.observe(lambda ch, r=rank: self._on_slider(r, ch), names="value")
        self.start_menu.observe(self._on_start_menu, names="value")
        self.reset_button.on_click(lambda _: self.set_start(self.start_menu.value))
        self.random_button.on_click(lambda _: self.randomise())

        shown, rest = self.sliders[:n_shown], self.sliders[n_shown:]
        children = [W.HBox([self.start_menu, self.reset_button, self.random_button]),
                    W.HTML(f"<b>latent dimensions, most informative first</b> (range: start "
                           f"&plusmn; {sd_range:g} std, step 1/{SLIDER_STEPS} of the range)"),
                    *shown]
        if rest:
            more = W.Accordion(children=[W.VBox(rest)],
                               titles=(f"dimensions ranked {n_shown + 1}-{D} (less informative)",))
            more.selected_index = None
            children.append(more)
        if self.map is not None:
            children.append(self.map.widget)
        self.widget = W.HBox([W.VBox(children), self.renderer.output_box()])

    # -- construction from a checkpoint ----------------------------------------------------------

    @classmethod
    def from_checkpoint(cls, checkpoint, mels_or_folder=None, labels: Sequence[str] | None = None,
                        spec: AudioSpectrogram | None = None, **kwargs) -> "LatentExplorer":
        """An explorer on a saved model.

        Parameters
        ----------
        checkpoint : str, Path or Checkpoint
            A file from ``python -m sda_lab train`` / :func:`sda_lab.train.save_checkpoint`, or
            what :func:`sda_lab.train.load_checkpoint` returned.
        mels_or_folder : Tensor, AudioClips, str, Path or None
            The clips to explore (see :func:`mels_for`); None takes the default data set.
        spec : AudioSpectrogram, optional
            Defaults to the checkpoint's ``extra["spectrogram_config"]``, else the default one.
        **kwargs
            Passed to the constructor.

        Raises
        ------
        FileNotFoundError, ValueError
            Missing or unreadable checkpoint; clips that do not fit the model.
        """
        from .train import Checkpoint, load_checkpoint

        ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        spec = spec or spectrogram_for(ckpt.extra)
        model = ckpt.model.eval()
        mels, labels = mels_for(model, spec, mels_or_folder, labels)
        return cls(model, spec, mels, labels, **kwargs)

    # -- state -----------------------------------------------------------------------------------

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
        if kind == "map":
            return self._map_z.clone()
        return torch.zeros(self.model.latent_dim)

    def _on_start_menu(self, change) -> None:
        if not self._suspend:
            self.set_start(change["new"])

    def set_start(self, choice: tuple[str, int]) -> float:
        """Centre every slider on a start point and redraw once (synchronously)."""
        self.wait()
        if self.start_menu.value != choice:
            self._suspend = True
            try:
                self.start_menu.value = choice
            finally:
                self._suspend = False
        self.start_z = self._start_point(choice)
        self._set_values(self.start_z, recentre=True)
        return self.update()

    def pick(self, index: int, play: bool = True) -> float:
        """Start from clip ``index`` (what clicking it on the map does) and play it."""
        if not 0 <= index < len(self.mu):
            raise ValueError(f"clip index must be in [0, {len(self.mu)}), got {index}")
        self.audio.autoplay = play
        return self.set_start(("clip", index))

    def place(self, z: torch.Tensor, play: bool = True) -> float:
        """Start from latent ``z`` ``(D,)`` (what dropping the map's cross does) and play it."""
        self._map_z = z.detach().float().cpu().reshape(self.model.latent_dim).clone()
        self.audio.autoplay = play
        return self.set_start(("map", 0))

    def randomise(self) -> float:
        """Draw every dimension from its aggregate posterior N(mean, std) and redraw."""
        self.wait()
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
                    if not hi > lo:  # a dimension with no spread: keep a usable slider
                        lo, hi = lo - 1.0, hi + 1.0
                    step = (hi - lo) / SLIDER_STEPS
                    # widen before narrowing so min <= max holds at every step
                    with s.hold_sync():
                        s.min, s.max = min(lo, s.min), max(hi, s.max)
                        s.min, s.max, s.step = lo, hi, step
                        s.readout_format = f".{max(0, math.ceil(-math.log10(step)))}f"
                s.value = float(z[d].clamp(s.min, s.max))
        finally:
            self._suspend = False

    def set_dimension(self, rank: int, value: float, wait: bool = True) -> float:
        """Move the slider of the ``rank``-th most informative dimension (0-based), as a user
        would (through the slider's observer); with ``wait``, block until it is drawn and heard.
        Returns the last audio render's seconds (the picture comes earlier)."""
        self.sliders[rank].value = value  # fires _on_slider
        if wait:
            self.wait()
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

    def measure_latency(self, moves: int = 10, step: float | None = None,
                        steps: int = 3) -> list[float]:
        """Seconds of kernel-side work (decode + Griffin-Lim + redraw) for ``moves`` slider
        moves on the top 8 dimensions, each waited for; a move is ``step`` latent units if
        given, else ``steps`` slider steps."""
        seconds = []
        for k in range(moves):
            rank = k % min(8, len(self.sliders))
            s = self.sliders[rank]
            size = step if step is not None else steps * s.step
            nudge = size if k % 2 == 0 else -size
            seconds.append(self.set_dimension(rank, float(s.value) + nudge))
        return seconds

    def simulate_drag(self, rank: int = 0, changes: int = 40, rate_hz: float = 30.0,
                      span: float = 0.8) -> DragStats:
        """Drag slider ``rank`` as a mouse would: ``changes`` values, ``rate_hz`` per second,
        sweeping ``span`` of its range upwards from its current value, through the real
        observer. Counts the renders each lane completed during the drag and checks that the
        last render of both lanes is the final value. The explorer is left at the final value.
        """
        s = self.sliders[rank]
        self.wait()
        p0, a0 = self.picture_lane.completed, self.audio_lane.completed
        np0, na0 = len(self.picture_lane.seconds), len(self.audio_lane.seconds)
        lo = float(s.value)
        hi = min(float(s.max), lo + span * (float(s.max) - float(s.min)))
        if hi - lo < span * (float(s.max) - float(s.min)) / 2:  # near the top: drag down instead
            hi = max(float(s.min), lo - span * (float(s.max) - float(s.min)))
        period = 1.0 / rate_hz
        t0 = time.perf_counter()
        for k in range(1, changes + 1):
            target = t0 + k * period
            time.sleep(max(0.0, target - time.perf_counter()))
            s.value = lo + (hi - lo) * k / changes
        t_end = time.perf_counter()
        self.wait()
        settle = time.perf_counter() - t_end
        during = t_end - t0
        pics = sum(1 for t in self.picture_lane.finished_at[np0:] if t <= t_end)
        auds = sum(1 for t in self.audio_lane.finished_at[na0:] if t <= t_end)
        z = self.z
        ok = (self.renderer.picture.z is not None and self.renderer.sound.z is not None
              and torch.equal(self.renderer.picture.z, z) and torch.equal(self.renderer.sound.z, z))
        p_ms = [1000 * x for x in self.picture_lane.seconds[np0:]]
        a_ms = [1000 * x for x in self.audio_lane.seconds[na0:]]
        del p0, a0
        return DragStats(changes, during, pics, auds, pics / during, auds / during,
                         statistics.median(p_ms) if p_ms else float("nan"),
                         statistics.median(a_ms) if a_ms else float("nan"),
                         1000 * settle, ok, p_ms, a_ms)

    def _caption(self) -> str:
        s = self.sliders[self._moved]
        value = format(s.value, s.readout_format)
        return f"<span class='sda-rendered'>{s.description} = {value}</span>"

    def _on_slider(self, rank: int, change: dict | None = None) -> None:
        if self._suspend:
            return
        step = self.sliders[rank].step
        if change is not None and abs(change["new"] - change["old"]) < 0.5 * step:
            # Not a move: the browser's slider snapping a value the kernel set (a start point)
            # to its step and sending it back. Treated as a move, it would redraw for nothing and
            # cancel the autoplay of a clip just clicked on the map.
            return
        self._moved = rank
        if self.audio.autoplay:  # a map click plays its clip; a drag does not autoplay
            self.audio.autoplay = False
        if not self.live:
            self.update()
            return
        job = (self.z, self._caption())
        self.picture_lane.submit(job)
        self.audio_lane.submit(job)

    def _render_picture_job(self, job) -> None:
        self._guard(self.renderer.render_picture, *job)

    def _render_audio_job(self, job) -> None:
        self.last_seconds = self._guard(self.renderer.render_audio, *job)

    def _guard(self, fn, *args) -> float:
        try:
            return fn(*args)
        except Exception as exc:
            self.renderer._show_status(error=f"{type(exc).__name__}: {exc}")
            raise

    def wait(self, timeout: float | None = 60.0) -> bool:
        """Block until both lanes are idle (every slider value so far drawn and heard)."""
        return self.picture_lane.wait(timeout) & self.audio_lane.wait(timeout)

    def update(self) -> float:
        """Decode the current latent and redraw picture and audio synchronously; returns the
        seconds it took."""
        self.wait()
        self.last_seconds = self.renderer.render(self.z, self._caption())
        return self.last_seconds

    @property
    def mel(self) -> torch.Tensor:
        """The last drawn mel, ``(1, 1, n_mels, T)``."""
        return self.renderer.last_mel

    @property
    def audio(self) -> W.Audio:
        return self.renderer.audio

    # -- a picture for readers without a kernel -------------------------------------------------

    def snapshot(self) -> Figure:
        """A static figure of the explorer's current state: mel, waveform and latent map.

        For committed notebooks: a reader without a running kernel sees this instead of live
        widgets."""
        self.wait()
        fig = Figure(figsize=(11, 3.2), dpi=72)
        gs = fig.add_gridspec(2, 2, width_ratios=(1.3, 1), height_ratios=(2, 1),
                              left=0.06, right=0.98, bottom=0.14, top=0.9, wspace=0.2, hspace=0.5)
        ax = fig.add_subplot(gs[0, 0])
        ax.imshow(self.mel[0, 0].numpy(), origin="lower", aspect="auto", cmap="magma",
                  vmin=0, vmax=1, interpolation="nearest")
        s = self.sliders[self._moved]
        ax.set_title(f"decoded mel: start {self.start_menu.label}, {s.description} = "
                     f"{format(s.value, s.readout_format)}", fontsize=9)
        ax.set_ylabel("mel band", fontsize=8)
        ax.tick_params(labelsize=7)
        ax = fig.add_subplot(gs[1, 0])
        w = self.renderer.last_wave.reshape(-1).numpy()
        ax.plot(np.arange(len(w)) / self.spec.config.sample_rate, w, lw=0.3)
        ax.set_ylim(-1, 1)
        ax.set_xlabel("seconds", fontsize=8)
        ax.tick_params(labelsize=7)
        ax = fig.add_subplot(gs[:, 1])
        pca = self.map.pca if self.map is not None else PCA2.fit(self.mu)
        xy = pca.project(self.mu).numpy()  # (N, 2)
        groups = label_groups(self.labels)
        for i, g in enumerate(dict.fromkeys(groups)):
            idx = [k for k, h in enumerate(groups) if h == g]
            ax.scatter(xy[idx, 0], xy[idx, 1], s=14, color=PALETTE[i % len(PALETTE)],
                       label=g if i < 10 else None)
        cx, cy = pca.project(self.z).tolist()
        ax.scatter([cx], [cy], marker="x", s=80, color="#d62728", linewidths=2, label="current")
        ex = pca.explained
        ax.set_xlabel(f"PC1 ({100 * ex[0]:.0f} % of variance)", fontsize=8)
        ax.set_ylabel(f"PC2 ({100 * ex[1]:.0f} %)", fontsize=8)
        ax.set_title("latent map: posterior means", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="best", ncols=2)
        return fig

    def snapshot_image(self):
        """:meth:`snapshot` as an ``IPython.display.Image`` (PNG), for ``display()``."""
        from IPython.display import Image as IPImage

        return IPImage(data=_png(self.snapshot()), format="png")

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = (f"LatentExplorer: {len(self.sliders)} latent sliders over "
                                f"{len(self.mu)} clips (a live widget: run the notebook)")
        return bundle


class InterpolationExplorer:
    """Two clips, a slider ``t`` along the straight line between their posterior means.

    ``t`` updates live while dragged (steps of 0.01), through the same coalescing lanes as
    :class:`LatentExplorer`."""

    def __init__(self, model: ConvVAE, spec: AudioSpectrogram, mels: torch.Tensor,
                 labels: Sequence[str] | None = None, a: int = 0, b: int = 1, seed: int = 0,
                 live: bool = True) -> None:
        check_explorer_mels(model, mels)
        self.renderer = _Renderer(model, spec, seed)
        self.live = live
        self.mu = encode_dataset(model, mels)[0].cpu()  # (N, D)
        labels = list(labels) if labels is not None else [f"clip {i}" for i in range(len(mels))]
        options = [(f"{i}: {lab}", i) for i, lab in enumerate(labels)]
        self.a = W.Dropdown(options=options, value=a, description="from")
        self.b = W.Dropdown(options=options, value=b, description="to")
        self.t = W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.01, continuous_update=live,
                               description="t", layout=W.Layout(width="380px"))
        self.picture_lane = LatestValueWorker(
            lambda job: self.renderer.render_picture(*job), "picture")
        self.audio_lane = LatestValueWorker(self._audio_job, "audio")
        self.a.observe(lambda _: self.update(), names="value")
        self.b.observe(lambda _: self.update(), names="value")
        self.t.observe(self._on_t, names="value")
        self.last_seconds = 0.0
        self.update()
        self.widget = W.HBox([W.VBox([self.a, self.b, self.t]), self.renderer.output_box()])

    def latent(self, t: float | None = None) -> torch.Tensor:
        t = self.t.value if t is None else t
        return (1 - t) * self.mu[self.a.value] + t * self.mu[self.b.value]  # (D,)

    def _caption(self) -> str:
        return f"<span class='sda-rendered'>t = {self.t.value:.2f}</span>"

    def _audio_job(self, job) -> None:
        self.last_seconds = self.renderer.render_audio(*job)

    def _on_t(self, _change) -> None:
        if not self.live:
            self.update()
            return
        job = (self.latent(), self._caption())
        self.picture_lane.submit(job)
        self.audio_lane.submit(job)

    def wait(self, timeout: float | None = 60.0) -> bool:
        return self.picture_lane.wait(timeout) & self.audio_lane.wait(timeout)

    def update(self) -> float:
        self.wait()
        self.last_seconds = self.renderer.render(self.latent(), self._caption())
        return self.last_seconds

    @property
    def mel(self) -> torch.Tensor:
        self.wait()
        return self.renderer.last_mel

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = "InterpolationExplorer (a live widget: run the notebook)"
        return bundle


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
