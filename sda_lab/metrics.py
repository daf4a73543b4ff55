"""Reconstruction-quality metrics between a reference waveform and an estimate.

Both are computed per clip on the linear STFT magnitude, so they judge what a listener hears
(magnitudes) and ignore phase, which Griffin-Lim cannot recover exactly.

- Spectral convergence (Sturmel & Daudet, 2011; used for Griffin-Lim by e.g. Arik et al., 2019):
  ``|| |S| - |S_hat| ||_F / || |S| ||_F``. 0 is perfect; 1 is as far off as silence.
- Log-spectral distance in dB: ``mean_t sqrt(mean_f (10 log10(|S|^2 / |S_hat|^2))^2)``.
"""

from __future__ import annotations

import torch

from ._checks import check_waveform


def _magnitudes(reference: torch.Tensor, estimate: torch.Tensor, n_fft: int, hop_length: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    ref = check_waveform(reference, n_fft, "reference").float()
    est = check_waveform(estimate, n_fft, "estimate").float()
    if ref.shape[0] != est.shape[0]:
        raise ValueError(f"batch sizes differ: reference {ref.shape[0]}, estimate {est.shape[0]}")
    n = min(ref.shape[-1], est.shape[-1])  # compare the overlap if lengths differ
    window = torch.hann_window(n_fft, device=ref.device)

    def mag(x: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(x[:, 0, :n], n_fft, hop_length, window=window, return_complex=True)
        return spec.abs()  # (B, n_fft // 2 + 1, frames)

    return mag(ref), mag(est.to(ref.device))


def spectral_convergence(reference: torch.Tensor, estimate: torch.Tensor, n_fft: int = 2048,
                         hop_length: int = 512) -> torch.Tensor:
    """Spectral convergence per clip, shape ``(B,)``; lower is better, 0 is exact."""
    s_ref, s_est = _magnitudes(reference, estimate, n_fft, hop_length)
    num = (s_ref - s_est).flatten(1).norm(dim=1)  # (B,)
    den = s_ref.flatten(1).norm(dim=1).clamp(min=1e-8)  # (B,)
    return num / den


def log_spectral_distance(reference: torch.Tensor, estimate: torch.Tensor, n_fft: int = 2048,
                          hop_length: int = 512, floor_db: float = -80.0) -> torch.Tensor:
    """Log-spectral distance in dB per clip, shape ``(B,)``; lower is better.

    Powers are floored ``floor_db`` below each clip's peak, so near-silent bins (where any
    estimate's ratio is meaningless) do not dominate.
    """
    s_ref, s_est = _magnitudes(reference, estimate, n_fft, hop_length)
    p_ref, p_est = s_ref.pow(2), s_est.pow(2)
    floor = p_ref.flatten(1).amax(dim=1).clamp(min=1e-12) * 10 ** (floor_db / 10)  # (B,)
    floor = floor[:, None, None]
    diff_db = 10 * torch.log10(p_ref.clamp(min=floor) / p_est.clamp(min=floor))  # (B, F, frames)
    return diff_db.pow(2).mean(dim=1).sqrt().mean(dim=1)  # (B,)
