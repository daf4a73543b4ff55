"""Plots, inline audio and small tables for the notebooks.

Figures are drawn small (``FIG_DPI``) and audio is embedded as 16-bit FLAC (lossless, about half
the size of WAV, played by every current browser), so committed notebooks stay a few MB. Every function returns what it made so a caller can save or test it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import io

import librosa.display
import matplotlib.pyplot as plt
import numpy as np
import soundfile as sf
import torch
from IPython.display import Audio, Markdown

from .spectrogram import SpectrogramConfig

FIG_DPI = 72  # small PNGs keep the committed notebooks light


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def flac_bytes(waveform: torch.Tensor | np.ndarray, sample_rate: int) -> bytes:
    """Encode one mono clip as 16-bit FLAC; values are clipped to [-1, 1]."""
    x = np.clip(_np(waveform).reshape(-1), -1.0, 1.0)
    buf = io.BytesIO()
    sf.write(buf, x, sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def audio_player(waveform: torch.Tensor | np.ndarray, sample_rate: int) -> Audio:
    """An inline player for one mono clip (any shape with one non-singleton axis).

    Not normalised, so a quiet reconstruction sounds quiet.
    """
    player = Audio(data=flac_bytes(waveform, sample_rate))
    player.mimetype = "audio/flac"  # IPython assumes WAV for raw bytes
    return player


def audio_row(waveforms: Sequence[torch.Tensor], captions: Sequence[str], sample_rate: int):
    """Several players side by side with captions, as one HTML block."""
    from IPython.display import HTML

    cells = "".join(
        f"<div style='margin-right:12px'><div style='font-size:12px'>{c}</div>"
        f"{audio_player(w, sample_rate)._repr_html_()}</div>"
        for w, c in zip(waveforms, captions)
    )
    return HTML(f"<div style='display:flex;flex-wrap:wrap'>{cells}</div>")


def show_mel(mel: torch.Tensor | np.ndarray, config: SpectrogramConfig, ax: plt.Axes | None = None,
             title: str | None = None, colorbar: bool = False, vmin: float = 0.0, vmax: float = 1.0):
    """Draw one normalised log-mel ``(n_mels, T)`` (or ``(1, 1, n_mels, T)``) with librosa."""
    m = _np(mel).reshape(config.n_mels, -1)  # (n_mels, T)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 2.5), dpi=FIG_DPI)
    img = librosa.display.specshow(
        m, sr=config.sample_rate, hop_length=config.hop_length, x_axis="time", y_axis="mel",
        fmin=config.f_min, fmax=config.f_max, htk=True, ax=ax, vmin=vmin, vmax=vmax,
        cmap="magma",
    )
    if title:
        ax.set_title(title, fontsize=9)
    if colorbar:
        plt.colorbar(img, ax=ax)
    return img


def plot_round_trips(originals: torch.Tensor, reconstructions: torch.Tensor,
                     mels_in: torch.Tensor, mels_out: torch.Tensor, labels: Sequence[str],
                     config: SpectrogramConfig) -> plt.Figure:
    """One row per clip: waveforms overlaid, input log-mel, log-mel of the reconstruction."""
    n = originals.shape[0]
    fig, axes = plt.subplots(n, 3, figsize=(11, 2.0 * n), dpi=FIG_DPI, squeeze=False)
    t = np.arange(originals.shape[-1]) / config.sample_rate
    for i in range(n):
        ax = axes[i, 0]
        ax.plot(t, _np(originals[i, 0]), lw=0.5, label="original")
        ax.plot(t[: reconstructions.shape[-1]], _np(reconstructions[i, 0]), lw=0.5, alpha=0.7,
                label="round trip")
        ax.set_ylim(-1, 1)
        ax.set_ylabel(labels[i])
        if i == 0:
            ax.legend(loc="upper right", fontsize=7)
        show_mel(mels_in[i], config, ax=axes[i, 1], title="log-mel in" if i == 0 else None)
        show_mel(mels_out[i], config, ax=axes[i, 2],
                 title="log-mel of the reconstruction" if i == 0 else None)
    for ax in axes[:-1].ravel():
        ax.set_xlabel("")
    fig.tight_layout()
    return fig


def plot_value_histogram(mels: torch.Tensor, bins: int = 60) -> plt.Figure:
    """Histogram of representation values, with the decoder's reachable range [0, 1] marked."""
    values = _np(mels).ravel()
    fig, ax = plt.subplots(figsize=(6, 2.5), dpi=FIG_DPI)
    ax.hist(values, bins=bins, range=(min(0.0, values.min()), max(1.0, values.max())), log=True)
    for edge in (0.0, 1.0):
        ax.axvline(edge, color="red", ls="--", lw=1)
    ax.set_xlabel("normalised log-mel value (decoder range in red)")
    ax.set_ylabel("count (log)")
    fig.tight_layout()
    return fig


