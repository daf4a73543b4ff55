"""What a listener hears of a run: audio-domain figures on held-out files, and the verdict.

A model is judged on the audio it writes, not on its loss. For each file (at most
``max_files``), its first clips (at most ``max_clips`` each) go three (or four) ways, each ending
in the run's own inversion (its :class:`~sda_lab.representation.inverter.Inverter`, the one
``listen`` uses: for what the model makes, the run's inverse fine-tuned on its decoded mels
where it kept one; for the mel round trip, the inverse of mels computed from audio):

- **model**: the clip's mel encoded, the posterior mean decoded, inverted; where the run's
  ``posterior_steps`` is not 0 the encoder's mean is first refined on the clip's own loss
  (:func:`~sda_lab.training.posterior.heard_reconstruction`), as ``listen`` plays it, and the
  encoder's mean as it is is heard too, as a fourth path, **encoder mean** (where the copying
  check and an exported file place a clip);
- **mel round trip**: the clip's mel inverted (what the representation alone loses);
- **average sound**: the training clips' mean mel inverted once (what a model that learned
  nothing beyond the average would play), set against every clip. It goes through the mel round
  trip's inversion: the inverse fine-tuned on the model's decoded mels is fitted to what the
  model makes, and on the mean mel it can be far off (SC above 20, tens of dB loud).

Each file's output goes through the WAV writer's peak limiter
(:func:`sda_lab.core._io.limit_peaks`: the gain lowered only around samples beyond full scale),
the file's clips are joined, and the join is compared with the input's joined clips up to the
input's last sound (the zeros a short file was padded with to fill its clip are left out, as
``listen`` writes the file; frames of padding would flatter a short one-shot's log-spectral
distance): spectral convergence (Sturmel & Daudet 2011) and log-spectral distance in dB
(:mod:`sda_lab.representation.metrics`, on the spectrogram's STFT), and the level difference in
dB (RMS of the output over RMS of the input). Figures over files are means over files; the
level's worst file (largest difference either way) is kept too.

The verdict (:func:`judge`) reads the spectral convergence, which weighs every STFT bin by its
magnitude, so it is decided by what is loud enough to hear. A model's audio lies between two
references: what learning nothing gives, per file the average sound or silence, whichever is
closer (spectral convergence capped at 1, silence's: an average sound far louder than a quiet
file does not make a silent model look good), and the mel round trip (what a perfect model on
this representation and inversion gives). The **share of the way** it covers is
``(SC_nothing - SC_model) / (SC_nothing - SC_mel)`` (:attr:`AudioEvaluation.share`): 0 at
nothing learned, 1 at the mel round trip.

- ``"collapsed"``: no active latent unit: every clip decodes to about one sound;
- ``"at the average"``: the model's audio is not clearly closer to the inputs than nothing learned
  (spectral convergence at or above :data:`AVERAGE_RATIO` times ``SC_nothing``), or the mel
  round trip itself is no closer than that (the files differ too little to judge a model);
- ``"partly learned"``: closer than nothing learned, but nearer to it than to the mel round
  trip (a share of the way below :data:`LEARNED_SHARE`): a listener hears the input's outline,
  blurred;
- ``"learned"``: at least :data:`LEARNED_SHARE` of the way to the mel round trip.

Each sentence says the share, how far the model stays from the mel round trip, and its level.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

import pandas as pd
import torch

from ..core._io import limit_peaks
from ..core.progress import progress_bar
from ..model.vae import eval_batches
from ..representation.inverter import Inverter
from ..representation.metrics import level_db, log_spectral_distance, spectral_convergence
from .config import TrainConfig
from .posterior import heard_reconstruction

__all__ = ["AVERAGE_RATIO", "LEVEL_JND_DB", "LEARNED_SHARE", "PATHS", "ENCODER_MEAN", "MEANING", "VERDICTS",
           "AudioEvaluation", "AudioVerdict", "chosen_clips", "evaluate_audio", "judge",
           "share_of_the_way"]

AVERAGE_RATIO = 0.9  # model SC at or above this fraction of the average sound's: at the average
LEVEL_JND_DB = 1.0  # a level difference smaller than this is "at the input's level" (about the
# smallest change in loudness a listener notices)
PATHS = ("model", "mel_round_trip", "average_sound")
ENCODER_MEAN = "encoder_mean"  # the fourth path where the model's posterior is refined
FIGURES = ("spectral_convergence", "log_spectral_distance_db", "level_db")
MEANING = ("spectral convergence is the share of the input's spectrum the output gets wrong "
           "(0: identical, 1: as far off as silence, above 1: further off than silence)")
LEARNED_SHARE = 0.5  # nearer the mel round trip than the average sound: learned
VERDICTS = ("learned", "partly learned", "at the average", "collapsed")


@dataclass(frozen=True)
class AudioVerdict:
    """``kind`` (one of :data:`VERDICTS`) and ``sentence``, the one line a user reads."""

    kind: str
    sentence: str

    def report(self) -> dict[str, str]:
        return {"kind": self.kind, "sentence": self.sentence, "meaning": MEANING}


@dataclass
class AudioEvaluation:
    """Per-file figures of the paths heard and their means.

    ``files``: one row per file with ``file``, ``clips`` and ``<path>_<figure>`` for every path
    of :data:`PATHS` (and :data:`ENCODER_MEAN` where ``posterior_steps`` > 0) and figure of
    :data:`FIGURES`. ``on``: ``"validation"`` (held-out files) or ``"training"`` (nothing was
    held out). ``inversion``: what turned mels into sound. ``posterior_steps``: the
    refinement steps of the model path's posterior mean (0: the encoder's as it is).
    """

    files: pd.DataFrame
    on: str
    inversion: str
    seconds: float
    posterior_steps: int = 0

    @property
    def paths(self) -> tuple[str, ...]:
        """The paths heard: :data:`PATHS`, and :data:`ENCODER_MEAN` where refined."""
        return PATHS + ((ENCODER_MEAN,) if self.posterior_steps else ())

    def mean(self, path: str, figure: str) -> float:
        """Mean over files of ``figure`` for ``path`` (NaN-skipping: silent inputs)."""
        return float(self.files[f"{path}_{figure}"].mean())

    def worst_level_db(self, path: str = "model") -> float:
        """The file level difference farthest from 0 dB, with its sign."""
        col = self.files[f"{path}_level_db"].dropna()
        return float(col.loc[col.abs().idxmax()]) if len(col) else math.nan

    @property
    def nothing_learned_sc(self) -> float:
        """Mean over files of the average sound's spectral convergence capped at 1 (silence's):
        what learning nothing gives."""
        return float(self.files["average_sound_spectral_convergence"].clip(upper=1.0).mean())

    @property
    def share(self) -> float:
        """:func:`share_of_the_way` of the model between nothing learned and the mel round
        trip (NaN where the mel round trip is no closer than nothing learned)."""
        return share_of_the_way(self.mean("model", "spectral_convergence"),
                                self.mean("mel_round_trip", "spectral_convergence"),
                                self.nothing_learned_sc)

    @property
    def sc_ratio(self) -> float:
        """The model's spectral convergence over the mel round trip's (1: as good as the
        representation allows)."""
        return self.mean("model", "spectral_convergence") / self.mean(
            "mel_round_trip", "spectral_convergence")

    def summary(self) -> dict[str, object]:
        """The JSON form stored in ``metrics.json``: means per path, worst level, ratio, the
        share of the way (:func:`share_of_the_way`) and the per-file rows."""
        out: dict[str, object] = {"on": self.on, "inversion": self.inversion,
                                  "files_scored": len(self.files), "seconds": self.seconds,
                                  "posterior_steps": self.posterior_steps}
        for p in self.paths:
            out[p] = {f: self.mean(p, f) for f in FIGURES}
        for p in {"model", ENCODER_MEAN} & set(self.paths):
            out[p]["level_db_worst_file"] = self.worst_level_db(p)
        out["sc_ratio_to_mel_round_trip"] = self.sc_ratio
        out["nothing_learned_sc"] = self.nothing_learned_sc
        out["share_of_the_way"] = self.share
        out["files"] = self.files.to_dict(orient="records")
        return out

    def table(self) -> pd.DataFrame:
        """One row per path: mean spectral convergence, log-spectral distance, level."""
        rows = [{"path": p.replace("_", " "), **{f: self.mean(p, f) for f in FIGURES}}
                for p in self.paths]
        return pd.DataFrame(rows).set_index("path")


def chosen_clips(files: Sequence[str], indices: Sequence[int], max_files: int = 12,
                 max_clips: int = 2) -> list[tuple[str, list[int]]]:
    """The clips :func:`evaluate_audio` scores: ``(file, clip indices)`` for the first
    ``max_files`` files by name, at most ``max_clips`` clips each from the file's start."""
    by_file: dict[str, list[int]] = {}
    for i in indices:
        by_file.setdefault(files[i], []).append(int(i))
    return [(name, by_file[name][:max_clips]) for name in sorted(by_file)[:max_files]]


@torch.no_grad()
def evaluate_audio(model, spectrogram, waveforms: torch.Tensor, files: Sequence[str],
                   indices: Sequence[int], train_mels: torch.Tensor, inverter: Inverter,
                   on: str = "validation", max_files: int = 12, max_clips: int = 2,
                   batch: int = 8, progress: bool = False,
                   round_trip_inverter: Inverter | None = None,
                   train_config: TrainConfig | None = None) -> AudioEvaluation:
    """Score the clips ``waveforms[indices]`` (grouped by ``files[i]``) through the paths.

    Parameters
    ----------
    model : ConvVAE
        Run in eval mode (posterior mean), its mode restored.
    spectrogram : AudioSpectrogram
        The run's representation; its STFT (n_fft, hop) is the metrics'.
    waveforms : Tensor
        ``(N, 1, samples)`` clips, the loader's (in [-1, 1]).
    files, indices
        ``files[i]`` names clip ``i``'s file; ``indices`` are the clips to score.
    train_mels : Tensor
        ``(N_train, 1, n_mels, T)``: their mean is the average sound.
    inverter : Inverter
        The run's inversion of what the model makes (PGHI draws no random numbers, so the
        figures are repeatable): the model is heard through it.
    round_trip_inverter : Inverter, optional
        The run's inversion of mels computed from audio, for the mel round trip and the average
        sound (:meth:`Inverter.for_run <sda_lab.representation.inverter.Inverter.for_run>` with
        ``mels="analysed"``); None: ``inverter``.
    max_files, max_clips
        At most this many files (first by name) and clips per file (from its start).
    batch : int
        Clips per inversion call (batched NNLS and Griffin-Lim are cheaper per clip).
    train_config : TrainConfig, optional
        The run's: where its ``posterior_steps`` is not 0, the model path's posterior mean is
        refined on each clip's own loss (:func:`~sda_lab.training.posterior.refine_posterior`)
        and the encoder's mean is heard too (:data:`ENCODER_MEAN`). None: the encoder's mean.

    Raises
    ------
    ValueError
        On no clips to score, or clips of another length than the training mels'.
    """
    if len(indices) == 0:
        raise ValueError("evaluate_audio: expected clips to score, got none")
    t0 = time.perf_counter()
    chosen = chosen_clips(files, indices, max_files, max_clips)
    flat = [i for _, ids in chosen for i in ids]
    length = waveforms.shape[-1]
    x = waveforms[flat].float()  # (n, 1, samples), every scored clip
    mel = torch.cat([spectrogram.waveform_to_mel(x[i:i + batch])
                     for i in range(0, len(flat), batch)])  # (n, 1, n_mels, T)
    steps = train_config.posterior_steps if train_config is not None else 0
    decoded = torch.cat([r.cpu() for *_, r in eval_batches(model, mel, batch, decode=True)])
    paths = {"model": decoded, "mel_round_trip": mel}  # (n, 1, n_mels, T) each
    if steps:
        paths[ENCODER_MEAN] = decoded
        paths["model"] = heard_reconstruction(model, mel, train_config,
                                              spectrogram.mel_magnitude)  # (n, 1, n_mels, T)
    mean_mel = train_mels.float().mean(dim=0, keepdim=True)  # (1, 1, n_mels, T)
    todo = [(mean_mel, "average_sound")] + [
        (m[i:i + batch], path) for path, m in paths.items() for i in range(0, len(flat), batch)]
    if progress:
        todo = progress_bar(todo, desc="listening", unit="batch", leave=False)
    heard: dict[str, list[torch.Tensor]] = {p: [] for p in ("average_sound", *paths)}
    analysed = round_trip_inverter or inverter
    through = {"mel_round_trip": analysed, "average_sound": analysed}
    for m, path in todo:
        heard[path].append(through.get(path, inverter)(m, length).cpu())  # (b, 1, samples)
    out = {p: torch.cat(v) for p, v in heard.items()}  # (n, 1, samples); average: (1, 1, .)
    c = spectrogram.config
    rows, at = [], 0
    for name, ids in chosen:
        k = len(ids)
        ref = x[at:at + k].reshape(1, 1, -1)  # the file's clips joined: (1, 1, k * samples)
        n = _sounding(ref, c.n_fft)
        row: dict[str, object] = {"file": name, "clips": k}
        for path in heard:
            y = (out[path].expand(k, -1, -1) if path == "average_sound"
                 else out[path][at:at + k]).reshape(1, 1, -1)  # (1, 1, k * samples)
            y = limit_peaks(y, c.sample_rate)  # as the WAV writer writes the file
            ref_n, y = ref[..., :n], y[..., :n]  # (1, 1, n): the padding left out
            row[f"{path}_spectral_convergence"] = float(
                spectral_convergence(ref_n, y, c.n_fft, c.hop_length)[0])
            row[f"{path}_log_spectral_distance_db"] = float(
                log_spectral_distance(ref_n, y, c.n_fft, c.hop_length)[0])
            row[f"{path}_level_db"] = float(level_db(ref_n, y)[0])
        rows.append(row)
        at += k
    name = inverter.name
    if round_trip_inverter is not None and round_trip_inverter.name != name:
        name += f" (the mel round trip: {round_trip_inverter.name})"
    return AudioEvaluation(pd.DataFrame(rows), on, name, time.perf_counter() - t0, steps)


