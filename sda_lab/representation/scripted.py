"""The package's mel -> waveform inversion as one TorchScript-able module, for exported files.

:class:`ScriptedInverter` holds what the package's inversion reads (filterbank, pseudo-inverse,
NNLS step, window, the run's learned inverse mel) and runs the package's own steps, in pieces
that can be spread over several calls:

    mel         (B, 1, n_mels, T)   normalised mel
    mel_power   (B, n_mels, T)      :meth:`AudioSpectrogram.mel_to_power`
    columns     (n_stft, B*T)       one frame per column, as ``inversion.mel_to_linear`` solves
    magnitude   (B, n_stft, T)      linear STFT magnitude
    angles      (B, n_stft, T)      complex, unit modulus: the phase Griffin-Lim refines

The magnitude is :func:`sda_lab.representation.inverse_mel.mel_to_magnitude`'s: sqrt of NNLS
(:func:`sda_lab.representation.inversion.nnls_fista_steps`, the package's FISTA) or of the
harmonic start (:mod:`sda_lab.representation.harmonic`), plus the learned residual where the
run has one. The phase is fast Griffin-Lim
(:func:`sda_lab.representation.inversion.griffin_lim_steps`) from a given start. PGHI
(:func:`sda_lab.representation.phase.pghi_phase`), the start the package's own audio path
uses, integrates with a heap in numba and cannot be scripted: callers start from zero phase or
from a phase carried over from earlier audio.
"""

from __future__ import annotations

import copy
import warnings
from typing import Tuple

import torch
from torch import nn

from .harmonic import (HarmonicConfig, harmonic_comb_core, multiplicative_nnls_steps,
                       subharmonic_f0_core)
from .inverse_mel import STARTS, _floor
from .inversion import griffin_lim_steps, nnls_fista_steps

__all__ = ["ScriptedInverter", "trace_method"]

GRIFFIN_LIM_MOMENTUM = 0.99  # inversion.griffin_lim's and phase.griffin_lim's default



MAX_ABS = 4.0  # |sample| above this (+12 dB over full scale) is refused as not audio in [-1, 1]


def _dtype_name(x: torch.Tensor) -> str:
    names = {torch.float64: "float64", torch.float16: "float16", torch.bfloat16: "bfloat16",
             torch.int16: "int16", torch.int32: "int32", torch.int64: "int64",
             torch.uint8: "uint8", torch.int8: "int8", torch.bool: "bool"}
    for dtype, name in names.items():
        if x.dtype == dtype:
            return name
    return "another dtype"


def check_input(x: torch.Tensor, channels: int, what: str) -> None:
    """Inside an exported file: ``x`` is ``(batch, channels, samples)`` float32, finite;
    ``ValueError`` naming ``what`` and what came otherwise."""
    if x.dim() != 3 or x.shape[1] != channels or x.shape[2] < 1:
        raise ValueError(what + " expects (batch, " + str(channels) + ", samples) with "
                         "samples >= 1, got " + str(x.shape))
    if x.dtype != torch.float32:
        raise ValueError(what + " expects float32 values, got " + _dtype_name(x)
                         + " (integer PCM: divide by its full scale, 32768 for int16)")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(what + " got NaN or infinite values")


def check_audio(x: torch.Tensor, what: str, max_abs: float) -> None:
    """:func:`check_input` for mono audio, whose peak is at most ``max_abs`` (audio in [-1, 1]
    with headroom; integer PCM cast to float is far above)."""
    check_input(x, 1, what)
    peak = float(x.abs().max())
    if peak > max_abs:
        raise ValueError(what + " expects float audio in [-1, 1], got a peak of "
                         + str(peak) + " (integer PCM not scaled to [-1, 1]?)")


class _Call(nn.Module):
    """A module around one bound method, so the method can be traced."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def trace_method(fn, example: torch.Tensor):
    """``torch.jit.trace`` of a module or bound method on ``example``; the package's input
    checks (which read tensors as bools) run once while tracing and are not in the trace. A
    module is traced as a frozen copy (on the CPU, eval mode, no gradients): the caller's
    module is left as it was, and what the trace returns carries no autograd graph."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = (copy.deepcopy(fn).cpu().eval().requires_grad_(False) if isinstance(fn, nn.Module)
                  else _Call(fn))
        return torch.jit.trace(module, example, check_trace=False)


class _Identity(nn.Module):
    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return torch.zeros(0)


