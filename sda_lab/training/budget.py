"""A wall-time budget is the total a user waits: :func:`split_budget` shares it between the parts
of a run once loading is done, and :class:`BudgetSplit` says how.

Parts, in order: loading (the folder read, fingerprinted and turned into mels: already spent
when the budget is split), training, the learned inverse mels' fits (the inverse of the clips'
mels, then its fine-tuning on the model's decoded mels: :data:`DECODED_FRACTION` of the part),
hearing the run (its audio figures), writing ``metrics.json``. Each part is handed its share as
its own limit: training as its minute budget (its last evaluation and checkpoints included),
each inverse mel as its ``max_seconds`` (start choice and pairs included), hearing as a number of files measured to
fit. A part that cannot stop inside its share is bounded instead (hearing scores at least one
file).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass

__all__ = ["BudgetSplit", "split_budget", "seconds_since_start", "INVERSE_SHARE",
           "DECODED_FRACTION", "HEARING_SHARE", "HEARING_MAX_S", "HEARING_START_S",
           "HEARING_CLIP_S", "WRITING_S", "MIN_INVERSE_S",
           "MIN_TRAINING_S"]

INVERSE_SHARE = 0.3  # of what is left after loading, for both inverse mels' fits
DECODED_FRACTION = 1 / 3  # of the inverse part: the fine-tuning on decoded mels; the rest (at
# most --inverse-mel-minutes) fits the inverse of the clips' own mels
HEARING_SHARE = 0.1  # of what is left after loading, at most HEARING_MAX_S
HEARING_MAX_S = 60.0
# hearing's share is at most HEARING_START_S + HEARING_CLIP_S per clip to hear: about 1.7x what
# a held-out clip took at one thread of a 2-core CPU (0.6 s: its posterior refined, the model's
# path, the encoder's mean, the mel round trip and the average sound, each inverted and
# scored); an unused share is lost to training, and hearing is timed (fewer files if slower)
HEARING_START_S = 3.0
HEARING_CLIP_S = 1.0
WRITING_S = 1.0  # metrics.json; at most 5% of what is left
MIN_INVERSE_S = 10.0  # a shorter share cannot choose a start and fit: the fit is skipped
MIN_TRAINING_S = 5.0  # a shorter training share is refused: a few steps learn nothing
_IMPORTED = time.perf_counter()


def seconds_since_start() -> float:
    """Wall seconds since this process started (Python's start-up and imports included, which
    a user waits for too): from ``/proc`` where there is one, else since this module was
    imported."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return time.perf_counter() - _IMPORTED


@dataclass(frozen=True)
class BudgetSplit:
    """Seconds per part; they add up to ``total_s``. ``inverse_s`` 0: no fit (none asked
    for, or the first fit's share, the fine-tuning's with ``fine_tune_only``, was under
    :data:`MIN_INVERSE_S`; ``inverse_skipped`` says which share it would have had).
    ``fine_tune_s``: the part of ``inverse_s`` for the fine-tuning on decoded mels; 0 with
    ``fine_tune_skipped`` > 0 where that share was under :data:`MIN_INVERSE_S` and went to
    training instead."""

    total_s: float
    loading_s: float
    training_s: float
    inverse_s: float
    hearing_s: float
    writing_s: float
    inverse_skipped: float = 0.0
    fine_tune_only: bool = False  # the inverse of the clips' mels is kept (--resume)
    fine_tune_s: float = 0.0
    fine_tune_skipped: float = 0.0

    def parts(self) -> dict[str, float]:
        """``{part: seconds}`` in order, without the total."""
        return {k: v for k, v in asdict(self).items()
                if k not in ("total_s", "inverse_skipped", "fine_tune_only", "fine_tune_s",
                             "fine_tune_skipped")}

    def line(self) -> str:
        """The split in one line, as the train command prints it."""
        inverse = (f"fine-tuning the kept inverse mel {self.inverse_s:.1f} s"
                   if self.fine_tune_only and self.inverse_s else
                   f"the kept inverse mel, not fine-tuned (its share, "
                   f"{self.inverse_skipped:.1f} s, is under the {MIN_INVERSE_S:.0f} s a fit "
                   f"needs)" if self.fine_tune_only and self.inverse_skipped else
                   f"a learned inverse mel {self.inverse_s:.1f} s, not fine-tuned on decoded "
                   f"mels (that share, {self.fine_tune_skipped:.1f} s, is under the "
                   f"{MIN_INVERSE_S:.0f} s a fit needs: training has it)"
                   if self.inverse_s and self.fine_tune_skipped else
                   f"learned inverse mels {self.inverse_s:.1f} s" if self.inverse_s else
                   f"no learned inverse mel (its share, {self.inverse_skipped:.1f} s, is under "
                   f"the {MIN_INVERSE_S:.0f} s a fit needs)" if self.inverse_skipped else
                   "no learned inverse mel")
        return (f"time budget {self.total_s / 60:g} min ({self.total_s:.0f} s): loading took "
                f"{self.loading_s:.1f} s; training {self.training_s:.1f} s, {inverse}, "
                f"listening {self.hearing_s:.1f} s, writing {self.writing_s:.1f} s")


