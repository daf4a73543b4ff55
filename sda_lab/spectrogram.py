"""Waveform <-> normalised log-mel spectrogram (seed: ``audio/spectrogram.py``).

The VAE never sees audio, only this representation, so it has to be (a) a faithful, invertible
picture of the sound and (b) inside what the decoder can output. Shapes throughout:

    waveform  (B, 1, samples)   float, mono, nominally in [-1, 1]
    mel       (B, 1, n_mels, T) float in [0, 1], T = samples // hop_length + 1

Where this differs from the seed
--------------------------------
The seed normalises with ``log1p(mel)`` and lets the VAE decoder end in a Sigmoid, whose outputs
lie in (0, 1). But ``log1p`` of the power mel of a 0.5-amplitude 440 Hz sine already peaks near
10.9, so a sigmoid decoder could never reproduce loud sounds. We keep ``log1p`` (the seed's
compression) and divide by a fixed constant, ``log_scale = log1p(n_fft * sum(window**2))``.

Why that constant: for any signal with ``|x| <= 1`` Parseval gives, per frame,
``sum_k |X_k|^2 <= n_fft * sum_n (x_n w_n)^2 <= n_fft * sum_n w_n^2``, and every mel band is a
sum of STFT powers with triangle weights ``<= 1`` (``norm=None``). So no band of full-scale audio
can exceed ``n_fft * sum(w**2)`` and the representation of full-scale audio is always in [0, 1].
For the defaults (Hann, n_fft 2048) the constant is ``log1p(2048 * 768) = 14.268``.
``mel_to_waveform`` inverts it exactly (``expm1(mel * log_scale)``).

The seed's GriffinLim returns ``(T - 1) * hop`` samples (47,616 for a 48,000-sample clip), so
``mel_to_waveform`` takes the wanted ``length`` and passes it to the final inverse STFT.

Beyond the seed, ``mel_to_waveform(..., quality=True)`` refines the least-squares inverse mel
with a non-negative least-squares solve (FISTA, Beck & Teboulle 2009, warm-started from the
seed's solution; librosa's ``mel_to_stft`` solves the same problem with L-BFGS-B) and runs more
Griffin-Lim iterations. The seed's path stays the default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torchaudio.functional as AF
import torchaudio.transforms as T

from ._checks import check_mel, check_waveform


@dataclass
class SpectrogramConfig:
    """Parameters of the mel representation; the defaults are the seed's."""

    sample_rate: int = 48_000
    n_fft: int = 2048  # 42.7 ms window: resolves 23 Hz bins, enough for low notes
    hop_length: int = 512  # 75% overlap, what Griffin-Lim needs to converge well
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float | None = None  # None means sample_rate / 2
    power: float = 2.0  # power spectrogram (magnitude squared)
    griffin_lim_iters: int = 64
    quality_griffin_lim_iters: int = 256  # used by mel_to_waveform(..., quality=True)
    quality_nnls_iters: int = 200

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

    @property
    def n_stft(self) -> int:
        return self.n_fft // 2 + 1


