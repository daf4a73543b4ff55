"""Audio descriptors, and latent dimensions named by the descriptor they move.

Per clip (:func:`clip_descriptors`, librosa): loudness (RMS in dB), spectral centroid, spectral
flatness, spectral bandwidth, onset strength and, where the clip is pitched, the fundamental
frequency (probabilistic YIN, ``librosa.pyin``: offline, no model weights).

Per latent dimension (:func:`traverse`, :func:`dimension_table`): the dimensions are ranked as
the explorer ranks them (mean KL per dimension on the clips,
:func:`sda_lab.studies.dimensions.rank_dimensions`); each is
moved from a clip's posterior mean by ``-n_sd .. +n_sd`` aggregate posterior standard
deviations, the mel is decoded, inverted to audio and analysed. The table gives, per dimension
and descriptor, the within-clip correlation between the move and the descriptor and the slope
in descriptor units per posterior standard deviation. :func:`dimension_labels` names each
dimension by its strongest descriptor ("z33 · brighter ↑"), :func:`descriptor_directions`
goes the other way (ridge regression of each descriptor on the posterior means: a latent
direction per descriptor), and :func:`label_stability` compares labels of models trained with
different seeds (a label that changes with the seed is not a finding).

The descriptor maps follow the idea of Esling et al. 2018, "Generative timbre spaces:
regularizing variational auto-encoders with perceptual metrics" (descriptors along latent axes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..model.vae import ConvVAE, encode_dataset
from ..representation.inverter import Inverter
from .dimensions import rank_dimensions

__all__ = ["DESCRIPTORS", "WORDS", "ANALYSIS_GRIFFIN_LIM_ITERS", "clip_descriptors",
           "clip_length", "invert", "traverse", "dimension_table", "dimension_labels",
           "label_for", "Directions", "descriptor_directions", "label_stability"]

# name -> (word when the descriptor rises, word when it falls)
WORDS: dict[str, tuple[str, str]] = {
    "loudness_db": ("louder", "quieter"),
    "centroid_hz": ("brighter", "darker"),
    "flatness": ("noisier", "more tonal"),
    "bandwidth_hz": ("wider", "narrower"),
    "onset_strength": ("punchier", "softer attack"),
    "f0_hz": ("higher", "lower"),
}
DESCRIPTORS: tuple[str, ...] = tuple(WORDS)
SILENCE_DB = -80.0  # RMS floor in dB re full scale: frames below it carry no weight
F0_RANGE_HZ = (50.0, 2000.0)
F0_RATE = 16_000  # Hz: pYIN runs at this rate
F0_RESOLUTION = 0.5  # semitones per pYIN pitch bin (librosa: 0.1; its Viterbi cost grows as 1/res^2)
# Griffin-Lim iterations of the analysis inversion (traversals, prior comparison): a quarter of
# the default's; the descriptor change this costs is measured in the lead's RESULTS.md notes
ANALYSIS_GRIFFIN_LIM_ITERS = 16
MIN_VOICED = 0.3  # a clip is pitched when at least this share of its loud frames is voiced
# a frame whose pYIN pitch is within a semitone of the range's floor is not counted as voiced:
# the thump of a drum hit lands there, at the edge of what the tracker can tell
F0_FLOOR_HZ = F0_RANGE_HZ[0] * 2 ** (1 / 12)


def clip_length(spec, n_frames: int) -> int:
    """Samples of a decoded clip of ``n_frames`` mel frames: one second when the model's frames
    are a second's, else ``(n_frames - 1) * hop_length`` (what Griffin-Lim returns)."""
    sr = spec.config.sample_rate
    return sr if spec.get_mel_shape(sr)[1] == n_frames else (n_frames - 1) * spec.config.hop_length


