"""Mel inversion: mel power -> linear power spectrogram -> waveform.

Two steps, each a function called by keyword, composed by
:meth:`sda_lab.representation.spectrogram.AudioSpectrogram.mel_to_waveform` as librosa's
``feature.inverse.mel_to_audio`` composes ``mel_to_stft`` and ``griffinlim``:

- :func:`mel_to_linear`: the linear power spectrogram ``S >= 0`` whose mel ``fb @ S`` is the
  given one, by clipped least squares (``"lstsq"``, the reference plan's, what torchaudio's
  ``InverseMelScale`` computes) or by non-negative least squares (``"nnls"``).
- :func:`griffin_lim`: a waveform whose STFT magnitude is that spectrogram's.

How much each step loses is measured in ``benchmarks/RESULTS.md`` (section "Mel inversion")
and notebook 01.
"""

from __future__ import annotations

import math
import warnings
from typing import Optional, Tuple

import torch

MEL_TO_LINEAR_METHODS = ("nnls", "lstsq")
# mel_to_waveform's methods: the two above, and "nnls_long", the same NNLS + Griffin-Lim with
# the longer iteration counts of SpectrogramConfig.quality_nnls_iters / quality_griffin_lim_iters.
INVERSION_METHODS = ("nnls", "lstsq", "nnls_long")


def check_method(method: str, allowed: tuple[str, ...] = INVERSION_METHODS,
                 name: str = "method") -> str:
    """Return ``method`` when it is one of ``allowed``.

    Raises
    ------
    ValueError
        If ``method`` is not in ``allowed``.
    """
    if method not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {method!r}")
    return method


def fb_pseudo_inverse(fb: torch.Tensor) -> torch.Tensor:
    """Moore-Penrose pseudo-inverse of a filterbank ``(n_mels, n_stft)`` -> ``(n_stft, n_mels)``.

    ``pinv @ mel`` is the minimum-norm least-squares answer that ``torch.linalg.lstsq`` (and
    torchaudio's ``InverseMelScale``) compute on every call; computed once, in float64.
    """
    return torch.linalg.pinv(fb.double()).to(fb.dtype).contiguous()  # (n_stft, n_mels)


def nnls_step(fb: torch.Tensor) -> torch.Tensor:
    """Per-bin FISTA step ``1 / (fb.T @ fb @ 1)`` of a filterbank ``fb >= 0`` ``(n_mels, n_stft)``.

    ``diag(fb.T @ fb @ 1)`` majorizes ``fb.T @ fb`` when ``fb >= 0`` (the bound behind Lee &
    Seung's 2001 multiplicative updates), so each bin gets its own step: the narrow
    low-frequency filters need not wait for the wide high ones, as with the scalar step
    ``1 / ||fb||_2^2``. Bins no filter covers get step 0. Returns ``(n_stft,)``.
    """
    d = fb.T @ fb.sum(dim=1)  # (n_stft,)
    return torch.where(d > 0, 1.0 / d.clamp(min=1e-30), torch.zeros_like(d))


def nnls_fista_steps(fb: torch.Tensor, fbt: torch.Tensor, y0: torch.Tensor, x: torch.Tensor,
                     y: torch.Tensor, t: float, step: torch.Tensor, n_iter: int
                     ) -> Tuple[torch.Tensor, torch.Tensor, float]:
    """``n_iter`` FISTA steps (Beck & Teboulle 2009) for ``min ||fb @ X - y0||^2, X >= 0``,
    every frame a column, from the iterate ``x``, the momentum point ``y`` and ``t`` (a start:
    ``(x0, x0, 1.0)``); returns the new ``(x, y, t)``, so the steps can be split over calls.

    ``fb (n_mels, n_stft)`` and ``fbt`` its transpose (dense, or sparse CSR copies: a mel
    filterbank has at most two non-zeros per STFT bin), ``y0 (n_mels, N)``, ``x, y
    (n_stft, N)``, ``step (n_stft, 1)`` (:func:`nnls_step`). TorchScript-able (exported files
    run it).
    """
    for _ in range(n_iter):
        grad = fbt @ (fb @ y - y0)  # (n_stft, N)
        x_next = torch.addcmul(y, step, grad, value=-1.0).clamp_(min=0.0)  # (n_stft, N)
        t_next = (1.0 + math.sqrt(1.0 + 4.0 * t * t)) / 2.0
        # momentum y = x_next + (t - 1) / t_next * (x_next - x), as one fused lerp
        y = torch.lerp(x, x_next, 1.0 + (t - 1.0) / t_next)  # (n_stft, N)
        x = x_next
        t = t_next
    return x, y, t


