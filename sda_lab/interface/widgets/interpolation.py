"""Walking the latent space: the straight line between two clips
(:class:`InterpolationExplorer`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import ipywidgets as W
import torch

from ...model.vae import ConvVAE, encode_dataset
from ...representation.inverter import Inverter
from ...representation.spectrogram import AudioSpectrogram
from .clips import check_explorer_mels
from .export import export_interpolation
from .lanes import LatestValueWorker, Preview, Renderer

__all__ = ["InterpolationExplorer"]


class InterpolationExplorer:
    """Two clips, a slider ``t`` along the straight line between their posterior means.

    ``t`` updates live while dragged (steps of 0.01), through the same coalescing lanes as
    :class:`~sda_lab.interface.widgets.LatentExplorer` (a preview while it moves, the full
    inversion when it stops). ``inverter``: the full audio path
    (:class:`~sda_lab.representation.inverter.Inverter`), as in
    :class:`~sda_lab.interface.widgets.LatentExplorer`; ``ValueError`` (one line) if it was
    built on another spectrogram config than ``spec``."""

    def __init__(self, model: ConvVAE, spec: AudioSpectrogram, mels: torch.Tensor,
                 labels: Sequence[str] | None = None, a: int = 0, b: int = 1, seed: int = 0,
                 live: bool = True, preview: Preview | None = Preview(),
                 inverter: Inverter | None = None) -> None:
        check_explorer_mels(model, mels)
        self.renderer = Renderer(model, spec, seed, preview, inverter)
        self.model, self.spec = model, spec
        self.live = live
        self.mu = encode_dataset(model, mels)[0].cpu()  # (N, D)
        self.labels = list(labels) if labels is not None else [f"clip {i}" for i in range(len(mels))]
        options = [(f"{i}: {lab}", i) for i, lab in enumerate(self.labels)]
        self.a = W.Dropdown(options=options, value=a, description="from")
        self.b = W.Dropdown(options=options, value=b, description="to")
        self.t = W.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.01, continuous_update=live,
                               description="t", layout=W.Layout(width="380px"))
        self.picture_lane = LatestValueWorker(
            lambda job: self.renderer.render_picture(*job), "picture")
        self.audio_lane = LatestValueWorker(lambda job: self._audio_job(job, True), "audio",
                                            settle=lambda job: self._audio_job(job, False))
        self.a.observe(lambda _: self.update(), names="value")
        self.b.observe(lambda _: self.update(), names="value")
        self.t.observe(self._on_t, names="value")
        self.last_seconds = 0.0
        self.update()
        self.widget = W.HBox([W.VBox([self.a, self.b, self.t]), self.renderer.output_box()])

    def latent(self, t: float | None = None) -> torch.Tensor:
        """The latent ``(D,)`` at ``t`` (default the slider's) from clip ``a`` to clip ``b``."""
        t = self.t.value if t is None else t
        return (1 - t) * self.mu[self.a.value] + t * self.mu[self.b.value]  # (D,)

    def _caption(self) -> str:
        return f"<span class='sda-rendered'>t = {self.t.value:.2f}</span>"

    def _audio_job(self, job, preview: bool) -> None:
        self.last_seconds = self.renderer.render_audio(*job, False, preview)

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

    def export(self, folder: str | Path, steps: int = 5,
               name: str = "interpolation") -> dict[str, list[Path] | Path]:
        """Write ``steps`` points of the line as WAVs and their mels as a PNG; see
        :func:`~sda_lab.interface.widgets.export.export_interpolation`."""
        return export_interpolation(self, folder, steps, name)

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = "InterpolationExplorer (a live widget: run the notebook)"
        return bundle
