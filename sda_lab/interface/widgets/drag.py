"""Drag measurement for tests, notebooks and benchmarks, apart from the UI: move an explorer's
sliders through their real observers, as a mouse or a keyboard would, and count what each
render lane did."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import torch

__all__ = ["DragStats", "simulate_drag", "measure_latency"]


@dataclass
class DragStats:
    """What :func:`simulate_drag` measured (seconds, renders per second, milliseconds)."""

    changes: int
    seconds: float
    picture_renders: int
    audio_renders: int
    picture_per_s: float
    audio_per_s: float
    picture_ms: float  # median duration of one picture render
    audio_ms: float  # median duration of one audio render during the drag (previews)
    settle_ms: float  # from the last change until both lanes show it (audio in full)
    final_matches: bool  # both lanes' last render is the final slider value
    final_full: bool = True  # the last audio is the full inversion, not a preview
    picture_ms_all: list[float] = field(default_factory=list, repr=False)
    audio_ms_all: list[float] = field(default_factory=list, repr=False)


def simulate_drag(explorer, rank: int = 0, changes: int = 40, rate_hz: float = 30.0,
                  span: float = 0.8) -> DragStats:
    """Drag slider ``rank`` of a :class:`~sda_lab.interface.widgets.LatentExplorer` as a mouse
    would: ``changes`` values, ``rate_hz`` per second, sweeping ``span`` of its range upwards from
    its current value (downwards near the top), through the real observer. Counts the renders each
    lane finished during the drag and checks that the last render of both lanes is the final
    value. The explorer is left at the final value."""
    ex = explorer
    s = ex.sliders[rank]
    ex.wait()
    np0, na0 = len(ex.picture_lane.seconds), len(ex.audio_lane.seconds)
    lo = float(s.value)
    width = float(s.max) - float(s.min)
    hi = min(float(s.max), lo + span * width)
    if hi - lo < span * width / 2:  # near the top: drag down instead
        hi = max(float(s.min), lo - span * width)
    period = 1.0 / rate_hz
    t0 = time.perf_counter()
    for k in range(1, changes + 1):
        time.sleep(max(0.0, t0 + k * period - time.perf_counter()))
        s.value = lo + (hi - lo) * k / changes
    t_end = time.perf_counter()
    ex.wait()
    settle = time.perf_counter() - t_end
    during = t_end - t0
    pics = sum(1 for t in ex.picture_lane.finished_at[np0:] if t <= t_end)
    auds = sum(1 for t in ex.audio_lane.finished_at[na0:] if t <= t_end)
    z = ex.z
    picture, sound = ex.renderer.picture, ex.renderer.sound
    ok = (picture.z is not None and sound.z is not None and torch.equal(picture.z, z)
          and torch.equal(sound.z, z))
    p_ms = [1000 * x for x in ex.picture_lane.seconds[np0:]]
    a_ms = [1000 * x for x, t in zip(ex.audio_lane.seconds[na0:], ex.audio_lane.finished_at[na0:])
            if t <= t_end]
    return DragStats(changes, during, pics, auds, pics / during, auds / during,
                     statistics.median(p_ms) if p_ms else float("nan"),
                     statistics.median(a_ms) if a_ms else float("nan"),
                     1000 * settle, ok, not sound.preview, p_ms, a_ms)


def measure_latency(explorer, moves: int = 10, step: float | None = None,
                    steps: int = 3) -> list[float]:
    """Seconds of kernel-side work of the last audio render (decode + inversion + redraw) for
    ``moves`` slider moves of a :class:`~sda_lab.interface.widgets.LatentExplorer` on its top 8
    dimensions, each waited for; a move is ``step`` latent units if given, else ``steps``
    slider steps."""
    seconds = []
    for k in range(moves):
        rank = k % min(8, len(explorer.sliders))
        s = explorer.sliders[rank]
        size = step if step is not None else steps * s.step
        nudge = size if k % 2 == 0 else -size
        seconds.append(explorer.set_dimension(rank, float(s.value) + nudge))
    return seconds
