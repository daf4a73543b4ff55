"""Latent dimensions named by the audio descriptor they move, and moves along a descriptor:
the explorer's opt-in half of :mod:`sda_lab.studies.descriptors` (a mixin of
:class:`~sda_lab.interface.widgets.explorer.LatentExplorer`, which provides ``model``, ``spec``,
``mels``, ``sliders``, ``order``, ``z``, ``_set_values``, ``renderer`` and ``wait``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import ipywidgets as W
import torch

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DescriptorNaming"]


class DescriptorNaming:
    """Named sliders (:meth:`name_dimensions`) and descriptor moves (:meth:`move_descriptor`,
    :meth:`descriptor_controls`) for an explorer."""

    _directions = None
    _controls = None
    dimension_names: list[str] | None = None

    def name_dimensions(self, n_dims: int = 8, n_clips: int = 2,
                        table: pd.DataFrame | None = None, **traverse_kwargs) -> list[str]:
        """Label each slider by the descriptor its dimension moves most ("#1 z33 · brighter ↑"):
        :func:`sda_lab.studies.descriptors.dimension_labels` on this explorer's clips, with this
        explorer's ranking; ``table`` (a :func:`~sda_lab.studies.descriptors.dimension_table`) is
        used as it is, else the ``n_dims`` top dimensions are traversed from ``n_clips`` clips
        (``f0=False`` unless ``traverse_kwargs`` say otherwise; tens of seconds on the full
        model). Returns the labels indexed by dimension (``labels[d]``).

        Raises
        ------
        ValueError
            ``table`` names a dimension outside ``0 .. D-1``.
        """
        from ...studies.descriptors import dimension_labels

        D = self.model.latent_dim
        if table is not None:
            bad = sorted({int(d) for d in table["dim"]} - set(range(D)))
            if bad:
                raise ValueError(f"table names dimensions {bad}, the model has 0..{D - 1}")
        else:
            traverse_kwargs = {"f0": False, **traverse_kwargs, "n_dims": n_dims,
                               "n_clips": n_clips}
        labels = dimension_labels(self.model, self.spec, self.mels, table=table, **traverse_kwargs)
        for rank, (s, d) in enumerate(zip(self.sliders, self.order)):
            s.description = f"#{rank + 1} {labels[d]}"
            s.style.description_width = "initial"  # the whole name, not cut at ~10 characters
        self.dimension_names = labels
        return labels

    def directions(self):
        """:func:`sda_lab.studies.descriptors.descriptor_directions` (``f0=False``) on this
        explorer's clips, computed on first use and kept."""
        if self._directions is None:
            from ...studies.descriptors import descriptor_directions

            self._directions = descriptor_directions(self.model, self.spec, self.mels, f0=False)
        return self._directions

    def move_descriptor(self, name: str, n_sd: float = 1.0) -> torch.Tensor:
        """Move the latent along the direction of descriptor ``name`` (``"centroid_hz"``, or a
        word of :data:`sda_lab.studies.descriptors.WORDS`: ``"brighter"``, ``"darker"``, ...) so
        its prediction changes by ``n_sd`` of its standard deviations across the clips
        (:meth:`sda_lab.studies.descriptors.Directions.move`); set the sliders there (as the kernel
        sets them: their echoes are not moves; a value outside a slider's range re-centres
        the ranges) and render once, synchronously. Returns the new latent ``(D,)``.

        Raises
        ------
        ValueError
            ``name`` is neither a descriptor nor one of its words, or has no direction on
            these clips (the line lists those that have).
        """
        from ...studies.descriptors import WORDS

        words = {w: (k, sign) for k, pair in WORDS.items() for w, sign in zip(pair, (1, -1))}
        if name not in WORDS and name not in words:
            raise ValueError(f"descriptor must be one of {list(WORDS)} or a word "
                             f"{list(words)}, got {name!r}")
        key, sign = (name, 1) if name in WORDS else words[name]
        dirs = self.directions()
        if key not in dirs.names:
            raise ValueError(f"no direction for {name!r} on these clips; have {dirs.names}")
        self.wait()
        z = dirs.move(self.z, key, sign * float(n_sd))  # (D,)
        outside = any(not s.min <= float(z[d]) <= s.max for s, d in zip(self.sliders, self.order))
        self._set_values(z, recentre=outside)
        caption = f"<span class='sda-rendered'>{name} {float(n_sd):+g} sd</span>"
        self.last_seconds = self.renderer.render(self.z, caption, play=False)
        return self.z

    def descriptor_controls(self) -> W.HBox:
        """A row to move along a descriptor: a menu of the descriptors with a direction (their
        leave-one-out R^2 beside them), a step in standard deviations and "−" / "+" buttons
        (:meth:`move_descriptor`). Computes the directions on first call."""
        if self._controls is None:
            from ...studies.descriptors import WORDS

            d = self.directions()
            menu = W.Dropdown(description="descriptor", options=[
                (f"{' / '.join(WORDS[n])} ({n}, LOO R² {r:.2f})", n)
                for n, r in zip(d.names, d.r2.tolist())])
            step = W.BoundedFloatText(value=0.5, min=0.05, max=5.0, step=0.05,
                                      description="sd", layout=W.Layout(width="130px"))
            minus, plus = W.Button(description="−", tooltip="less"), W.Button(description="+")
            for button, sign in ((minus, -1), (plus, 1)):
                button.layout = W.Layout(width="40px")
                button.on_click(lambda _, s=sign: self.move_descriptor(menu.value,
                                                                         s * step.value))
            self._controls = W.HBox([menu, step, minus, plus])
        return self._controls
