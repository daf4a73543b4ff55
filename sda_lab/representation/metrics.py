"""Reconstruction-quality metrics between a reference waveform and an estimate.

Both are computed per clip on the linear STFT magnitude, so they judge what a listener hears
(magnitudes) and ignore phase, which Griffin-Lim cannot recover exactly.

- Spectral convergence (Sturmel & Daudet, 2011; used for Griffin-Lim by e.g. Arik et al., 2019):
  ``|| |S| - |S_hat| ||_F / || |S| ||_F``. 0 is perfect; 1 is as far off as silence.
- Log-spectral distance in dB: ``mean_t sqrt(mean_f (10 log10(|S|^2 / |S_hat|^2))^2)``.
- Mel consistency (no reference needed): spectral convergence between a mel and the mel of the
  audio it inverts to, see :func:`mel_consistency`.
- Level difference in dB: ``20 log10(RMS(estimate) / RMS(reference))``, see :func:`level_db`.
- Loudness of a clip's loudest 20 ms frame in dBFS (RMS), see :func:`loudest_frame_dbfs`: the
  loader's silence test, and the test of a near-silent input or generated sound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..core._checks import check_mel, check_waveform

if TYPE_CHECKING:
    from .spectrogram import AudioSpectrogram


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
    """Spectral convergence per clip, shape ``(B,)``; lower is better, 0 is exact.

    ``|| |S| - |S_hat| ||_F / || |S| ||_F`` on the STFT magnitudes (Hann window, ``n_fft``,
    ``hop_length`` in samples) of ``reference`` and ``estimate``, both ``(B, 1, samples)``;
    clips of different lengths are compared over their overlap. Sturmel & Daudet (2011).

    Raises
    ------
    TypeError, ValueError
        On a bad waveform (``_checks.check_waveform``: shape, dtype, NaN, fewer than ``n_fft``
        samples) or different batch sizes.
    """
    s_ref, s_est = _magnitudes(reference, estimate, n_fft, hop_length)
    num = (s_ref - s_est).flatten(1).norm(dim=1)  # (B,)
    den = s_ref.flatten(1).norm(dim=1).clamp(min=1e-8)  # (B,)
    return num / den


def log_spectral_distance(reference: torch.Tensor, estimate: torch.Tensor, n_fft: int = 2048,
                          hop_length: int = 512, floor_db: float = -80.0) -> torch.Tensor:
    """Log-spectral distance in dB per clip, shape ``(B,)``; lower is better.

    ``mean_t sqrt(mean_f (10 log10(P / P_hat))^2)`` on the STFT powers of ``reference`` and
    ``estimate``, both ``(B, 1, samples)``. Powers are floored ``floor_db`` below each clip's
    peak, so near-silent bins (where any estimate's ratio is meaningless) do not dominate.

    Raises
    ------
    TypeError, ValueError
        As :func:`spectral_convergence`.
    """
    s_ref, s_est = _magnitudes(reference, estimate, n_fft, hop_length)
    p_ref, p_est = s_ref.pow(2), s_est.pow(2)
    floor = p_ref.flatten(1).amax(dim=1).clamp(min=1e-12) * 10 ** (floor_db / 10)  # (B,)
    floor = floor[:, None, None]
    diff_db = 10 * torch.log10(p_ref.clamp(min=floor) / p_est.clamp(min=floor))  # (B, F, frames)
    return diff_db.pow(2).mean(dim=1).sqrt().mean(dim=1)  # (B,)


def level_db(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """``20 log10(RMS(estimate) / RMS(reference))`` per clip, shape ``(B,)``, both ``(B, 1,
    samples)`` compared over their overlap: 0 dB is the same level, negative is quieter.
    ``-inf`` for a silent estimate, ``+inf`` for a silent reference, NaN for both silent."""
    n = min(reference.shape[-1], estimate.shape[-1])
    rms = lambda x: x[..., :n].double().pow(2).flatten(1).mean(dim=1).sqrt()  # noqa: E731
    with torch.no_grad(), torch.autograd.set_grad_enabled(False):
        ratio = rms(estimate) / rms(reference)  # (B,) 0/0 -> NaN, x/0 -> inf
    return (20 * torch.log10(ratio)).float()


def loudest_frame_dbfs(waveform: torch.Tensor, sample_rate: int,
                       frame_seconds: float = 0.02) -> torch.Tensor:
    """RMS of each clip's loudest non-overlapping ``frame_seconds`` frame, in dBFS (1.0 = 0 dB),
    shape ``(B,)`` for ``waveform`` ``(B, 1, samples)``; a clip shorter than one frame is one
    frame. ``-inf`` for digital silence, NaN where a clip holds NaN."""
    x = waveform.detach().reshape(waveform.shape[0], -1).double()  # (B, samples)
    frame = max(1, int(frame_seconds * sample_rate))
    n = x.shape[1] // frame * frame
    frames = x[:, :n].reshape(x.shape[0], -1, frame) if n else x[:, None]  # (B, F, frame)
    rms = frames.pow(2).mean(dim=2).sqrt().amax(dim=1)  # (B,)
    return (20 * torch.log10(rms)).float()


def mel_consistency(spec: AudioSpectrogram, mel: torch.Tensor,
                    waveform: torch.Tensor | None = None, method: str | None = None
                    ) -> torch.Tensor:
    """Spectral convergence between a mel and the mel of its inverted audio, per clip ``(B,)``.

    Usable where no original waveform exists (a VAE decoder's output): a mel that some audio
    could have produced, and that the inversion found that audio for, scores near 0; a mel no
    audio could produce (or a poor inversion) scores higher. Definition, on mel magnitudes
    ``M = sqrt(mel power)`` (``spec.mel_to_power``)::

        || M - M_hat ||_F / || M ||_F,   M_hat = M(spec.waveform_to_mel(audio))

    with ``audio = spec.mel_to_waveform(mel, method=method)`` unless ``waveform`` is given. This
    is the "spectral convergence" of Sturmel & Daudet (2011), the consistency Griffin & Lim
    (1984) minimise, measured in the mel domain instead of the STFT domain.

    Parameters
    ----------
    spec : AudioSpectrogram
        The representation ``mel`` is in.
    mel : Tensor
        ``(B, 1, n_mels, T)`` normalised mel, ``T >= ceil(n_fft / hop_length) + 1`` (5 for the
        defaults: the inverted audio must hold one FFT window).
    waveform : Tensor, optional
        ``(B, 1, samples)`` audio to compare instead of inverting ``mel``; it must give ``T``
        frames.
    method : str, optional
        Inversion method passed to ``mel_to_waveform`` (default: the config's).

    Raises
    ------
    ValueError
        On a bad mel, too few frames, or a waveform whose mel has another number of frames.
    """
    c = spec.config
    mel = check_mel(mel, c.n_mels)
    frames = mel.shape[-1]
    need = -(-c.n_fft // c.hop_length) + 1
    if waveform is None:
        if frames < need:
            raise ValueError(
                f"mel has {frames} frames; mel_consistency needs at least {need} so that the "
                f"inverted audio ({(frames - 1) * c.hop_length} samples) holds one FFT window "
                f"({c.n_fft})"
            )
        waveform = spec.mel_to_waveform(mel, method=method)  # (B, 1, (T-1)*hop)
    back = spec.waveform_to_mel(waveform)  # (B, 1, n_mels, T')
    if back.shape[0] != mel.shape[0] or back.shape[-1] != frames:
        raise ValueError(
            f"waveform gives mels of shape {tuple(back.shape)}, expected {tuple(mel.shape)} "
            f"(B={mel.shape[0]}, {frames} frames)"
        )
    m = spec.mel_to_power(mel).sqrt()  # (B, n_mels, T)
    m_hat = spec.mel_to_power(back.to(mel.device)).sqrt()  # (B, n_mels, T)
    num = (m - m_hat).flatten(1).norm(dim=1)  # (B,)
    den = m.flatten(1).norm(dim=1).clamp(min=1e-8)  # (B,)
    return num / den
