"""A run's loss for one batch (:func:`run_loss`, what :func:`sda_lab.training.loop.train` steps
on) and the posterior a run hears a file through (:func:`refine_posterior`).

The encoder's posterior mean is an amortised guess: one network maps every input to its latent,
and on files it never saw that guess can be far from the latent the decoder would need (the
amortisation gap, Cremer, Li and Duvenaud 2018, "Inference Suboptimality in Variational
Autoencoders"). Semi-amortised inference (Kim et al. 2018, "Semi-Amortized Variational
Autoencoders"; Hjelm et al. 2016) starts from the encoder's guess and takes gradient steps on
the posterior's mean to lower the same loss the run was trained on, for that input alone: the
model's weights do not change, only where in its latent space the file is placed.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..core._checks import check_mel
from ..core.progress import progress_bar
from ..model.losses import spectral_convergence_loss, vae_loss
from ..model.vae import ConvVAE
from .config import TrainConfig

__all__ = ["run_loss", "refine_posterior", "heard_means", "heard_reconstruction", "POSTERIOR_LR"]

POSTERIOR_LR = 0.05  # Adam's step size on the posterior mean (latent units: the prior's std is 1)
REFINE_BATCH = 64  # clips refined together (each clip's steps are its own)
PROGRESS_CLIP_STEPS = 2_000  # heard_reconstruction shows a bar past this many clip-steps (seconds)


def run_loss(config: TrainConfig, recon: torch.Tensor, target: torch.Tensor, mu: torch.Tensor,
             logvar: torch.Tensor, kl_weight: float,
             magnitude: Callable[[torch.Tensor], torch.Tensor] | None = None
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(total, recon_loss, kl_loss)`` of :func:`sda_lab.model.losses.vae_loss` with the
    config's free bits and likelihood at ``kl_weight``, plus
    ``config.spectral_convergence_weight`` times the spectral convergence of the mel magnitudes
    (``magnitude``: mel ``(B, 1, M, T)`` -> magnitudes, needed when that weight is not 0)."""
    total, recon_loss, kl_loss = vae_loss(recon, target, mu, logvar, kl_weight=kl_weight,
                                          free_bits=config.free_bits,
                                          free_bits_mode=config.free_bits_mode,
                                          gaussian_sigma=config.gaussian_sigma)
    if config.spectral_convergence_weight:
        total = total + config.spectral_convergence_weight * spectral_convergence_loss(
            magnitude(recon), magnitude(target))
    return total, recon_loss, kl_loss


