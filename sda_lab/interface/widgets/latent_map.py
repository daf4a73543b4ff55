"""The latent map: posterior means on their first two principal components (bqplot).

Points are coloured by group (:func:`map_groups`: the file of each clip, or its sub-folder when
there are more files than colours), with a legend; hovering a point names its clip. Clicking a
point calls ``on_pick(index)``; dragging the red cross and letting go calls ``on_place(z)``
with the latent at that place of the plane.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import ipywidgets as W
import torch

__all__ = ["PALETTE", "PCA2", "label_groups", "map_groups", "LatentMap"]

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")  # matplotlib's tab10


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
    """The file of each ``"sub/file.wav@3s"`` label (``"sub/file.wav"``), else the label."""
    return [lab.rsplit("@", 1)[0] for lab in labels]


def map_groups(labels: Sequence[str], colours: int = len(PALETTE)) -> list[str]:
    """One colour group per clip: its file (:func:`label_groups`) while there are at most
    ``colours`` files; with more, its sub-folder (the file's parent folder, ``"."`` at the top)
    when that gives at least two groups; else the file (colours are then reused)."""
    files = label_groups(labels)
    if len(set(files)) <= colours:
        return files
    folders = [str(PurePosixPath(f.replace("\\", "/")).parent) for f in files]
    return folders if len(set(folders)) >= 2 else files


class LatentMap:
    """A bqplot scatter of posterior means ``mu`` ``(N, D)`` on their first two principal
    components, coloured by :func:`map_groups` with a legend, a tooltip naming each clip, and a
    red cross at the explorer's current latent (see the module docstring)."""

    def __init__(self, mu: torch.Tensor, labels: Sequence[str],
                 on_pick: Callable[[int], None] | None = None,
                 on_place: Callable[[torch.Tensor], None] | None = None) -> None:
        import bqplot as bq

        self.pca = PCA2.fit(mu)
        self.xy = self.pca.project(mu.cpu())  # (N, 2)
        self.on_pick, self.on_place = on_pick, on_place
        self.labels = list(labels)
        self.point_groups = map_groups(self.labels)
        self.groups = list(dict.fromkeys(self.point_groups))
        self.colour = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(self.groups)}
        sx, sy = bq.LinearScale(), bq.LinearScale()
        self.points = bq.Scatter(
            x=self.xy[:, 0].numpy(), y=self.xy[:, 1].numpy(), scales={"x": sx, "y": sy},
            colors=[self.colour[g] for g in self.point_groups], default_size=36, stroke="white",
            names=self.labels, display_names=False, interactions={"click": "select"},
            selected_style={"stroke": "black", "stroke-width": 2}, unselected_style={},
            tooltip=bq.Tooltip(fields=["name"], labels=["clip"]))
        self.points.on_element_click(self._clicked)
        self.marker = bq.Scatter(x=[0.0], y=[0.0], scales={"x": sx, "y": sy}, marker="cross",
                                 colors=["#d62728"], stroke="black", default_size=160,
                                 enable_move=True)
        self.marker.on_drag_end(self._dropped)
        ex = self.explained
        axes = [bq.Axis(scale=sx, side="bottom", label=f"PC1 ({100 * ex[0]:.0f} % of variance)"),
                bq.Axis(scale=sy, side="left", label=f"PC2 ({100 * ex[1]:.0f} %)")]
        self.figure = bq.Figure(marks=[self.points, self.marker], axes=axes,
                                fig_margin={"top": 10, "bottom": 40, "left": 50, "right": 10},
                                layout=W.Layout(width="400px", height="300px"))
        self.caption = W.HTML(
            f"<small><b>latent map</b>: posterior means on their first two principal components "
            f"({100 * float(ex.sum()):.0f} % of the variance shown); hover a dot for its clip, "
            f"click it to start from it and play it, or drag the red cross to a place."
            f"<br>{self.legend_html()}</small>", layout=W.Layout(width="400px"))
        self.widget = W.VBox([self.caption, self.figure])
        self.picked: int | None = None

    def legend_html(self, shown: int = 20) -> str:
        """The legend: a coloured dot and the name of each group (the first ``shown``)."""
        counts = {g: self.point_groups.count(g) for g in self.groups}
        legend = " ".join(f"<span style='color:{self.colour[g]}'>&#9679;</span>&nbsp;{g} "
                          f"({counts[g]})" for g in self.groups[:shown])
        if len(self.groups) > shown:
            legend += f" &hellip; ({len(self.groups)} groups)"
        return legend

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
