"""Phase retrieval from an STFT magnitude: PGHI initial phase, then fast Griffin-Lim.

Shapes throughout (the layout of ``torch.stft(..., return_complex=True)``):

    magnitude  (B, n_stft, T)   linear STFT magnitude |S| >= 0, n_stft = n_fft // 2 + 1
    phase      (B, n_stft, T)   radians, torch.stft's convention (frame-local time origin)
    waveform   (B, samples)

Phase-gradient heuristic integration (PGHI)
-------------------------------------------
Prusa, Balazs & Sondergaard (2017), "A Noniterative Method for Reconstruction of Phase from
STFT Magnitude", IEEE/ACM TASLP 25(5). For a Gaussian window ``exp(-pi t^2 / lambda)`` the
STFT's phase gradient is determined by the gradient of its log-magnitude; a Hann window of
length ``L`` is close to the Gaussian with ``lambda = 0.25645 L^2`` (the paper's Table I).
In the time-invariant phase convention (window centred at the frame's time origin), per hop
``a`` and FFT size ``M``:

    d phase / d frame  =  a M / lambda * d log|S| / d bin  +  2 pi a m / M     (tgrad)
    d phase / d bin    = -lambda / (a M) * d log|S| / d frame                   (fgrad)

(centred finite differences, as the paper's reference implementation in LTFAT's ``pghi.m`` and
``rtpghi.m``). The phase is then integrated with a max-heap: start at the largest coefficient,
always extend from the largest coefficient already reached to its four neighbours with the
trapezoidal rule, and restart from the largest coefficient not yet reached. Coefficients below
``tol`` times the largest (the paper's relative tolerance, 1e-5) get a random phase; they are
too small for their log-magnitude's derivative to mean anything. ``torch.stft`` puts the time
origin at the frame's first sample, half a window (``n_fft / 2``) before the window's centre,
which multiplies bin ``m`` by ``(-1)^m``; :func:`pghi_phase` returns that convention.

Fast Griffin-Lim
----------------
Perraudin, Balazs & Sondergaard (2013), "A fast Griffin-Lim algorithm", WASPAA: Griffin &
Lim's (1984) projections with the momentum ``alpha`` (0.99), as torchaudio's
``functional.griffinlim`` (:func:`sda_lab.representation.inversion.griffin_lim` runs them), started
from a chosen phase instead of a random one. How much PGHI buys against a random start:
``benchmarks/bench_hearing.py`` and ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import heapq
import math

import numba
import numpy as np
import torch

from . import inversion

__all__ = ["HANN_LAMBDA", "PHASE_INITS", "phase_gradients", "pghi_phase", "griffin_lim"]

HANN_LAMBDA = 0.25645  # lambda / L^2 of the Gaussian closest to a Hann window (Prusa 2017, Table I)
PHASE_INITS = ("pghi", "random", "zero")
_LOG_RANGE = 11.0  # log-magnitudes more than e^11 below the peak are floored (as LTFAT's pghi.m)


def _check_magnitude(magnitude: object, n_fft: int) -> torch.Tensor:
    if not isinstance(magnitude, torch.Tensor):
        raise TypeError(f"magnitude must be a torch.Tensor, got {type(magnitude).__name__}")
    n_stft = n_fft // 2 + 1
    if magnitude.dim() != 3 or magnitude.shape[1] != n_stft:
        raise ValueError(f"magnitude must have shape (batch, {n_stft}, frames) for n_fft={n_fft}, "
                         f"got {tuple(magnitude.shape)}")
    if magnitude.is_complex() or not magnitude.is_floating_point():
        raise ValueError(f"magnitude must be a real floating tensor, got {magnitude.dtype}")
    if magnitude.shape[0] == 0 or magnitude.shape[2] == 0:
        raise ValueError(f"magnitude is empty: shape {tuple(magnitude.shape)}")
    if not torch.isfinite(magnitude).all():
        raise ValueError(f"magnitude contains {int((~torch.isfinite(magnitude)).sum())} "
                         "non-finite values")
    if (magnitude < 0).any():
        raise ValueError(f"magnitude must be >= 0, got a minimum of {float(magnitude.min()):.3g}")
    return magnitude


def phase_gradients(magnitude: np.ndarray, n_fft: int, hop_length: int,
                    win_length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """PGHI's phase gradients of one magnitude ``(n_stft, T)`` (module docstring).

    Returns ``(tgrad, fgrad)``, both ``(n_stft, T)`` float64: the phase advance in radians per
    frame and per frequency bin, time-invariant convention (window centre as time origin).
    """
    lam = HANN_LAMBDA * (win_length or n_fft) ** 2
    logs = np.log(np.asarray(magnitude, dtype=np.float64) + np.finfo(np.float64).tiny)
    logs = np.maximum(logs, logs.max() - _LOG_RANGE)  # (n_stft, T)
    frames = logs.shape[1]
    d_time = np.gradient(logs, axis=1) if frames > 1 else np.zeros_like(logs)  # (n_stft, T)
    d_bin = np.gradient(logs, axis=0)  # (n_stft, T)
    d_bin[0] = d_bin[-1] = 0.0  # the spectrum is symmetric about DC and Nyquist
    bins = np.arange(logs.shape[0], dtype=np.float64)[:, None]  # (n_stft, 1)
    tgrad = hop_length * n_fft / lam * d_bin + 2 * np.pi * hop_length * bins / n_fft
    fgrad = -lam / (hop_length * n_fft) * d_time
    return tgrad, fgrad


@numba.njit(cache=True)
def _heap_integrate(mag: np.ndarray, tgrad: np.ndarray, fgrad: np.ndarray, tol: float,
                    random_phase: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """PGHI's heap integration; every argument ``(n_stft, T)`` but ``tol``; returns the phase."""
    n_bins, frames = mag.shape
    phase = random_phase.copy()
    if mag.max() <= 0.0:
        return phase
    done = mag < tol * mag.max()
    order = np.argsort(-mag.ravel())
    start = 0
    heap = [(0.0, 0)]
    heap.pop()
    while True:
        while start < order.size and done[order[start] // frames, order[start] % frames]:
            start += 1
        if start >= order.size:
            break
        first = order[start]
        m0, n0 = first // frames, first % frames
        done[m0, n0] = True
        phase[m0, n0] = 0.0
        heapq.heappush(heap, (-mag[m0, n0], first))
        while len(heap) > 0:
            _, idx = heapq.heappop(heap)
            m, n = idx // frames, idx % frames
            if n + 1 < frames and not done[m, n + 1]:
                phase[m, n + 1] = phase[m, n] + 0.5 * (tgrad[m, n] + tgrad[m, n + 1])
                done[m, n + 1] = True
                heapq.heappush(heap, (-mag[m, n + 1], idx + 1))
            if n > 0 and not done[m, n - 1]:
                phase[m, n - 1] = phase[m, n] - 0.5 * (tgrad[m, n] + tgrad[m, n - 1])
                done[m, n - 1] = True
                heapq.heappush(heap, (-mag[m, n - 1], idx - 1))
            if m + 1 < n_bins and not done[m + 1, n]:
                phase[m + 1, n] = phase[m, n] + 0.5 * (fgrad[m, n] + fgrad[m + 1, n])
                done[m + 1, n] = True
                heapq.heappush(heap, (-mag[m + 1, n], idx + frames))
            if m > 0 and not done[m - 1, n]:
                phase[m - 1, n] = phase[m, n] - 0.5 * (fgrad[m, n] + fgrad[m - 1, n])
                done[m - 1, n] = True
                heapq.heappush(heap, (-mag[m - 1, n], idx - frames))
    return phase


def pghi_phase(magnitude: torch.Tensor, n_fft: int, hop_length: int,
               win_length: int | None = None, tol: float = 1e-5,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Phase-gradient heuristic integration (Prusa et al. 2017): a phase for ``magnitude``.

    Parameters
    ----------
    magnitude : Tensor
        ``(B, n_fft // 2 + 1, T)`` linear STFT magnitude of a Hann-windowed STFT (any device;
        the integration runs on the CPU, compiled with numba).
    n_fft, hop_length, win_length : int
        The STFT's sizes (``win_length`` defaults to ``n_fft``).
    tol : float
        Relative tolerance: coefficients below ``tol`` times the clip's largest get a uniformly
        random phase from ``generator`` (default: torch's global generator).

    Returns
    -------
    Tensor
        ``(B, n_stft, T)`` phase in radians on ``magnitude``'s device, float32, in
        ``torch.stft``'s convention.

    Raises
    ------
    TypeError, ValueError
        On a non-tensor, a wrong shape, a complex or integer dtype, NaN/Inf, negative values, or
        ``tol`` outside (0, 1).
    """
    mag = _check_magnitude(magnitude, n_fft)
    if not 0 < tol < 1:
        raise ValueError(f"tol must be in (0, 1), got {tol}")
    rand = 2 * math.pi * torch.rand(mag.shape, generator=generator, dtype=torch.float64)
    sign = np.pi * np.arange(mag.shape[1], dtype=np.float64)[:, None]  # (n_stft, 1): (-1)^m
    out = []
    for b, clip in enumerate(mag.detach().cpu().double().numpy()):
        tgrad, fgrad = phase_gradients(clip, n_fft, hop_length, win_length)
        phase = _heap_integrate(clip, tgrad, fgrad, tol, rand[b].numpy())  # (n_stft, T)
        out.append(phase + sign)
    return torch.from_numpy(np.stack(out)).float().to(magnitude.device)  # (B, n_stft, T)


def griffin_lim(magnitude: torch.Tensor, n_fft: int, hop_length: int, n_iter: int = 64,
                init: str | torch.Tensor = "pghi", momentum: float = 0.99,
                length: int | None = None, win_length: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Fast Griffin-Lim (Perraudin et al. 2013) from a chosen initial phase.

    The iterations are :func:`sda_lab.representation.inversion.griffin_lim`'s; this chooses the
    start.

    Parameters
    ----------
    magnitude : Tensor
        ``(B, n_fft // 2 + 1, T)`` linear STFT magnitude (not power), Hann window.
    n_iter : int
        Projections onto consistent spectrograms (0: the initial phase's inverse STFT).
    init : str or Tensor
        ``"pghi"`` (:func:`pghi_phase`), ``"random"`` (uniform, from ``generator``), ``"zero"``,
        or a phase ``(B, n_stft, T)`` in radians (for example the previous render's, to
        warm-start).
    momentum : float
        Fast Griffin-Lim's ``alpha`` in [0, 1) (0: Griffin & Lim's original algorithm); 0.99 as
        torchaudio's GriffinLim.
    length : int, optional
        Samples of the result (default ``(T - 1) * hop_length``).

    Returns
    -------
    Tensor
        ``(B, samples)`` waveform on ``magnitude``'s device, float32.

    Raises
    ------
    TypeError, ValueError
        On a bad magnitude (see :func:`pghi_phase`), an unknown ``init``, a phase of another
        shape, a negative ``n_iter``, or ``momentum`` outside [0, 1).
    """
    mag = _check_magnitude(magnitude, n_fft).float()
    if n_iter < 0:
        raise ValueError(f"n_iter must be 0 or more, got {n_iter}")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    win_length = win_length or n_fft
    if isinstance(init, torch.Tensor):
        if init.shape != mag.shape:
            raise ValueError(f"init phase must have the magnitude's shape {tuple(mag.shape)}, "
                             f"got {tuple(init.shape)}")
        phase = init.to(mag.device).float()  # (B, n_stft, T)
    elif init == "pghi":
        phase = pghi_phase(mag, n_fft, hop_length, win_length, generator=generator)
    elif init == "random":
        phase = 2 * math.pi * torch.rand(mag.shape, generator=generator).to(mag.device)
    elif init == "zero":
        phase = torch.zeros_like(mag)
    else:
        raise ValueError(f"init must be one of {PHASE_INITS} or a phase tensor, got {init!r}")
    return inversion.griffin_lim(mag, n_fft=n_fft, hop_length=hop_length, n_iter=n_iter,
                                 momentum=momentum, length=length, power=1.0,
                                 win_length=win_length, init_phase=phase)  # (B, samples)
