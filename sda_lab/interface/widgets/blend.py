"""Blending two runs by a slider (:class:`BlendSlider`): a clip menu, ``alpha`` from run A (0)
to run B (1), the blended mel and its audio through run A's inversion
(:mod:`sda_lab.studies.blend` says what is blended in each space; the line under the picture
repeats it). ``alpha`` redraws while dragged through the explorers' coalescing lanes
(:class:`~sda_lab.interface.widgets.lanes.LatestValueWorker`): the picture as often as it
can, the audio once per value that is still the newest when the previous one is done."""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from pathlib import Path

import ipywidgets as W
import torch

from ...studies.blend import Blended, BlendPair
from ..plotting import flac_bytes
from .clips import clip_seconds, mels_for
from .images import mel_image_png, waveform_image_png
from .lanes import LatestValueWorker

__all__ = ["BlendSlider"]


class BlendSlider:
    """Blend two runs (folders of ``python -m sda_lab train``) on one clip at a time.

    Parameters
    ----------
    run_a, run_b : str or Path
        The two runs (:meth:`BlendPair.open <sda_lab.studies.blend.BlendPair.open>`: the same
        representation and mel shape).
    clips : Tensor, AudioClips, str, Path or None
        What to blend (:func:`.clips.mels_for` with run A's model: mels, waveforms, clips, a
        folder; None: the default data set).
    labels : sequence of str, optional
        One per clip, for the menu.
    space, decoder, force
        :meth:`BlendPair.blend <sda_lab.studies.blend.BlendPair.blend>`'s; a latent blend is
        checked on every clip at construction.
    live : bool
        True: ``alpha`` redraws while dragged (two lanes); False: on release, synchronously.
    seed : int
        Seeds the inversion's random phases (only ``alpha`` and the clip change the sound).

    Raises
    ------
    FileNotFoundError, ValueError
        What :meth:`BlendPair.open <sda_lab.studies.blend.BlendPair.open>` and
        :meth:`BlendPair.blend <sda_lab.studies.blend.BlendPair.blend>` raise (one line), before
        any widget is built.
    """

    def __init__(self, run_a: str | Path, run_b: str | Path, clips=None,
                 labels: Sequence[str] | None = None, space: str = "mel", decoder: str = "a",
                 force: bool = False, alpha: float = 0.5, live: bool = True,
                 seed: int = 0) -> None:
        self.pair = BlendPair.open(run_a, run_b)
        self.mels, labels = mels_for(self.pair.model_a, self.pair.spec, clips, labels)
        self.space, self.decoder, self.force, self.seed = space, decoder, force, seed
        self.pair.check(self.mels, alpha, space, decoder, force)  # before any refinement
        self.last: Blended | None = None  # the last blend drawn (update() draws the first)
        self.samples = round(clip_seconds(self.pair.model_a, self.pair.spec)
                             * self.pair.spec.config.sample_rate)
        self.clip = W.Dropdown(options=[(f"{i}: {lab}", i) for i, lab in enumerate(labels)],
                               value=0, description="clip")
        self.alpha = W.FloatSlider(value=alpha, min=0.0, max=1.0, step=0.01,
                                   continuous_update=live, description="alpha",
                                   tooltip=f"0: {self.pair.run_a.name}, 1: {self.pair.run_b.name}",
                                   layout=W.Layout(width="380px"))
        self.image = W.Image(format="png", layout=W.Layout(width="400px", height="200px"))
        self.wave_image = W.Image(format="png", layout=W.Layout(width="400px", height="90px"))
        self.audio = W.Audio(format="flac", autoplay=False, controls=True)
        self.text = W.HTML()
        self.live = live
        self.last_seconds = 0.0
        self.picture_lane = LatestValueWorker(self._render_picture, "blend picture")
        self.audio_lane = LatestValueWorker(self._render_audio, "blend audio")
        self.clip.observe(lambda _: self._changed(), names="value")
        self.alpha.observe(lambda _: self._changed(), names="value")
        ends = (f"<small>alpha 0: <b>{html.escape(self.pair.run_a.name)}</b> (A), 1: "
                f"<b>{html.escape(self.pair.run_b.name)}</b> (B)</small>")
        self.widget = W.HBox([W.VBox([self.clip, self.alpha, W.HTML(ends)]),
                              W.VBox([self.image, self.wave_image, self.audio, self.text])])
        self.update()

    def blended(self, clip: int | None = None, alpha: float | None = None) -> Blended:
        """The blend of clip ``clip`` at ``alpha`` (default: the widgets' values)."""
        i = self.clip.value if clip is None else clip
        a = self.alpha.value if alpha is None else alpha
        return self.pair.blend(self.mels[i:i + 1], a, self.space, self.decoder, self.force)

    def _render_picture(self, job: tuple[int, float]) -> None:
        blended = self.blended(*job)
        self.image.value = mel_image_png(blended.mel)  # (1, 1, n_mels, T)
        self.text.value = f"<small>{html.escape(blended.text)}</small>"
        self.last = blended

    def _render_audio(self, job: tuple[int, float]) -> None:
        t0 = time.perf_counter()
        mel = self.blended(*job).mel  # (1, 1, n_mels, T)
        wave = self.pair.invert(mel, self.samples,
                                torch.Generator().manual_seed(self.seed))  # (1, 1, samples)
        self.wave_image.value = waveform_image_png(wave)
        self.audio.value = flac_bytes(wave, self.pair.spec.config.sample_rate)
        self.last_seconds = time.perf_counter() - t0

    def _changed(self) -> None:
        if not self.live:
            self.update()
            return
        job = (self.clip.value, self.alpha.value)
        self.picture_lane.submit(job)
        self.audio_lane.submit(job)

    def wait(self, timeout: float | None = 60.0) -> bool:
        """Block until both lanes are idle (the last value drawn and heard)."""
        return self.picture_lane.wait(timeout) & self.audio_lane.wait(timeout)

    def update(self) -> float:
        """Draw and invert the current clip and ``alpha`` synchronously; returns the audio's
        seconds."""
        self.wait()
        job = (self.clip.value, self.alpha.value)
        self._render_picture(job)
        self._render_audio(job)
        return self.last_seconds

    @property
    def mel(self) -> torch.Tensor:
        """The last drawn blend, ``(1, 1, n_mels, T)``."""
        self.wait()
        return self.last.mel

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = "BlendSlider (a live widget: run the notebook)"
        return bundle