def refine_posterior(model: ConvVAE, mels: torch.Tensor, config: TrainConfig,
                     magnitude: Callable[[torch.Tensor], torch.Tensor] | None = None,
                     steps: int | None = None, on_step: Callable[[], object] | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """The posterior ``(mu, logvar)``, each ``(B, latent_dim)`` on the model's device, of mels
    ``(B, 1, n_mels, T)``: the encoder's (eval mode), then ``steps`` (default
    ``config.posterior_steps``; 0: the encoder's as they are) Adam steps of
    :data:`POSTERIOR_LR` on ``mu`` alone, lowering :func:`run_loss` at the run's final KL
    weight with the posterior mean decoded, each clip on its own (the per-clip losses are
    summed, so a clip's steps do not depend on the others in its batch; ``free_bits_mode=
    "batch"`` couples them); ``on_step()`` is called after each step. ``logvar`` stays the
    encoder's. The model's weights, mode and gradients are left as they were. Source:
    semi-amortised inference (Kim et al. 2018), see the module docstring.

    Raises
    ------
    ValueError
        Before any step: from the mels' checks (:func:`sda_lab.core._checks.check_mel`: a
        tensor of the model's mel bands, finite, not empty), on ``steps`` not an integer >= 0,
        or on a loss with a spectral convergence term and no ``magnitude``.
    """
    steps = config.posterior_steps if steps is None else steps
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    check_mel(mels, model.config.n_mels, "mels")
    if steps and config.spectral_convergence_weight and magnitude is None:
        raise ValueError("refine_posterior: the run's loss has a spectral convergence term "
                         "(spectral_convergence_weight > 0); pass magnitude=<the run's "
                         "AudioSpectrogram>.mel_magnitude")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = mels.to(device)  # (B, 1, n_mels, T)
    try:
        with torch.no_grad():
            mu, logvar = model.encode(x)  # (B, D) each
        if steps == 0:
            return mu, logvar
        frozen = [p for p in model.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        try:
            with torch.enable_grad():
                z = mu.clone().requires_grad_(True)  # (B, D)
                optimizer = torch.optim.Adam([z], lr=POSTERIOR_LR)
                for _ in range(steps):
                    recon = model.decode(z, x.shape)  # (B, 1, n_mels, T)
                    # the batch mean times B: each clip's gradient is its own loss's
                    total = x.shape[0] * run_loss(config, recon, x, z, logvar,
                                                  config.kl_weight, magnitude)[0]
                    optimizer.zero_grad(set_to_none=True)
                    total.backward()
                    optimizer.step()
                    if on_step is not None:
                        on_step()
        finally:
            for p in frozen:
                p.requires_grad_(True)
        return z.detach(), logvar
    finally:
        model.train(was_training)


def heard_means(model: ConvVAE, mels: torch.Tensor, config: TrainConfig,
                magnitude: Callable[[torch.Tensor], torch.Tensor] | None = None,
                batch: int = REFINE_BATCH, progress: bool = False) -> torch.Tensor:
    """The posterior means a run hears mels ``(N, 1, n_mels, T)`` through:
    :func:`refine_posterior`'s, ``(N, latent_dim)`` on the CPU, in batches of ``batch`` clips.
    ``progress``: a progress bar (over the steps) where the refinement is longer than
    :data:`PROGRESS_CLIP_STEPS` clip-steps. The model's mode is left as it was. Raises
    ``ValueError`` as :func:`refine_posterior` does."""
    check_mel(mels, model.config.n_mels, "mels")
    out = []
    bar = None
    if progress and config.posterior_steps * mels.shape[0] > PROGRESS_CLIP_STEPS:
        bar = progress_bar(total=config.posterior_steps * -(-mels.shape[0] // batch),
                   desc="refining posteriors", unit="step", leave=False)
    try:
        for i in range(0, mels.shape[0], batch):
            mu, _ = refine_posterior(model, mels[i:i + batch], config, magnitude,
                                     on_step=bar.update if bar else None)  # (b, D)
            out.append(mu.cpu())
    finally:
        if bar is not None:
            bar.close()
    return torch.cat(out)  # (N, D)


def heard_reconstruction(model: ConvVAE, mels: torch.Tensor, config: TrainConfig,
                         magnitude: Callable[[torch.Tensor], torch.Tensor] | None = None,
                         batch: int = REFINE_BATCH, progress: bool = False) -> torch.Tensor:
    """What a run plays of mels ``(N, 1, n_mels, T)``: :func:`heard_means` decoded in eval mode,
    ``(N, 1, n_mels, T)`` on the CPU, in batches of ``batch`` clips (the encoder's mean as it
    is: :func:`sda_lab.training.diagnostics.reconstruct`). ``progress`` as in
    :func:`heard_means`. The model's mode is left as it was. Raises ``ValueError`` as
    :func:`refine_posterior` does."""
    mu = heard_means(model, mels, config, magnitude, batch, progress)  # (N, D)
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for i in range(0, mels.shape[0], batch):
                out.append(model.decode(mu[i:i + batch].to(device),
                                        mels[i:i + batch].shape).cpu())  # (b, 1, n_mels, T)
    finally:
        model.train(was_training)
    return torch.cat(out)  # (N, 1, n_mels, T)
