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

import torch

from ..model.vae import eval_batches

__all__ = ["COLLAPSE_RATIO", "ALARM_COLLAPSE", "ALARM_NO_GENERALISATION", "ALARM_KINDS",
           "BASELINE_ZERO", "Alarm", "baseline_ratio", "eval_recon", "format_ratio", "judge",
           "live_state", "mean_mel_baseline", "reconstruct", "verdict"]

COLLAPSE_RATIO = 0.9  # recon at or above this fraction of the mean-mel baseline: the alarm fires
ALARM_COLLAPSE = "posterior collapse or no learning"
ALARM_NO_GENERALISATION = "no generalisation to the held-out files"
# quiet: validated and better than the average; not_validated: nothing held out, judged on
# training clips only; collapse / no_generalisation: the alarm fired; undefined: baseline 0
ALARM_KINDS = ("quiet", "not_validated", "collapse", "no_generalisation", "undefined")
BASELINE_ZERO = "the baseline is 0: every training clip is the same mel; ratio undefined"


# -- eval-mode scores --------------------------------------------------------------------------


@torch.no_grad()
def reconstruct(model, mels: torch.Tensor, batch_size: int = 128, keep: bool = True
                ) -> tuple[float, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Eval-mode reconstruction of ``mels`` ``(N, 1, n_mels, T)``: the posterior mean decoded,
    dropout off, BatchNorm's running statistics; the model's train/eval mode is restored.

    Returns
    -------
    mse, mu, logvar, recon
        The MSE over every element (float64 sum); ``mu``, ``logvar`` ``(N, D)`` on the model's
        device; ``recon`` ``(N, 1, n_mels, T)`` on the CPU, or ``None`` when ``keep`` is False.
    """
    total, count, mus, logvars, recons = 0.0, 0, [], [], []
    for x, mu, logvar, recon in eval_batches(model, mels, batch_size, decode=True):
        total += float((recon.double() - x.double()).pow(2).sum())  # x, recon: (b, 1, M, T)
        count += x.numel()
        mus.append(mu)  # (b, D)
        logvars.append(logvar)
        if keep:
            recons.append(recon.cpu())
    return (total / count, torch.cat(mus), torch.cat(logvars),  # (N, D), (N, D)
            torch.cat(recons) if keep else None)  # (N, 1, M, T)


def eval_recon(model, mels: torch.Tensor, batch_size: int = 128
               ) -> tuple[float, torch.Tensor, torch.Tensor]:
    """``(mse, mu, logvar)`` of :func:`reconstruct`, without keeping the reconstructions."""
    mse, mu, logvar, _ = reconstruct(model, mels, batch_size, keep=False)
    return mse, mu, logvar


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
        One of :data:`ALARM_KINDS`: ``"quiet"`` (validated, better than ``threshold`` x the
        average), ``"not_validated"`` (nothing held out: quiet on training clips only),
        ``"collapse"`` (no better than the average, or no active unit), ``"no_generalisation"``
        (training clips learnt, held-out files at the average), ``"undefined"`` (baseline 0).
    message : str
        What was seen and, when it fired, what to try.
    on : str
        The clips judged: ``"validation"`` or ``"training"``.
    recon, baseline, ratio : float
        Eval-mode MSE, the mean-mel baseline's MSE, their ratio (NaN when undefined).
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

    def __post_init__(self) -> None:
        if self.kind not in ALARM_KINDS:
            raise ValueError(f"Alarm.kind must be one of {ALARM_KINDS}, got {self.kind!r}")

    @property
    def fired(self) -> bool:
        """True for ``"collapse"`` and ``"no_generalisation"``."""
        return self.kind in ("collapse", "no_generalisation")

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
          train_ratio: float | None = None) -> Alarm:
    """The alarm's rule on plain numbers: fires if ``recon >= ratio * baseline`` or
    ``active == 0``.

    ``on`` names the clips ``recon`` was measured on ("validation" or "training");
    ``config`` (a :class:`~sda_lab.training.config.TrainConfig`) and ``scale`` (the spectrogram's)
    make the advice concrete. With ``train_ratio`` (training recon / its baseline) below ``ratio``
    and active units left, a validation failure is a failure to generalise (memorising too few
    or too unlike files), not posterior collapse, and the advice differs.
    """
    r = baseline_ratio(recon, baseline)
    common = dict(on=on, recon=recon, baseline=baseline, ratio=r, active_units=active,
                  threshold=ratio)
    seen = (f"{on} recon {recon:.4g} is {r:.2f}x the mean-mel baseline {baseline:.4g} "
            f"(alarm at >= {ratio:g}x)")
    if not math.isfinite(r):
        return Alarm("undefined", f"{BASELINE_ZERO} ({on} recon {recon:.4g}, {active} active "
                     "latent units); use more varied audio to judge the model", **common)
    reasons = [seen] if r >= ratio else []
    if active == 0:
        reasons.append("0 active latent units")
    if not reasons:
        if on == "training":
            return Alarm("not_validated", f"not validated: nothing was held out, so this "
                         f"judges training clips only: {seen} with {active} active latent "
                         "units; hold out files (val_fraction, --val-fraction) to see "
                         "whether it carries over to unseen audio", **common)
        return Alarm("quiet", f"{seen} with {active} active latent units", **common)
    if on == "validation" and active > 0 and train_ratio is not None and train_ratio < ratio:
        weight = f" (now {config.kl_weight:g})" if config is not None else ""
        return Alarm("no_generalisation", (
            f"{ALARM_NO_GENERALISATION}: {reasons[0]}, while training recon is "
            f"{train_ratio:.2f}x its baseline with {active} active latent units - the model "
            "learnt its training clips, not what carries over to unseen files. Try more or more "
            "varied audio (the held-out files may be unlike every training file), augmentation, "
            f"a higher KL weight{weight}, fewer steps, or best.pt (the lowest validation "
            "error)."), **common)
    return Alarm("collapse", (
        f"{ALARM_COLLAPSE}: " + "; ".join(reasons) + " - the model is no better than "
        "predicting the average mel. Try " + ", ".join(_collapse_tips(config, scale)) + "."),
        **common)


def _final_numbers(history) -> tuple[float, float, str]:
    if history.val_recon and history.val_baseline is not None:
        return history.val_recon[-1], history.val_baseline, "validation"
    if history.train_recon and history.train_baseline is not None:
        return history.train_recon[-1], history.train_baseline, "training"
    raise ValueError("history has no eval-mode recon and baseline to judge collapse by "
                     "(train_recon/val_recon and train_baseline/val_baseline are empty)")


def verdict(history, ratio: float = COLLAPSE_RATIO, config=None, scale: str | None = None
            ) -> Alarm:
    """The run's one verdict, from a finished :class:`~sda_lab.training.history.History`: its final
    eval-mode validation recon (training recon when nothing was held out) against the baseline,
    its final active units, and, when the best epoch differs, what ``best.pt`` reached.

    Raises
    ------
    ValueError
        If the history has no epochs, or no eval-mode recon and baseline.
    """
    if not history.active_units:
        raise ValueError("history has no epochs")
    recon, base, on = _final_numbers(history)
    train_ratio = (baseline_ratio(history.train_recon[-1], history.train_baseline)
                   if history.train_recon else None)
    alarm = judge(recon, base, history.active_units[-1], on, ratio, config, scale, train_ratio)
    best = history.best_epoch
    scores = history.val_recon if on == "validation" else history.train_recon
    if best is not None and best in history.epoch and history.epoch.index(best) < len(scores) \
            and best != history.epoch[-1]:
        at_best = baseline_ratio(scores[history.epoch.index(best)], base)
        alarm = Alarm(**{**alarm.__dict__, "message": alarm.message + (
            f" (the best epoch, {best}, reached {format_ratio(at_best)}: the best checkpoint, "
            "best.pt from the CLI)")})
    return alarm


def live_state(recon: float, baseline: float | None, active: int, on: str = "validation",
               ratio: float = COLLAPSE_RATIO) -> tuple[str, str]:
    """The progress bar's state after an epoch, e.g. ``"val/mean 0.42 · active 60"``, and
    ``"collapse"`` when the numbers sit at the average now (at or above ``ratio`` x the
    baseline, or no active unit), else ``""``. A reading, not a verdict: :func:`verdict`
    judges once, at the end."""
    r = baseline_ratio(recon, baseline)
    prefix = "val" if on == "validation" else "train"
    text = (f"{prefix}/mean {r:.2f}" if math.isfinite(r) else f"{prefix}/mean undefined "
            "(baseline 0)") + f" · active {active}"
    looks = "collapse" if (math.isfinite(r) and r >= ratio) or active == 0 else ""
    if on == "training":
        text += " · not validated"
    return text + (" · at the average" if looks else ""), looks