class AudioSpectrogram:
    """Converts mono waveforms to normalised log-mel spectrograms and back.

    The three torchaudio transforms (MelSpectrogram, InverseMelScale, GriffinLim) are built once
    here. MelSpectrogram and GriffinLim run on the input's device; InverseMelScale always runs on
    the CPU (its ``torch.linalg.lstsq`` is unsupported on MPS), and its result is moved back.

    Parameters
    ----------
    config : SpectrogramConfig, optional
        Defaults to the seed's 48 kHz / n_fft 2048 / hop 512 / 128 mels.

    Examples
    --------
    >>> spec = AudioSpectrogram()
    >>> mel = spec.waveform_to_mel(torch.zeros(2, 1, 48_000))  # (2, 1, 128, 94)
    >>> spec.mel_to_waveform(mel, length=48_000).shape
    torch.Size([2, 1, 48000])
    """

    def __init__(self, config: SpectrogramConfig | None = None) -> None:
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
        self.inverse_mel = T.InverseMelScale(
            n_stft=c.n_stft,
            n_mels=c.n_mels,
            sample_rate=c.sample_rate,
            f_min=c.f_min,
            f_max=c.f_max,
        )
        self.griffin_lim = T.GriffinLim(
            n_fft=c.n_fft, n_iter=c.griffin_lim_iters, hop_length=c.hop_length, power=c.power
        )
        fb = self.inverse_mel.fb.T.contiguous()  # (n_mels, n_stft): mel = fb @ linear
        self._fb = fb
        self._fb_lipschitz = float(torch.linalg.matrix_norm(fb, ord=2) ** 2)  # NNLS step 1/L
        window = self.mel_transform.spectrogram.window
        # Upper bound of any mel band for |x| <= 1 (Parseval, see module docstring).
        self.max_mel_power = c.n_fft * float(window.pow(2).sum())
        self.log_scale = math.log1p(self.max_mel_power)

    # -- shapes ------------------------------------------------------------------------------

    def get_mel_shape(self, num_samples: int) -> tuple[int, int]:
        """Return ``(n_mels, frames)`` for a clip of ``num_samples`` samples (centred STFT)."""
        if num_samples < 1:
            raise ValueError(f"num_samples must be positive, got {num_samples}")
        return self.config.n_mels, num_samples // self.config.hop_length + 1

    # -- forward -----------------------------------------------------------------------------

    def waveform_to_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """Waveform ``(B, 1, samples)`` -> normalised log-mel ``(B, 1, n_mels, T)`` in [0, 1].

        The result is on the input's device with the input's dtype. Full-scale input
        (``|x| <= 1``) is guaranteed to land in [0, 1]; louder input can exceed 1.
        """
        x = check_waveform(waveform, min_samples=self.config.n_fft)
        dtype = x.dtype
        self.mel_transform.to(x.device)
        mel_power = self.mel_transform(x.squeeze(1).float())  # (B, n_mels, T)
        mel = torch.log1p(mel_power) / self.log_scale  # (B, n_mels, T), [0, 1]
        return mel.unsqueeze(1).to(dtype)  # (B, 1, n_mels, T)

    def mel_to_power(self, mel: torch.Tensor) -> torch.Tensor:
        """Undo the normalisation: ``(B, 1, n_mels, T)`` -> mel power ``(B, n_mels, T)``."""
        mel = check_mel(mel, self.config.n_mels)
        return torch.expm1(mel.squeeze(1).float().clamp(min=0) * self.log_scale)  # (B, n_mels, T)

    def mel_to_linear(self, mel: torch.Tensor, nnls_iters: int = 0) -> torch.Tensor:
        """Estimate the linear power spectrogram ``(B, n_stft, T)`` from a normalised mel.

        InverseMelScale (least squares, then ReLU) always runs on the CPU. With
        ``nnls_iters > 0`` its result warm-starts that many FISTA steps of non-negative least
        squares, ``min ||fb @ S - mel||^2`` subject to ``S >= 0``.
        """
        mel_power = self.mel_to_power(mel).cpu()  # (B, n_mels, T)
        linear = self.inverse_mel(mel_power)  # (B, n_stft, T)
        if nnls_iters > 0:
            linear = self._nnls(mel_power, linear, nnls_iters)  # (B, n_stft, T)
        return linear

    def _nnls(self, target: torch.Tensor, start: torch.Tensor, n_iter: int) -> torch.Tensor:
        fb, step = self._fb, 1.0 / self._fb_lipschitz
        x = y = start
        t = 1.0
        for _ in range(n_iter):
            grad = fb.T @ (fb @ y - target)  # (B, n_stft, T)
            x_next = torch.relu(y - step * grad)
            t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
            y = x_next + ((t - 1) / t_next) * (x_next - x)
            x, t = x_next, t_next
        return x

    def mel_to_waveform(self, mel_log: torch.Tensor, length: int | None = None,
                        quality: bool = False) -> torch.Tensor:
        """Normalised log-mel ``(B, 1, n_mels, T)`` -> waveform ``(B, 1, samples)``.

        Parameters
        ----------
        mel_log : Tensor
            Output of :meth:`waveform_to_mel` or of the VAE decoder.
        length : int, optional
            Samples to return. Pass the original clip's length to get it back exactly; without
            it the result has ``(T - 1) * hop_length`` samples (47,616 for a 1 s, 48 kHz clip).
        quality : bool
            False (default): the seed's path, least squares + ``griffin_lim_iters`` (64).
            True: NNLS refinement + ``quality_griffin_lim_iters`` (256); about 4.5x slower, lower
            spectral convergence (``make bench`` measures both).

        Returns
        -------
        Tensor
            ``(B, 1, samples)`` on ``mel_log``'s device with its dtype. Griffin-Lim starts from
            random phases (torchaudio's default), so seed ``torch`` for reproducible output.
        """
        mel = check_mel(mel_log, self.config.n_mels)
        if length is not None and length < 1:
            raise ValueError(f"length must be a positive number of samples, got {length}")
        device, dtype = mel.device, mel.dtype
        c = self.config
        nnls_iters = c.quality_nnls_iters if quality else 0
        n_iter = c.quality_griffin_lim_iters if quality else self.griffin_lim.n_iter
        linear = self.mel_to_linear(mel, nnls_iters).to(device)  # (B, n_stft, T)
        gl = self.griffin_lim.to(device)
        wave = AF.griffinlim(
            linear,
            gl.window,
            gl.n_fft,
            gl.hop_length,
            gl.win_length,
            gl.power,
            n_iter,
            gl.momentum,
            length,
            gl.rand_init,
        )  # (B, samples)
        return wave.unsqueeze(1).to(dtype)  # (B, 1, samples)

    def round_trip(self, waveform: torch.Tensor) -> torch.Tensor:
        """Waveform -> mel -> waveform, same shape, device and dtype as the input."""
        return self.mel_to_waveform(self.waveform_to_mel(waveform), length=waveform.shape[-1])