class ScriptedInverter(nn.Module):
    """Mel -> magnitude -> waveform with the package's steps, scriptable and in pieces.

    Parameters
    ----------
    spec : AudioSpectrogram
        The representation.
    inverse : InverseMel or None
        The run's learned inverse mel: its network, start (``"nnls"``/``"harmonic"``) and
        NNLS steps; None: ``start`` alone, with ``spec.config.nnls_iters`` NNLS steps (what
        :func:`~sda_lab.representation.inverse_mel.mel_to_magnitude` does without one).
    start : str
        Without ``inverse``: ``"nnls"`` (default) or ``"harmonic"``; with one, its own start.
    gl_iters : int, optional
        Griffin-Lim iterations; default ``spec.config.griffin_lim_iters``.
    nnls_iters : int, optional
        FISTA steps; default the inverse's, else ``spec.config.nnls_iters``.

    Raises
    ------
    ValueError
        An inverse trained on another spectrogram config, or ``gl_iters`` or ``nnls_iters``
        below 0.
    """

    def __init__(self, spec, inverse=None, gl_iters: int | None = None,
                 nnls_iters: int | None = None, start: str = "nnls") -> None:
        super().__init__()
        c = spec.config
        if inverse is not None:
            inverse.check_spectrogram(spec)
        gl_iters = c.griffin_lim_iters if gl_iters is None else int(gl_iters)
        if gl_iters < 0:
            raise ValueError(f"gl_iters must be 0 or more, got {gl_iters}")
        self.n_fft, self.hop_length = int(c.n_fft), int(c.hop_length)
        self.n_mels, self.n_stft = int(c.n_mels), int(c.n_stft)
        self.sample_rate = int(c.sample_rate)
        self.gl_iters = gl_iters
        self.momentum = GRIFFIN_LIM_MOMENTUM
        self.start = str(start) if inverse is None else str(inverse.start)
        if self.start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {self.start!r}")
        if nnls_iters is None:
            nnls_iters = c.nnls_iters if inverse is None else inverse.config.nnls_iters
        if nnls_iters < 0:
            raise ValueError(f"nnls_iters must be 0 or more, got {nnls_iters}")
        self.nnls_iters = int(nnls_iters)
        self.learned = inverse is not None
        self.floor = float(_floor(spec))
        h = HarmonicConfig()
        self.h_f0 = (float(h.f0_min), float(h.f0_max))
        self.h_sizes = (int(h.n_candidates), int(h.n_harmonics), int(h.iters))
        self.h_f_max, self.h_sigma = float(h.f_max), float(h.sigma_bins)
        self.h_floor = float(h.comb_floor)
        self.h_ramp = (float(h.ramp[0]), float(h.ramp[1]))
        self.h_harmonicity = (float(h.harmonicity[0]), float(h.harmonicity[1]))
        fb = spec.fb.detach().float().contiguous()
        self.register_buffer("fb", fb.clone())  # (n_mels, n_stft)
        self.register_buffer("fb_pinv", spec.fb_pinv.detach().float().clone())  # (n_stft, n_mels)
        step = spec.nnls_step.detach().float().clone()[:, None]  # (n_stft, 1)
        self.register_buffer("nnls_step", step)
        with warnings.catch_warnings():  # "sparse CSR support is in beta": matmul only
            warnings.simplefilter("ignore")
            # the package's FISTA multiplies by sparse copies on the CPU (same rounding)
            self.register_buffer("fb_csr", fb.to_sparse_csr())  # (n_mels, n_stft)
            self.register_buffer("fbt_csr", fb.t().contiguous().to_sparse_csr())
        self.register_buffer("window", spec.window.detach().float().clone())  # (n_fft,)
        mel = torch.rand(2, 1, self.n_mels, 8)  # (2, 1, n_mels, T)
        self.to_power = trace_method(spec.mel_to_power, mel)
        # a frozen copy, as trace_method makes
        self.net = (copy.deepcopy(inverse.net).cpu().eval().requires_grad_(False)
                    if inverse is not None else _Identity())

    # -- magnitude, in pieces --------------------------------------------------------------

    def mel_power(self, mel: torch.Tensor) -> torch.Tensor:
        """Normalised mel ``(B, 1, n_mels, T)`` -> mel power ``(B, n_mels, T)``."""
        return self.to_power(mel)

    @torch.jit.export
    def nnls_begin(self, mel_power: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(target (n_mels, B*T), start (n_stft, B*T))``: the frames as columns and the
        clipped pseudo-inverse start (``inversion.mel_to_linear``)."""
        b, m, t = mel_power.shape[0], mel_power.shape[1], mel_power.shape[2]
        target = mel_power.transpose(0, 1).reshape(m, b * t)  # (n_mels, B*T)
        return target, torch.relu(self.fb_pinv @ target)  # (n_stft, B*T)

    @torch.jit.export
    def nnls_steps(self, target: torch.Tensor, x: torch.Tensor, y: torch.Tensor, t: float,
                   n_iter: int) -> Tuple[torch.Tensor, torch.Tensor, float]:
        """``n_iter`` more FISTA steps from ``(x, y, t)`` (start: ``(x0, x0, 1.0)``)."""
        if target.device.type == "cpu":
            return nnls_fista_steps(self.fb_csr, self.fbt_csr, target, x, y, t,
                                    self.nnls_step, n_iter)
        return nnls_fista_steps(self.fb, self.fb.t(), target, x, y, t, self.nnls_step, n_iter)

    @torch.jit.export
    def columns_to_frames(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        """Columns ``(n_stft, B*T)`` -> ``(B, n_stft, T)``, stored frame-major as
        ``inversion.mel_to_linear`` returns it (Griffin-Lim's sums depend on the layout)."""
        frames = x.reshape(x.shape[0], batch, -1).permute(1, 2, 0).contiguous()  # (B, T, n_stft)
        return frames.transpose(1, 2)  # (B, n_stft, T)

    @torch.jit.export
    def harmonic_begin(self, mel_power: torch.Tensor, power: torch.Tensor
                       ) -> Tuple[torch.Tensor, torch.Tensor]:
        """The harmonic start's ``(numerator, start)`` ``(B, n_stft, T)`` from the NNLS power:
        pitch, comb, and ``fb^T y`` of the multiplicative updates."""
        power = power.clamp(min=0.0)
        f0, strength = subharmonic_f0_core(power.sqrt(), self.sample_rate, self.n_fft,
                                           self.h_f0[0], self.h_f0[1], self.h_sizes[0],
                                           self.h_sizes[1], self.h_f_max)  # (B, T) each
        comb = harmonic_comb_core(f0, self.n_stft, self.sample_rate, self.n_fft, self.h_sigma,
                                  self.h_ramp[0], self.h_ramp[1], self.h_floor, strength,
                                  self.h_harmonicity[0], self.h_harmonicity[1])  # (B, F, T)
        num = torch.einsum("mf,bmt->bft", self.fb, mel_power)  # (B, F, T)
        return num, power * comb

    @torch.jit.export
    def harmonic_steps(self, num: torch.Tensor, p: torch.Tensor, n_iter: int) -> torch.Tensor:
        """``n_iter`` more multiplicative updates of the harmonic start ``(B, n_stft, T)``."""
        return multiplicative_nnls_steps(self.fb, num, p, n_iter)

    @torch.jit.export
    def finish_magnitude(self, mel: torch.Tensor, power: torch.Tensor) -> torch.Tensor:
        """Start power ``(B, n_stft, T)`` -> magnitude: sqrt, plus the learned residual."""
        start = power.clamp(min=0.0).sqrt()  # (B, n_stft, T)
        if not self.learned:
            return start
        log_mag = torch.log(start + self.floor) + self.net(mel)  # (B, n_stft, T)
        return (torch.exp(log_mag) - self.floor).clamp(min=0.0)

    @torch.jit.export
    def magnitude(self, mel: torch.Tensor) -> torch.Tensor:
        """Normalised mel ``(B, 1, n_mels, T)`` -> magnitude ``(B, n_stft, T)`` in one go."""
        mel_power = self.mel_power(mel)  # (B, n_mels, T)
        target, x = self.nnls_begin(mel_power)
        x, _, _ = self.nnls_steps(target, x, x, 1.0, self.nnls_iters)
        power = self.columns_to_frames(x, mel.shape[0])  # (B, n_stft, T)
        if self.start == "harmonic":
            num, p = self.harmonic_begin(mel_power, power)
            power = self.harmonic_steps(num, p, self.h_sizes[2])
        return self.finish_magnitude(mel, power)

    # -- phase -----------------------------------------------------------------------------

    @torch.jit.export
    def angles_of(self, wave: torch.Tensor) -> torch.Tensor:
        """Unit-modulus STFT phase ``(B, n_stft, T)`` of ``wave (B, samples)``, zero where
        the STFT is zero (``phase.griffin_lim``'s start from a phase)."""
        spec = torch.stft(wave, self.n_fft, self.hop_length, self.n_fft, self.window,
                          center=True, pad_mode="reflect", normalized=False, onesided=True,
                          return_complex=True)  # (B, n_stft, T)
        return torch.polar(torch.ones_like(spec.real), spec.angle())

    @torch.jit.export
    def gl_steps(self, magnitude: torch.Tensor, angles: torch.Tensor, previous: torch.Tensor,
                 n_iter: int, length: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """``n_iter`` more fast Griffin-Lim steps: ``(angles, previous)`` (start:
        ``(angles0, zeros)``)."""
        return griffin_lim_steps(magnitude, angles, previous, self.window, self.n_fft,
                                 self.hop_length, n_iter, self.momentum, length)

    @torch.jit.export
    def waveform(self, magnitude: torch.Tensor, angles: torch.Tensor, length: int
                 ) -> torch.Tensor:
        """Inverse STFT of ``magnitude * angles``: ``(B, length)``."""
        return torch.istft(magnitude * angles, self.n_fft, self.hop_length, self.n_fft,
                           self.window, length=length)  # (B, length)

    @torch.jit.export
    def mel_to_waveform(self, mel: torch.Tensor, angles: torch.Tensor, length: int
                        ) -> torch.Tensor:
        """Mel ``(B, 1, n_mels, T)`` -> waveform ``(B, length)`` from start ``angles``."""
        mag = self.magnitude(mel)  # (B, n_stft, T)
        angles, _ = self.gl_steps(mag, angles, torch.zeros_like(angles), self.gl_iters, length)
        return self.waveform(mag, angles, length)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """:meth:`magnitude`."""
        return self.magnitude(mel)
