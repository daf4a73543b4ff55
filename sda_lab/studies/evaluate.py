"""Round-trip evaluation: sda-lab's mel inversion against librosa's, and every mel -> waveform
path (reference lstsq, NNLS, learned inverse mel, PGHI, the true-magnitude bound), side by side."""

from __future__ import annotations

import time
from dataclasses import dataclass

import librosa
import numpy as np
import torch

from ..core._checks import check_frames, check_mel, check_waveform
from ..data.clips import AudioClips
from ..data.split import same_recordings, split_by_file
from ..representation.inverse_mel import (InverseMel, InverseMelConfig, mel_to_magnitude,
                                          mel_to_waveform_learned, stft_magnitude)
from ..representation.inverse_mel_fit import fit_inverse_mel, start_audio_sc
from ..representation.metrics import log_spectral_distance, mel_consistency, spectral_convergence
from ..representation.phase import griffin_lim
from ..representation.spectrogram import AudioSpectrogram


def librosa_mel_to_audio(spec: AudioSpectrogram, mel: torch.Tensor, length: int | None = None,
                         n_iter: int | None = None) -> torch.Tensor:
    """librosa's reference inversion (NNLS + Griffin-Lim) of our normalised mels.

    Uses the same filterbank as torchaudio's (HTK mel scale, no normalisation) and the same
    iteration count, so the two differ only in algorithm and implementation.
    ``(B, 1, n_mels, T)`` -> ``(B, 1, samples)``.

    Each mel is divided by its peak before librosa sees it and the audio is scaled back by
    ``sqrt(peak)``. NNLS and Griffin-Lim are both homogeneous, so the answer is the same, but
    librosa's L-BFGS-B NNLS is badly conditioned on raw STFT powers (peaks in the thousands):
    unscaled, one 1 s pluck took minutes instead of about a second. The baseline is librosa used
    well, not librosa at its slowest.

    Raises
    ------
    ValueError
        On a bad mel, fewer than ``spec.config.min_frames`` frames (librosa would silently
        return an empty clip for one frame), or a ``length`` that does not fit the frames.
    """
    c = spec.config
    mel = check_mel(mel, c.n_mels)
    check_frames(mel.shape[-1], length, c.n_fft, c.hop_length)  # the same limits as sda-lab's
    power = spec.mel_to_power(mel).cpu().double().numpy()  # (B, n_mels, T)
    out = []
    for m in power:
        peak = max(float(m.max()), 1e-12)
        y = librosa.feature.inverse.mel_to_audio(
            m / peak, sr=c.sample_rate, n_fft=c.n_fft, hop_length=c.hop_length, power=c.power,
            n_iter=n_iter or c.griffin_lim_iters, length=length, fmin=c.f_min, fmax=c.f_max,
            htk=True, norm=None,
        )
        out.append(y * peak ** (1 / c.power))  # mel power scales by peak, magnitude by its root
    return torch.from_numpy(np.stack(out)).float().unsqueeze(1)  # (B, 1, samples)


@dataclass
class RoundTripResult:
    label: str
    reconstruction: torch.Tensor  # (n, 1, samples) from sda-lab
    reference: torch.Tensor  # (n, 1, samples) from librosa
    spectral_convergence: float
    log_spectral_distance_db: float
    librosa_spectral_convergence: float
    librosa_log_spectral_distance_db: float
    seconds: float
    librosa_seconds: float
    lstsq_spectral_convergence: float | None = None  # mel_to_waveform(method="lstsq")


def compare_round_trips(spec: AudioSpectrogram, clips: AudioClips, seed: int = 0,
                        method: str | None = None, with_lstsq: bool = False
                        ) -> list[RoundTripResult]:
    """For each label in ``clips``: invert its mels with sda-lab and with librosa.

    ``seed`` is the random seed of both Griffin-Lim starts (torch's and numpy's). ``method`` is
    passed to ``mel_to_waveform`` (default: the config's, NNLS). With ``with_lstsq`` the
    reference plan's inversion (``method="lstsq"``) is also scored, untimed.

    Both see the same mels and run the same number of Griffin-Lim iterations; each label's
    clips are inverted as one batch by sda-lab and clip by clip by librosa (it has no batch
    mode). Metrics are means over that label's clips.
    """
    results = []
    for label in dict.fromkeys(clips.labels):
        x = clips.by_label(label)  # (n, 1, samples)
        mel = spec.waveform_to_mel(x)  # (n, 1, n_mels, T)
        torch.manual_seed(seed)
        np.random.seed(seed)  # librosa's random phase init uses numpy's global generator
        t0 = time.perf_counter()
        y = spec.mel_to_waveform(mel, length=x.shape[-1], method=method)  # (n, 1, samples)
        t1 = time.perf_counter()
        y_ref = librosa_mel_to_audio(spec, mel, length=x.shape[-1])  # (n, 1, samples)
        t2 = time.perf_counter()
        results.append(RoundTripResult(
            label, y, y_ref,
            float(spectral_convergence(x, y).mean()),
            float(log_spectral_distance(x, y).mean()),
            float(spectral_convergence(x, y_ref).mean()),
            float(log_spectral_distance(x, y_ref).mean()),
            t1 - t0, t2 - t1,
        ))
        if with_lstsq:
            torch.manual_seed(seed)
            y_lstsq = spec.mel_to_waveform(mel, length=x.shape[-1], method="lstsq")
            results[-1].lstsq_spectral_convergence = float(
                spectral_convergence(x, y_lstsq).mean())
    return results


