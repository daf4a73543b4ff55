"""The embedded default data set: short, varied, musical 1 s clips made by code, not downloaded.

Five kinds (plucked strings, FM bells, drum hits, formant vowels, noise sweeps) at the
spectrogram's sample rate. Each clip's parameters come from a ``numpy`` generator seeded by
``(seed, kind, index)``, so the set is identical on every machine and every run, and clip ``i``
does not depend on how many clips were asked for. Shapes: clips ``(N, 1, samples)`` float32.
"""

from __future__ import annotations

import numpy as np
import scipy.signal
import torch

from .clips import AudioClips

__all__ = ["KINDS", "PEAK", "synthesize_clip", "make_default_dataset"]

KINDS = ("pluck", "bell", "drum", "vowel", "sweep")
PEAK = 0.8  # clips are normalised to this peak: headroom below full scale


def _envelope(n: int, sr: int, attack: float, decay: float) -> np.ndarray:
    t = np.arange(n) / sr
    att = np.clip(t / max(attack, 1e-4), 0, 1)
    return att * np.exp(-t / decay)


def _pluck(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Karplus-Strong string: a noise burst in a damped, low-passed delay loop."""
    f0 = 440.0 * 2 ** (rng.integers(-24, 13) / 12)  # A2 .. A5 on the semitone grid
    delay = max(2, int(round(sr / f0)))
    damping = rng.uniform(0.990, 0.998)
    burst = np.zeros(n)
    burst[:delay] = rng.uniform(-1, 1, delay)
    # y[n] = x[n] + damping/2 * (y[n-L] + y[n-L-1]), one IIR filter instead of a Python loop
    a = np.zeros(delay + 2)
    a[0], a[delay], a[delay + 1] = 1.0, -damping / 2, -damping / 2
    return scipy.signal.lfilter([1.0], a, burst)


def _bell(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Chowning FM bell: inharmonic ratio, modulation index decaying with the amplitude."""
    t = np.arange(n) / sr
    fc = rng.uniform(200, 1200)
    ratio = rng.choice([1.4, 2.76, 3.5, 1.21])
    index0 = rng.uniform(2, 8)
    env = _envelope(n, sr, 0.002, rng.uniform(0.2, 0.6))
    return env * np.sin(2 * np.pi * fc * t + index0 * env * np.sin(2 * np.pi * fc * ratio * t))


def _drum(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Kick/tom: a sine sweeping down in pitch plus a short noise snap."""
    t = np.arange(n) / sr
    f_hi, f_lo = rng.uniform(150, 400), rng.uniform(40, 120)
    sweep = f_lo + (f_hi - f_lo) * np.exp(-t / rng.uniform(0.02, 0.08))
    phase = 2 * np.pi * np.cumsum(sweep) / sr
    body = np.sin(phase) * np.exp(-t / rng.uniform(0.08, 0.3))
    snap = rng.normal(0, 1, n) * np.exp(-t / rng.uniform(0.005, 0.03)) * rng.uniform(0.2, 0.8)
    return body + snap


_VOWEL_FORMANTS = {  # (F1, F2, F3) in Hz, adult male averages
    "a": (730, 1090, 2440),
    "e": (530, 1840, 2480),
    "i": (270, 2290, 3010),
    "o": (570, 840, 2410),
    "u": (300, 870, 2240),
}


def _vowel(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Source-filter vowel: a vibrato sawtooth through three formant resonators."""
    t = np.arange(n) / sr
    f0 = rng.uniform(90, 260) * (1 + 0.01 * np.sin(2 * np.pi * rng.uniform(4, 6) * t))
    phase = np.cumsum(f0) / sr
    source = 2 * (phase % 1.0) - 1  # sawtooth, rich in harmonics
    out = np.zeros(n)
    formants = _VOWEL_FORMANTS[rng.choice(list(_VOWEL_FORMANTS))]
    for i, f in enumerate(formants):
        bw = 60 + 40 * i
        r = np.exp(-np.pi * bw / sr)
        a = [1, -2 * r * np.cos(2 * np.pi * f / sr), r * r]
        out += scipy.signal.lfilter([1 - r], a, source) / (i + 1)
    return out * _envelope(n, sr, 0.05, 2.0)


def _sweep(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Band of noise whose centre glides between two frequencies (STFT-domain mask)."""
    n_fft, hop = 1024, 256
    frames = n // hop + 1
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    f_start, f_end = np.exp(rng.uniform(np.log(200), np.log(12000), 2))
    centre = np.geomspace(f_start, f_end, frames)
    width = rng.uniform(0.1, 0.4)  # in octaves
    octaves = np.log2(np.maximum(freqs[:, None], 1.0) / centre[None, :])
    mask = np.exp(-0.5 * (octaves / width) ** 2)  # (bins, frames)
    spec = mask * np.exp(2j * np.pi * rng.uniform(0, 1, mask.shape))
    _, x = scipy.signal.istft(spec, fs=sr, nperseg=n_fft, noverlap=n_fft - hop)
    x = np.resize(x, n) if len(x) < n else x[:n]
    return x * _envelope(n, sr, 0.1, 1.5)


_SYNTHS = {"pluck": _pluck, "bell": _bell, "drum": _drum, "vowel": _vowel, "sweep": _sweep}


def synthesize_clip(kind: str, index: int, seed: int = 0, sample_rate: int = 48_000,
                    seconds: float = 1.0) -> np.ndarray:
    """One deterministic clip ``(samples,)`` float32 of ``kind``, peak-normalised to 0.8."""
    if kind not in _SYNTHS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    n = int(round(seconds * sample_rate))
    rng = np.random.default_rng([seed, KINDS.index(kind), index])
    x = _SYNTHS[kind](rng, n, sample_rate)
    # Short fade-out so clips end in silence rather than a click.
    fade = min(n, int(0.01 * sample_rate))
    x[-fade:] *= np.linspace(1, 0, fade)
    return (PEAK * x / (np.abs(x).max() + 1e-12)).astype(np.float32)


def make_default_dataset(clips_per_kind: int = 8, seed: int = 0, sample_rate: int = 48_000,
                         kinds: tuple[str, ...] = KINDS) -> AudioClips:
    """The embedded default data set: ``clips_per_kind`` clips of each kind, interleaved.

    ``make_default_dataset(60)`` gives 300 clips in a few seconds. Labels are the kind names;
    ``files`` names one pseudo-file per clip, ``f"{kind}_{i:03d}"``.
    """
    if clips_per_kind < 1:
        raise ValueError(f"clips_per_kind must be at least 1, got {clips_per_kind}")
    waves = np.empty((clips_per_kind * len(kinds), int(round(sample_rate))), np.float32)
    labels, files = [], []
    for i in range(clips_per_kind):
        for kind in kinds:
            waves[len(labels)] = synthesize_clip(kind, i, seed=seed, sample_rate=sample_rate)
            labels.append(kind)
            files.append(f"{kind}_{i:03d}")  # one pseudo-file per clip
    clips = torch.from_numpy(waves).unsqueeze(1)  # (N, 1, samples), no second copy
    return AudioClips(clips, labels, sample_rate, files=files)
