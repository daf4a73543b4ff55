"""Latent dimensions, ranked and measured: which ones the model uses, and how far each moves
the decoded mel.

:func:`rank_dimensions` orders the dimensions as the explorer does (mean KL per dimension on the
clips, most informative first) and gives the aggregate posterior standard deviation that sets a
slider's range; :func:`dimension_effects` moves every ranked dimension from every posterior mean
and measures the change of the decoded mel. :mod:`sda_lab.studies.descriptors` names the dimensions
by what they do to the audio; :class:`sda_lab.interface.widgets.LatentExplorer` puts them on
sliders.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..model.losses import kl_per_dimension
from ..model.vae import ConvVAE, encode_dataset

__all__ = ["rank_dimensions", "dimension_effects"]


def rank_dimensions(model: ConvVAE, mels: torch.Tensor
                    ) -> tuple[list[int], torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rank latent dimensions as the explorer does: by mean KL per dimension on ``mels``.

    Returns ``(order, kl, mu, scale)``: dimension indices, most informative first; the mean KL
    per dimension ``(D,)`` in nats; posterior means ``(N, D)``; and the aggregate posterior
    standard deviation ``sqrt(var(mu) + mean(exp(logvar)))`` per dimension ``(D,)``.
    """
    mu, logvar = encode_dataset(model, mels)  # (N, D), (N, D)
    mu, logvar = mu.cpu(), logvar.cpu()
    kl = kl_per_dimension(mu, logvar).mean(0)  # (D,)
    order = torch.argsort(kl, descending=True).tolist()
    scale = (mu.var(0) + logvar.exp().mean(0)).sqrt()  # (D,)
    return order, kl, mu, scale


@torch.no_grad()
def dimension_effects(model: ConvVAE, mu: torch.Tensor, order: Sequence[int], scale: torch.Tensor,
                      n_sd: float = 2.0, batch: int = 256) -> torch.Tensor:
    """How much each latent dimension moves the decoded mel, from every start point.

    From each posterior mean ``mu (N, D)``, the dimension ``order[r]`` is moved by ``n_sd``
    aggregate posterior standard deviations (``scale (D,)``, as :func:`rank_dimensions` gives
    it) and the mean absolute change of the decoded mel is taken (the mel's units: dB scaled to
    [0, 1], or log1p). What the explorer shows when one slider moves
    (:meth:`sda_lab.interface.widgets.LatentExplorer.move_effect`), for all starts and dimensions
    at once.

    Returns ``(N, len(order))``: row ``i`` the start ``mu[i]``, column ``r`` the ``r``-th ranked
    dimension.

    Raises
    ------
    ValueError
        ``mu`` not ``(N >= 1, latent_dim)``, ``scale`` not ``(latent_dim,)``, ``n_sd`` <= 0 or a
        dimension in ``order`` outside ``[0, latent_dim)``.
    """
    d_lat = model.latent_dim
    if mu.dim() != 2 or mu.shape[0] < 1 or mu.shape[1] != d_lat:
        raise ValueError(f"mu must be (N >= 1, {d_lat}), got {tuple(mu.shape)}")
    if tuple(scale.shape) != (d_lat,):
        raise ValueError(f"scale must be ({d_lat},), got {tuple(scale.shape)}")
    if not n_sd > 0:
        raise ValueError(f"n_sd must be > 0, got {n_sd}")
    order = [int(d) for d in order]
    if any(not 0 <= d < d_lat for d in order):
        raise ValueError(f"order must hold dimensions in [0, {d_lat}), got {order}")
    model.eval()
    device = next(model.parameters()).device
    mu = mu.float().to(device)  # (N, D)
    n, k = len(mu), len(order)
    moves = torch.zeros(k, d_lat, device=device)  # (K, D)
    moves[torch.arange(k), torch.tensor(order)] = n_sd * scale.float().to(device)[order]
    per = max(1, batch // max(k, 1))  # whole starts per decode: about ``batch`` latents
    effects = []
    for i in range(0, n, per):
        m = mu[i:i + per]  # (c, D)
        base = model.decode(m)  # (c, 1, M, T)
        z = (m[:, None, :] + moves[None]).reshape(-1, d_lat)  # (c * K, D)
        moved = model.decode(z).reshape(len(m), k, *base.shape[1:])  # (c, K, 1, M, T)
        effects.append((moved - base[:, None]).abs().mean((2, 3, 4)))  # (c, K)
    return torch.cat(effects).cpu()  # (N, K)
