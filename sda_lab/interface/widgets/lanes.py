"""Render lanes: a coalescing background worker, and the renderer both explorers share.

Sliders send every value while they move. Each change only stores the newest latent; two
*lanes* (:class:`LatestValueWorker`) render it, each with at most one render in flight. When a
render finishes the lane renders again only if a newer value arrived meanwhile: stale values
are dropped, never queued, and the last value always gets rendered. The picture lane (decode +
mel image + map marker) therefore updates several times as often as the audio lane.

The audio lane renders a cheap *preview* while values keep coming (fewer NNLS and Griffin-Lim
iterations, the phase warm-started from the previous render, as consecutive latents of a drag
are close) and, once no newer value is waiting, the *full* inversion of the last value (the
lane's ``settle`` call). Rates and quality: ``benchmarks/bench_explorer.py`` and
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import ipywidgets as W
import torch

from ...model.vae import ConvVAE
from ...representation.inversion import griffin_lim, mel_to_linear
from ...representation.inverter import Inverter
from ...representation.spectrogram import AudioSpectrogram
from ..plotting import flac_bytes
from .images import mel_image_png, waveform_image_png

__all__ = ["LatestValueWorker", "Preview", "Rendered", "Renderer"]

_RNG_LOCK = threading.Lock()  # the full inversion seeds torch's global generator: one at a time
_EMPTY = object()


class LatestValueWorker:
    """Run ``fn(value)`` on a background thread for the newest submitted value only.

    :meth:`submit` stores the value and returns at once. If no call is running, a thread starts
    one; when it finishes it runs again only if a newer value arrived meanwhile. So at most one
    call is in flight, intermediate values are dropped (never queued), and the last submitted
    value is always the last one rendered. With ``settle``, once nothing newer is waiting after
    a call of ``fn``, ``settle(value)`` runs once for that last value (the full-quality render
    after previews).

    Attributes
    ----------
    submitted, completed : int
        Values submitted and calls finished (``fn`` and ``settle`` alike).
    seconds, finished_at : list[float]
        Duration and end (``time.perf_counter()``) of every finished call.
    settled : int
        Calls of ``settle``.
    error : str | None
        The last exception's traceback, if a call raised (the worker keeps going).
    """

    def __init__(self, fn: Callable[[object], None], name: str = "render",
                 settle: Callable[[object], None] | None = None) -> None:
        self._fn = fn
        self._settle = settle
        self._name = name
        self._lock = threading.Lock()
        self._pending: object = _EMPTY
        self._unsettled: object = _EMPTY  # the last value fn rendered, until settle ran on it
        self._running = False
        self._idle = threading.Event()
        self._idle.set()
        self.submitted = 0
        self.completed = 0
        self.settled = 0
        self.seconds: list[float] = []
        self.finished_at: list[float] = []
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

    def _next(self) -> tuple[Callable[[object], None], object] | None:
        with self._lock:
            if self._pending is not _EMPTY:
                value, self._pending = self._pending, _EMPTY
                if self._settle is not None:
                    self._unsettled = value
                return self._fn, value
            if self._unsettled is not _EMPTY:
                value, self._unsettled = self._unsettled, _EMPTY
                self.settled += 1
                return self._settle, value
            self._running = False
            self._idle.set()
            return None

    def _loop(self) -> None:
        while (job := self._next()) is not None:
            fn, value = job
            t0 = time.perf_counter()
            try:
                fn(value)
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


@dataclass(frozen=True)
class Preview:
    """The audio lane's cheap inversion while a slider moves: ``nnls_iters`` FISTA steps from
    the pseudo-inverse, then ``griffin_lim_iters`` fast Griffin-Lim iterations started from the
    phase of the previous render's STFT (warm start). The full path on settle is the
    renderer's :class:`~sda_lab.representation.inverter.Inverter` where it has one, else
    ``AudioSpectrogram.mel_to_waveform``'s default."""

    nnls_iters: int = 10
    griffin_lim_iters: int = 8

    def __post_init__(self) -> None:
        if self.nnls_iters < 0 or self.griffin_lim_iters < 0:
            raise ValueError(f"Preview iterations must be 0 or more, got nnls_iters="
                             f"{self.nnls_iters}, griffin_lim_iters={self.griffin_lim_iters}")


@dataclass
class Rendered:
    """What one lane last drew: the latent ``(D,)``, a caption, the seconds it took, whether it
    was a preview and whether its audio was sent to autoplay."""

    z: torch.Tensor | None = None
    caption: str = ""
    seconds: float = 0.0
    preview: bool = False
    play: bool = False