@torch.no_grad()
def invert(spec, mels: torch.Tensor, seed: int = 0, batch: int = 32,
           griffin_lim_iters: int | None = None, inverter: Inverter | None = None
           ) -> torch.Tensor:
    """Mels ``(N, 1, n_mels, T)`` -> waveforms ``(N, 1, samples)`` on the CPU.

    ``inverter``: an :class:`~sda_lab.representation.inverter.Inverter` (a run's,
    :meth:`Inverter.for_run <sda_lab.representation.inverter.Inverter.for_run>`): the waveforms
    are what it gives (its magnitude, phase start and Griffin-Lim iterations; the random phases
    it draws, of a random start or of PGHI's smallest coefficients, come from
    ``torch.Generator().manual_seed(seed)``, one for all batches). ``ValueError`` (one line) if
    it was built on another spectrogram config than ``spec``, or if ``griffin_lim_iters`` is
    also given (the inverter carries its own).
    Else ``griffin_lim_iters=None``: the spectrogram's default inversion
    (:meth:`AudioSpectrogram.mel_to_waveform`). A number: its NNLS step
    (:meth:`AudioSpectrogram.mel_to_linear`, ``config.nnls_iters`` steps), then that many
    Griffin-Lim iterations (:func:`sda_lab.representation.inversion.griffin_lim`): the analysis
    inversion (:data:`ANALYSIS_GRIFFIN_LIM_ITERS`), since descriptors read magnitudes, which
    Griffin-Lim's later iterations barely change. Random phases come from ``seed``; the global
    torch generator is left as it was.
    """
    from ..representation.inversion import griffin_lim

    c = spec.config
    if inverter is not None:
        if griffin_lim_iters is not None:
            raise ValueError("griffin_lim_iters: not with an inverter, which carries its own "
                             "(Inverter(..., griffin_lim_iters=))")
        if inverter.spectrogram.config != c:
            raise ValueError("inverter: built on another spectrogram config than the mels'")
    length = clip_length(spec, mels.shape[-1])
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        for i in range(0, mels.shape[0], batch):
            m = mels[i:i + batch].cpu()  # (b, 1, n_mels, T)
            if inverter is not None:
                out.append(inverter(m, length, generator=generator).cpu())  # (b, 1, samples)
                continue
            if griffin_lim_iters is None:
                out.append(spec.mel_to_waveform(m, length=length))  # (b, 1, samples)
                continue
            linear = spec.mel_to_linear(m, nnls_iters=c.nnls_iters)  # (b, n_stft, T)
            wave = griffin_lim(linear, n_fft=c.n_fft, hop_length=c.hop_length,
                               n_iter=griffin_lim_iters, power=c.power, length=length,
                               window=spec.window)  # (b, samples)
            out.append(wave.unsqueeze(1))  # (b, 1, samples)
    return torch.cat(out)  # (N, 1, samples)


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean over the last axis weighted by ``weights``; NaN where all weights are 0."""
    total = weights.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (values * weights).sum(-1) / np.where(total > 0, total, 1),
                        np.nan)


def clip_descriptors(waveforms: torch.Tensor | np.ndarray, sample_rate: int, f0: bool = True,
                     n_fft: int = 2048, hop_length: int = 512) -> pd.DataFrame:
    """Descriptors of each clip: a DataFrame with one row per clip and the columns of
    :data:`DESCRIPTORS`.

    Parameters
    ----------
    waveforms : Tensor or ndarray
        ``(N, 1, samples)`` or ``(N, samples)``, float, full scale 1.
    sample_rate : int
        Hz.
    f0 : bool
        Estimate the fundamental frequency with ``librosa.pyin`` (the slow part). False leaves
        ``f0_hz`` NaN.

    Returns
    -------
    DataFrame
        ``loudness_db``: RMS over the whole clip in dB re full scale. ``centroid_hz``,
        ``flatness`` (0 tonal .. 1 white noise), ``bandwidth_hz``: per-frame librosa features
        averaged with the frames' energy as weights (silence below -80 dB carries none).
        ``onset_strength``: the peak of librosa's onset strength envelope. ``f0_hz``: median
        pYIN f0 of the voiced loud frames, NaN when under 30% of them are voiced (unpitched);
        a frame's pitch within a semitone of the range's 50 Hz floor does not count as voiced.

    Raises
    ------
    ValueError
        Not ``(N, 1, samples)`` / ``(N, samples)``, empty, non-finite, or shorter than
        ``n_fft`` samples.
    """
    import librosa

    x = waveforms.detach().cpu().numpy() if isinstance(waveforms, torch.Tensor) else np.asarray(waveforms)
    if x.ndim == 3 and x.shape[1] == 1:
        x = x[:, 0]  # (N, samples)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"waveforms must be (N, 1, samples) or (N, samples) with N >= 1, got "
                         f"shape {tuple(np.shape(waveforms))}")
    if x.shape[1] < n_fft:
        raise ValueError(f"clips must have at least n_fft={n_fft} samples, got {x.shape[1]}")
    if not np.isfinite(x).all():
        raise ValueError("waveforms contain NaN or Inf samples")
    x = x.astype(np.float32)
    S = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop_length))  # (N, n_fft/2+1, frames)
    frame_rms = librosa.feature.rms(S=S, frame_length=n_fft)[:, 0]  # (N, frames)
    frame_db = 20 * np.log10(np.maximum(frame_rms, 1e-10))
    weight = np.where(frame_db > SILENCE_DB, frame_rms ** 2, 0.0)  # (N, frames) energy weights
    kw = dict(S=S, sr=sample_rate, n_fft=n_fft, hop_length=hop_length)
    rows = {
        "loudness_db": 10 * np.log10(np.maximum(np.mean(x.astype(np.float64) ** 2, axis=1), 1e-20)),
        "centroid_hz": _weighted_mean(librosa.feature.spectral_centroid(**kw)[:, 0], weight),
        "flatness": _weighted_mean(librosa.feature.spectral_flatness(S=S)[:, 0], weight),
        "bandwidth_hz": _weighted_mean(librosa.feature.spectral_bandwidth(**kw)[:, 0], weight),
        "onset_strength": librosa.onset.onset_strength(S=librosa.amplitude_to_db(S, ref=1.0),
                                                       sr=sample_rate).max(axis=-1),
    }
    f0_hz = np.full(x.shape[0], np.nan)
    if f0:
        # pYIN at 16 kHz (a 1024-sample frame holds two periods of 50 Hz): ~9x cheaper than
        # at 48 kHz; frames at the same times as the STFT's (hop scaled by the rate ratio)
        sr_f0 = min(sample_rate, F0_RATE)
        y = librosa.resample(x, orig_sr=sample_rate, target_sr=sr_f0) if sr_f0 != sample_rate else x
        f0_frames, voiced, _ = librosa.pyin(
            y, fmin=F0_RANGE_HZ[0], fmax=F0_RANGE_HZ[1], sr=sr_f0,
            frame_length=max(1024, int(n_fft * sr_f0 / sample_rate)),
            hop_length=max(1, round(hop_length * sr_f0 / sample_rate)),
            resolution=F0_RESOLUTION)  # (N, frames') each
        frames = min(f0_frames.shape[-1], weight.shape[-1])
        loud = weight[:, :frames] > 0
        for i in range(x.shape[0]):
            v = voiced[i, :frames] & loud[i] & (f0_frames[i, :frames] > F0_FLOOR_HZ)
            if loud[i].sum() and v.sum() >= MIN_VOICED * loud[i].sum():
                f0_hz[i] = float(np.nanmedian(f0_frames[i, :frames][v]))
    rows["f0_hz"] = f0_hz
    return pd.DataFrame(rows, columns=list(DESCRIPTORS))


@torch.no_grad()
def traverse(model: ConvVAE, spec, mels: torch.Tensor, n_dims: int = 8, n_clips: int = 4,
             n_sd: float = 2.0, steps: int = 5, f0: bool = True, seed: int = 0,
             griffin_lim_iters: int | None = ANALYSIS_GRIFFIN_LIM_ITERS) -> pd.DataFrame:
    """Move each of the ``n_dims`` top-ranked dimensions from ``n_clips`` clips' posterior means
    by ``linspace(-n_sd, n_sd, steps)`` aggregate posterior standard deviations; decode, invert
    (:func:`invert` with ``griffin_lim_iters``, phases from ``seed``; None: the full default
    inversion) and analyse (:func:`clip_descriptors`).

    ``mels`` ``(N >= 2, 1, n_mels, T)``; the clips are the first ``n_clips`` of a permutation
    seeded by ``seed``. Returns a long DataFrame: ``rank`` (0 = most informative), ``dim``,
    ``clip``, ``t`` (the move, in posterior standard deviations) and the descriptors.

    Raises
    ------
    ValueError
        Fewer than 2 clips, ``steps`` < 3, ``n_sd`` <= 0, or ``n_dims``/``n_clips`` < 1.
    """
    if mels.dim() != 4 or mels.shape[0] < 2:
        raise ValueError(f"mels must be (N >= 2, 1, n_mels, T), got {tuple(mels.shape)}")
    if steps < 3 or not n_sd > 0 or n_dims < 1 or n_clips < 1:
        raise ValueError(f"need steps >= 3, n_sd > 0, n_dims >= 1, n_clips >= 1; got steps="
                         f"{steps}, n_sd={n_sd}, n_dims={n_dims}, n_clips={n_clips}")
    model.eval()
    order, _, mu, scale = rank_dimensions(model, mels)
    order = order[:n_dims]
    clips = np.random.default_rng(seed).permutation(mels.shape[0])[:n_clips].tolist()
    t = torch.linspace(-n_sd, n_sd, steps)  # (steps,)
    device = next(model.parameters()).device
    frames = mels.shape[-1]
    rows, zs = [], []
    for rank, d in enumerate(order):
        for c in clips:
            z = mu[c].repeat(steps, 1)  # (steps, D)
            z[:, d] += t * scale[d]
            zs.append(z)
            rows += [{"rank": rank, "dim": d, "clip": c, "t": float(v)} for v in t]
    z = torch.cat(zs)  # (n_dims * n_clips * steps, D)
    decoded = torch.cat([model.decode(z[i:i + 64].to(device), (1, 1, mels.shape[2], frames)).cpu()
                         for i in range(0, z.shape[0], 64)])  # (M, 1, n_mels, T)
    waves = invert(spec, decoded, seed=seed, griffin_lim_iters=griffin_lim_iters)  # (M, 1, S)
    desc = clip_descriptors(waves, spec.config.sample_rate, f0=f0,
                            n_fft=spec.config.n_fft, hop_length=spec.config.hop_length)
    return pd.concat([pd.DataFrame(rows), desc], axis=1)


def dimension_table(traversal: pd.DataFrame) -> pd.DataFrame:
    """Per dimension and descriptor: within-clip ``correlation`` of the move with the
    descriptor, ``slope`` (descriptor units per posterior standard deviation, least squares
    with one intercept per clip), and ``effect`` (slope times the traversal's span over the
    descriptor's standard deviation across all traversed sounds: how far, in spreads, the whole
    move takes it). One row per (rank, dim, descriptor), sorted by rank. Descriptor values that
    are NaN (f0 of unpitched sounds) are left out; fewer than 3 values give NaN."""
    rows = []
    span = traversal["t"].max() - traversal["t"].min()
    for name in DESCRIPTORS:
        spread = traversal[name].std()
        for (rank, d), g in traversal.groupby(["rank", "dim"], sort=True):
            g = g[np.isfinite(g[name])]
            # centre t and the descriptor within each clip: one intercept per clip
            tc = g["t"] - g.groupby("clip")["t"].transform("mean")
            yc = g[name] - g.groupby("clip")[name].transform("mean")
            stt, syy = float((tc ** 2).sum()), float((yc ** 2).sum())
            ok = len(g) >= 3 and stt > 0
            slope = float((tc * yc).sum()) / stt if ok else np.nan
            corr = float((tc * yc).sum()) / np.sqrt(stt * syy) if ok and syy > 0 else (0.0 if ok else np.nan)
            effect = slope * span / spread if ok and spread > 0 else np.nan
            rows.append({"rank": rank, "dim": d, "descriptor": name, "correlation": corr,
                         "slope": slope, "effect": effect, "n": len(g)})
    return pd.DataFrame(rows).sort_values(["rank", "descriptor"]).reset_index(drop=True)


def label_for(dim: int, rows: pd.DataFrame, min_correlation: float = 0.6,
              min_effect: float = 0.25) -> str:
    """``"z{dim} · {word} ↑"`` for the descriptor of ``rows`` (one dimension's rows of
    :func:`dimension_table`) with the largest |correlation|, when it reaches ``min_correlation``
    and its |effect| ``min_effect``; else ``"z{dim}"``. The word says what moving the slider up
    does (``WORDS``: "brighter" when the centroid rises, "darker" when it falls)."""
    ok = rows[(rows["correlation"].abs() >= min_correlation) & (rows["effect"].abs() >= min_effect)]
    if ok.empty:
        return f"z{dim}"
    best = ok.loc[ok["correlation"].abs().idxmax()]
    rise, fall = WORDS[best["descriptor"]]
    return f"z{dim} · {rise if best['slope'] > 0 else fall} ↑"


def dimension_labels(model: ConvVAE, spec, mels: torch.Tensor, table: pd.DataFrame | None = None,
                     min_correlation: float = 0.6, min_effect: float = 0.25,
                     **traverse_kwargs) -> list[str]:
    """A slider label for every latent dimension, indexed by dimension (``labels[d]``): the
    traversed ones named by :func:`label_for`, the others plain ``"z{d}"``.

    ``table`` is a :func:`dimension_table` already measured; without it the top dimensions are
    traversed here (:func:`traverse` with ``traverse_kwargs``: ``n_dims=8``, ``f0=True``, ...;
    a decode and inversion per point, seconds on a CPU).
    """
    if table is None:
        table = dimension_table(traverse(model, spec, mels, **traverse_kwargs))
    labels = [f"z{d}" for d in range(model.latent_dim)]
    for d, rows in table.groupby("dim"):
        labels[int(d)] = label_for(int(d), rows, min_correlation, min_effect)
    return labels


@dataclass
class Directions:
    """A latent direction per descriptor, from ridge regression on the posterior means.

    ``vectors`` ``(K, D)`` unit vectors (moving along one raises its descriptor); ``step``
    ``(K,)`` the latent distance along it that raises the descriptor's prediction by one of
    its standard deviations across the clips; ``r2`` ``(K,)`` leave-one-out R^2 of the
    prediction (how far the direction can be trusted; <= 0 means not at all); ``mean``, ``std``
    ``(K,)`` the descriptors' mean and spread. ``names`` follows :data:`DESCRIPTORS` (those
    with enough finite values)."""

    names: list[str]
    vectors: torch.Tensor
    step: torch.Tensor
    r2: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def move(self, z: torch.Tensor, name: str, n_sd: float) -> torch.Tensor:
        """``z`` ``(D,)`` or ``(B, D)`` moved so the predicted ``name`` changes by ``n_sd`` of
        its standard deviations (e.g. ``move(z, "centroid_hz", 1.0)``: one spread brighter)."""
        if name not in self.names:
            raise ValueError(f"no direction for {name!r}; have {self.names}")
        k = self.names.index(name)
        return z + n_sd * float(self.step[k]) * self.vectors[k].to(z)

    def table(self) -> pd.DataFrame:
        """One row per descriptor: ``loo_r2``, ``step`` and the descriptor's mean and std."""
        return pd.DataFrame({"descriptor": self.names, "loo_r2": self.r2.numpy(),
                             "step": self.step.numpy(), "mean": self.mean.numpy(),
                             "std": self.std.numpy()})


def descriptor_directions(model: ConvVAE, spec, mels: torch.Tensor,
                          waveforms: torch.Tensor | None = None,
                          descriptors: pd.DataFrame | None = None, alpha: float = 1.0,
                          f0: bool = True) -> Directions:
    """Regress each standardised descriptor on the posterior means (closed-form ridge,
    ``w = (X'X + alpha I)^-1 X'y`` on centred ``X`` ``(N, D)``) and return the directions.

    The descriptors are ``descriptors`` (one row per clip of ``mels``), else measured on
    ``waveforms`` ``(N, 1, samples)``, else on the clips' mels inverted to audio.

    Raises
    ------
    ValueError
        Fewer than 3 clips, or ``descriptors`` with another number of rows.
    """
    n = mels.shape[0]
    if n < 3:
        raise ValueError(f"descriptor_directions needs at least 3 clips, got {n}")
    if descriptors is None:
        waves = waveforms if waveforms is not None else invert(
            spec, mels, griffin_lim_iters=ANALYSIS_GRIFFIN_LIM_ITERS)
        descriptors = clip_descriptors(waves, spec.config.sample_rate, f0=f0,
                                       n_fft=spec.config.n_fft, hop_length=spec.config.hop_length)
    if len(descriptors) != n:
        raise ValueError(f"descriptors must have one row per clip: {n} clips, "
                         f"{len(descriptors)} rows")
    mu, _ = encode_dataset(model, mels)  # (N, D)
    X_all = mu.cpu().double().numpy()
    names, vecs, steps, r2s, means, stds = [], [], [], [], [], []
    for name in DESCRIPTORS:
        y = descriptors[name].to_numpy(dtype=float)
        keep = np.isfinite(y)
        if keep.sum() < 3 or np.std(y[keep]) == 0:
            continue
        X, y = X_all[keep], y[keep]
        m, s = y.mean(), y.std()
        Xc, yc = X - X.mean(0), (y - m) / s
        A = Xc.T @ Xc + alpha * np.eye(X.shape[1])  # (D, D)
        w = np.linalg.solve(A, Xc.T @ yc)  # (D,)
        # leave-one-out residuals of ridge: e_i / (1 - h_ii), H = X (X'X + aI)^-1 X'
        H = Xc @ np.linalg.solve(A, Xc.T)  # (n, n)
        loo = (yc - Xc @ w) / np.maximum(1 - np.diag(H), 1e-9)
        norm = np.linalg.norm(w)
        if norm == 0:
            continue
        names.append(name)
        vecs.append(w / norm)
        steps.append(1.0 / norm)
        r2s.append(1 - float((loo ** 2).sum() / (yc ** 2).sum()))
        means.append(m)
        stds.append(s)
    f = lambda v: torch.tensor(np.asarray(v), dtype=torch.float32)  # noqa: E731
    return Directions(names, f(vecs).reshape(len(names), X_all.shape[1]), f(steps), f(r2s),
                      f(means), f(stds))


