"""Sounds longer than a clip: latent windows continued from one another, one mel, one inversion.

The model decodes one clip (``n_frames`` mel frames, about a second) from one latent. A longer
sound is a row of decoded **windows**, each starting ``hop`` mel frames after the one before,
overlap-added in the mel domain with a linear crossfade over the ``fade`` frames two windows
share; the long mel is then inverted once by the run's
:class:`~sda_lab.representation.inverter.Inverter` (one continuous phase, no seam in it).

- **Sequence latents** (``VAEConfig.latent="sequence"``: ``latent_frames`` frames of
  ``latent_channels`` values, flattened channel-major, value ``(c, t)`` at ``c *
  latent_frames + t``): the next window's first ``k`` latent frames are the previous
  window's last ``k`` (``k`` from ``ContinuationConfig.overlap``); its other frames are drawn
  from the prior **conditioned** on those (:func:`condition_prior`: per Gaussian component
  the conditional mean ``m_u + C_uo C_oo^-1 (x_o - m_o)`` and covariance ``C_uu - C_uo
  C_oo^-1 C_ou``, the component weights reweighted by each component's marginal likelihood
  ``N(x_o; m_o, C_oo)``; Bishop 2006, *Pattern Recognition and Machine Learning*, sections
  2.3.1 and 9.2), each covariance first shrunk towards its diagonal by
  ``ContinuationConfig.shrinkage`` (0: the prior's exact conditional; why:
  :class:`ContinuationConfig`). For N(0, I) the conditional is N(0, I) again: only the shared
  frames tie the windows. A latent frame is ``scale = padded_frames / latent_frames`` mel
  frames, so ``hop = scale * (latent_frames - k)`` and ``fade = n_frames - hop``; the
  crossfade blends two decodes of the same latent frames.
- **Vector latents** (one vector per clip, no time axis): nothing to continue; every window
  after the first is an **independent** prior sample, crossfaded over the share
  ``ContinuationConfig.overlap`` of a window.

``ContinuationConfig(conditioned=False)`` gives sequence latents the same windows and
crossfade with independent prior samples: the baseline :func:`seam_flux` measures against.
:func:`seam_flux` scores the joins: spectral flux (frame-to-frame RMS change of the dB mel over
the mel bands) at the crossfaded frames against the other frames.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

from ..model.vae import ConvVAE
from .prior import LatentPrior, _covariance, decode_samples

__all__ = ["MAX_SECONDS", "ContinuationConfig", "ConditionedPrior", "Continuation",
           "compare_seams",
           "condition_prior", "window_layout", "check_seconds", "continue_mel", "continue_from",
           "seam_flux", "describe"]

MAX_SECONDS = 60.0  # longest sound: 60 s at 48 kHz is 5626 mel frames, inverted at once


@dataclass(frozen=True)
class ContinuationConfig:
    """How windows follow one another (module docstring).

    ``overlap``: the share of a window the next one shares, in (0, 1): for sequence latents
    ``round(overlap * latent_frames)`` latent frames (at least 1, at most ``latent_frames -
    1``), for vector latents a crossfade of ``round(overlap * n_frames)`` mel frames (likewise
    bounded). ``conditioned``: False draws every window independently from the prior (the
    baseline the seams are measured against). ``shrinkage``: each component's covariance is
    taken as ``(1 - shrinkage) * C + shrinkage * diag(C)`` before conditioning (shrinkage
    towards the diagonal, Ledoit & Wolf 2004): a GMM fitted on fewer clips than latent
    dimensions interpolates its clips, its conditional mean extrapolates from frames unlike any
    clip's start, and fed back window after window the latents run away; 0 is the exact
    conditional of the prior.

    Raises
    ------
    ValueError
        ``overlap`` not in (0, 1) or ``shrinkage`` not in [0, 1]."""

    overlap: float = 1 / 3
    conditioned: bool = True
    shrinkage: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.overlap < 1:  # NaN fails too
            raise ValueError(f"overlap: expected a share of a window in (0, 1), got "
                             f"{self.overlap!r}")
        if not 0 <= self.shrinkage <= 1:
            raise ValueError(f"shrinkage: expected a weight in [0, 1], got {self.shrinkage!r}")


@dataclass
class ConditionedPrior:
    """The prior's conditional ``p(z_u | z_o)`` for fixed observed coordinates ``observed``.

    Per component ``k`` of ``K``: ``log_weight`` ``(K,)``, ``mean_o`` ``(K, o)``, ``mean_u``
    ``(K, u)``, ``chol_o`` ``(K, o, o)`` (Cholesky factor of ``C_oo``), ``gain`` ``(K, u, o)``
    (``C_uo C_oo^-1``), ``cov`` ``(K, u, u)`` (the conditional covariance) and ``chol``
    ``(K, u, u)`` its Cholesky factor; float64 on the CPU."""

    latent_dim: int
    observed: torch.Tensor  # (o,) long
    unobserved: torch.Tensor  # (u,) long
    log_weight: torch.Tensor
    mean_o: torch.Tensor
    mean_u: torch.Tensor
    chol_o: torch.Tensor
    gain: torch.Tensor
    cov: torch.Tensor
    chol: torch.Tensor

    def posterior(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Observed ``values`` ``(B, o)`` -> component weights ``(B, K)`` (each component's
        prior weight times its marginal likelihood of ``values``, normalised) and conditional
        means ``(B, K, u)``."""
        x = values.detach().cpu().double()  # (B, o)
        diff = x.unsqueeze(1) - self.mean_o.unsqueeze(0)  # (B, K, o)
        o = self.observed.numel()
        if o:
            y = torch.linalg.solve_triangular(
                self.chol_o.unsqueeze(0), diff.unsqueeze(-1), upper=False).squeeze(-1)  # (B,K,o)
            log_det = self.chol_o.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # (K,)
            log_lik = -0.5 * y.pow(2).sum(-1) - log_det - 0.5 * o * math.log(2 * math.pi)
        else:
            log_lik = torch.zeros(diff.shape[:2], dtype=torch.float64)  # (B, K)
        weights = torch.softmax(self.log_weight + log_lik, dim=-1)  # (B, K)
        means = self.mean_u + (self.gain.unsqueeze(0) @ diff.unsqueeze(-1)).squeeze(-1)  # (B,K,u)
        return weights, means

    def sample(self, values: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One draw per row of ``values`` ``(B, o)``: latents ``(B, latent_dim)`` float32 whose
        observed coordinates are ``values`` exactly; component and noise from ``generator``."""
        weights, means = self.posterior(values)  # (B, K), (B, K, u)
        b = values.shape[0]
        comp = torch.multinomial(weights, 1, generator=generator).squeeze(1)  # (B,)
        eps = torch.randn(b, self.unobserved.numel(), 1, generator=generator,
                          dtype=torch.float64)  # (B, u, 1)
        drawn = means[torch.arange(b), comp] + (self.chol[comp] @ eps).squeeze(-1)  # (B, u)
        z = torch.empty(b, self.latent_dim)  # (B, D)
        z[:, self.unobserved] = drawn.float()
        z[:, self.observed] = values.detach().cpu().float()
        return z


def _components(prior: LatentPrior) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weights ``(K,)``, means ``(K, D)`` and covariances ``(K, D, D)`` of ``prior``, float64."""
    d = prior.latent_dim
    if prior.kind == "normal":
        return (torch.ones(1, dtype=torch.float64), torch.zeros(1, d, dtype=torch.float64),
                torch.eye(d, dtype=torch.float64).unsqueeze(0))
    g = prior.mixture
    covs = [torch.as_tensor(_covariance(g, k, d), dtype=torch.float64)
            for k in range(len(g.weights_))]
    return (torch.as_tensor(g.weights_, dtype=torch.float64),
            torch.as_tensor(g.means_, dtype=torch.float64), torch.stack(covs))


def _cholesky(a: torch.Tensor) -> torch.Tensor:
    """Cholesky factor of symmetric PSD ``a`` ``(..., n, n)``; a jitter of up to 1e-6 of the
    mean diagonal is added where round-off leaves it not quite positive definite."""
    a = 0.5 * (a + a.transpose(-1, -2))
    scale = a.diagonal(dim1=-2, dim2=-1).mean(-1).clamp(min=1e-12)[..., None, None]
    eye = torch.eye(a.shape[-1], dtype=a.dtype)
    for jitter in (0.0, 1e-12, 1e-10, 1e-8, 1e-6):
        chol, info = torch.linalg.cholesky_ex(a + jitter * scale * eye)
        if not info.any():
            return chol
    raise ValueError("prior: a covariance is not positive definite; refit the prior")


def condition_prior(prior: LatentPrior, observed: torch.Tensor,
                    shrinkage: float = 0.0) -> ConditionedPrior:
    """``prior`` conditioned on the latent coordinates ``observed`` ``(o,)`` (module docstring;
    ``o = 0`` is the prior itself), each covariance first shrunk towards its diagonal by
    ``shrinkage`` (:class:`ContinuationConfig`; 0: exact).

    Raises
    ------
    ValueError
        ``observed`` not distinct indices into ``prior.latent_dim``.
    """
    d = prior.latent_dim
    observed = torch.as_tensor(observed, dtype=torch.long).flatten()  # (o,)
    if observed.numel() and (observed.min() < 0 or observed.max() >= d
                             or observed.unique().numel() != observed.numel()):
        raise ValueError(f"observed: expected distinct indices in 0..{d - 1}, got "
                         f"{observed.tolist()[:8]}")
    mask = torch.zeros(d, dtype=torch.bool)
    mask[observed] = True
    unobserved = (~mask).nonzero().squeeze(1)  # (u,)
    weights, means, covs = _components(prior)  # (K,), (K, D), (K, D, D)
    if shrinkage:
        diag = torch.diag_embed(covs.diagonal(dim1=-2, dim2=-1))  # (K, D, D)
        covs = (1 - shrinkage) * covs + shrinkage * diag
    c_oo = covs[:, observed][:, :, observed]  # (K, o, o)
    c_uo = covs[:, unobserved][:, :, observed]  # (K, u, o)
    c_uu = covs[:, unobserved][:, :, unobserved]  # (K, u, u)
    if observed.numel():
        chol_o = _cholesky(c_oo)  # (K, o, o)
        gain = torch.cholesky_solve(c_uo.transpose(-1, -2), chol_o).transpose(-1, -2)  # (K,u,o)
        cov = c_uu - gain @ c_uo.transpose(-1, -2)  # (K, u, u)
    else:
        chol_o, gain, cov = c_oo, c_uo, c_uu
    return ConditionedPrior(d, observed, unobserved, weights.log(), means[:, observed],
                            means[:, unobserved], chol_o, gain, cov, _cholesky(cov))


def window_layout(model_config, config: ContinuationConfig) -> tuple[int, int, int]:
    """``(hop, fade, shared)``: in mel frames, where each window starts after the one before
    and how many frames two windows crossfade; ``shared`` the latent frames two windows share
    (sequence latents; 0 for vector latents). Module docstring."""
    c = model_config
    if c.latent == "sequence":
        f = c.latent_frames
        shared = min(f - 1, max(1, round(config.overlap * f)))
        hop = c.padded_frames // f * (f - shared)
        return hop, max(1, c.n_frames - hop), shared
    fade = min(c.n_frames - 1, max(1, round(config.overlap * c.n_frames)))
    return c.n_frames - fade, fade, 0


def check_seconds(seconds: float, config, name: str = "seconds") -> int:
    """The number of samples of a sound of ``seconds`` under the spectrogram config ``config``
    (:class:`~sda_lab.representation.spectrogram.SpectrogramConfig`): ``round(seconds *
    sample_rate)``.

    Raises
    ------
    ValueError
        ``seconds`` not a number from one STFT window (``n_fft`` samples) to
        :data:`MAX_SECONDS` (NaN included), one line naming ``name``.
    """
    c = config
    low = math.ceil(c.n_fft / c.sample_rate * 1000) / 1000
    number = isinstance(seconds, numbers.Real) and not isinstance(seconds, bool)
    if not (number and low <= float(seconds) <= MAX_SECONDS):  # NaN fails too
        raise ValueError(f"{name}: expected a length from {low:g} to {MAX_SECONDS:g} seconds, "
                         f"got {seconds!r}")
    return round(float(seconds) * c.sample_rate)


@dataclass
class Continuation:
    """A continued sound before inversion: ``mel`` ``(B, 1, n_mels, T)`` (the windows
    overlap-added), ``windows`` ``(B, W, 1, n_mels, n_frames)`` (each decoded window),
    ``latents`` ``(B, W, D)`` and ``joins``: the ``[start, stop)`` mel frames of each
    crossfade inside ``T``."""

    mel: torch.Tensor
    windows: torch.Tensor
    latents: torch.Tensor
    joins: list[tuple[int, int]]


def _check_inputs(model: ConvVAE, prior: LatentPrior, z: torch.Tensor) -> torch.Tensor:
    d = model.config.latent_dim
    if prior.latent_dim != d:
        raise ValueError(f"prior: expected a prior over the model's {d} latent dimensions, got "
                         f"one over {prior.latent_dim}")
    z = torch.as_tensor(z, dtype=torch.float32).detach().cpu()
    z = z.unsqueeze(0) if z.dim() == 1 else z  # (B, D)
    if z.dim() != 2 or z.shape[1] != d:
        raise ValueError(f"z: expected a latent of shape ({d},) or (B, {d}), got "
                         f"{tuple(z.shape)}")
    if not torch.isfinite(z).all():
        raise ValueError("z: expected finite values, got NaN or Inf")
    return z


@torch.no_grad()
def continue_mel(model: ConvVAE, prior: LatentPrior, z: torch.Tensor, frames: int,
                 generator: torch.Generator | None = None,
                 config: ContinuationConfig | None = None) -> Continuation:
    """Continue the latents ``z`` ``(B, D)`` (or ``(D,)``), the first window, to a mel of
    ``frames`` frames (module docstring); windows drawn with ``generator`` (None: seeded 0).

    Raises
    ------
    ValueError
        A prior of another dimension than the model's latent, a ``z`` of the wrong shape or
        not finite, ``frames < 1``, or a config out of range (:func:`window_layout`).
    """
    config = config or ContinuationConfig()
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    c = model.config
    z = _check_inputs(model, prior, z)  # (B, D)
    if frames < 1:
        raise ValueError(f"frames: expected at least 1, got {frames}")
    hop, fade, k = window_layout(c, config)
    n_windows = 1 + math.ceil(max(0, frames - c.n_frames) / hop)
    b, f = z.shape[0], c.latent_frames
    shared = c.latent == "sequence" and config.conditioned
    if shared:  # the first k latent frames of every channel, channel-major
        observed = (torch.arange(c.latent_channels)[:, None] * f + torch.arange(k)).flatten()
    else:
        observed = torch.zeros(0, dtype=torch.long)
    conditional = condition_prior(prior, observed, config.shrinkage)
    latents = [z]
    for _ in range(1, n_windows):
        if shared:
            last = latents[-1].view(b, c.latent_channels, f)[:, :, f - k:]  # (B, C, k)
            values = last.reshape(b, -1)  # (B, C * k), same order as `observed`
        else:
            values = torch.zeros(b, 0)  # (B, 0): the prior itself
        latents.append(conditional.sample(values, generator))  # (B, D)
    latents = torch.stack(latents, 1)  # (B, W, D)
    windows = decode_samples(model, latents.flatten(0, 1))  # (B * W, 1, n_mels, n_frames)
    windows = windows.view(b, n_windows, *windows.shape[1:])  # (B, W, 1, n_mels, n_frames)
    n = c.n_frames
    ramp = torch.arange(1, fade + 1, dtype=torch.float32) / (fade + 1)  # (fade,)
    total = n + (n_windows - 1) * hop
    mel = torch.zeros(b, 1, c.n_mels, total)  # (B, 1, n_mels, total)
    weight = torch.zeros(total)  # (total,)
    for w in range(n_windows):
        fades = torch.ones(n)  # (n_frames,)
        if w > 0:
            fades[:fade] *= ramp
        if w < n_windows - 1:
            fades[n - fade:] *= 1 - ramp
        mel[..., w * hop:w * hop + n] += windows[:, w] * fades
        weight[w * hop:w * hop + n] += fades
    mel = (mel / weight)[..., :frames]  # (B, 1, n_mels, frames)
    joins = [(w * hop, min(w * hop + fade, frames)) for w in range(1, n_windows)
             if w * hop < frames]
    return Continuation(mel, windows, latents, joins)


@torch.no_grad()
def continue_from(model: ConvVAE, prior: LatentPrior, z: torch.Tensor, seconds: float,
                  inverter, generator: torch.Generator | None = None,
                  config: ContinuationConfig | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The explorer's entry: the sound of latent ``z`` ``(D,)`` or ``(B, D)`` continued to
    ``seconds`` (:func:`continue_mel`), its mel inverted once by ``inverter`` (a run's
    :class:`~sda_lab.representation.inverter.Inverter`, whose spectrogram sets the length).

    Returns the waveform ``(B, 1, round(seconds * sample_rate))`` and the mel
    ``(B, 1, n_mels, T)``, on the CPU. Raises ``ValueError`` (one line) for ``seconds`` out of
    range (:func:`check_seconds`), a prior of another dimension, or a bad ``z``, before any
    decoding.
    """
    spec = inverter.spectrogram
    samples = check_seconds(seconds, spec.config)
    _check_inputs(model, prior, z)
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    frames = spec.get_mel_shape(samples)[1]
    cont = continue_mel(model, prior, z, frames, generator, config)
    wave = inverter(cont.mel, samples, generator=generator).cpu()  # (B, 1, samples)
    return wave, cont.mel


def seam_flux(mel: torch.Tensor, spec, joins: list[tuple[int, int]]) -> dict[str, float]:
    """Spectral flux at the joins against within the windows.

    ``mel`` ``(B, 1, n_mels, T)`` normalised (the spectrogram ``spec``'s values) is taken to
    dB (``20 log10`` of :meth:`AudioSpectrogram.mel_magnitude`); the flux into frame ``t`` is
    the RMS over mel bands of ``dB[t] - dB[t - 1]``. A transition is a join's when ``t`` lies in
    ``[start, stop]`` of a join (into its first crossfaded frame through out of its last).

    Returns ``{"join": mean flux at joins, "within": mean flux elsewhere, "ratio": join /
    within}`` in dB (NaN where a set is empty; the ratio inf where only the joins change).
    """
    db = 20 * torch.log10(spec.mel_magnitude(mel.detach().cpu().float()))  # (B, 1, n_mels, T)
    flux = db.diff(dim=-1).pow(2).mean(dim=-2).sqrt().flatten(0, 1)  # (B, T - 1)
    at_join = torch.zeros(flux.shape[-1], dtype=torch.bool)  # (T - 1,): index t - 1
    for start, stop in joins:
        at_join[max(start - 1, 0):min(stop, flux.shape[-1])] = True
    join = float(flux[:, at_join].mean()) if at_join.any() else float("nan")
    within = float(flux[:, ~at_join].mean()) if (~at_join).any() else float("nan")
    ratio = join / within if within > 0 else (math.inf if join > 0 else math.nan)
    return {"join": join, "within": within, "ratio": ratio}


def compare_seams(model: ConvVAE, prior: LatentPrior, z: torch.Tensor, frames: int, spec,
                  seed: int = 0, config: ContinuationConfig | None = None) -> dict[str, float]:
    """The seam ratio (:func:`seam_flux`, in the decoded mel) of the same starts ``z``
    ``(B, D)`` continued to ``frames`` mel frames twice, with the same generator seed: windows
    conditioned on the frames they share (``"conditioned"``) and independent prior samples
    (``"independent"``); ``config`` sets the rest (default :class:`ContinuationConfig`)."""
    config = config or ContinuationConfig()
    out = {}
    for name, conditioned in (("conditioned", True), ("independent", False)):
        cfg = ContinuationConfig(config.overlap, conditioned, config.shrinkage)
        cont = continue_mel(model, prior, z, frames, torch.Generator().manual_seed(seed), cfg)
        out[name] = seam_flux(cont.mel, spec, cont.joins)["ratio"]
    return out


def describe(model_config, config: ContinuationConfig | None = None) -> str:
    """How sounds longer than a clip are made for this model, in one line."""
    config = config or ContinuationConfig()
    hop, fade, k = window_layout(model_config, config)
    if model_config.latent == "sequence":
        how = (f"each window's first {k} latent frames are the last of the one "
               f"before, the rest drawn from the prior conditioned on them"
               if config.conditioned else "each window an independent prior sample")
    else:
        how = ("vector latents have no time axis: each window an independent prior sample, "
               "not a continuation")
    return (f"{how}; windows every {hop} mel frames, crossfaded over {fade} frames, inverted "
            "once")