def plot_value_histograms(mels: Mapping[str, torch.Tensor], bins: int = 50) -> plt.Figure:
    """One histogram panel per named batch of normalised mels (e.g. scale x data set), all on
    the decoder's range [0, 1], each titled with its standard deviation and share under 0.05."""
    n = len(mels)
    ncols = min(n, 2)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 2.2 * nrows), dpi=FIG_DPI,
                             squeeze=False, sharex=True)
    for ax, (name, m) in zip(axes.ravel(), mels.items()):
        values = _np(m).ravel()
        ax.hist(values, bins=bins, range=(0.0, 1.0), log=True)
        ax.set_title(f"{name}: std {values.std():.3f}, {np.mean(values < 0.05):.0%} under 0.05",
                     fontsize=9)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("normalised mel value")
    for ax in axes[:, 0]:
        ax.set_ylabel("count (log)")
    fig.tight_layout()
    return fig


def markdown_table(rows: Sequence[Mapping[str, object]], floatfmt: str = ".3f") -> Markdown:
    """Render a list of dicts (same keys) as a Markdown table."""
    if not rows:
        return Markdown("*(empty table)*")
    keys = list(rows[0])

    def fmt(v: object) -> str:
        return format(v, floatfmt) if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows]
    return Markdown("\n".join(lines))


def plot_mels(mels: Sequence[torch.Tensor], titles: Sequence[str], config: SpectrogramConfig,
              ncols: int | None = None, vmin: float = 0.0, vmax: float = 1.0) -> plt.Figure:
    """A row (or grid) of normalised log-mel images with titles, colours from ``vmin`` to
    ``vmax`` (pass a lower ``vmax`` to see quiet recordings)."""
    n = len(mels)
    ncols = ncols or n
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.3 * nrows), dpi=FIG_DPI,
                             squeeze=False)
    for ax, m, t in zip(axes.ravel(), mels, titles):
        show_mel(m, config, ax=ax, title=t, vmin=vmin, vmax=vmax)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_feature_maps(maps: Sequence[torch.Tensor], per_layer: int = 4) -> plt.Figure:
    """The first ``per_layer`` channels of each encoder block's output, one row per block."""
    fig, axes = plt.subplots(len(maps), per_layer, figsize=(2.2 * per_layer, 1.7 * len(maps)),
                             dpi=FIG_DPI, squeeze=False)
    for r, fmap in enumerate(maps):
        for c in range(per_layer):
            ax = axes[r, c]
            ax.imshow(_np(fmap[0, c]), origin="lower", aspect="auto", cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"block {r + 1}\n{tuple(fmap.shape[1:])}", fontsize=8)
    fig.tight_layout()
    return fig


def plot_kl_schedules(total_epochs: int, warmup_fractions: Sequence[float] = (0.1, 0.3, 0.5),
                      n_cycles: int = 4, cycle_ratio: float = 0.5) -> plt.Figure:
    """KL weight against epoch for linear warm-ups and the cyclical schedule."""
    from .losses import cyclical_kl_weight, get_kl_weight

    epochs = np.arange(total_epochs)
    fig, axes = plt.subplots(1, 2, figsize=(10, 2.6), dpi=FIG_DPI, sharey=True)
    for f in warmup_fractions:
        axes[0].plot(epochs, [get_kl_weight(e, total_epochs, f) for e in epochs],
                     label=f"warm-up {f:.0%}" + (" (seed)" if f == 0.3 else ""))
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


def plot_histories(histories: Mapping[str, object]) -> plt.Figure:
    """Overlay several :class:`sda_lab.train.History` curves, one colour per run."""
    fig, axes = plt.subplots(1, 4, figsize=(14, 2.8), dpi=FIG_DPI)
    for name, h in histories.items():
        h.plot(title=name, axes=axes)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_kl_bars(histories: Mapping[str, object], free_bits: float | None = None) -> plt.Figure:
    """Final raw KL per latent dimension (sorted, largest first), one panel per run."""
    n = len(histories)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 2.6), dpi=FIG_DPI, sharey=True,
                             squeeze=False)
    for ax, (name, h) in zip(axes[0], histories.items()):
        kl = np.sort(np.asarray(h.kl_per_dim))[::-1]
        ax.bar(np.arange(len(kl)), kl, width=1.0)
        if free_bits:
            ax.axhline(free_bits, color="red", ls="--", lw=1, label=f"free bits {free_bits}")
            ax.legend(fontsize=7)
        ax.set_title(f"{name}: {h.active_units[-1]} active units", fontsize=9)
        ax.set_xlabel("latent dimension (sorted)")
    axes[0, 0].set_ylabel("KL (nats)")
    fig.tight_layout()
    return fig


def plot_durations(report, clip_seconds: float = 1.0) -> plt.Figure:
    """Duration of every file in a :func:`sda_lab.data.load_folder` report (horizontal bars,
    grey for skipped files), with the clip length marked; seconds on a log axis."""
    rows = report.sort_values("duration_s", na_position="first")
    fig, ax = plt.subplots(figsize=(6.5, 0.25 * len(rows) + 0.9), dpi=FIG_DPI)
    used = (rows["status"] == "ok").to_numpy()
    durations = rows["duration_s"].fillna(0).to_numpy(dtype=float)
    ax.barh(rows["file"], np.maximum(durations, 1e-3), color=np.where(used, "C0", "0.7"))
    ax.axvline(clip_seconds, color="red", ls="--", lw=1, label=f"clip length {clip_seconds:g} s")
    ax.set_xscale("log")
    ax.set_xlabel("duration (s); grey: skipped")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_history(history, title: str | None = None, axes=None) -> plt.Figure:
    """Recon, KL (raw solid, optimised dotted), KL weight and active units against epoch of a
    :class:`sda_lab.train.History`; pass ``axes`` (4 of them) to overlay runs."""
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
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_history_with_baseline(history, ax=None, title: str | None = None) -> plt.Figure:
    """Eval-mode train and validation recon of a :class:`sda_lab.train.History` against epoch,
    their mean-mel baselines dashed, the epochs whose live state sat at the average marked,
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
    ax.legend(fontsize=7)
    ax.figure.tight_layout()
    return ax.figure


# -- experiments (sda_lab.experiments.Results, sda_lab.rate_distortion) ----------------------


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
        fig.text(0.01, 0.005, "\n".join(failures.values()), fontsize=6, color="red", va="bottom")


def plot_sweep_curves(results, metrics: Sequence[str] = ("recon", "raw_kl", "kl_weight",
                                                         "active_units"),
                      log: Sequence[str] = ("recon", "raw_kl"), band: str = "minmax") -> plt.Figure:
    """Each metric of a sweep (:class:`sda_lab.experiments.Results`) against epoch: the mean
    over seeds per arm, with a band (``"minmax"`` over seeds, or ``"ci"``: 95% bootstrap
    interval of the mean). Arms whose runs all failed are named on the figure."""
    from .experiments.results import bootstrap_ci

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
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"mean over seeds, band: {'min-max' if band == 'minmax' else '95% CI'}",
                 fontsize=9)
    fig.tight_layout()
    _note_failures(fig, results)
    return fig


def plot_sweep_finals(results, metrics: Sequence[str] = ("recon", "raw_kl", "active_units",
                                                         "informative_dims")) -> plt.Figure:
    """Each run's final value as a dot per seed, per arm, with the mean and 95% bootstrap
    interval (:class:`sda_lab.experiments.Results`)."""
    from .experiments.results import bootstrap_ci

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
        ax.set_xticks(range(len(arms)), arms, rotation=20, fontsize=7)
        ax.set_title(m.replace("_", " "), fontsize=9)
    fig.tight_layout()
    _note_failures(fig, results)
    return fig


def plot_kl_per_dim(results, free_bits: float | None = None) -> plt.Figure:
    """Final KL per latent dimension (nats), sorted largest first: a panel per arm of
    :class:`sda_lab.experiments.Results`, a line per seed, the free-bits floor drawn when given."""
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
            ax.legend(fontsize=7)
        ax.set_yscale("log")
        ax.set_title(arm, fontsize=9)
        ax.set_xlabel("latent dimension (sorted)")
    axes[0, 0].set_ylabel("final KL (nats)")
    fig.tight_layout()
    _note_failures(fig, results)
    return fig


RD_MARKERS = {"reference": ("*", "reference loss, weight 1"), "shipped": ("D", "shipped default")}


def plot_rate_distortion(table, title: str | None = None) -> plt.Figure:
    """Rate (x, nats, log) against distortion (y, validation MSE / mean-image baseline) from
    :func:`sda_lab.rate_distortion.rd_table`: a panel per data set, a curve per representation
    through the grid's betas (mean over seeds, error bars min-max over seeds), each point
    labelled with its beta; markers for the reference loss (star), free bits (triangle) and
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
                            fontsize=6, xytext=(3, 3), textcoords="offset points", color=f"C{i}")
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
        ax.legend(fontsize=6, loc="best")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_descriptor_heatmap(table, value: str = "correlation", ax: plt.Axes | None = None,
                            labels: Sequence[str] | None = None) -> plt.Figure:
    """Latent dimensions (rows, most informative first) x audio descriptors (columns), coloured
    by ``value`` of :func:`sda_lab.descriptors.dimension_table` ("correlation", in [-1, 1], or
    "effect"), each cell annotated. ``labels`` (indexed by dimension, e.g.
    :func:`sda_lab.descriptors.dimension_labels`) name the rows; default ``"#rank z{dim}"``."""
    from .descriptors import DESCRIPTORS

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
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if abs(v) > 0.6 * lim else "black")
    ax.set_xticks(range(wide.shape[1]), [c.replace("_", " ") for c in wide.columns],
                  rotation=30, ha="right", fontsize=8)
    rows = [labels[d] if labels is not None else f"#{r + 1} z{d}" for r, d in wide.index]
    ax.set_yticks(range(len(wide)), rows, fontsize=8)
    ax.set_title(f"what each latent dimension does ({value} along a traversal)", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig
