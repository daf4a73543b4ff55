"""Telling a user's slider move from the browser's echo of a value the kernel set.

When the kernel sets a slider (a start point, a reset, the re-centring after a map click), the
browser's slider view renders that state and, if its step grid rounds the value differently,
sends the rounded value back: an *echo*. Echoes also arrive late: the echo of an earlier state
can come after the kernel has set a newer one, arbitrarily far (more than a step) from it.
Taken as moves, they redraw for sliders nobody touched and replace a clip the user asked to
hear.

:class:`KernelValues` records, per slider, every state the kernel sent since the last genuine
move of that slider (value, min, max, step; the kernel sends all four in one message and the
value on the step grid). An incoming value is an echo when it is one of those values or its
snap to that state's grid, or clamped into the newest range (the kernel's own traitlets clamp a
late echo so before any observer sees it), whatever its distance from the current value and
whenever it comes;
any other value is the user's, and it ends that slider's record (so returning to a start value
later is a move again). This holds by construction, not by timing. What a user cannot do as the very first action on a slider after a kernel change is land exactly
on an earlier kernel value or, where that lay outside the new range, tap the range's end: that
one value is taken as an echo (the next value of a drag is a move again).
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
    """The states the kernel sent to each of ``n`` sliders since their last genuine move."""

    def __init__(self, n: int) -> None:
        self._sent: list[list[SliderState]] = [[] for _ in range(n)]

    def record(self, rank: int, state: SliderState) -> None:
        self._sent[rank] = (self._sent[rank] + [state])[-_KEEP:]

    def latest(self, rank: int) -> SliderState | None:
        return self._sent[rank][-1] if self._sent[rank] else None

    def is_latest(self, rank: int, value: float) -> bool:
        """Whether ``value`` is (within float rounding of the grid) the newest kernel value."""
        st = self.latest(rank)
        return st is not None and abs(value - st.value) <= _TOLERANCE * st.step

    def is_echo(self, rank: int, value: float) -> bool:
        """Whether ``value`` arriving for slider ``rank`` is an echo of a kernel state: one of
        the values sent, or one put on the newest state's grid and range (ipywidgets clamps an
        incoming value into the slider's current range before any observer sees it)."""
        latest = self.latest(rank)
        if latest is None:
            return False
        tol = _TOLERANCE * latest.step
        for st in self._sent[rank]:
            lo, hi = latest.min, latest.max
            for candidate in (st.value, st.snap(st.value), min(max(st.value, lo), hi),
                              latest.snap(st.value)):
                if abs(value - candidate) <= max(tol, _TOLERANCE * st.step):
                    return True
        return False

    def forget(self, rank: int) -> None:
        """The user moved slider ``rank``: later values are compared with nothing."""
        self._sent[rank] = []