def round_trip_rows(results: list[RoundTripResult]) -> list[dict[str, object]]:
    """Rows for :func:`sda_lab.interface.plotting.markdown_table`."""
    return [
        {
            "clip type": r.label,
            **({"SC lstsq": r.lstsq_spectral_convergence}
               if r.lstsq_spectral_convergence is not None else {}),
            "SC sda-lab": r.spectral_convergence,
            "SC librosa": r.librosa_spectral_convergence,
            "LSD dB sda-lab": r.log_spectral_distance_db,
            "LSD dB librosa": r.librosa_log_spectral_distance_db,
            # a ratio measured side by side, not seconds: those depend on the machine and its load
            "librosa time / sda-lab time": r.librosa_seconds / max(r.seconds, 1e-9),
        }
        for r in results
    ]


def fit_held_out(spec, clips, seed: int = 0, config: InverseMelConfig | None = None,
                 val_fraction: float = 0.2, n_eval: int | None = None):
    """Split ``clips`` (an :class:`~sda_lab.data.AudioClips`) by file
    (:func:`sda_lab.data.split_by_file`), fit a learned inverse mel on the training
    files' waveforms and return ``(inverse, held_out)``: the :class:`InverseMel` and the first
    ``n_eval`` (all when None) held-out waveforms ``(k, 1, samples)`` to judge it on."""
    train_idx, val_idx, _ = split_by_file(clips, val_fraction, seed,
                                          groups=same_recordings(clips))
    inverse = fit_inverse_mel(spec, clips.waveforms[train_idx], config)
    return inverse, clips.waveforms[val_idx[:n_eval] if n_eval is not None else val_idx]


def _sc(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    return ((reference - estimate).flatten(1).norm(dim=1)
            / reference.flatten(1).norm(dim=1).clamp(min=1e-8))  # (B,)


@torch.no_grad()
def render_paths(spec, waveforms: torch.Tensor, inverse: InverseMel | None = None,
                 seed: int = 0) -> dict[str, tuple[torch.Tensor, float]]:
    """The clips ``(B, 1, samples)`` through every mel -> waveform path:
    ``{path: (waveform (B, 1, samples), seconds per clip)}``.

    Paths: the reference plan's ``lstsq`` and the NNLS default (``spec.mel_to_waveform``),
    NNLS + PGHI, the harmonic start (:mod:`sda_lab.representation.harmonic`, nothing learned) +
    PGHI, the learned inverse + fast Griffin-Lim from random and from PGHI phase (only
    when ``inverse`` is given), and the bound: the clips' true ``|S|`` + fast Griffin-Lim from
    random and from PGHI phase. ``spec.config.griffin_lim_iters`` iterations everywhere; random
    phases come from ``seed``.
    """
    x = check_waveform(waveforms, spec.config.n_fft, "waveforms").float()
    length, c = x.shape[-1], spec.config
    mel = spec.waveform_to_mel(x)  # (B, 1, n_mels, T)
    target = stft_magnitude(spec, x)  # (B, n_stft, T)
    paths = {
        "reference lstsq + GL": lambda g: spec.mel_to_waveform(mel, length, method="lstsq"),
        "NNLS default": lambda g: spec.mel_to_waveform(mel, length),
        "NNLS + PGHI + fast GL": lambda g: mel_to_waveform_learned(spec, None, mel, "pghi",
                                                                   length, generator=g),
        "harmonic + PGHI + fast GL": lambda g: mel_to_waveform_learned(
            spec, None, mel, "pghi", length, generator=g, start="harmonic"),
    }
    if inverse is not None:
        paths["learned + fast GL"] = lambda g: mel_to_waveform_learned(
            spec, inverse, mel, "random", length, generator=g)
        paths["learned + PGHI + fast GL"] = lambda g: mel_to_waveform_learned(
            spec, inverse, mel, "pghi", length, generator=g)
    for init in ("random", "pghi"):
        paths[f"bound: true |S| + {'PGHI + ' if init == 'pghi' else ''}fast GL"] = (
            lambda g, init=init: griffin_lim(target, c.n_fft, c.hop_length, c.griffin_lim_iters,
                                             init=init, length=length, generator=g)[:, None])
    out = {}
    for name, fn in paths.items():
        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(seed)
        t0 = time.perf_counter()
        y = fn(g)  # (B, 1, samples)
        out[name] = (y, (time.perf_counter() - t0) / x.shape[0])
    return out


@torch.no_grad()
def compare_inversions(spec, waveforms: torch.Tensor, inverse: InverseMel | None = None,
                       seed: int = 0) -> list[dict]:
    """Every path of :func:`render_paths` on the same clips ``(B, 1, samples)``, scored.

    Also the magnitude floors (``sqrt(NNLS(mel))``, the harmonic start and the learned
    magnitude against ``|S|``, no phase step). Each row: ``path``, ``SC`` and ``LSD dB`` (mean over clips, against the
    original, :mod:`sda_lab.representation.metrics`), ``mel consistency``
    (:func:`sda_lab.representation.metrics.mel_consistency`), ``s per clip`` and ``x default time``
    (None for the floors). Learned rows are left out when ``inverse`` is None.
    """
    x = check_waveform(waveforms, spec.config.n_fft, "waveforms").float()
    c = spec.config
    mel = spec.waveform_to_mel(x)  # (B, 1, n_mels, T)
    target = stft_magnitude(spec, x)  # (B, n_stft, T)
    floors = {"floor: sqrt(NNLS(mel)) vs |S|": mel_to_magnitude(spec, mel),
              "floor: harmonic start vs |S|": mel_to_magnitude(spec, mel, start="harmonic")}
    if inverse is not None:
        floors["floor: learned magnitude vs |S|"] = mel_to_magnitude(spec, mel, inverse)
    rows = [{"path": name, "SC": float(_sc(target, mag).mean()), "LSD dB": None,
             "mel consistency": None, "s per clip": None, "x default time": None}
            for name, mag in floors.items()]
    rendered = render_paths(spec, x, inverse, seed)
    default = rendered["NNLS default"][1]
    for name, (y, seconds) in rendered.items():
        rows.append({"path": name,
                     "SC": float(spectral_convergence(x, y, c.n_fft, c.hop_length).mean()),
                     "LSD dB": float(log_spectral_distance(x, y, c.n_fft, c.hop_length).mean()),
                     "mel consistency": float(mel_consistency(spec, mel, waveform=y).mean()),
                     "s per clip": seconds, "x default time": seconds / default})
    return rows


@torch.no_grad()
def phase_start_sc(spec, waveforms: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Fast Griffin-Lim from the clips' **true** STFT magnitude, started from a random phase
    and from PGHI's (the two bound paths of :func:`render_paths`, seeded as it seeds them,
    ``spec.config.griffin_lim_iters`` iterations), scored per clip: ``{"random": (B,), "pghi":
    (B,)}`` spectral convergence against the clips ``(B, 1, samples)``. Nothing is learned, so
    any clips may be scored."""
    x = check_waveform(waveforms, spec.config.n_fft, "waveforms").float()
    c = spec.config
    target = stft_magnitude(spec, x)  # (B, n_stft, T)
    out = {}
    for init in ("random", "pghi"):
        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(seed)
        y = griffin_lim(target, c.n_fft, c.hop_length, c.griffin_lim_iters, init=init,
                        length=x.shape[-1], generator=g)[:, None]  # (B, 1, samples)
        out[init] = spectral_convergence(x, y, c.n_fft, c.hop_length).reshape(-1)  # (B,)
    return out


@torch.no_grad()
def compare_starts(spec, waveforms: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """NNLS against the harmonic start (:mod:`sda_lab.representation.harmonic`) on clips ``(B, 1,
    samples)``; nothing is learned, so any clips will do (held-out or not).

    Returns the mean spectral convergence of each start's magnitude against ``|S|`` (the
    floors) and after PGHI + fast Griffin-Lim (``spec.config.griffin_lim_iters``, random phases
    of the smallest coefficients from ``seed``), and the share of clips where the harmonic
    start's audio is the closer one.
    """
    x = check_waveform(waveforms, spec.config.n_fft, "waveforms").float()
    mel = spec.waveform_to_mel(x)  # (B, 1, n_mels, T)
    target = stft_magnitude(spec, x)  # (B, n_stft, T)
    out, audio_sc = {}, {}
    for start, name in (("nnls", "NNLS"), ("harmonic", "harmonic")):
        mag, audio_sc[start] = start_audio_sc(spec, x, mel, start, spec.config.nnls_iters,
                                              seed)  # (B, n_stft, T), (B,)
        out[f"{name} floor"] = float(_sc(target, mag).mean())
        out[f"{name} + PGHI + fast GL"] = float(audio_sc[start].mean())
    out["clips where harmonic wins"] = float((audio_sc["harmonic"] < audio_sc["nnls"])
                                             .float().mean())
    return out
