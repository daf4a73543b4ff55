"""Where to sample a VAE trained on little data: an ex-post density of the latent.

On small data the aggregate posterior (the training clips' posterior means) fills only part of
N(0, I); decoding the holes gives mush. Ghosh et al. 2020, "From variational to deterministic
autoencoders" (ICLR), fit a Gaussian mixture on the training latents after training
and sample from it instead. :func:`fit_gmm_prior` does that (scikit-learn's
``GaussianMixture``, the number of components chosen by BIC); :func:`normal_prior` is the
VAE's own N(0, I). :func:`compare_priors` measures both by what can be trusted with tens of
clips (no Frechet distances: their covariance estimates need thousands of samples):

- ``in_range``: share of the samples' descriptors (:mod:`sda_lab.studies.descriptors`) inside the
  [min, max] of the training clips' (after the same inversion), per descriptor and all at once;
- ``inversion_mse``: mel MSE between a decoded mel and the mel of its inverted audio (a mel no
  signal has is not consistent with any waveform: spectral consistency);
- ``reencode_mse``: mel MSE between a decoded mel and its decode-encode-decode cycle (the
  encoder maps mush elsewhere; clips it knows come back).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..model.vae import ConvVAE
from .descriptors import ANALYSIS_GRIFFIN_LIM_ITERS, DESCRIPTORS, clip_descriptors, invert

__all__ = ["PRIORS", "LatentPrior", "fit_gmm_prior", "normal_prior", "decode_samples",
           "in_range_share", "compare_priors"]

PRIORS = ("gmm", "normal")


@dataclass
class LatentPrior:
    """A distribution over the latent to sample from: ``kind`` "gmm" (``mixture`` a fitted
    ``sklearn.mixture.GaussianMixture``) or "normal" (N(0, I) of ``latent_dim``)."""

    kind: str
    latent_dim: int
    mixture: object | None = None

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` latents ``(n, latent_dim)`` float32, reproducible from ``seed``."""
        if n < 1:
            raise ValueError(f"n must be a positive number of samples, got {n}")
        if self.kind == "normal":
            return torch.randn(n, self.latent_dim, generator=torch.Generator().manual_seed(seed))
        rng = np.random.default_rng(seed)
        g = self.mixture
        comp = rng.choice(len(g.weights_), size=n, p=g.weights_ / g.weights_.sum())
        z = np.empty((n, self.latent_dim))
        for k in np.unique(comp):
            idx = np.flatnonzero(comp == k)
            cov = _covariance(g, k, self.latent_dim)
            z[idx] = rng.multivariate_normal(g.means_[k], cov, size=len(idx), method="cholesky")
        return torch.tensor(z, dtype=torch.float32)

    def describe(self) -> str:
        if self.kind == "normal":
            return f"N(0, I) over {self.latent_dim} dimensions"
        g = self.mixture
        return (f"Gaussian mixture, {len(g.weights_)} component(s), {g.covariance_type} "
                f"covariance, on {self.latent_dim} dimensions")


def _covariance(g, k: int, d: int) -> np.ndarray:
    c = g.covariances_
    if g.covariance_type == "full":
        return c[k]
    if g.covariance_type == "tied":
        return c
    if g.covariance_type == "diag":
        return np.diag(c[k])
    return np.eye(d) * c[k]  # spherical


def normal_prior(latent_dim: int) -> LatentPrior:
    """The VAE's prior N(0, I) of ``latent_dim`` dimensions."""
    return LatentPrior("normal", int(latent_dim))


