"""Rate and distortion: which KL weight, which representation?

A VAE's loss trades two numbers (Alemi et al. 2018, "Fixing a Broken ELBO"): the **rate**, the
KL of the posterior from the prior in nats (how much the code says about each clip), and the
**distortion**, how far the reconstruction is from the input. Each KL weight ``beta`` picks one
point on that trade-off; sweeping ``beta`` traces the curve. This module sweeps ``beta`` x seeds
x representation (:class:`~sda_lab.representation.spectrogram.SpectrogramConfig` ``scale``: the
reference plan's ``"log1p"`` or ``"db"``) on the experiments runner
(:mod:`sda_lab.studies.experiments`: cached, parallel);
:func:`sda_lab.interface.plotting.plot_rate_distortion` draws the curves.

The loss is the Gaussian ELBO option (``TrainConfig.gaussian_sigma``,
:func:`sda_lab.model.losses.vae_loss`): reconstruction ``sum (x - x_hat)^2 / (2 sigma^2)`` over the
mel's elements with ``sigma`` = :data:`SIGMA` (0.1 in the [0, 1] mel units), so ``beta = 1`` is
the ELBO and ``beta`` means the same at any image size. The reference loss (the plan's mean
MSE + weight x KL) is the same optimum at ``beta = weight * P / (2 sigma^2)``
(:func:`sda_lab.model.losses.elbo_kl_weight`, ``P = 128 x 94`` elements): the reference weight 1 is
beta 601,600 and the explorer's 1e-3 is beta 602.

- **Rate**: the final raw KL (no free bits), summed over latent dimensions, nats per clip.
- **Distortion**: the validation MSE (eval mode, posterior mean decoded) on clips of files held
  out of training (split by file), as a fraction of the mean-image baseline (predicting the
  training set's mean mel for every clip). 1.0 is "learnt nothing beyond the average".

Marked on the curves: the reference loss with weight 1 (its representation, log1p), a
free-bits run (``free_bits`` nats per dimension at the largest ``beta``), the shipped default
(:data:`sda_lab.training.recipes.OWN_AUDIO_RECIPE`) and, from :func:`regulariser_grid`, the shipped
default with one change each (:data:`REGULARISERS`: dropout, SpecAugment, no mel shift, no
weight average, a narrower latent, the plan's latent vector), to see what each does to held-out
distortion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.settings import extra_audio_dir
from ..data.augment import NO_WAVEFORM, SPEC_AUGMENT, AugmentConfig
from ..model.losses import elbo_kl_weight
from ..model.vae import VAEConfig
from ..training.config import TrainConfig
from ..training.recipes import OWN_AUDIO_RECIPE
from .experiments import DataSpec, Results, RunSpec, check_runnable, train_run

SIGMA = 0.1  # the Gaussian decoder's sigma in mel units: beta = 1 is the ELBO under it
BETAS = (0.1, 1.0, 10.0, 100.0, 1e3, 1e4)  # 6 decades (and the reference weight 1 at 6e5)
SCALES = ("log1p", "db")
# A small model for a sweep that must fit in minutes on 2 cores (the recipe's is 32..256).
SWEEP_MODEL = VAEConfig(dropout=0.0, latent_dim=32, channels=(16, 32, 64, 128))
# The shipped default with one change: name -> (VAEConfig fields on top of the shipped model
# (:func:`shipped_model`), TrainConfig fields, AugmentConfig fields laid over the recipe's
# augmentation or None). Mel-domain augmentation only: the runner trains on cached mels.
REGULARISERS: dict[str, tuple[dict, dict, dict | None]] = {
    "dropout 0.2": ({"dropout": 0.2}, {}, None),
    "SpecAugment": ({}, {}, SPEC_AUGMENT),
    "no mel shift": ({}, {}, {"mel_shift": 0}),
    "no weight average": ({}, {"ema_decay": None}, None),
    "narrower latent": ({"latent_dim": 48}, {}, None),
    "latent vector": ({"latent": "vector", "time_halvings": None, "latent_dim": 64}, {}, None),
}


@dataclass(frozen=True)
class SweepConfig:
    """The sweep: betas x scales, each run ``max_steps`` optimiser steps of ``batch_size`` clips.

    ``gaussian_sigma`` is the ELBO option's sigma (mel units). The markers: ``reference_weight``
    (the reference loss, mean MSE + weight x KL, on log1p), ``free_bits`` nats per dimension at
    ``free_bits_beta`` (None: the largest beta) on ``free_bits_scales``, and the shipped
    default (the own-audio recipe's loss at this budget, on :func:`shipped_scale`).
    """

    betas: tuple[float, ...] = BETAS
    scales: tuple[str, ...] = SCALES
    gaussian_sigma: float = SIGMA
    max_steps: int = 60
    batch_size: int = 8
    lr: float = 2e-3
    model: VAEConfig = field(default_factory=lambda: SWEEP_MODEL)
    reference_weight: float | None = 1.0
    free_bits: float | None = 0.5
    free_bits_beta: float | None = None
    free_bits_scales: tuple[str, ...] = ("db",)
    shipped: bool = True
    eval_every: int = 5  # the sweep reads final states: evaluate the first, every 5th, the last

    def __post_init__(self) -> None:
        if not self.betas or any(not b > 0 for b in self.betas):
            raise ValueError(f"betas must be positive numbers, got {self.betas}")
        bad = [s for s in self.scales if s not in SCALES]
        if not self.scales or bad:
            raise ValueError(f"scales must be among {SCALES}, got {self.scales}")
        if not self.gaussian_sigma > 0:
            raise ValueError(f"gaussian_sigma must be > 0, got {self.gaussian_sigma}")
        if self.free_bits is not None and not self.free_bits >= 0:
            raise ValueError(f"free_bits must be None or a number of nats >= 0, got "
                             f"{self.free_bits!r}")
        if self.free_bits_beta is not None and not self.free_bits_beta > 0:
            raise ValueError(f"free_bits_beta must be None (the largest beta) or > 0, got "
                             f"{self.free_bits_beta!r}")
        if self.max_steps < 1 or self.batch_size < 1:
            raise ValueError(f"max_steps and batch_size must be >= 1, got {self.max_steps}, "
                             f"{self.batch_size}")

    def train_config(self, beta: float, free_bits: float = 0.0) -> TrainConfig:
        """A grid point: the ELBO option at ``beta`` (linear warm-up over 30% of the steps)."""
        return TrainConfig(epochs=None, max_steps=self.max_steps, batch_size=self.batch_size,
                           lr=self.lr, kl_weight=float(beta), free_bits=free_bits,
                           gaussian_sigma=self.gaussian_sigma, eval_every=self.eval_every)


def arm_name(tag: str, scale: str, kind: str, beta: float | None = None) -> str:
    """``"<data> <scale> beta=<b>"`` for a grid point, ``"<data> <scale> <kind>"`` for a marker."""
    what = f"beta={beta:g}" if kind == "grid" else kind
    return f"{tag} {scale} {what}".strip()


def rate_distortion_grid(data: DataSpec | Sequence[DataSpec], seeds: Sequence[int],
                         config: SweepConfig | None = None, betas: Sequence[float] | None = None
                         ) -> list[RunSpec]:
    """Every (data, scale, beta) x seed, plus the markers, as :class:`RunSpec` s.

    ``data``: one or more :class:`DataSpec` (each should hold out files: ``val_fraction > 0``);
    its ``scale`` is replaced by each of ``config.scales`` and its ``tag`` names it in the arms.
    ``betas`` overrides ``config.betas``. Run them with
    :func:`sda_lab.studies.experiments.run_grid`.

    Raises
    ------
    ValueError
        No seeds, a DataSpec without a validation split, or one that leaves fewer than two
        training clips (:func:`sda_lab.studies.experiments.check_runnable`).
    """
    config = config or SweepConfig()
    if betas is not None:
        config = replace(config, betas=tuple(float(b) for b in betas))
    seeds = list(seeds)
    if not seeds:
        raise ValueError("need at least one seed")
    datas = [data] if isinstance(data, DataSpec) else list(data)
    specs: list[RunSpec] = []
    for d in datas:
        if d.val_fraction <= 0:
            raise ValueError(f"DataSpec {d.tag or d.source!r} has no validation split; set "
                             "val_fraction > 0 (distortion is measured on held-out files)")
        check_runnable(config.train_config(config.betas[0]), d, d.tag or d.source)
        for scale in config.scales:
            ds = replace(d, scale=scale)
            arms: list[tuple[str, TrainConfig]] = [
                (arm_name(d.tag, scale, "grid", b), config.train_config(b)) for b in config.betas]
            if config.reference_weight is not None and scale == "log1p":
                arms.append((arm_name(d.tag, scale, "reference"), replace(
                    config.train_config(config.reference_weight), gaussian_sigma=None)))
            if config.free_bits and scale in config.free_bits_scales:
                fb_beta = config.free_bits_beta or max(config.betas)
                arms.append((arm_name(d.tag, scale, f"free bits {config.free_bits:g}"),
                             config.train_config(fb_beta, config.free_bits)))
            if config.shipped and scale == shipped_scale():
                arms.append((arm_name(d.tag, scale, "shipped"), _shipped_train(config)))
            for name, tc in arms:
                model = shipped_model(config) if name.endswith(" shipped") else config.model
                specs += [RunSpec(name, s, tc, model, ds) for s in seeds]
    return specs


def free_bits_grid(data: DataSpec | Sequence[DataSpec], seeds: Sequence[int],
                   config: SweepConfig | None = None) -> list[RunSpec]:
    """The free-bits marker of :func:`rate_distortion_grid` and the grid point it is compared
    with (no floor, the same beta), on ``config.free_bits_scales``, x ``seeds``: the arms of
    the full grid, for more seeds on that one comparison (add seeds the grid does not run).

    Raises
    ------
    ValueError
        ``config.free_bits`` is None or 0 (no marker), or as :func:`rate_distortion_grid`
        does.
    """
    config = config or SweepConfig()
    if not config.free_bits:
        raise ValueError(f"config.free_bits: expected a floor in nats per dimension > 0, got "
                         f"{config.free_bits!r}: there is no free-bits marker to add seeds to")
    beta = config.free_bits_beta or max(config.betas)
    return rate_distortion_grid(data, seeds, replace(
        config, betas=(beta,), scales=config.free_bits_scales, reference_weight=None,
        shipped=False, free_bits_beta=beta))


def shipped_model(config: SweepConfig) -> VAEConfig:
    """The sweep's small model with the own-audio recipe's latent (its form, time halvings and
    size): the "shipped" marker's architecture."""
    m = OWN_AUDIO_RECIPE.model
    return replace(config.model, latent=m.latent, time_halvings=m.time_halvings,
                   latent_dim=m.latent_dim)


def _shipped_train(config: SweepConfig) -> TrainConfig:
    """The own-audio recipe's loss at the sweep's budget (the "shipped" marker)."""
    recipe = OWN_AUDIO_RECIPE.train
    return replace(config.train_config(recipe.kl_weight, recipe.free_bits),
                   gaussian_sigma=recipe.gaussian_sigma, augment=recipe.augment,
                   ema_decay=recipe.ema_decay)


def _one_change(shipped: TrainConfig, train_fields: dict, aug: dict | None) -> TrainConfig:
    """``shipped`` with ``train_fields`` and ``aug`` laid over its augmentation (None where the
    result augments nothing)."""
    tc = replace(shipped, **train_fields)
    if aug is None:
        return tc
    base = asdict(shipped.augment) if shipped.augment is not None else dict(NO_WAVEFORM)
    merged = AugmentConfig(**{**base, **aug})
    return replace(tc, augment=None if merged == AugmentConfig(**NO_WAVEFORM) else merged)


def regulariser_grid(data: DataSpec | Sequence[DataSpec], seeds: Sequence[int],
                     config: SweepConfig | None = None,
                     names: Sequence[str] = tuple(REGULARISERS)) -> list[RunSpec]:
    """The shipped marker of :func:`rate_distortion_grid` with one change each
    (:data:`REGULARISERS` ``names``), on the shipped scale, x seeds: arms
    ``"<data> <scale> <name>"`` that :func:`rd_table` and the plot show as their own markers.
    Add them to a grid that has the shipped marker to compare against it.

    Raises
    ------
    ValueError
        An unknown name, no seeds, or data without a validation split.
    """
    config = config or SweepConfig()
    unknown = [n for n in names if n not in REGULARISERS]
    if unknown:
        raise ValueError(f"regularisers must be among {sorted(REGULARISERS)}, got {unknown}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("need at least one seed")
    shipped, scale = _shipped_train(config), shipped_scale()
    specs: list[RunSpec] = []
    for d in [data] if isinstance(data, DataSpec) else list(data):
        if d.val_fraction <= 0:
            raise ValueError(f"DataSpec {d.tag or d.source!r} has no validation split; set "
                             "val_fraction > 0 (distortion is measured on held-out files)")
        ds = replace(d, scale=scale)
        for name in names:
            fields, train_fields, aug = REGULARISERS[name]
            tc = _one_change(shipped, train_fields, aug)
            check_runnable(tc, ds, name)
            specs += [RunSpec(arm_name(d.tag, scale, name), s, tc,
                              replace(shipped_model(config), **fields), ds) for s in seeds]
    return specs


def shipped_scale() -> str:
    """The shipped own-audio recipe's representation: its spectrogram's ``scale``."""
    return OWN_AUDIO_RECIPE.spectrogram.scale


def equivalent_beta(train: TrainConfig | dict, n_elements: int, sigma: float = SIGMA) -> float:
    """The ELBO beta of a run's loss under ``sigma``: its weight when it uses the ELBO option
    with that sigma, else the reference-loss conversion
    :func:`~sda_lab.model.losses.elbo_kl_weight` (``n_elements`` = n_mels x frames per clip)."""
    t = train if isinstance(train, dict) else train.__dict__
    w, s = float(t["kl_weight"]), t.get("gaussian_sigma")
    if s is None:
        return elbo_kl_weight(w, n_elements, sigma)
    return w * (sigma / float(s)) ** 2  # the same loss rescaled to sigma


def rd_table(results: Results, sigma: float = SIGMA) -> pd.DataFrame:
    """One row per arm: data, scale, kind, beta (ELBO-equivalent under ``sigma``), seeds, and
    mean / sd / min / max over seeds of ``rate`` (final raw KL, nats) and ``distortion``
    (validation MSE / mean-image baseline), plus the training ratio's mean."""
    f = results.finals()
    f = f[f["status"] == "ok"].copy()
    if f.empty:
        raise ValueError("no successful runs in these results")
    if "val_ratio" not in f:
        raise ValueError("these runs have no validation (val_ratio); use DataSpec.val_fraction")
    rows = []
    for arm in results.arms:
        sub = f[f["arm"] == arm]
        if sub.empty:
            continue
        first = results.records[[r["arm"] for r in results.records].index(arm)]
        det = first["determinants"]
        n_el = det["model"]["n_mels"] * det["model"]["n_frames"]
        kind = ("grid" if " beta=" in arm else arm.split(f"{det['data']['scale']} ", 1)[-1])
        rows.append({
            "arm": arm, "data": det["data"].get("tag", ""), "scale": det["data"]["scale"],
            "kind": kind, "beta": equivalent_beta(det["train"], n_el, sigma),
            "free_bits": det["train"]["free_bits"], "seeds": len(sub),
            "rate": sub["raw_kl"].mean(), "rate_sd": sub["raw_kl"].std(ddof=1),
            "rate_min": sub["raw_kl"].min(), "rate_max": sub["raw_kl"].max(),
            "distortion": sub["val_ratio"].mean(), "distortion_sd": sub["val_ratio"].std(ddof=1),
            "distortion_min": sub["val_ratio"].min(), "distortion_max": sub["val_ratio"].max(),
            "train_ratio": sub["train_ratio"].mean() if "train_ratio" in sub else np.nan,
        })
    return pd.DataFrame(rows)


def example_folder(part: str = "instruments") -> Path:
    """Real recordings for a sweep: ``$SDA_LAB_EXTRA_AUDIO/<part>`` when that variable names a
    folder holding ``part`` (:func:`sda_lab.core.settings.extra_audio_dir`), else the bundled
    ``data/examples/<part>``.

    Raises
    ------
    sda_lab.core.settings.SettingError
        ``SDA_LAB_EXTRA_AUDIO`` is set but is not a folder.
    FileNotFoundError
        If neither holds ``part``.
    """
    extra = extra_audio_dir()
    bundled = Path(__file__).resolve().parents[2] / "data" / "examples" / part
    candidates = ([extra / part] if extra is not None else []) + [bundled]
    for cand in candidates:
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"no folder of real audio for {part!r}: looked for "
                            f"{' and '.join(str(c) for c in candidates)}")


def heldout_reconstructions(spec: RunSpec, n_clips: int = 1):
    """Train ``spec`` once in this process and decode held-out clips: ``(targets, recons,
    sample_rate)``, each ``(n_clips, 1, samples)`` waveforms inverted from the mel (targets: the
    held-out clips' own mels, i.e. the best any model could sound; recons: the posterior mean
    decoded). For listening to a point of the curve; the numbers come from the sweep.

    Raises
    ------
    ValueError
        If ``spec.data`` has no validation split.
    """
    import torch

    from ..representation.spectrogram import AudioSpectrogram, SpectrogramConfig
    from ..training.diagnostics import reconstruct

    if spec.data.val_fraction <= 0:
        raise ValueError("heldout_reconstructions needs a DataSpec with val_fraction > 0")
    model, _, val = train_run(spec, val=False)  # val: (N_val, 1, M, T)
    idx = torch.linspace(0, val.shape[0] - 1, n_clips).round().long()
    x = val[idx]  # (n_clips, 1, M, T)
    recon = reconstruct(model, x)[3]  # (n_clips, 1, M, T), eval mode, posterior mean decoded
    spec_ = AudioSpectrogram(SpectrogramConfig(scale=spec.data.scale))
    sr = spec_.config.sample_rate
    return spec_.mel_to_waveform(x), spec_.mel_to_waveform(recon), sr  # (n_clips, 1, samples)


__all__ = ["SIGMA", "BETAS", "SCALES", "SWEEP_MODEL", "SweepConfig", "arm_name",
           "rate_distortion_grid", "free_bits_grid", "equivalent_beta", "rd_table",
           "example_folder", "shipped_scale", "heldout_reconstructions"]