def _sounding(ref: torch.Tensor, n_fft: int) -> int:
    """Samples of ``ref`` ``(1, 1, S)`` up to its last non-zero one (the loader pads a short
    file's last clip with zeros), at least one STFT window and at most ``S``."""
    nonzero = torch.nonzero(ref.reshape(-1))
    last = int(nonzero[-1]) + 1 if len(nonzero) else ref.shape[-1]
    return min(max(last, n_fft), ref.shape[-1])


def share_of_the_way(sc_model: float, sc_mel: float, sc_nothing: float) -> float:
    """``(sc_nothing - sc_model) / (sc_nothing - sc_mel)``: 0 at nothing learned, 1 at the mel
    round trip (module docstring); NaN where the mel round trip is no closer than nothing."""
    gap = sc_nothing - sc_mel
    return (sc_nothing - sc_model) / gap if gap > 0 else math.nan


def judge(evaluation: AudioEvaluation, active_units: int) -> AudioVerdict:
    """The run's verdict in one sentence, from what it sounds like (module docstring)."""
    sc = evaluation.mean("model", "spectral_convergence")
    sc_mel = evaluation.mean("mel_round_trip", "spectral_convergence")
    nothing = evaluation.nothing_learned_sc
    lvl, worst = evaluation.mean("model", "level_db"), evaluation.worst_level_db("model")
    where = "held-out files" if evaluation.on == "validation" else "training files (none held out)"
    figures = (f"spectral convergence {sc:.2f} on {where}, against {sc_mel:.2f} for the mel "
               f"round trip and {nothing:.2f} for nothing learned (the training set's average "
               "sound or silence, whichever is closer)")
    loud = ("at the input's level" if abs(lvl) < LEVEL_JND_DB else
            f"{abs(lvl):.1f} dB {'quieter' if lvl < 0 else 'louder'} than the input")
    error = f"{sc / sc_mel:.1f}x the error of the mel round trip, " if sc_mel > 0 else ""
    per_file = evaluation.files["model_spectral_convergence"]
    beyond = int((per_file >= 1).sum())
    silence = (f"; {beyond} of {len(per_file)} files came out further from the input than "
               f"silence is (spectral convergence up to {per_file.max():.2f})"
               if beyond else "")
    lsd = evaluation.mean("model", "log_spectral_distance_db")
    lsd_average = evaluation.mean("average_sound", "log_spectral_distance_db")
    quiet = (f"; its log-spectral distance, which counts quiet bins as much as loud ones, is "
             f"further than the average sound's ({lsd:.1f} against {lsd_average:.1f} dB): "
             "the quiet detail is off" if lsd > lsd_average else "")
    heard = f"{error}{loud} (worst file {worst:+.1f} dB){silence}{quiet}"
    if active_units == 0:
        return AudioVerdict("collapsed", f"collapsed: no latent unit is in use, so every clip "
                            f"decodes to about the same sound ({figures}: {heard})")
    share = evaluation.share
    if not sc < AVERAGE_RATIO * nothing:
        return AudioVerdict("at the average", f"at the average: the model's audio is not clearly "
                            f"closer to the inputs than nothing learned ({figures}: {heard})")
    if math.isnan(share):  # the mel round trip is no closer than nothing learned
        return AudioVerdict("at the average", f"at the average: on these files even the mel "
                            f"round trip is no closer than nothing learned, so a model cannot "
                            f"be told apart from it ({figures}: {heard})")
    way = ("as close as the mel round trip" if share >= 1 else
           f"{share:.0%} of the way from nothing learned to the mel round trip")
    tail = f"{figures}: {way}, {heard}"
    if not share >= LEARNED_SHARE:
        return AudioVerdict("partly learned", f"partly learned: the model's audio is nearer to "
                            f"nothing learned than to the mel round trip, an outline of the "
                            f"input ({tail})")
    return AudioVerdict("learned", f"learned: {tail}")