class Renderer:
    """Decode a latent, invert it to audio, and draw both: shared by the two explorers.

    ``render_picture`` (decoder + mel image) and ``render_audio`` (decoder + inversion + FLAC
    + waveform image) can run on different threads; ``render`` runs both. Each audio value is
    sent together with its own ``autoplay`` flag, in one message (``hold_sync``): the front end
    rebuilds the player on *any* change of the Audio widget, so ``autoplay`` is never changed on
    its own (that would restart or stop what is playing), except to replay: the same audio
    asked to play again goes out as ``autoplay=False``, then value and ``autoplay=True``.
    """

    def __init__(self, model: ConvVAE, spec: AudioSpectrogram, seed: int = 0,
                 preview: Preview | None = Preview(), inverter: Inverter | None = None) -> None:
        self.model = model.eval()
        self.spec = spec
        self.seed = seed
        self.preview = preview
        if inverter is not None and inverter.spectrogram.config != spec.config:
            raise ValueError("inverter: built on another spectrogram config than spec")
        self.inverter = inverter  # the full path, where given (a run's Inverter.for_run)
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
    def invert(self, mel: torch.Tensor, preview: bool = False) -> torch.Tensor:
        """Mel ``(1, 1, n_mels, T)`` -> waveform ``(1, 1, samples)``: the full inversion, or with
        ``preview`` the :class:`Preview` path warm-started from :attr:`last_wave`. The full
        inversion is what :attr:`inverter` gives when it is set, else the default
        ``spec.mel_to_waveform``; either way the random phases come from ``seed`` (only the
        latent changes the sound)."""
        if (not preview or self.preview is None) and self.inverter is not None:
            generator = torch.Generator().manual_seed(self.seed)
            return self.inverter(mel, self.samples, generator=generator)  # (1, 1, samples)
        if not preview or self.preview is None:
            with _RNG_LOCK:
                torch.manual_seed(self.seed)
                return self.spec.mel_to_waveform(mel, length=self.samples)  # (1, 1, samples)
        s, c = self.spec, self.spec.config
        linear = mel_to_linear(s.mel_to_power(mel), fb=s.fb, nnls_iters=self.preview.nnls_iters,
                               pinv=s.fb_pinv, step=s.nnls_step)  # (..., n_stft, T)
        phase = None
        if self.last_wave is not None:
            phase = torch.stft(self.last_wave.reshape(-1), n_fft=c.n_fft, hop_length=c.hop_length,
                               window=s.window, return_complex=True)  # (n_stft, T')
            if phase.shape != linear.shape[-2:] or not bool((phase.abs() > 0).all()):
                phase = None  # another length, or silent bins with no angle: a random start
            else:
                phase = phase.expand(linear.shape)  # (..., n_stft, T)
        generator = torch.Generator().manual_seed(self.seed)
        wave = griffin_lim(linear, n_fft=c.n_fft, hop_length=c.hop_length,
                           n_iter=self.preview.griffin_lim_iters, power=c.power,
                           length=self.samples, window=s.window, init_phase=phase,
                           generator=generator)  # (..., samples)
        wave = wave.reshape(1, 1, -1)  # (1, 1, samples)
        return wave.to(mel.dtype)

    @torch.no_grad()
    def render_audio(self, z: torch.Tensor, caption: str = "", play: bool = False,
                     preview: bool = False) -> float:
        """Decode and invert ``z`` ``(D,)``, send the audio (autoplaying it if ``play``) and the
        waveform image; returns the seconds it took."""
        t0 = time.perf_counter()
        mel = self._decode(z)  # (1, 1, n_mels, T)
        preview = preview and self.preview is not None
        wave = self.invert(mel, preview)  # (1, 1, samples)
        self.wave_image.value = waveform_image_png(wave)
        data = flac_bytes(wave, self.spec.config.sample_rate)
        if play and self.audio.autoplay and bytes(self.audio.value) == data:
            # the same sound asked for again: unchanged traits send nothing (and the front end
            # ignores a state equal to its own), so first a message of its own rebuilds the
            # player silent, then the one below rebuilds it autoplaying: a replay
            self.audio.autoplay = False
        with self.audio.hold_sync():  # the value and its autoplay flag in one message
            self.audio.autoplay = play
            self.audio.value = data
        self.last_wave = wave
        self.sound = Rendered(z.clone(), caption, time.perf_counter() - t0, preview, play)
        self._show_status()
        return self.sound.seconds

    def render(self, z: torch.Tensor, caption: str = "", play: bool = False) -> float:
        """Picture and full audio for ``z`` ``(D,)`` in the calling thread; returns the seconds."""
        return self.render_picture(z, caption) + self.render_audio(z, caption, play=play)

    def _show_status(self, error: str | None = None) -> None:
        with self._status_lock:
            p, s = self.picture, self.sound
            how = ("preview: decode + short inversion" if s.preview
                   else "decode + NNLS + Griffin-Lim")
            html = (f"<small>picture {p.caption} <i>({1000 * p.seconds:.0f} ms)</i> &middot; "
                    f"audio {s.caption} <i>({1000 * s.seconds:.0f} ms: {how})</i></small>")
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
