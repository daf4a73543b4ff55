"""Telling a user's slider move from the browser's echo of a value the kernel set.

When the kernel sets a slider (a start point, a reset, the re-centring after a map click), the
browser's slider view renders that state and, if its step grid rounds the value differently,
sends the rounded value back: an *echo*. Echoes also arrive late: the echo of an earlier state
can come after the kernel has set a newer one, arbitrarily far (more than a step) from it.
Taken as moves, they redraw for sliders nobody touched and replace a clip the user asked to
hear.

:class:`KernelValues` records, per slider, every state the kernel sent since the last genuine
move of that slider (value, min, max, step; the kernel sends all four in one message and the
value on the step grid), and the recent ranges. An incoming value is an echo when it is one of
those values as sent, or snapped to the grid or clamped into the range of any recent state: the
browser's slider (noUiSlider) snaps a new value to the range it still holds before it takes the
new range, and the kernel's own traitlets clamp a late echo into the current range before any
observer sees it. That holds whatever its distance from the current value and whenever it comes;
any other value is the user's, and it ends that slider's record (so returning to a start value
later is a move again). This holds by construction, not by timing. What a user cannot do, as
the very first action on a slider after a kernel change, is land exactly on one of those
candidate values (an earlier kernel value, its snap to an older grid, a range end it was clamped
to): that one value is taken as an echo (the next value of a drag is a move again).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ipywidgets as W

__all__ = ["KernelValues", "SliderState", "grid_value", "set_slider"]

_KEEP = 8  # kernel states remembered per slider (the echoes of older ones have long arrived)
_TOLERANCE = 1e-3  # of a step: float rounding of the browser's grid, far below one step


@dataclass(frozen=True)
class SliderState:
    """One state the kernel sent to a slider."""

    value: float
    min: float
    max: float
    step: float

    def snap(self, x: float) -> float:
        """``x`` clamped to ``[min, max]`` and rounded to the grid ``min + k * step``."""
        return grid_value(x, self.min, self.max, self.step)


def grid_value(x: float, lo: float, hi: float, step: float) -> float:
    """``x`` clamped to ``[lo, hi]`` and rounded to ``lo + k * step`` (what a slider shows)."""
    x = min(max(x, lo), hi)
    if step > 0:
        x = lo + round((x - lo) / step) * step
    return min(max(x, lo), hi)


def set_slider(s: W.FloatSlider, value: float, lo: float | None = None,
               hi: float | None = None, step: float | None = None) -> SliderState:
    """Set range (optional) and value of ``s`` in ONE message to the browser, the value put on
    the step grid first (so the browser has nothing to round), and return the state sent."""
    with s.hold_sync():
        if lo is not None and hi is not None and step is not None:
            s.min, s.max = min(lo, s.min), max(hi, s.max)  # widen first: min <= max throughout
            s.min, s.max, s.step = lo, hi, step
            s.readout_format = f".{max(0, math.ceil(-math.log10(step)))}f"
        s.value = grid_value(float(value), float(s.min), float(s.max), float(s.step))
    return SliderState(float(s.value), float(s.min), float(s.max), float(s.step))


class KernelValues:
    """The states the kernel sent to each of ``n`` sliders: their values since the slider's last
    genuine move, and their ranges (which a user's move never changes, so the browser may still
    snap to an older one)."""

    def __init__(self, n: int) -> None:
        self._sent: list[list[SliderState]] = [[] for _ in range(n)]  # values since last move
        self._ranges: list[list[SliderState]] = [[] for _ in range(n)]  # every recent state

    def record(self, rank: int, state: SliderState) -> None:
        self._sent[rank] = (self._sent[rank] + [state])[-_KEEP:]
        self._ranges[rank] = (self._ranges[rank] + [state])[-_KEEP:]

    def latest(self, rank: int) -> SliderState | None:
        """The newest state the kernel sent to slider ``rank``."""
        return self._ranges[rank][-1] if self._ranges[rank] else None

    def is_latest(self, rank: int, value: float) -> bool:
        """Whether ``value`` is (within float rounding of the grid) the newest kernel value."""
        st = self.latest(rank)
        return st is not None and abs(value - st.value) <= _TOLERANCE * st.step

    def is_echo(self, rank: int, value: float) -> bool:
        """Whether ``value`` arriving for slider ``rank`` is an echo of a kernel state: one of
        the values sent since the last move, as sent or put on the grid and into the range of
        any recent state (the browser's slider snaps a new value to the range it still holds
        before it takes the new one; ipywidgets clamps an incoming value into the current range
        before any observer sees it)."""
        grids = self._ranges[rank]
        if not grids:
            return False
        now = grids[-1]  # the range the kernel's slider has: an incoming value is clamped to it
        for st in self._sent[rank]:
            for g in grids:
                tol = _TOLERANCE * min(g.step, st.step)
                for candidate in (st.value, g.snap(st.value)):
                    for c in (candidate, min(max(candidate, g.min), g.max),
                              min(max(candidate, now.min), now.max)):
                        if abs(value - c) <= tol:
                            return True
        return False

    def forget(self, rank: int) -> None:
        """The user moved slider ``rank``: the values sent before are no longer echoes (the
        ranges stay: the browser's slider still has the last one)."""
        self._sent[rank] = []