def _nnls_fista(fb: torch.Tensor, y0: torch.Tensor, x: torch.Tensor, step: torch.Tensor,
                n_iter: int) -> torch.Tensor:
    """FISTA for ``min ||fb @ X - y0||^2, X >= 0`` (:func:`nnls_fista_steps`), every frame a
    column: ``fb (n_mels, n_stft)``, ``y0 (n_mels, N)``, start ``x (n_stft, N)`` ->
    ``(n_stft, N)``; sparse filterbank copies on the CPU (faster there)."""
    if y0.device.type == "cpu":
        with warnings.catch_warnings():  # "sparse CSR support is in beta": used for matmul only
            warnings.simplefilter("ignore")
            fb, fbt = fb.to_sparse_csr(), fb.T.contiguous().to_sparse_csr()
    else:
        fbt = fb.T
    return nnls_fista_steps(fb, fbt, y0, x, x, 1.0, step[:, None], n_iter)[0]


def mel_to_linear(mel_power: torch.Tensor, *, fb: torch.Tensor, method: str = "nnls",
                  nnls_iters: int | None = None, pinv: torch.Tensor | None = None,
                  step: torch.Tensor | None = None) -> torch.Tensor:
    """Estimate the linear power spectrogram whose mel is ``mel_power``.

    Parameters
    ----------
    mel_power : Tensor
        ``(..., n_mels, T)`` mel power (not normalised: ``AudioSpectrogram.mel_to_power``).
    fb : Tensor
        ``(n_mels, n_stft)`` non-negative filterbank, ``mel_power = fb @ S``
        (``AudioSpectrogram.fb``).
    method : str
        ``"nnls"``: non-negative least squares ``min ||fb @ S - mel||^2, S >= 0`` by
        ``nnls_iters`` FISTA steps (Beck & Teboulle 2009) with the per-bin step of
        :func:`nnls_step`, started from the clipped pseudo-inverse answer (as librosa's
        ``util.nnls`` starts L-BFGS-B from the clipped least-squares answer).
        ``"lstsq"``: clipped least squares, ``relu(lstsq(fb, mel))``, solved on the CPU per call
        (the reference plan's path: torchaudio's ``InverseMelScale``, driver ``"gels"``).
    nnls_iters : int, optional
        FISTA steps for ``"nnls"`` (default 100); 0 returns the clipped pseudo-inverse start.
        Not used by ``"lstsq"``.
    pinv, step : Tensor, optional
        ``fb``'s :func:`fb_pseudo_inverse` ``(n_stft, n_mels)`` and :func:`nnls_step`
        ``(n_stft,)``, precomputed (``AudioSpectrogram`` keeps both as buffers); computed here
        when omitted.

    Returns
    -------
    Tensor
        ``(..., n_stft, T)``, non-negative, on ``mel_power``'s device with its dtype, stored
        frame-major as ``torch.stft`` returns it (Griffin-Lim's element-wise steps run faster so).

    Raises
    ------
    ValueError
        On an unknown method, ``nnls_iters`` negative or given with ``"lstsq"``, or a
        ``mel_power`` whose band axis (``-2``) does not match ``fb``'s ``n_mels``.
    """
    method = check_method(method, MEL_TO_LINEAR_METHODS)
    if method == "lstsq" and nnls_iters:
        raise ValueError(f"nnls_iters applies to method='nnls' only, got {nnls_iters} "
                         "with method='lstsq'")
    nnls_iters = 100 if nnls_iters is None else nnls_iters
    if nnls_iters < 0:
        raise ValueError(f"nnls_iters must be 0 or more, got {nnls_iters}")
    if mel_power.dim() < 2 or mel_power.shape[-2] != fb.shape[0]:
        raise ValueError(f"mel_power must have shape (..., {fb.shape[0]}, frames) for this "
                         f"filterbank, got {tuple(mel_power.shape)}")
    *lead, n_mels, frames = mel_power.shape
    n_stft = fb.shape[1]
    batch = math.prod(lead)
    fb = fb.to(mel_power)  # no copy when already on mel_power's device and dtype
    target = mel_power.reshape(batch, n_mels, frames)  # (B, n_mels, T)
    if method == "lstsq":
        cpu = target.cpu()
        linear = torch.relu(torch.linalg.lstsq(fb.cpu()[None], cpu, driver="gels").solution)
        return linear.to(mel_power.device).reshape(*lead, n_stft, frames)  # (..., n_stft, T)
    pinv = fb_pseudo_inverse(fb) if pinv is None else pinv.to(mel_power)  # (n_stft, n_mels)
    columns = target.transpose(0, 1).reshape(n_mels, batch * frames)  # (n_mels, B*T)
    linear = torch.relu(pinv @ columns)  # (n_stft, B*T)
    if nnls_iters > 0:
        step = nnls_step(fb) if step is None else step.to(mel_power)  # (n_stft,)
        linear = _nnls_fista(fb, columns, linear, step, nnls_iters)  # (n_stft, B*T)
    out = linear.reshape(n_stft, batch, frames).permute(1, 2, 0).contiguous()  # (B, T, n_stft)
    return out.transpose(1, 2).reshape(*lead, n_stft, frames)  # (..., n_stft, T)


