"""Waveform <-> normalised log-mel spectrogram (seed: ``audio/spectrogram.py``).

The VAE never sees audio, only this representation, so it has to be (a) a faithful, invertible
picture of the sound and (b) inside what the decoder can output. Shapes throughout:

    waveform  (B, 1, samples)   float, mono, nominally in [-1, 1]
    mel       (B, 1, n_mels, T) float in [0, 1], T = samples // hop_length + 1

Where this differs from the seed
--------------------------------
The seed normalises with ``log1p(mel)`` and lets the VAE decoder end in a Sigmoid, whose outputs
lie in (0, 1). But ``log1p`` of the power mel of a 0.5-amplitude 440 Hz sine already peaks near
10.9, so a sigmoid decoder could never reproduce loud sounds. Both scales below divide by, or
measure against, one fixed constant, the Parseval bound ``max_mel_power = n_fft * sum(window**2)``.

Why that constant: for any signal with ``|x| <= 1`` Parseval gives, per frame,
``sum_k |X_k|^2 <= n_fft * sum_n (x_n w_n)^2 <= n_fft * sum_n w_n^2``, and every mel band is a
sum of STFT powers with triangle weights ``<= 1`` (``norm=None``). So no band of full-scale audio
can exceed ``n_fft * sum(w**2)`` (``2048 * 768`` for the defaults, Hann window).

Two scales (``SpectrogramConfig.scale``)
----------------------------------------
``"log1p"`` (default, the seed's compression): ``mel = log1p(power) / log1p(max_mel_power)``;
for the defaults the divisor is ``log1p(2048 * 768) = 14.268``. Full-scale audio lands in
[0, 1]; louder audio can exceed 1. Inverted exactly by ``expm1(mel * log_scale)``.

``"db"``: ``mel = clamp((10 log10(power / max_mel_power) - db_floor) / -db_floor, 0, 1)``, a
decibel scale with 0 dB at the Parseval bound and ``db_floor`` (default -100 dB) at 0. Inverted
exactly above the floor, ``power = max_mel_power * 10 ** ((mel * -db_floor + db_floor) / 10)``;
a value at or below 0 (the floor) inverts to **zero power**, not to the floor's power, so
Griffin-Lim gets true silence there. Power above the bound (louder than full scale) is clipped
to 1.

Why offer both: ``log1p(p)`` is nearly linear for ``p < 1``, and real recordings (peaks -25 to
-7 dBFS, long quiet tails) keep most mel power there. Measured with :func:`value_stats` on the
six real instrument recordings (FreePats renders, 84 one-second clips at 48 kHz) and on the
synthetic default set (``make_default_dataset(4)``):

    values                   log1p: std   under 0.05      db (-100 dB floor): std   under 0.05
    real recordings               0.049          93%                          0.148          60%
    synthetic default set         0.145          82%                          0.227          61%

With log1p a per-element MSE between real-audio mels is tiny next to a KL term; the dB scale
spreads the same audio three times wider. Notebook 01 shows both histograms.

Inversion: mel -> linear spectrogram -> Griffin-Lim
---------------------------------------------------
``mel_to_waveform`` first estimates the linear power spectrogram ``S >= 0`` whose mel is the
given one, then recovers a phase with Griffin-Lim (Griffin & Lim 1984; torchaudio's
implementation with the fast momentum of Perraudin et al. 2013). Measured on the 20 default
clips, spectral convergence against the original (mean):

    linear spectrogram fed to Griffin-Lim                64 iterations   256 iterations
    true power spectrogram (upper bound)                     0.106          0.091
    least squares (torchaudio InverseMelScale, the seed)     0.407          0.401
    non-negative least squares (NNLS)                        0.313          0.305

so the mel -> linear step loses three times more than phase retrieval, and Griffin-Lim beyond 64
iterations buys almost nothing. The default (``method="nnls"``) therefore spends its time on the
mel -> linear step:

1. the minimum-norm least-squares solution from a pseudo-inverse of the filterbank computed once
   (``torch.linalg.pinv``; the same answer that torchaudio's InverseMelScale gets from
   ``torch.linalg.lstsq`` on every call, which costs more than the rest of this step), clipped
   at 0;
2. ``nnls_iters`` (100) steps of FISTA (Beck & Teboulle 2009) on NNLS,
   ``min ||fb @ S - mel||^2`` subject to ``S >= 0``, warm-started from step 1 (as librosa's
   ``util.nnls`` starts L-BFGS-B from the clipped least-squares answer). The step is the diagonal
   majorizer ``diag(fb.T @ fb @ 1)`` of ``fb.T @ fb``, valid because the filterbank is
   non-negative (the bound behind Lee & Seung's 2001 multiplicative updates); it converges
   several times faster than the scalar step ``1 / ||fb||^2`` because the narrow low-frequency
   filters no longer wait for the wide high ones. The filterbank has at most two non-zeros per
   STFT bin, so on the CPU it is applied as a sparse matrix.
3. ``griffin_lim_iters`` (64) Griffin-Lim iterations.

``method="seed"`` is the seed's path (InverseMelScale + 64 iterations), and
``quality=True`` (or ``method="quality"``) the slow one: ``quality_nnls_iters`` (200) NNLS
steps + ``quality_griffin_lim_iters`` (256). ``make bench`` measures all three against librosa.

The seed's GriffinLim returns ``(T - 1) * hop`` samples (47,616 for a 48,000-sample clip), so
``mel_to_waveform`` takes the wanted ``length`` and passes it to the final inverse STFT.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torchaudio.functional as AF
import torchaudio.transforms as T

from ._checks import check_mel, check_waveform

SCALES = ("log1p", "db")
INVERSION_METHODS = ("nnls", "seed", "quality")


@dataclass
class SpectrogramConfig:
    """Parameters of the mel representation; the STFT/mel defaults are the seed's.

    ``scale`` and ``db_floor`` choose the value map (module docstring); ``inversion`` and the
    ``*_iters`` fields choose how :meth:`AudioSpectrogram.mel_to_waveform` inverts.

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
    quality_griffin_lim_iters: int = 256  # used by mel_to_waveform(..., quality=True)
    quality_nnls_iters: int = 200
    scale: str = "log1p"  # "log1p" (the seed's compression) or "db"
    db_floor: float = -100.0  # dB below the Parseval bound that maps to 0 (scale="db")
    inversion: str = "nnls"  # mel_to_waveform's default method: "nnls", "seed" or "quality"
    nnls_iters: int = 100  # FISTA steps of the default inversion (converged: 150 gains nothing)

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
        if self.inversion not in INVERSION_METHODS:
            raise ValueError(
                f"inversion must be one of {INVERSION_METHODS}, got {self.inversion!r}"
            )
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


