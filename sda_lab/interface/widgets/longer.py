"""The explorer's "longer" row: the sound at the current latent position continued past one
clip (:func:`sda_lab.studies.continuation.continue_from`), played inline.

A length slider, a "play longer" button, the inline audio and one status line saying how the
sound was continued (:func:`sda_lab.studies.continuation.describe`) or, in one line, what went
wrong."""

from __future__ import annotations

import html

import ipywidgets as W

from ...core._io import audio_bytes
from ...studies.continuation import MAX_SECONDS

__all__ = ["LongerRow"]


class LongerRow:
    """Over a :class:`~sda_lab.interface.widgets.explorer.LatentExplorer`; :attr:`widget` is
    the row, :meth:`play` what the button does."""

    def __init__(self, explorer, seconds: float = 4.0) -> None:
        self.explorer = explorer
        self.seconds = W.FloatSlider(value=seconds, min=1.0, max=min(30.0, MAX_SECONDS), step=0.5,
                                     description="length (s)", readout_format=".1f",
                                     continuous_update=False, layout=W.Layout(width="300px"))
        self.button = W.Button(description="play longer", icon="play",
                               layout=W.Layout(width="120px"))
        self.audio = W.Audio(value=b"", autoplay=False, loop=False)
        self.status = W.HTML()
        self.button.on_click(lambda _: self.play())
        self.widget = W.VBox([W.HBox([self.seconds, self.button]), self.status])

    def play(self, autoplay: bool = True):
        """Continue the explorer's current sound to the slider's length and show it; returns
        the waveform ``(1, samples)`` (None after an error, which the status line shows)."""
        try:
            wave, how = self.explorer.longer(self.seconds.value)
        except (ValueError, RuntimeError) as exc:
            self.status.value = f"<small style='color:#b00'>{html.escape(str(exc))}</small>"
            return None
        rate = self.explorer.spec.config.sample_rate
        data, _ = audio_bytes(wave, rate)  # limited only where it would clip
        self.audio = W.Audio(value=data, autoplay=autoplay, loop=False)
        self.status.value = f"<small style='color:#555'>{html.escape(how)}</small>"
        self.widget.children = (self.widget.children[0], self.audio, self.status)
        return wave