def griffin_lim(spectrogram: torch.Tensor, *, n_fft: int, hop_length: int, n_iter: int = 64,
                momentum: float = 0.99, length: int | None = None, power: float = 2.0,
                window: torch.Tensor | None = None, win_length: int | None = None,
                init_phase: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Waveform whose STFT magnitude is ``spectrogram ** (1 / power)``, by fast Griffin-Lim.

    Griffin & Lim (1984) with the momentum of Perraudin, Balazs & Sondergaard (2013), step for
    step torchaudio's ``functional.griffinlim`` (itself ported from librosa), plus a start
    phase: torchaudio's has no way to take one, and a phase-retrieval method (PGHI) refined by
    Griffin-Lim needs it. With ``init_phase=None`` the result equals torchaudio's for the same
    random state.

    Parameters
    ----------
    spectrogram : Tensor
        ``(..., n_fft // 2 + 1, T)`` non-negative linear spectrogram ``|S| ** power``.
    n_fft, hop_length : int
        STFT size and hop, in samples.
    n_iter : int
        Iterations (0 inverts ``init_phase`` as it is).
    momentum : float
        In ``[0, 1)``; 0 is the original Griffin-Lim. torchaudio's default 0.99.
    length : int, optional
        Samples to return (passed to the inverse STFT); default ``(T - 1) * hop_length``.
    power : float
        Exponent of ``spectrogram``: 2 for power (default), 1 for magnitude.
    window : Tensor, optional
        ``(win_length,)``; default ``torch.hann_window(win_length)``.
    win_length : int, optional
        Default ``n_fft``.
    init_phase : Tensor, optional
        Start phase, real (radians) or complex (unit or not: only its angle is used), the
        spectrogram's shape. Default: random, ``torch.rand`` complex, as torchaudio.
    generator : torch.Generator, optional
        For the random start phase; default the global generator.

    Returns
    -------
    Tensor
        ``(..., samples)`` on ``spectrogram``'s device with its dtype.

    Raises
    ------
    ValueError
        On ``momentum`` outside ``[0, 1)``, a negative ``n_iter``, non-positive ``power``, a
        frequency axis that is not ``n_fft // 2 + 1``, or an ``init_phase`` of another shape.
    """
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if n_iter < 0:
        raise ValueError(f"n_iter must be 0 or more, got {n_iter}")
    if power <= 0:
        raise ValueError(f"power must be positive, got {power}")
    if spectrogram.dim() < 2 or spectrogram.shape[-2] != n_fft // 2 + 1:
        raise ValueError(f"spectrogram must have shape (..., {n_fft // 2 + 1}, frames) for "
                         f"n_fft={n_fft}, got {tuple(spectrogram.shape)}")
    win_length = win_length or n_fft
    if window is None:
        window = torch.hann_window(win_length, device=spectrogram.device, dtype=spectrogram.dtype)
    window = window.to(spectrogram)
    shape = spectrogram.shape
    magnitude = spectrogram.reshape(-1, *shape[-2:]).pow(1 / power)  # (B, n_stft, T)
    complex_dtype = torch.complex128 if magnitude.dtype == torch.float64 else torch.complex64
    if init_phase is None:
        angles = torch.rand(magnitude.shape, dtype=complex_dtype, device=magnitude.device,
                            generator=generator)  # (B, n_stft, T), torchaudio's start
    else:
        if init_phase.shape != shape:
            raise ValueError(f"init_phase must have the spectrogram's shape {tuple(shape)}, "
                             f"got {tuple(init_phase.shape)}")
        phase = init_phase.to(magnitude.device).reshape(magnitude.shape)
        phase = phase.angle() if phase.is_complex() else phase.to(magnitude.dtype)
        angles = torch.polar(torch.ones_like(magnitude), phase).to(complex_dtype)  # (B, n_stft, T)
    angles, _ = griffin_lim_steps(magnitude, angles, torch.zeros_like(angles), window, n_fft,
                                  hop_length, n_iter, momentum, length)
    waveform = torch.istft(magnitude * angles, n_fft, hop_length, win_length, window,
                           length=length)  # (B, samples)
    return waveform.reshape(*shape[:-2], waveform.shape[-1])  # (..., samples)


def griffin_lim_steps(magnitude: torch.Tensor, angles: torch.Tensor, previous: torch.Tensor,
                      window: torch.Tensor, n_fft: int, hop_length: int, n_iter: int,
                      momentum: float, length: Optional[int]
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``n_iter`` fast Griffin-Lim steps (:func:`griffin_lim`'s loop) on ``magnitude``
    ``(B, n_stft, T)`` from ``angles`` (complex ``(B, n_stft, T)``) and the last rebuilt STFT
    ``previous`` (zeros at a start); returns the new ``(angles, previous)``, so the steps can be
    split over calls; the waveform is ``istft(magnitude * angles)``. ``window`` ``(win_length,)``;
    ``length``: the inverse STFT's samples (None: ``(T - 1) * hop_length``). TorchScript-able
    (exported files run it).
    """
    alpha = momentum / (1.0 + momentum)
    win_length = window.shape[0]
    for _ in range(n_iter):
        inverse = torch.istft(magnitude * angles, n_fft, hop_length, win_length, window,
                              length=length)  # (B, samples)
        rebuilt = torch.stft(inverse, n_fft, hop_length, win_length, window, center=True,
                             pad_mode="reflect", normalized=False, onesided=True,
                             return_complex=True)  # (B, n_stft, T)
        angles = rebuilt - previous * alpha if alpha > 0 else rebuilt
        angles = angles.div(angles.abs().add(1e-16))  # unit phase
        previous = rebuilt
    return angles, previous
