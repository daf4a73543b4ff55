"""Figures of training: the KL schedules, and one run's history against the mean-mel baseline."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from ._style import FIG_DPI


def plot_kl_schedules(total_epochs: int, warmup_fractions: Sequence[float] = (0.1, 0.3, 0.5),
                      n_cycles: int = 4, cycle_ratio: float = 0.5) -> plt.Figure:
    """KL weight against epoch for linear warm-ups and the cyclical schedule."""
    from ...model.losses import cyclical_kl_weight, get_kl_weight

    epochs = np.arange(total_epochs)
    fig, axes = plt.subplots(1, 2, figsize=(10, 2.6), dpi=FIG_DPI, sharey=True)
    for f in warmup_fractions:
        axes[0].plot(epochs, [get_kl_weight(e, total_epochs, f) for e in epochs],
                     label=f"warm-up {f:.0%}" + (" (the plan's)" if f == 0.3 else ""))
    axes[0].set_title("linear warm-up")
    axes[1].plot(epochs, [cyclical_kl_weight(e, total_epochs, n_cycles, cycle_ratio)
                          for e in epochs], color="C3")
    axes[1].set_title(f"cyclical ({n_cycles} cycles, ramp {cycle_ratio:.0%})")
    axes[0].set_ylabel("KL weight")
    axes[0].legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel("epoch")
    fig.tight_layout()
    return fig


def plot_history(history, title: str | None = None, axes=None) -> plt.Figure:
    """Recon, KL (raw solid, optimised dotted), KL weight and active units against epoch of a
    :class:`sda_lab.training.history.History`; pass ``axes`` (4 of them) to overlay runs."""
    if axes is None:
        fig, axes = plt.subplots(1, 4, figsize=(13, 2.6), dpi=FIG_DPI)
    else:
        fig = axes[0].figure
    ep = history.epoch
    axes[0].plot(ep, history.recon, label=title)
    axes[0].set_title("reconstruction MSE")
    axes[0].set_yscale("log")
    axes[1].plot(ep, history.raw_kl, label=f"{title or ''} raw")
    axes[1].plot(ep, history.kl, ls=":", color=axes[1].lines[-1].get_color())
    axes[1].set_title("KL nats (solid raw, dotted optimised)")
    axes[1].set_yscale("log")  # unweighted epochs reach 1e8 nats; later ones a few
    axes[2].plot(ep, history.kl_weight, label=title)
    axes[2].set_title("KL weight")
    axes[3].plot(ep, history.active_units, label=title)
    axes[3].set_title("active units")
    for ax in axes:
        ax.set_xlabel("epoch")
    if title:
        axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_history_with_baseline(history, ax=None, title: str | None = None) -> plt.Figure:
    """Eval-mode train and validation recon of a :class:`sda_lab.training.history.History` against
    epoch, their mean-mel baselines dashed, the epochs whose live state sat at the average marked,
    the best checkpoint's epoch dotted, and the run's one verdict in the title."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3), dpi=FIG_DPI)
    ep = history.epoch
    if history.train_recon:
        ax.plot(ep, history.train_recon, color="C0", label="train recon (eval)")
    if history.train_baseline is not None:
        ax.axhline(history.train_baseline, color="C0", ls="--", lw=1,
                   label="train baseline (mean mel)")
    if history.val_recon:
        ax.plot(ep, history.val_recon, color="C1", label="validation recon")
    if history.val_baseline is not None:
        ax.axhline(history.val_baseline, color="C1", ls="--", lw=1,
                   label="validation baseline (mean mel)")
    at_average = [e for e, a in zip(ep, history.alarms) if a]
    if at_average:
        ax.plot(at_average, [ax.get_ylim()[1]] * len(at_average), "v", color="0.6", ms=4,
                label="epoch at the average", clip_on=False)
    if history.best_epoch is not None:
        ax.axvline(history.best_epoch, color="grey", lw=0.8, ls=":", label="best checkpoint")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE")
    kind = getattr(history, "alarm_kind", "")
    ax.set_title((title or "reconstruction vs predicting the average")
                 + (f" (verdict: {kind})" if kind else ""), fontsize=10)
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax.figure
