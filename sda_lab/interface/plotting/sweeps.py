"""Figures of sweeps over seeds (sda_lab.studies.experiments.Results), the rate-distortion plane
and the descriptor map of latent dimensions."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from ._style import FIG_DPI


def _sweep_arms(results) -> list[str]:
    """The arms of ``results`` with a successful run; a warning and a figure note name the
    others ("all N runs of arm X failed: ..."); ``ValueError`` when no arm has one."""
    import warnings

    failures = results.arm_failures()
    arms = [a for a in results.arms if a not in failures]
    if not arms:
        raise ValueError("nothing to plot: " + "; ".join(failures.values()))
    for text in failures.values():
        warnings.warn(text, stacklevel=3)
    return arms


def _note_failures(fig: plt.Figure, results) -> None:
    failures = results.arm_failures()
    if failures:
        fig.text(0.01, 0.005, "\n".join(failures.values()), fontsize=8, color="red", va="bottom")


def plot_sweep_curves(results, metrics: Sequence[str] = ("recon", "raw_kl", "kl_weight",
                                                         "active_units"),
                      log: Sequence[str] = ("recon", "raw_kl"), band: str = "minmax") -> plt.Figure:
    """Each metric of a sweep (:class:`sda_lab.studies.experiments.Results`) against epoch: the
    mean over seeds per arm, with a band (``"minmax"`` over seeds, or ``"ci"``: 95% bootstrap
    interval of the mean). Arms whose runs all failed are named on the figure."""
    from ...studies.experiments.results import bootstrap_ci

    arms = _sweep_arms(results)
    df = results.epochs()
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.5 * len(metrics), 2.8), dpi=FIG_DPI,
                             squeeze=False)
    for arm in arms:
        i = results.arms.index(arm)
        sub = df[df["arm"] == arm]
        n_seeds = sub["seed"].nunique()
        for ax, m in zip(axes[0], metrics):
            g = sub.groupby("epoch")[m]
            mean = g.mean()
            if band == "ci":
                ci = g.apply(lambda s: bootstrap_ci(s.tolist(), n_resamples=999)[1:])
                lo = [c[0] for c in ci]
                hi = [c[1] for c in ci]
            else:
                lo, hi = g.min(), g.max()
            ax.plot(mean.index, mean.values, color=f"C{i}", label=f"{arm} ({n_seeds} seeds)")
            ax.fill_between(mean.index, lo, hi, color=f"C{i}", alpha=0.2, lw=0)
    for ax, m in zip(axes[0], metrics):
        ax.set_title(m.replace("_", " "))
        ax.set_xlabel("epoch")
        if m in log:
            ax.set_yscale("log")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"mean over seeds, band: {'min-max' if band == 'minmax' else '95% CI'}",
                 fontsize=9)
    fig.tight_layout()
    _note_failures(fig, results)
    return fig


def plot_sweep_finals(results, metrics: Sequence[str] = ("recon", "raw_kl", "active_units",
                                                         "informative_dims")) -> plt.Figure:
    """Each run's final value as a dot per seed, per arm, with the mean and 95% bootstrap
    interval (:class:`sda_lab.studies.experiments.Results`)."""
    from ...studies.experiments.results import bootstrap_ci

    arms = _sweep_arms(results)
    f = results.finals()
    f = f[f["status"] == "ok"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.3 * len(metrics), 2.8), dpi=FIG_DPI,
                             squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for i, arm in enumerate(arms):
            vals = f.loc[f["arm"] == arm, m].astype(float).tolist()
            mean, lo, hi = bootstrap_ci(vals)
            ax.scatter([i] * len(vals), vals, color=f"C{results.arms.index(arm)}", s=14, alpha=0.7)
            ax.errorbar([i + 0.2], [mean], yerr=[[mean - lo], [hi - mean]], fmt="o",
                        color="k", ms=4, capsize=3)
        ax.set_xticks(range(len(arms)), arms, rotation=20, fontsize=8)
        ax.set_title(m.replace("_", " "), fontsize=9)
    fig.tight_layout()
    _note_failures(fig, results)
    return fig


def plot_kl_per_dim(results, free_bits: float | None = None) -> plt.Figure:
    """Final KL per latent dimension (nats), sorted largest first: a panel per arm of
    :class:`sda_lab.studies.experiments.Results`, a line per seed, the free-bits floor drawn when
    given."""
    arms = _sweep_arms(results)
    fig, axes = plt.subplots(1, len(arms), figsize=(4.2 * len(arms), 2.6), dpi=FIG_DPI,
                             sharey=True, squeeze=False)
    for ax, arm in zip(axes[0], arms):
        for r in results.records:
            if r["arm"] == arm and r.get("status") == "ok":
                kl = np.sort(np.asarray(r["kl_per_dim"]))[::-1]
                ax.plot(np.arange(len(kl)), kl, lw=1, alpha=0.8)
        if free_bits:
            ax.axhline(free_bits, color="red", ls="--", lw=1, label=f"free bits {free_bits}")
            ax.legend(fontsize=8)
        ax.set_yscale("log")
        ax.set_title(arm, fontsize=9)
        ax.set_xlabel("latent dimension (sorted)")
    axes[0, 0].set_ylabel("final KL (nats)")
    fig.tight_layout()
    _note_failures(fig, results)
    return fig


RD_MARKERS = {"reference": ("*", "reference loss, weight 1"), "shipped": ("D", "shipped default"),
              "dropout 0.2": ("P", "shipped + dropout 0.2"),
              "SpecAugment": ("s", "shipped + SpecAugment"),
              "no mel shift": ("v", "shipped, no mel shift"),
              "no weight average": ("h", "shipped, no weight average"),
              "narrower latent": ("p", "shipped, latent 48"),
              "latent vector": ("X", "shipped, the plan's latent vector")}


def plot_rate_distortion(table, title: str | None = None) -> plt.Figure:
    """Rate (x, nats, log) against distortion (y, validation MSE / mean-image baseline) from
    :func:`sda_lab.studies.rate_distortion.rd_table`: a panel per data set, a curve per
    representation through the grid's betas (mean over seeds, error bars min-max over seeds), each
    point labelled with its beta; markers for the reference loss (star), free bits (triangle) and
    the shipped default (diamond)."""
    datas = list(dict.fromkeys(table["data"]))
    fig, axes = plt.subplots(1, len(datas), figsize=(5.2 * len(datas), 3.8), dpi=FIG_DPI,
                             squeeze=False)
    for ax, d in zip(axes[0], datas):
        for i, scale in enumerate(dict.fromkeys(table["scale"])):
            sub = table[(table["data"] == d) & (table["scale"] == scale)]
            g = sub[sub["kind"] == "grid"].sort_values("beta")
            x = g["rate"].clip(lower=1e-2)
            ax.errorbar(x, g["distortion"],
                        xerr=[g["rate"] - g["rate_min"], g["rate_max"] - g["rate"]],
                        yerr=[g["distortion"] - g["distortion_min"],
                              g["distortion_max"] - g["distortion"]],
                        color=f"C{i}", marker="o", ms=4, lw=1.2, capsize=2,
                        label=f"{scale} (beta {g['beta'].min():g} .. {g['beta'].max():g})")
            for _, r in g.iterrows():
                ax.annotate(f"{r['beta']:g}", (max(r["rate"], 1e-2), r["distortion"]),
                            fontsize=8, xytext=(3, 3), textcoords="offset points", color=f"C{i}")
            for _, r in sub[sub["kind"] != "grid"].iterrows():
                m, text = RD_MARKERS.get(r["kind"], ("^", r["kind"]))
                ax.errorbar([max(r["rate"], 1e-2)], [r["distortion"]],
                            xerr=[[r["rate"] - r["rate_min"]], [r["rate_max"] - r["rate"]]],
                            yerr=[[r["distortion"] - r["distortion_min"]],
                                  [r["distortion_max"] - r["distortion"]]],
                            fmt=m, ms=9 if m == "*" else 6, color=f"C{i}", mec="k", capsize=2,
                            label=f"{scale}: {text} (beta {r['beta']:.3g})")
        ax.axhline(1.0, color="grey", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("rate: final KL (nats per clip)")
        ax.set_ylabel("distortion: held-out MSE / mean image")
        ax.set_title(d or "data", fontsize=9)
        ax.legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_descriptor_heatmap(table, value: str = "correlation", ax: plt.Axes | None = None,
                            labels: Sequence[str] | None = None) -> plt.Figure:
    """Latent dimensions (rows, most informative first) x audio descriptors (columns), coloured
    by ``value`` of :func:`sda_lab.studies.descriptors.dimension_table` ("correlation", in [-1, 1],
    or "effect"), each cell annotated. ``labels`` (indexed by dimension, e.g.
    :func:`sda_lab.studies.descriptors.dimension_labels`) name the rows; default
    ``"#rank z{dim}"``."""
    from ...studies.descriptors import DESCRIPTORS

    wide = table.pivot_table(index=["rank", "dim"], columns="descriptor", values=value,
                             aggfunc="first")
    wide = wide[[d for d in DESCRIPTORS if d in wide.columns]].sort_index()
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.0 + 0.9 * wide.shape[1], 0.9 + 0.32 * len(wide)),
                               dpi=FIG_DPI)
    else:
        fig = ax.figure
    vals = wide.to_numpy(float)
    lim = 1.0 if value == "correlation" else max(1e-9, float(np.nanmax(np.abs(vals))))
    im = ax.imshow(vals, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    for (i, j), v in np.ndenumerate(vals):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if abs(v) > 0.6 * lim else "black")
    ax.set_xticks(range(wide.shape[1]), [c.replace("_", " ") for c in wide.columns],
                  rotation=30, ha="right", fontsize=8)
    rows = [labels[d] if labels is not None else f"#{r + 1} z{d}" for r, d in wide.index]
    ax.set_yticks(range(len(wide)), rows, fontsize=8)
    ax.set_title(f"what each latent dimension does ({value} along a traversal)", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig


def plot_dimension_effects(effects, kl_per_rank=None, n_sd: float = 2.0) -> plt.Figure:
    """What each latent dimension does to the decoded mel, in the explorer's order: the median
    over start clips of :func:`sda_lab.studies.dimensions.dimension_effects` ``(N, D)`` (mean
    absolute change for an ``n_sd`` move), with the band from the lowest to the highest start;
    beside it the dimension's mean KL (nats, ``(D,)`` in the same order) when given."""
    fx = np.asarray(effects)
    rank = np.arange(fx.shape[1])
    fig, ax = plt.subplots(figsize=(6.4, 2.6), dpi=FIG_DPI)
    ax.fill_between(rank, fx.min(0), fx.max(0), alpha=0.25, lw=0,
                    label=f"lowest to highest of {fx.shape[0]} start clips")
    ax.plot(rank, np.median(fx, 0), lw=1.5, label="median")
    ax.set_yscale("log")
    ax.set_xlabel("latent dimension, ranked by KL (0 = slider 1)")
    ax.set_ylabel(f"mean |change| of the mel\nfor a {n_sd:g}-sd move")
    if kl_per_rank is not None:
        twin = ax.twinx()
        twin.plot(rank, np.asarray(kl_per_rank), color="grey", ls="--", lw=1)
        twin.set_yscale("log")
        twin.set_ylabel("KL (nats), dashed", color="grey")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig
