"""Is the model better than the average? Eval-mode scores, the mean-mel baseline, and the
collapse alarm's verdict (validation clips come from whole held-out files:
:func:`sda_lab.data.split.split_by_file`).

- **Eval-mode reconstruction** (:func:`reconstruct`, the one eval-mode encode/decode loop):
  the posterior mean decoded with dropout off and BatchNorm's running statistics.
- **The baseline to beat** (:func:`mean_mel_baseline`): the MSE of predicting the training
  set's mean mel for every clip. A collapsed VAE (its decoder ignores ``z``) scores about that.
- **The alarm** (:class:`Alarm`, :func:`judge`, :func:`verdict`): judged once, when a run ends,
  from its final (and best) eval-mode numbers and active units. During training the same numbers
  are shown as a live state (:func:`live_state`), never as a warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch

from ..model.vae import eval_batches

__all__ = ["COLLAPSE_RATIO", "ALARM_AT_AVERAGE", "ALARM_COLLAPSE", "ALARM_NO_GENERALISATION",
           "ALARM_KINDS",
           "BASELINE_ZERO", "Alarm", "baseline_ratio", "eval_recon", "format_ratio", "judge",
           "live_state", "mean_mel_baseline", "mean_mel_sc_baseline", "reconstruct",
           "Reconstruction", "verdict"]

COLLAPSE_RATIO = 0.9  # recon at or above this fraction of the mean-mel baseline: the alarm fires
ALARM_AT_AVERAGE = "no learning beyond the average mel"
ALARM_COLLAPSE = "posterior collapse"
ALARM_NO_GENERALISATION = "no generalisation to the held-out files"
# learned: validated and better than the average; not_validated: nothing held out, judged on
# training clips only; at_average (latent units in use), collapse (none in use),
# no_generalisation: the alarm fired; undefined: baseline 0
ALARM_KINDS = ("learned", "not_validated", "at_average", "collapse", "no_generalisation",
               "undefined")
# what a verdict's numbers are: the mel magnitudes' spectral convergence where the spectrogram
# was known (loud bins weigh as a listener hears them), else the MSE of the normalised mel
FIGURE_NAMES = {"sc": "spectral error", "mse": "mel MSE"}
BASELINE_ZERO = "the baseline is 0: every training clip is the same mel; ratio undefined"


# -- eval-mode scores --------------------------------------------------------------------------


class Reconstruction(NamedTuple):
    """What :func:`reconstruct` measured: ``mse`` over every element (float64 sums); ``sc``,
    the mean over clips of the mel magnitudes' spectral convergence (None without a
    ``magnitude``); ``mu``, ``logvar`` ``(N, D)`` on the model's device; ``recon``
    ``(N, 1, n_mels, T)`` on the CPU, or None when not kept."""

    mse: float
    mu: torch.Tensor
    logvar: torch.Tensor
    recon: torch.Tensor | None
    sc: float | None


def _clip_sc(magnitude: Callable, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Spectral convergence of the mel magnitudes per clip, ``(B,)``."""
    m, m_hat = magnitude(target.double()), magnitude(estimate.double())  # (B, 1, M, T)
    return (m - m_hat).flatten(1).norm(dim=1) / m.flatten(1).norm(dim=1).clamp(min=1e-12)


@torch.no_grad()
def reconstruct(model, mels: torch.Tensor, batch_size: int = 128, keep: bool = True,
                magnitude: Callable | None = None) -> Reconstruction:
    """Eval-mode reconstruction of ``mels`` ``(N, 1, n_mels, T)``: the posterior mean decoded,
    dropout off, BatchNorm's running statistics; the model's train/eval mode is restored.

    ``magnitude``: mel -> mel-band magnitudes
    (:meth:`~sda_lab.representation.spectrogram.AudioSpectrogram.mel_magnitude`); with it the
    spectral convergence of every clip is measured too (:class:`Reconstruction`).
    """
    total, count, sc_sum, mus, logvars, recons = 0.0, 0, 0.0, [], [], []
    for x, mu, logvar, recon in eval_batches(model, mels, batch_size, decode=True):
        total += float((recon.double() - x.double()).pow(2).sum())  # x, recon: (b, 1, M, T)
        count += x.numel()
        if magnitude is not None:
            sc_sum += float(_clip_sc(magnitude, recon, x).sum())
        mus.append(mu)  # (b, D)
        logvars.append(logvar)
        if keep:
            recons.append(recon.cpu())
    return Reconstruction(total / count, torch.cat(mus), torch.cat(logvars),  # (N, D) each
                          torch.cat(recons) if keep else None,  # (N, 1, M, T)
                          sc_sum / mels.shape[0] if magnitude is not None else None)


def eval_recon(model, mels: torch.Tensor, batch_size: int = 128,
               magnitude: Callable | None = None) -> Reconstruction:
    """:func:`reconstruct` without keeping the reconstructions (``recon`` is None)."""
    return reconstruct(model, mels, batch_size, keep=False, magnitude=magnitude)


def mean_mel_sc_baseline(train_mels: torch.Tensor, magnitude: Callable,
                         other: torch.Tensor | None = None) -> float:
    """Mean over the clips of ``other`` (default ``train_mels``) of the mel magnitudes'
    spectral convergence of the training set's mean mel: the average sound's score, the one a
    model that learned nothing beyond the average gets."""
    target = train_mels if other is None else other
    mean = train_mels.double().mean(dim=0, keepdim=True)  # (1, 1, M, T)
    return float(_clip_sc(magnitude, mean.expand_as(target), target).mean())


def mean_mel_baseline(train_mels: torch.Tensor, other: torch.Tensor | None = None) -> float:
    """MSE of predicting the mean of ``train_mels`` ``(N, 1, M, T)`` for every clip of
    ``other`` (default: ``train_mels`` itself), mean over every element; float64 sums.
    0 when every training clip is the same mel (then :func:`baseline_ratio` is undefined)."""
    mean = train_mels.double().mean(dim=0, keepdim=True)  # (1, 1, M, T)
    target = train_mels if other is None else other
    if target.shape[1:] != train_mels.shape[1:]:
        raise ValueError(f"mels to score {tuple(target.shape)} and training mels "
                         f"{tuple(train_mels.shape)} differ in shape")
    return float((target.double() - mean).pow(2).mean())


def baseline_ratio(recon: float, baseline: float | None) -> float:
    """``recon / baseline``; NaN (undefined) when the baseline is 0 or missing, never a
    ``ZeroDivisionError``. Below 1: better than predicting the average."""
    if baseline is None or not baseline > 0:
        return math.nan
    return recon / baseline


def format_ratio(ratio: float | None) -> str:
    """``"0.42x"``, or ``"undefined"`` for a NaN or missing ratio (baseline 0)."""
    if ratio is None or not math.isfinite(ratio):
        return "undefined"
    return f"{ratio:.2f}x"


# -- the alarm ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alarm:
    """The collapse alarm's verdict on one set of eval-mode numbers.

    Attributes
    ----------
    kind : str
        One of :data:`ALARM_KINDS`: ``"learned"`` (validated, better than ``threshold`` x the
        average), ``"not_validated"`` (nothing held out: better on training clips only),
        ``"at_average"`` (no better than the average with latent units in use),
        ``"collapse"`` (posterior collapse: no active latent unit), ``"no_generalisation"``
        (training clips learnt, held-out files at the average), ``"undefined"`` (baseline 0).
    message : str
        What was seen and, when it fired, what to try.
    on : str
        The clips judged: ``"validation"`` or ``"training"``.
    recon, baseline, ratio : float
        The eval-mode figure (``figure``), the training mean mel's, their ratio (NaN when
        undefined).
    active_units : int
    threshold : float
        The ratio at or above which the alarm fires.
    """

    kind: str
    message: str
    on: str = "validation"
    recon: float = math.nan
    baseline: float = math.nan
    ratio: float = math.nan
    active_units: int = 0
    threshold: float = COLLAPSE_RATIO
    figure: str = "mse"  # a key of FIGURE_NAMES

    def __post_init__(self) -> None:
        if self.kind not in ALARM_KINDS:
            raise ValueError(f"Alarm.kind must be one of {ALARM_KINDS}, got {self.kind!r}")

    @property
    def fired(self) -> bool:
        """True for ``"at_average"``, ``"collapse"`` and ``"no_generalisation"``."""
        return self.kind in ("at_average", "collapse", "no_generalisation")

    def report(self) -> dict[str, object]:
        """``{"fired": bool, "kind": str, "why": str}`` (the CLI's and notebook 06's form)."""
        return {"fired": self.fired, "kind": self.kind, "why": self.message}

    def __str__(self) -> str:
        return self.message


def _collapse_tips(config, scale: str | None) -> list[str]:
    tips = [f"a lower KL weight (now {config.kl_weight:g})"
            if config is not None and config.kl_weight > 0 else "a lower KL weight"]
    if config is None or config.free_bits == 0:
        tips.append("free bits (e.g. 0.5)")
    tips.append("more steps or minutes")
    if scale != "db":
        tips.append("the dB representation")
    tips.append("more audio")
    return tips


def judge(recon: float, baseline: float, active: int, on: str = "validation",
          ratio: float = COLLAPSE_RATIO, config=None, scale: str | None = None,
          train_ratio: float | None = None, figure: str = "mse") -> Alarm:
    """The alarm's rule on plain numbers: fires if ``recon >= ratio * baseline`` or
    ``active == 0``; the message is one plain sentence.

    ``recon`` and ``baseline`` are the model's and the training mean mel's ``figure`` (a key of
    :data:`FIGURE_NAMES`) on the clips ``on`` names ("validation" or "training");
    ``config`` (a :class:`~sda_lab.training.config.TrainConfig`) and ``scale`` (the spectrogram's)
    make the advice concrete. With ``train_ratio`` (the training clips' ratio) below ``ratio``
    and active units left, a validation failure is a failure to generalise (memorising too few
    or too unlike files), not posterior collapse, and the advice differs.
    """
    r = baseline_ratio(recon, baseline)
    common = dict(on=on, recon=recon, baseline=baseline, ratio=r, active_units=active,
                  threshold=ratio, figure=figure)
    where = "held-out files" if on == "validation" else "training clips"
    seen = (f"on the {where} its {FIGURE_NAMES[figure]} is {r:.2f}x that of the training set's "
            f"average mel ({recon:.4g} against {baseline:.4g}; at or above {ratio:g}x counts "
            f"as the average), with {active} active latent units")
    if not math.isfinite(r):
        return Alarm("undefined", f"{BASELINE_ZERO} ({where}: {FIGURE_NAMES[figure]} "
                     f"{recon:.4g}, {active} active latent units); use more varied audio to "
                     "judge the model", **common)
    if r < ratio and active > 0:
        if on == "training":
            return Alarm("not_validated", f"learned beyond the average on its training clips, "
                         f"but nothing was held out, so whether it carries over to unseen audio "
                         f"is not known: {seen}; hold out files (val_fraction, --val-fraction)",
                         **common)
        return Alarm("learned", f"learned beyond the average: {seen}", **common)
    if on == "validation" and active > 0 and train_ratio is not None and train_ratio < ratio:
        weight = f" (now {config.kl_weight:g})" if config is not None else ""
        return Alarm("no_generalisation", (
            f"{ALARM_NO_GENERALISATION}: {seen}, while on its training clips it is "
            f"{train_ratio:.2f}x: the model learnt its training clips, not what carries over to "
            "unseen files. Try more or more varied audio (the held-out files may be unlike "
            f"every training file), augmentation, a higher KL weight{weight}, fewer steps, or "
            "best.pt (the lowest validation error)."), **common)
    if active == 0:
        return Alarm("collapse", (
            f"{ALARM_COLLAPSE}: no latent unit is in use ({seen}): the decoder makes one mel "
            "whatever the latent. Try " + ", ".join(_collapse_tips(config, scale)) + "."),
            **common)
    return Alarm("at_average", (
        f"{ALARM_AT_AVERAGE}: {seen}: the model is no better than predicting the average mel. "
        "Try " + ", ".join(_collapse_tips(config, scale)) + "."), **common)


def _final_numbers(history) -> tuple[float, float, str, str, float | None]:
    """``(score, baseline, on, figure, train_ratio)``: spectral convergence where it was
    measured, else MSE; validation clips where held out, else training clips."""
    sides = (("validation", "val"), ("training", "train"))
    for figure, key in (("sc", "sc"), ("mse", "recon")):
        base_key = "sc_baseline" if figure == "sc" else "baseline"
        train_ratio = None
        if getattr(history, f"train_{key}") and getattr(history, f"train_{base_key}") is not None:
            train_ratio = baseline_ratio(getattr(history, f"train_{key}")[-1],
                                         getattr(history, f"train_{base_key}"))
        for on, side in sides:
            scores, base = getattr(history, f"{side}_{key}"), getattr(history, f"{side}_{base_key}")
            if scores and base is not None:
                return scores[-1], base, on, figure, train_ratio
    raise ValueError("history has no eval-mode recon and baseline to judge collapse by "
                     "(train_recon/val_recon and train_baseline/val_baseline are empty)")


def verdict(history, ratio: float = COLLAPSE_RATIO, config=None, scale: str | None = None
            ) -> Alarm:
    """The run's one verdict, from a finished :class:`~sda_lab.training.history.History`: its final
    eval-mode validation recon (training recon when nothing was held out) against the baseline,
    its final active units, and, when the best epoch differs, what ``best.pt`` reached. Its
    figure is the mel magnitudes' spectral convergence where the history holds it (a run
    trained with its spectrogram), else the MSE.

    Raises
    ------
    ValueError
        If the history has no epochs, or no eval-mode recon and baseline.
    """
    if not history.active_units:
        raise ValueError("history has no epochs")
    recon, base, on, figure, train_ratio = _final_numbers(history)
    alarm = judge(recon, base, history.active_units[-1], on, ratio, config, scale, train_ratio,
                  figure)
    best = history.best_epoch
    side = "val" if on == "validation" else "train"
    scores = getattr(history, f"{side}_sc" if figure == "sc" else f"{side}_recon")
    if best is not None and best in history.epoch and history.epoch.index(best) < len(scores) \
            and best != history.epoch[-1]:
        at_best = baseline_ratio(scores[history.epoch.index(best)], base)
        alarm = Alarm(**{**alarm.__dict__, "message": alarm.message + (
            f" (the best epoch, {best}, reached {format_ratio(at_best)}: the best checkpoint, "
            "best.pt from the CLI)")})
    return alarm


def live_state(recon: float, baseline: float | None, active: int, on: str = "validation",
               ratio: float = COLLAPSE_RATIO, figure: str = "mse") -> tuple[str, str]:
    """The progress bar's reading after an epoch, numbers only (e.g. ``"held-out spectral
    error 0.42x the average · 60 active units"``), and ``"collapse"`` where no unit is active,
    ``"at_average"`` where they sit at the average now (at or above ``ratio`` x the baseline),
    else ``""`` (kept in ``History.alarms``). A reading, not a verdict: :func:`verdict` judges
    once, at the end."""
    r = baseline_ratio(recon, baseline)
    where = "held-out" if on == "validation" else "training"
    text = (f"{where} {FIGURE_NAMES[figure]} " + (f"{r:.2f}x the average" if math.isfinite(r)
                                                   else "undefined (baseline 0)")
            + f" · {active} active units")
    looks = ("collapse" if active == 0 else
             "at_average" if math.isfinite(r) and r >= ratio else "")
    return text, looks