def _descriptor_of(label: str) -> str | None:
    """The descriptor a label names (``"z3 · darker ↑"`` -> ``"centroid_hz"``), or None."""
    if " · " not in label:
        return None
    word = label.split(" · ", 1)[1].removesuffix(" ↑")
    return next((k for k, pair in WORDS.items() if word in pair), None)


def label_stability(labels_by_seed: Mapping[object, Sequence[str]], top: int = 8,
                    min_share: float = 2 / 3) -> pd.DataFrame:
    """Which labels hold over seeds.

    Dimensions of models trained with different seeds are not the same axes (z33 of one is not
    z33 of another, and a dimension's sign is arbitrary), so labels are compared by rank and
    by descriptor, not by index and not by direction word.

    Parameters
    ----------
    labels_by_seed : mapping seed -> labels in ranked order
        For each model, its ``top`` most informative dimensions' labels, most informative first
        (``[labels[d] for d in order]`` with :func:`dimension_labels` and
        :func:`rank_dimensions`).

    Returns
    -------
    DataFrame
        One row per descriptor: ``seeds_named`` (in how many seeds some top-``top`` dimension
        is named by it), ``share`` of the seeds, ``ranks`` (its best rank per seed, -1 where
        absent) and ``stable`` (share >= ``min_share``), sorted by share.
    """
    if len(labels_by_seed) < 2:
        raise ValueError(f"label_stability needs labels of at least 2 seeds, got {len(labels_by_seed)}")
    per_seed = {s: [_descriptor_of(lab) for lab in list(labs)[:top]] for s, labs in labels_by_seed.items()}
    counts = Counter(name for names in per_seed.values() for name in set(names) if name)
    rows = []
    for name in DESCRIPTORS:
        ranks = [names.index(name) if name in names else -1 for names in per_seed.values()]
        share = counts[name] / len(per_seed)
        rows.append({"descriptor": name, "seeds_named": counts[name], "share": share,
                     "ranks": ranks, "stable": share >= min_share})
    return pd.DataFrame(rows).sort_values("share", ascending=False).reset_index(drop=True)