def split_budget(total_s: float, spent_s: float, inverse_max_s: float | None,
                 fine_tune_only: bool = False, hearing_clips: int | None = None) -> BudgetSplit:
    """Share ``total_s`` seconds once ``spent_s`` went on loading.

    ``inverse_max_s``: the cap of the inverse of the clips' mels (``--inverse-mel-minutes``),
    or None when no fit is wanted. Of what is left, writing gets :data:`WRITING_S` (at most 5%),
    hearing :data:`HEARING_SHARE` (at most :data:`HEARING_MAX_S`, and where ``hearing_clips``,
    the clips to hear, is given at most :data:`HEARING_START_S` plus :data:`HEARING_CLIP_S` per
    clip), the two inverse fits :data:`INVERSE_SHARE` (at most ``inverse_max_s / (1 -
    DECODED_FRACTION)``; 0 below :data:`MIN_INVERSE_S`), training the rest.
    The fine-tuning on decoded mels has :data:`DECODED_FRACTION` of the inverse part, the first
    fit the rest; a share under :data:`MIN_INVERSE_S` is not planned and training gets it (the
    whole part where the first fit's is).
    ``fine_tune_only``: the inverse of the clips' mels is kept (``--resume``), so the inverse
    part is only the fine-tuning's :data:`DECODED_FRACTION` of it (0 below
    :data:`MIN_INVERSE_S`, as above) and training gets the rest.

    Raises
    ------
    ValueError
        One line naming ``--max-minutes`` when what loading left gives training less than
        :data:`MIN_TRAINING_S`, with the smallest budget that would.
    """
    left = total_s - spent_s
    writing = min(WRITING_S, 0.05 * max(left, 0.0))
    hearing = min(HEARING_SHARE * max(left, 0.0), HEARING_MAX_S)
    if hearing_clips is not None:
        hearing = min(hearing, HEARING_START_S + HEARING_CLIP_S * hearing_clips)
    whole = 0.0 if inverse_max_s is None else min(INVERSE_SHARE * max(left, 0.0),
                                                  inverse_max_s / (1 - DECODED_FRACTION))
    first = 0.0 if fine_tune_only else (1 - DECODED_FRACTION) * whole
    fine_tune = DECODED_FRACTION * whole
    skipped = fine_tune_skipped = 0.0
    if fine_tune_only and 0 < fine_tune < MIN_INVERSE_S:
        skipped, fine_tune = fine_tune, 0.0
    elif not fine_tune_only and 0 < first < MIN_INVERSE_S:  # no fit, so nothing to fine-tune
        skipped, first, fine_tune = first, 0.0, 0.0
    elif 0 < fine_tune < MIN_INVERSE_S:  # the fit alone: training has the fine-tuning's share
        fine_tune_skipped, fine_tune = fine_tune, 0.0
    inverse = first + fine_tune
    training = left - writing - hearing - inverse
    if training < MIN_TRAINING_S:
        # training gets at least (1 - HEARING_SHARE - INVERSE_SHARE) of what is left
        need = spent_s + (MIN_TRAINING_S + WRITING_S) / (1 - HEARING_SHARE - INVERSE_SHARE)
        raise ValueError(f"--max-minutes: expected a budget that leaves at least "
                         f"{MIN_TRAINING_S:.0f} s to train after loading, got "
                         f"{total_s / 60:g} min, of which loading (start-up included) took "
                         f"{spent_s:.0f} s; give at least {math.ceil(need / 6) / 10:g} min")
    return BudgetSplit(total_s, spent_s, training, inverse, hearing, writing, skipped,
                       fine_tune_only, fine_tune, fine_tune_skipped)
