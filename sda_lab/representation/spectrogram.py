"""Waveform <-> normalised log-mel spectrogram (reference plan: ``audio/spectrogram.py``).

The VAE never sees audio, only this representation, so it has to be (a) a faithful, invertible
picture of the sound and (b) inside what the decoder can output. Shapes throughout:

    waveform  (B, 1, samples)   float, mono, nominally in [-1, 1]
    mel       (B, 1, n_mels, T) float in [0, 1], T = samples // hop_length + 1

Where this differs from the reference plan
------------------------------------------
The plan normalises with ``log1p(mel)`` and lets the VAE decoder end in a Sigmoid, whose outputs
lie in (0, 1). But ``log1p`` of the power mel of a 0.5-amplitude 440 Hz sine already peaks near
11, so a sigmoid decoder could never reproduce loud sounds. Both scales below divide by, or
measure against, one fixed constant, the Parseval bound ``max_mel_power = n_fft * sum(window**2)``.

Why that constant: for any signal with ``|x| <= 1`` Parseval gives, per frame,
``sum_k |X_k|^2 <= n_fft * sum_n (x_n w_n)^2 <= n_fft * sum_n w_n^2``, and every mel band is a
sum of STFT powers with triangle weights ``<= 1`` (``norm=None``). So no band of full-scale audio
can exceed ``n_fft * sum(w**2)`` (``2048 * 768`` for the defaults, Hann window).

Two scales (``SpectrogramConfig.scale``)
----------------------------------------
``"log1p"`` (default, the plan's compression): ``mel = log1p(power) / log1p(max_mel_power)``.
Full-scale audio lands in [0, 1]; louder audio can exceed 1. Inverted exactly by
``expm1(mel * log_scale)``.

``"db"``: ``mel = clamp((10 log10(power / max_mel_power) - db_floor) / -db_floor, 0, 1)``, a
decibel scale with 0 dB at the Parseval bound and ``db_floor`` (default -100 dB) at 0. Inverted
exactly above the floor, ``power = max_mel_power * 10 ** ((mel * -db_floor + db_floor) / 10)``;
a value at or below 0 (the floor) inverts to **zero power**, not to the floor's power, so
Griffin-Lim gets true silence there. Power above the bound (louder than full scale) is clipped
to 1.

Why offer both: ``log1p(p)`` is nearly linear for ``p < 1``, and quiet recordings keep most mel
power there, so their log1p mels crowd near 0 and a per-element MSE between them is tiny next to
a KL term; the dB scale spreads the same audio wider. :func:`value_stats` measures the spread;
notebook 01 measures it on the synthetic set and on the bundled examples and shows both
histograms.

Inversion (:mod:`sda_lab.representation.inversion`)
------------------------------------
``mel_to_waveform`` undoes the value map, estimates the linear power spectrogram
(:func:`~sda_lab.representation.inversion.mel_to_linear`), then recovers a phase
(:func:`~sda_lab.representation.inversion.griffin_lim`). Methods, by algorithm:

- ``"nnls"`` (default): the clipped pseudo-inverse answer, then ``nnls_iters`` FISTA steps of
  non-negative least squares, then ``griffin_lim_iters`` Griffin-Lim iterations;
- ``"lstsq"``: the reference plan's path, clipped least squares (torchaudio's
  ``InverseMelScale``) + ``griffin_lim_iters`` iterations;
- ``"nnls_long"``: as ``"nnls"`` with ``quality_nnls_iters`` and ``quality_griffin_lim_iters``.

Spectral convergence and time of each, against librosa's ``mel_to_audio``:
``benchmarks/RESULTS.md`` and notebook 01.

The plan's GriffinLim returns ``(T - 1) * hop`` samples, so ``mel_to_waveform`` takes the
wanted ``length`` and passes it to the final inverse STFT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torchaudio.transforms as T
from torch import nn

from ..core._checks import check_frames, check_mel, check_nonempty, check_waveform
from .inversion import (INVERSION_METHODS, check_method, fb_pseudo_inverse, griffin_lim,
                        mel_to_linear, nnls_step)

SCALES = ("log1p", "db")

__all__ = ["SCALES", "INVERSION_METHODS", "SpectrogramConfig", "AudioSpectrogram", "value_stats"]


@dataclass
class SpectrogramConfig:
    """Parameters of the mel representation; the STFT/mel defaults are the reference plan's.

    ``scale`` and ``db_floor`` choose the value map (module docstring); ``inversion`` and the
    ``*_iters`` fields choose how :meth:`AudioSpectrogram.mel_to_waveform` inverts. The
    ``quality_*`` fields are the iteration counts of method ``"nnls_long"`` (checkpoints store
    the config under these field names).

    Raises
    ------
    ValueError
        On non-positive sizes, ``hop_length > n_fft``, a frequency range outside
        ``[0, sample_rate / 2]``, an unknown ``scale`` or ``inversion``, a ``db_floor`` that is
        not a finite negative number of dB, or negative iteration counts.
    """

    sample_rate: int = 48_000
    n_fft: int = 2048  # 42.7 ms window: resolves 23 Hz bins, enough for low notes
    hop_length: int = 512  # 75% overlap, what Griffin-Lim needs to converge well
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float | None = None  # None means sample_rate / 2
    power: float = 2.0  # power spectrogram (magnitude squared)
    griffin_lim_iters: int = 64
    quality_griffin_lim_iters: int = 256  # method "nnls_long"
    quality_nnls_iters: int = 200  # method "nnls_long"
    scale: str = "log1p"  # "log1p" (the reference plan's compression) or "db"
    db_floor: float = -100.0  # dB below the Parseval bound that maps to 0 (scale="db")
    inversion: str = "nnls"  # mel_to_waveform's default method, one of INVERSION_METHODS
    nnls_iters: int = 100  # FISTA steps of the default inversion

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.n_fft <= 0 or self.hop_length <= 0 or self.n_mels <= 0:
            raise ValueError(f"sample_rate, n_fft, hop_length and n_mels must be positive: {self}")
        if self.hop_length > self.n_fft:
            raise ValueError(
                f"hop_length ({self.hop_length}) must not exceed n_fft ({self.n_fft})"
            )
        if self.f_max is None:
            self.f_max = self.sample_rate / 2
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError(
                f"need 0 <= f_min < f_max <= sample_rate/2, got f_min={self.f_min}, "
                f"f_max={self.f_max}, sample_rate={self.sample_rate}"
            )
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale!r}")
        if not (isinstance(self.db_floor, (int, float)) and math.isfinite(self.db_floor)
                and self.db_floor < 0):
            raise ValueError(
                f"db_floor must be a finite negative number of dB below the Parseval bound "
                f"(e.g. -100.0), got {self.db_floor!r}"
            )
        check_method(self.inversion, name="inversion")
        for name in ("griffin_lim_iters", "quality_griffin_lim_iters"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("nnls_iters", "quality_nnls_iters"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")

    @property
    def n_stft(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def min_frames(self) -> int:
        """Fewest mel frames Griffin-Lim can invert: ``n_fft // (2 * hop_length) + 2`` (4).

        Its STFT pads ``n_fft // 2`` samples by reflection on each side, which needs more
        than ``n_fft // 2`` samples, and ``T`` frames hold ``(T - 1) * hop_length``.
        """
        return self.n_fft // (2 * self.hop_length) + 2

    def inversion_plan(self, method: str) -> tuple[str, int, int]:
        """``(mel_to_linear method, NNLS steps, Griffin-Lim iterations)`` of an inversion method."""
        return {"nnls": ("nnls", self.nnls_iters, self.griffin_lim_iters),
                "lstsq": ("lstsq", 0, self.griffin_lim_iters),
                "nnls_long": ("nnls", self.quality_nnls_iters, self.quality_griffin_lim_iters),
                }[check_method(method)]


def value_stats(mels: torch.Tensor, low: float = 0.05) -> dict[str, float]:
    """How a batch of normalised mels ``(B, 1, n_mels, T)`` (any shape) uses the range [0, 1].

    Returns ``{"std", "iqr", "median", "below_low"}``: standard deviation, inter-quartile range
    and median of all values, and the fraction of values under ``low``. A per-element MSE
    between two mels can only be as large as these spreads allow. At most a million values
    (drawn with random seed 0) go into the quantiles, ``torch.quantile``'s size limit.

    Raises
    ------
    ValueError
        On an empty tensor.
    """
    v = check_nonempty(mels, "mels").detach().float().flatten().cpu()
    pick = torch.randperm(v.numel(), generator=torch.Generator().manual_seed(0))[:1_000_000]
    q = torch.quantile(v[pick], torch.tensor([0.25, 0.5, 0.75]))
    return {"std": float(v.std()), "iqr": float(q[2] - q[0]), "median": float(q[1]),
            "below_low": float((v < low).float().mean())}


class AudioSpectrogram(nn.Module):
    """Converts mono waveforms to normalised log-mel spectrograms and back.

    An ``nn.Module`` whose tensors are buffers, as torchaudio's ``MelScale``: the STFT window
    and filterbank (in ``mel_transform``, a torchaudio ``MelSpectrogram``), the filterbank's
    pseudo-inverse ``fb_pinv`` and the NNLS step ``nnls_step``. One ``.to(device)`` moves them
    all and ``.to(torch.float64)`` converts them; calling the module is :meth:`waveform_to_mel`.
    The work runs on the input's device: an input on another device moves the module there
    first (``.to`` it once to avoid that). It runs in the buffers' dtype (float32 unless
    converted) and returns the input's dtype. Picklable (Dask workers), copyable.

    Parameters
    ----------
    config : SpectrogramConfig, optional
        Defaults to the reference plan's 48 kHz / n_fft 2048 / hop 512 / 128 mels, log1p.

    Examples
    --------
    >>> spec = AudioSpectrogram()
    >>> mel = spec.waveform_to_mel(torch.zeros(2, 1, 48_000))  # (2, 1, 128, 94)
    >>> spec.mel_to_waveform(mel, length=48_000).shape
    torch.Size([2, 1, 48000])
    """

    def __init__(self, config: SpectrogramConfig | None = None) -> None:
        super().__init__()
        self.config = config or SpectrogramConfig()
        c = self.config
        self.mel_transform = T.MelSpectrogram(
            sample_rate=c.sample_rate,
            n_fft=c.n_fft,
            hop_length=c.hop_length,
            f_min=c.f_min,
            f_max=c.f_max,
            n_mels=c.n_mels,
            power=c.power,
        )
        fb = self.fb  # (n_mels, n_stft): mel = fb @ linear
        # derived from the config, so not saved in a state dict (torchaudio's buffers are)
        self.register_buffer("fb_pinv", fb_pseudo_inverse(fb), persistent=False)  # (n_stft, n_mels)
        self.register_buffer("nnls_step", nnls_step(fb), persistent=False)  # (n_stft,)
        # Upper bound of any mel band for |x| <= 1 (Parseval, see module docstring).
        self.max_mel_power = c.n_fft * float(self.window.double().pow(2).sum())
        self.log_scale = math.log1p(self.max_mel_power)
        self.floor_power = self.max_mel_power * 10 ** (c.db_floor / 10)  # scale="db": maps to 0

    @property
    def fb(self) -> torch.Tensor:
        """The mel filterbank ``(n_mels, n_stft)`` (HTK scale, no normalisation): mel = fb @ S."""
        return self.mel_transform.mel_scale.fb.T  # a view of torchaudio's (n_stft, n_mels) buffer

    @property
    def window(self) -> torch.Tensor:
        """The STFT's periodic Hann window ``(n_fft,)``, shared by Griffin-Lim."""
        return self.mel_transform.spectrogram.window

    def _follow(self, x: torch.Tensor) -> torch.dtype:
        """Move to ``x``'s device if needed; return the dtype the work runs in."""
        if self.fb_pinv.device != x.device:
            self.to(x.device)
        return self.fb_pinv.dtype

    # -- shapes ------------------------------------------------------------------------------

    def get_mel_shape(self, num_samples: int) -> tuple[int, int]:
        """Return ``(n_mels, frames)`` for a clip of ``num_samples`` samples (centred STFT)."""
        if num_samples < 1:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        return self.config.n_mels, num_samples // self.config.hop_length + 1

    # -- forward -----------------------------------------------------------------------------

    def power_to_mel(self, mel_power: torch.Tensor) -> torch.Tensor:
        """Apply the value map: mel power ``(B, n_mels, T)`` -> normalised ``(B, n_mels, T)``.

        ``scale="log1p"``: ``log1p(p) / log_scale``. ``scale="db"``:
        ``clamp((10 log10(p / max_mel_power) - db_floor) / -db_floor, 0, 1)``.
        """
        if self.config.scale == "log1p":
            return torch.log1p(mel_power) / self.log_scale  # (B, n_mels, T), [0, 1] full scale
        floor = self.config.db_floor
        db = 10 * torch.log10(mel_power.clamp(min=self.floor_power) / self.max_mel_power)
        return ((db - floor) / -floor).clamp(0.0, 1.0)  # (B, n_mels, T), [0, 1]

    def waveform_to_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """Waveform ``(B, 1, samples)`` -> normalised log-mel ``(B, 1, n_mels, T)`` in [0, 1].

        The result is on the input's device with the input's dtype. Full-scale input
        (``|x| <= 1``) is guaranteed to land in [0, 1]; louder input can exceed 1 with
        ``scale="log1p"`` and is clipped to 1 with ``scale="db"``.

        Raises
        ------
        TypeError, ValueError
            On a bad waveform (see ``_checks.check_waveform``), including fewer than ``n_fft``
            samples.
        """
        x = check_waveform(waveform, min_samples=self.config.n_fft)
        work = self._follow(x)
        mel_power = self.mel_transform(x.squeeze(1).to(work))  # (B, n_mels, T)
        mel = self.power_to_mel(mel_power)  # (B, n_mels, T)
        return mel.unsqueeze(1).to(x.dtype)  # (B, 1, n_mels, T)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """:meth:`waveform_to_mel`: ``(B, 1, samples)`` -> ``(B, 1, n_mels, T)``."""
        return self.waveform_to_mel(waveform)

    def mel_to_power(self, mel: torch.Tensor) -> torch.Tensor:
        """Undo the normalisation: ``(B, 1, n_mels, T)`` -> mel power ``(B, n_mels, T)``.

        Exact inverse of :meth:`power_to_mel` (for ``scale="db"``: above the floor; values at
        or below 0 give zero power). Negative values (a decoder's undershoot) count as 0. The
        result is in the buffers' dtype (float32 unless converted), on ``mel``'s device.
        """
        mel = check_mel(mel, self.config.n_mels)
        m = mel.squeeze(1).to(self._follow(mel))  # (B, n_mels, T)
        if self.config.scale == "log1p":
            return torch.expm1(m.clamp(min=0) * self.log_scale)  # (B, n_mels, T)
        floor = self.config.db_floor
        power = self.max_mel_power * torch.pow(10.0, (m * -floor + floor) / 10)  # (B, n_mels, T)
        return torch.where(m > 0, power, torch.zeros_like(power))  # (B, n_mels, T)

    def mel_magnitude(self, mel: torch.Tensor) -> torch.Tensor:
        """Mel-band magnitudes ``(B, 1, n_mels, T)`` relative to the Parseval bound (1 at full
        scale), differentiable everywhere: the loss's picture of what is loud.

        ``sqrt`` of :meth:`mel_to_power` over ``max_mel_power``, except that for ``scale="db"``
        a value at or below 0 gives the floor's magnitude (``10 ** (db_floor / 20)``) instead of
        0, and for ``"log1p"`` a small constant keeps the root's gradient finite at 0. No input
        check (it runs inside training steps); the result keeps ``mel``'s dtype and device.
        """
        if self.config.scale == "log1p":
            power = torch.expm1(mel.clamp(min=0) * self.log_scale) / self.max_mel_power
            return (power + 1e-12).sqrt()  # (B, 1, n_mels, T)
        floor = self.config.db_floor
        return torch.pow(10.0, (mel.clamp(min=0) * -floor + floor) / 20)  # (B, 1, n_mels, T)

    # -- inverse -----------------------------------------------------------------------------

    def mel_to_linear(self, mel: torch.Tensor, nnls_iters: int = 0,
                      method: str = "nnls") -> torch.Tensor:
        """Estimate the linear power spectrogram ``(B, n_stft, T)`` from a normalised mel.

        :func:`sda_lab.representation.inversion.mel_to_linear` on :meth:`mel_to_power` of ``mel``
        ``(B, 1, n_mels, T)``, with this module's filterbank, pseudo-inverse and step.
        ``method="nnls"`` with ``nnls_iters`` FISTA steps (0, the default here, returns the
        clipped least-squares start), or ``"lstsq"`` (the reference plan's InverseMelScale).

        Returns
        -------
        Tensor
            ``(B, n_stft, T)``, non-negative, on ``mel``'s device, in the buffers' dtype.
        """
        return mel_to_linear(self.mel_to_power(mel), fb=self.fb, method=method,
                             nnls_iters=nnls_iters, pinv=self.fb_pinv, step=self.nnls_step)

    def mel_to_waveform(self, mel_log: torch.Tensor, length: int | None = None,
                        method: str | None = None) -> torch.Tensor:
        """Normalised log-mel ``(B, 1, n_mels, T)`` -> waveform ``(B, 1, samples)``.

        :meth:`mel_to_power`, then :func:`sda_lab.representation.inversion.mel_to_linear`, then
        :func:`sda_lab.representation.inversion.griffin_lim` (as librosa's ``mel_to_audio``
        composes ``mel_to_stft`` and ``griffinlim``).

        Parameters
        ----------
        mel_log : Tensor
            Output of :meth:`waveform_to_mel` or of the VAE decoder; ``T >= config.min_frames``
            (4 for the defaults).
        length : int, optional
            Samples to return. Pass the original clip's length to get it back exactly; without
            it the result has ``(T - 1) * hop_length`` samples. Must lie in
            ``[(T - 1) * hop_length, T * hop_length - 1]``, the lengths whose STFT has ``T``
            frames.
        method : str, optional
            One of ``INVERSION_METHODS`` (module docstring); ``None`` means ``config.inversion``
            (``"nnls"`` by default).

        Returns
        -------
        Tensor
            ``(B, 1, samples)`` on ``mel_log``'s device with its dtype. Griffin-Lim starts from
            random phases (torchaudio's), so set the random seed (``torch.manual_seed``) for
            reproducible output.

        Raises
        ------
        ValueError
            On a bad mel (shape, bands, non-finite), fewer than ``config.min_frames`` frames, a
            ``length`` that does not fit ``T``, or an unknown method.
        """
        c = self.config
        mel = check_mel(mel_log, c.n_mels)
        check_frames(mel.shape[-1], length, c.n_fft, c.hop_length)
        linear_method, nnls_iters, n_iter = c.inversion_plan(method or c.inversion)
        linear = mel_to_linear(self.mel_to_power(mel), fb=self.fb, method=linear_method,
                               nnls_iters=nnls_iters, pinv=self.fb_pinv,
                               step=self.nnls_step)  # (B, n_stft, T)
        wave = griffin_lim(linear, n_fft=c.n_fft, hop_length=c.hop_length, n_iter=n_iter,
                           power=c.power, length=length, window=self.window)  # (B, samples)
        return wave.unsqueeze(1).to(mel.dtype)  # (B, 1, samples)

    def round_trip(self, waveform: torch.Tensor, method: str | None = None) -> torch.Tensor:
        """Waveform -> mel -> waveform, same shape, device and dtype as the input."""
        return self.mel_to_waveform(self.waveform_to_mel(waveform), length=waveform.shape[-1],
                                    method=method)

    def extra_repr(self) -> str:
        return repr(self.config)