def fit_gmm_prior(mu: torch.Tensor, max_components: int = 8, covariance_type: str = "full",
                  reg_covar: float = 1e-3, seed: int = 0) -> LatentPrior:
    """Fit a Gaussian mixture on the training posterior means ``mu`` ``(N, D)``.

    The number of components, 1 to ``min(max_components, N // 4)``, is the one of lowest BIC.
    ``reg_covar`` is added to every covariance's diagonal: with fewer clips than dimensions a
    full covariance is otherwise singular. Source: Ghosh et al. 2020 (module docstring).

    Raises
    ------
    ValueError
        ``mu`` not ``(N >= 2, D)``, or non-finite.
    """
    from sklearn.mixture import GaussianMixture

    if not isinstance(mu, torch.Tensor) or mu.dim() != 2 or mu.shape[0] < 2:
        shape = tuple(mu.shape) if isinstance(mu, torch.Tensor) else type(mu).__name__
        raise ValueError(f"mu must be (N >= 2, latent_dim) posterior means, got {shape}")
    if not torch.isfinite(mu).all():
        raise ValueError("mu contains NaN or Inf")
    X = mu.detach().cpu().double().numpy()
    best, best_bic = None, np.inf
    for k in range(1, max(1, min(max_components, X.shape[0] // 4)) + 1):
        g = GaussianMixture(k, covariance_type=covariance_type, reg_covar=reg_covar,
                            random_state=seed, n_init=2).fit(X)
        bic = g.bic(X)
        if bic < best_bic:
            best, best_bic = g, bic
    return LatentPrior("gmm", X.shape[1], best)


@torch.no_grad()
def decode_samples(model: ConvVAE, z: torch.Tensor, batch: int = 64) -> torch.Tensor:
    """Latents ``(n, D)`` -> decoded mels ``(n, 1, n_mels, n_frames)`` on the CPU, eval mode."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model.decode(z[i:i + batch].to(device)).cpu()
                      for i in range(0, z.shape[0], batch)])  # (n, 1, n_mels, T)


def in_range_share(samples: pd.DataFrame, reference: pd.DataFrame) -> dict[str, float]:
    """Share of ``samples``' descriptor values inside ``reference``'s [min, max], per descriptor
    (NaN values skipped; f0 of unpitched sounds), and ``"all"``: share of samples whose every
    finite descriptor is inside."""
    out, inside_all = {}, np.ones(len(samples), bool)
    for name in DESCRIPTORS:
        ref = reference[name].dropna()
        v = samples[name].to_numpy(float)
        if ref.empty or not np.isfinite(v).any():
            continue
        inside = (v >= ref.min()) & (v <= ref.max())
        out[name] = float(inside[np.isfinite(v)].mean())
        inside_all &= inside | ~np.isfinite(v)
    out["all"] = float(inside_all.mean())
    return out


@torch.no_grad()
def compare_priors(model: ConvVAE, spec, train_mels: torch.Tensor,
                   priors: Mapping[str, LatentPrior], n: int = 32, seed: int = 0,
                   f0: bool = False, reference: pd.DataFrame | None = None,
                   griffin_lim_iters: int | None = ANALYSIS_GRIFFIN_LIM_ITERS) -> pd.DataFrame:
    """Sample ``n`` sounds from each prior and measure them (module docstring).

    The training clips' descriptors are measured on their mels inverted the same way
    (``reference`` may pass them), so both sides carry the inversion's artefacts; the inversion
    is :func:`sda_lab.studies.descriptors.invert` with ``griffin_lim_iters`` (None: the full
    default).

    Returns
    -------
    DataFrame
        One row per prior: ``in_range_all``, ``in_range_<descriptor>``, ``inversion_mse``,
        ``reencode_mse`` (means over the samples), and the row ``"training means"``: the
        training clips' decoded posterior means measured the same way (what a sound the model
        knows scores).
    """
    sr, c = spec.config.sample_rate, spec.config
    kw = dict(f0=f0, n_fft=c.n_fft, hop_length=c.hop_length)
    if reference is None:
        reference = clip_descriptors(invert(spec, train_mels, seed=seed,
                                            griffin_lim_iters=griffin_lim_iters), sr, **kw)
    rows = []

    def consistency(mels: torch.Tensor, waves: torch.Tensor) -> dict[str, float]:
        again = spec.waveform_to_mel(waves)[..., :mels.shape[-1]]  # (n, 1, n_mels, T)
        device = next(model.parameters()).device
        mu, _ = model.encode(mels.to(device))
        cycle = model.decode(mu, mels.shape).cpu()  # (n, 1, n_mels, T)
        return {"inversion_mse": float((again - mels).pow(2).mean()),
                "reencode_mse": float((cycle - mels).pow(2).mean())}

    model.eval()
    from ..model.vae import encode_dataset

    mu, _ = encode_dataset(model, train_mels)  # (N, D)
    latents = {name: prior.sample(n, seed) for name, prior in priors.items()}
    latents["training means"] = mu.cpu()  # decoded posterior means: the sounds the model knows
    for name, z in latents.items():
        mels = decode_samples(model, z)  # (n, 1, n_mels, T)
        waves = invert(spec, mels, seed=seed, griffin_lim_iters=griffin_lim_iters)  # (n, 1, S)
        share = in_range_share(clip_descriptors(waves, sr, **kw), reference)
        rows.append({"prior": name, "n": len(z), **{f"in_range_{k}": v for k, v in share.items()},
                     **consistency(mels, waves)})
    return pd.DataFrame(rows).set_index("prior")