def value_stats(mels: torch.Tensor, low: float = 0.05) -> dict[str, float]:
    """How a batch of normalised mels ``(B, 1, n_mels, T)`` (any shape) uses the range [0, 1].

    Returns ``{"std", "iqr", "median", "below_low"}``: standard deviation, inter-quartile range
    and median of all values, and the fraction of values under ``low``. A per-element MSE
    between two mels can only be as large as these spreads allow.
    """
    v = mels.detach().float().flatten().cpu()
    if v.numel() == 0:
        raise ValueError("value_stats needs at least one value, got an empty tensor")
    q = torch.quantile(v[torch.randperm(v.numel(), generator=torch.Generator().manual_seed(0))
                         [:1_000_000]], torch.tensor([0.25, 0.5, 0.75]))  # quantile caps size
    return {"std": float(v.std()), "iqr": float(q[2] - q[0]), "median": float(q[1]),
            "below_low": float((v < low).float().mean())}


class AudioSpectrogram:
    """Converts mono waveforms to normalised log-mel spectrograms and back.

    The torchaudio transforms (MelSpectrogram, InverseMelScale, GriffinLim) are built once here,
    with the filterbank's pseudo-inverse and sparse form for the default inversion.
    MelSpectrogram, the default inversion and GriffinLim run on the input's device;
    the seed's InverseMelScale always runs on the CPU (its ``torch.linalg.lstsq`` is unsupported
    on MPS), and its result is moved back.

    Parameters
    ----------
    config : SpectrogramConfig, optional
        Defaults to the seed's 48 kHz / n_fft 2048 / hop 512 / 128 mels, log1p scale.

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
        self._fb_lipschitz = float(torch.linalg.matrix_norm(fb, ord=2) ** 2)
        # Minimum-norm least squares, once: the answer InverseMelScale's lstsq gives per call.
        self._fb_pinv = torch.linalg.pinv(fb.double()).float().contiguous()  # (n_stft, n_mels)
        # Diagonal majorizer of fb.T @ fb (fb >= 0): per-bin FISTA step 1 / (fb.T @ fb @ 1).
        d = fb.T @ fb.sum(dim=1)  # (n_stft,)
        self._nnls_step = torch.where(d > 0, 1.0 / d.clamp(min=1e-30), torch.zeros_like(d))
        with warnings.catch_warnings():  # "sparse CSR support is in beta": used for matmul only
            warnings.simplefilter("ignore")
            self._fb_csr = fb.to_sparse_csr()  # (n_mels, n_stft), <= 2 non-zeros per column
            self._fbT_csr = fb.T.contiguous().to_sparse_csr()  # (n_stft, n_mels)
        window = self.mel_transform.spectrogram.window
        # Upper bound of any mel band for |x| <= 1 (Parseval, see module docstring).
        self.max_mel_power = c.n_fft * float(window.pow(2).sum())
        self.log_scale = math.log1p(self.max_mel_power)
        self.floor_power = self.max_mel_power * 10 ** (c.db_floor / 10)  # scale="db": maps to 0

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
        dtype = x.dtype
        self.mel_transform.to(x.device)
        mel_power = self.mel_transform(x.squeeze(1).float())  # (B, n_mels, T)
        mel = self.power_to_mel(mel_power)  # (B, n_mels, T)
        return mel.unsqueeze(1).to(dtype)  # (B, 1, n_mels, T)

    def mel_to_power(self, mel: torch.Tensor) -> torch.Tensor:
        """Undo the normalisation: ``(B, 1, n_mels, T)`` -> mel power ``(B, n_mels, T)``, float32.

        Exact inverse of :meth:`power_to_mel` (for ``scale="db"``: above the floor; values at
        or below 0 give zero power). Negative values (a decoder's undershoot) count as 0.
        """
        mel = check_mel(mel, self.config.n_mels)
        m = mel.squeeze(1).float()  # (B, n_mels, T)
        if self.config.scale == "log1p":
            return torch.expm1(m.clamp(min=0) * self.log_scale)  # (B, n_mels, T)
        floor = self.config.db_floor
        power = self.max_mel_power * torch.pow(10.0, (m * -floor + floor) / 10)  # (B, n_mels, T)
        return torch.where(m > 0, power, torch.zeros_like(power))  # (B, n_mels, T)

    # -- inverse -----------------------------------------------------------------------------

    def _check_frames(self, mel: torch.Tensor, length: int | None) -> None:
        c = self.config
        frames = mel.shape[-1]
        if frames < c.min_frames:
            raise ValueError(
                f"mel has {frames} frame(s); Griffin-Lim needs at least {c.min_frames} "
                f"(n_fft // (2 * hop_length) + 2 for n_fft={c.n_fft}, hop_length={c.hop_length}), "
                f"i.e. {(c.min_frames - 1) * c.hop_length} samples or more"
            )
        if length is not None:
            if length < 1:
                raise ValueError(f"length must be a positive number of samples, got {length}")
            lo, hi = (frames - 1) * c.hop_length, frames * c.hop_length - 1
            if not lo <= length <= hi:
                raise ValueError(
                    f"length {length} does not fit a mel of {frames} frames: a centred STFT "
                    f"with hop_length {c.hop_length} gives {frames} frames for {lo} to {hi} "
                    "samples"
                )

    def mel_to_linear(self, mel: torch.Tensor, nnls_iters: int = 0,
                      method: str = "nnls") -> torch.Tensor:
        """Estimate the linear power spectrogram ``(B, n_stft, T)`` from a normalised mel.

        Parameters
        ----------
        mel : Tensor
            ``(B, 1, n_mels, T)`` normalised mel.
        nnls_iters : int
            FISTA steps of non-negative least squares ``min ||fb @ S - mel||^2, S >= 0``
            (diagonally preconditioned, see the module docstring) after the least-squares
            start. 0 returns the start itself.
        method : str
            ``"nnls"`` (default): start from the precomputed pseudo-inverse, on ``mel``'s device.
            ``"seed"``: start from torchaudio's InverseMelScale (``lstsq`` per call, on the CPU;
            the result is on the CPU). Both starts are the same least-squares answer, clipped
            at 0.

        Returns
        -------
        Tensor
            ``(B, n_stft, T)`` float32, non-negative.
        """
        if nnls_iters < 0:
            raise ValueError(f"nnls_iters must be 0 or more, got {nnls_iters}")
        mel_power = self.mel_to_power(mel)  # (B, n_mels, T)
        if method == "seed":
            mel_power = mel_power.cpu()
            start = self.inverse_mel(mel_power)  # (B, n_stft, T), lstsq + ReLU
            if nnls_iters == 0:
                return start
            return self._nnls(mel_power, start, nnls_iters)  # (B, n_stft, T)
        if method != "nnls":
            raise ValueError(f"method must be 'nnls' or 'seed', got {method!r}")
        B, n_mels, frames = mel_power.shape
        target = mel_power.transpose(0, 1).reshape(n_mels, B * frames)  # (n_mels, B*T)
        linear = torch.relu(self._fb_pinv.to(target.device) @ target)  # (n_stft, B*T)
        if nnls_iters > 0:
            linear = self._nnls_columns(target, linear, nnls_iters)  # (n_stft, B*T)
        return self._from_columns(linear, B, frames)  # (B, n_stft, T)

    @staticmethod
    def _from_columns(columns: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
        """``(n_stft, B*T)`` -> ``(B, n_stft, T)`` stored frame-major, as ``torch.stft`` returns
        it: Griffin-Lim's element-wise steps then run measurably faster than on a row-major
        copy (the seed's lstsq answer happens to have this layout too)."""
        n_stft = columns.shape[0]
        out = columns.reshape(n_stft, batch, frames).permute(1, 2, 0).contiguous()  # (B, T, n_stft)
        return out.transpose(1, 2)  # (B, n_stft, T)

    def _nnls(self, target: torch.Tensor, start: torch.Tensor, n_iter: int) -> torch.Tensor:
        """NNLS refinement of ``start``: ``(B, n_mels, T)``, ``(B, n_stft, T)`` -> ``(B, n_stft, T)``."""
        B, n_mels, frames = target.shape
        y0 = target.transpose(0, 1).reshape(n_mels, B * frames)  # (n_mels, B*T)
        x = start.to(target.device).transpose(0, 1).reshape(-1, B * frames)  # (n_stft, B*T)
        return self._from_columns(self._nnls_columns(y0, x, n_iter), B, frames)

    def _nnls_columns(self, y0: torch.Tensor, x: torch.Tensor, n_iter: int) -> torch.Tensor:
        """FISTA (Beck & Teboulle 2009) for ``min ||fb @ X - y0||^2, X >= 0`` with the diagonal
        step ``1 / (fb.T @ fb @ 1)``, every frame of every clip a column:
        ``y0 (n_mels, N)``, start ``x (n_stft, N)`` -> ``(n_stft, N)``."""
        device = y0.device
        step = self._nnls_step.to(device)[:, None]  # (n_stft, 1)
        if device.type == "cpu":
            fb, fbt = self._fb_csr, self._fbT_csr  # sparse: 2,019 non-zeros of 131,200
        else:
            fb = self._fb.to(device)
            fbt = fb.T
        y = x
        t = 1.0
        for _ in range(n_iter):
            grad = fbt @ (fb @ y - y0)  # (n_stft, N)
            x_next = torch.addcmul(y, step, grad, value=-1.0).clamp_(min=0.0)  # (n_stft, N)
            t_next = (1 + math.sqrt(1 + 4 * t * t)) / 2
            # momentum y = x_next + (t - 1) / t_next * (x_next - x), as one fused lerp
            y = torch.lerp(x, x_next, 1.0 + (t - 1) / t_next)  # (n_stft, N)
            x, t = x_next, t_next
        return x

    def mel_to_waveform(self, mel_log: torch.Tensor, length: int | None = None,
                        quality: bool = False, method: str | None = None) -> torch.Tensor:
        """Normalised log-mel ``(B, 1, n_mels, T)`` -> waveform ``(B, 1, samples)``.

        Parameters
        ----------
        mel_log : Tensor
            Output of :meth:`waveform_to_mel` or of the VAE decoder; ``T >= config.min_frames``
            (4 for the defaults).
        length : int, optional
            Samples to return. Pass the original clip's length to get it back exactly; without
            it the result has ``(T - 1) * hop_length`` samples (47,616 for a 1 s, 48 kHz clip).
            Must lie in ``[(T - 1) * hop_length, T * hop_length - 1]``, the lengths whose STFT
            has ``T`` frames.
        quality : bool
            True: the slow path, an alias of ``method="quality"``.
        method : str, optional
            ``None`` means ``config.inversion`` (``"nnls"`` by default).
            ``"nnls"``: pseudo-inverse + ``nnls_iters`` (100) NNLS steps + ``griffin_lim_iters``
            (64) Griffin-Lim iterations. ``"seed"``: the seed's InverseMelScale (least squares)
            + ``griffin_lim_iters``. ``"quality"``: ``quality_nnls_iters`` (200) NNLS steps +
            ``quality_griffin_lim_iters`` (256); about 4x slower for a few percent.
            ``make bench`` measures all three.

        Returns
        -------
        Tensor
            ``(B, 1, samples)`` on ``mel_log``'s device with its dtype. Griffin-Lim starts from
            random phases (torchaudio's default), so seed ``torch`` for reproducible output.

        Raises
        ------
        ValueError
            On a bad mel (shape, bands, non-finite), fewer than ``config.min_frames`` frames, a
            ``length`` that does not fit ``T``, or an unknown method.
        """
        mel = check_mel(mel_log, self.config.n_mels)
        self._check_frames(mel, length)
        c = self.config
        method = "quality" if quality else (method or c.inversion)
        if method not in INVERSION_METHODS:
            raise ValueError(f"method must be one of {INVERSION_METHODS}, got {method!r}")
        device, dtype = mel.device, mel.dtype
        if method == "seed":
            linear = self.mel_to_linear(mel, 0, method="seed")  # (B, n_stft, T)
            n_iter = c.griffin_lim_iters
        elif method == "nnls":
            linear = self.mel_to_linear(mel, c.nnls_iters)  # (B, n_stft, T)
            n_iter = c.griffin_lim_iters
        else:
            linear = self.mel_to_linear(mel, c.quality_nnls_iters)  # (B, n_stft, T)
            n_iter = c.quality_griffin_lim_iters
        gl = self.griffin_lim.to(device)
        wave = AF.griffinlim(
            linear.to(device),
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

    def round_trip(self, waveform: torch.Tensor, method: str | None = None) -> torch.Tensor:
        """Waveform -> mel -> waveform, same shape, device and dtype as the input."""
        return self.mel_to_waveform(self.waveform_to_mel(waveform), length=waveform.shape[-1],
                                    method=method)
