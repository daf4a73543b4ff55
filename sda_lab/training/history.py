"""The record of one training run: per-epoch numbers, the mean-mel baselines and the run's
one verdict. Its figures are :func:`sda_lab.interface.plotting.plot_history` and
:func:`~sda_lab.interface.plotting.plot_history_with_baseline`."""

from __future__ import annotations

from dataclasses import dataclass, field

from .diagnostics import baseline_ratio

__all__ = ["History"]


@dataclass
class History:
    """Per-epoch means; ``kl_per_dim`` holds the final raw KL of each latent dimension.

    Per-epoch lists (one entry per epoch, a last partial epoch included when a budget stops
    training mid-epoch): ``recon`` (training-mode MSE, sampled ``z``), ``train_recon`` and
    ``val_recon`` (eval-mode MSE of decoding the posterior mean; ``val_recon`` is empty without
    validation data), ``train_sc`` and ``val_sc`` (eval-mode spectral convergence of the mel
    magnitudes, where the spectrogram was known: loud bins weigh as a listener hears them),
    ``steps`` (optimiser steps done by the end of the epoch) and ``alarms``
    (the live state: ``"at_average"`` where that epoch sat at the average, ``"collapse"``
    where no latent unit was active, else ``""``; a reading, not a verdict). Scalars: the
    mean-mel baselines ``train_baseline`` / ``val_baseline`` (MSE) and
    ``train_sc_baseline`` / ``val_sc_baseline`` (spectral convergence), the
    run's one verdict (``alarm_kind``, one of :data:`sda_lab.training.diagnostics.ALARM_KINDS`;
    ``verdict``, its message; ``alarm``, the message when it fired, else ``None``),
    ``stop_reason``, ``step_count`` (the optimiser steps done when it stopped: an interrupt
    can come after the last evaluation's ``steps``), ``best_epoch`` and the clip counts.
    """

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    recon: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)  # the optimised, free-bits-clamped KL
    raw_kl: list[float] = field(default_factory=list)  # KL without free bits
    kl_weight: list[float] = field(default_factory=list)
    active_units: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    kl_per_dim: list[float] = field(default_factory=list)
    au_variance: list[float] = field(default_factory=list)
    train_recon: list[float] = field(default_factory=list)  # eval mode, posterior mean
    val_recon: list[float] = field(default_factory=list)  # eval mode, posterior mean
    train_sc: list[float] = field(default_factory=list)  # eval mode, mel magnitudes' SC
    val_sc: list[float] = field(default_factory=list)  # eval mode, mel magnitudes' SC
    steps: list[int] = field(default_factory=list)  # cumulative optimiser steps
    alarms: list[str] = field(default_factory=list)  # per epoch: "", "at_average", "collapse"
    train_baseline: float | None = None  # MSE of the training mean mel on training clips
    val_baseline: float | None = None  # ... on validation clips
    train_sc_baseline: float | None = None  # SC of the training mean mel on training clips
    val_sc_baseline: float | None = None  # ... on validation clips
    alarm: str | None = None  # the verdict's message when it fired; None: it did not
    stop_reason: str = ""
    step_count: int | None = None  # optimiser steps done when the run stopped (None: running)
    best_epoch: int | None = None  # epoch of the best checkpoint (lowest val, else train recon)
    n_train: int = 0
    n_val: int = 0
    alarm_kind: str = ""  # the verdict's kind ("" before the run ended)
    verdict: str = ""  # the verdict's message, whatever its kind

    def informative_dims(self, threshold: float = 0.1) -> int:
        """Latent dimensions whose final raw KL exceeds ``threshold`` nats."""
        return sum(k > threshold for k in self.kl_per_dim)

    def ratios(self) -> dict[str, float]:
        """Final eval-mode recon divided by its mean-mel baseline: ``{"train": r, "val": r}``
        (keys present where both numbers exist; NaN when the baseline is 0). Below 1: better
        than the average."""
        out = {}
        if self.train_recon and self.train_baseline is not None:
            out["train"] = baseline_ratio(self.train_recon[-1], self.train_baseline)
        if self.val_recon and self.val_baseline is not None:
            out["val"] = baseline_ratio(self.val_recon[-1], self.val_baseline)
        return out

    def summary(self) -> dict[str, object]:
        """One table row: epochs, wall time, first and final KL, final recon, active units, and
        where recorded, eval-mode recon (MSE) and spectral error (the mel magnitudes' spectral
        convergence) against the mean mel's, and the verdict in the model's own domain (``mel
        alarm``, ``mel verdict``: read from the spectral error where it was recorded, else the
        MSE; not the audio verdict of :func:`~sda_lab.training.audio_eval.judge`)."""
        row = {
            "epochs": self.epoch[-1] + 1 if self.epoch else 0,  # evaluated or not
            "wall s": round(sum(self.seconds), 1),
            "raw KL epoch 0": round(self.raw_kl[0], 1),
            "final recon": round(self.recon[-1], 4),
            "final raw KL": round(self.raw_kl[-1], 2),
            "final active units": self.active_units[-1],
            "max active units": max(self.active_units),
            "dims with KL > 0.1 nats": self.informative_dims(0.1),
        }
        ratios = self.ratios()
        if self.steps:
            row["steps"] = self.steps[-1]
        for side, recon, base in (("train", self.train_recon, self.train_baseline),
                                  ("val", self.val_recon, self.val_baseline)):
            if recon:
                row[f"{side} recon"] = round(recon[-1], 4)
            if base is not None:
                row[f"{side} baseline"] = round(base, 4)
            if side in ratios:
                row[f"{side} recon / baseline"] = round(ratios[side], 3)
            sc, sc_base = getattr(self, f"{side}_sc"), getattr(self, f"{side}_sc_baseline")
            if sc and sc_base is not None:
                row[f"{side} spectral error / baseline"] = round(
                    baseline_ratio(sc[-1], sc_base), 3)
        if self.train_recon or self.val_recon:
            row["mel alarm"] = "fired" if self.alarm else "no"
        if self.alarm_kind:
            row["mel verdict"] = self.alarm_kind
        if self.stop_reason:
            row["stopped by"] = self.stop_reason.split(":")[0]
        return row
