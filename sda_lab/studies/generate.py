"""New sounds from a trained run, checked against copying.

On small data the risk is a model that hands back its training clips: every sample is checked
by :mod:`sda_lab.studies.copying` (its nearest training clip, relative to its next nearest).

:func:`load_run` reads a run folder of ``python -m sda_lab train`` (``best.pt`` preferred,
else ``checkpoint.pt``, and ``metrics.json``) and reloads the run's own training and held-out
files (the lists recorded in ``metrics.json``, checked against their fingerprints:
:mod:`sda_lab.studies.run_files`) from the folder recorded there; :func:`generate_run` is the
``generate`` command's work: samples made, checked and written in batches of :data:`BATCH`.
A sample is **near-silent** when its loudest 20 ms frame is below :data:`SILENT_DBFS` and
**broken** when it holds NaN/Inf; neither is written as a sound (``keep_silent`` writes the
near-silent ones), and ``samples.csv`` says which and why.

With ``seconds`` each sample is a sound of that length continued past one clip
(:mod:`sda_lab.studies.continuation`: latent windows decoded, crossfaded in the mel domain and
inverted once); the copying check then takes, per sample, the most copy-like of its
decoded windows (each window is a clip's shape), and ``samples.csv`` says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..representation.inverter import Inverter
from .descriptors import DESCRIPTORS, F0_FLOOR_HZ, MIN_VOICED, clip_descriptors, clip_length, invert
from .continuation import check_seconds, continue_mel, describe
from .copying import can_tell, copy_summary, nearest_clips, reconstruction_distances
from .prior import PRIORS, LatentPrior, decode_samples, fit_gmm_prior, normal_prior

__all__ = ["Run", "load_run", "prior_for",
           "sample_sounds", "generate_run", "MAX_SAMPLES", "BATCH", "SILENT_DBFS"]

MAX_SAMPLES = 10_000  # --n at most: every sample is a WAV file and a row
BATCH = 16  # samples decoded, inverted, checked and written together
SILENT_DBFS = -50.0  # near-silent below this (loudest 20 ms frame, RMS), as the loader's silence


@dataclass
class Run:
    """A trained run: ``model`` (eval mode), ``spec`` (its AudioSpectrogram), ``metrics`` (its
    metrics.json), ``clips`` (AudioClips of the run's own files reloaded from the recorded
    folder), ``mels`` ``(N, 1, n_mels, T)`` of every clip, ``train_idx`` / ``val_idx`` into
    both, and ``notes``: one line per way the folder differs from the run's record."""

    path: Path
    model: object
    spec: object
    metrics: dict
    clips: object
    mels: torch.Tensor
    train_idx: list[int]
    val_idx: list[int]
    notes: list[str] = field(default_factory=list)

    @property
    def train_mels(self) -> torch.Tensor:
        return self.mels[self.train_idx]  # (N_train, 1, n_mels, T)

    @property
    def val_mels(self) -> torch.Tensor:
        return self.mels[self.val_idx]  # (N_val, 1, n_mels, T)


def _argv_value(argv: list, flag: str, default: str) -> str:
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return str(argv[i + 1])
        if isinstance(a, str) and a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return default


def load_run(run: str | Path, device: str | None = "cpu") -> Run:
    """Load a run folder of ``python -m sda_lab train`` and the run's own files.

    The training and held-out files are those recorded in ``metrics.json``
    (:func:`sda_lab.studies.run_files.run_files`): a file added to the folder since is not
    used, a gone or changed one is said in ``Run.notes``.

    Raises
    ------
    FileNotFoundError
        No such folder, no ``best.pt``/``checkpoint.pt``, no ``metrics.json``, or the training
        audio folder recorded in it is gone, or none of its training files is there unchanged
        (one line naming it).
    ValueError
        Unreadable metrics.json or checkpoint, or clips that no longer fit the model.
    """
    from ..data.config import DataConfig
    from ..data.load import load_folder
    from ..training.checkpoint import load_checkpoint
    from ..training.rundir import RunDir
    from ..training.own_audio import clips_to_mels
    from .run_files import run_files

    path = Path(run)
    ckpt_path = RunDir(path).run_checkpoint()
    metrics_path = path / "metrics.json"
    if not metrics_path.is_file():
        raise FileNotFoundError(f"RUN: {path} has no metrics.json (it names the training audio "
                                "folder); the run did not finish or is not a train run")
    try:
        metrics = json.loads(metrics_path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"RUN: {metrics_path} is not readable JSON ({exc})") from exc
    folder = metrics.get("folder")
    if not folder or not Path(folder).is_dir():
        raise FileNotFoundError(f"training clips not found: the folder {folder!r} recorded in "
                                f"{metrics_path} does not exist on this machine")
    files = run_files(metrics, folder)
    ckpt = load_checkpoint(ckpt_path, device=device)
    spec = ckpt.spectrogram()
    argv = metrics.get("argv") or []
    cfg = ckpt.model.config
    seconds = clip_length(spec, cfg.n_frames) / spec.config.sample_rate
    recorded = metrics.get("data_config") or {
        "short_files": _argv_value(argv, "--short-files", "pad"),
        "cut": _argv_value(argv, "--cut", "grid")}
    data_config = DataConfig(**{**recorded, "sample_rate": spec.config.sample_rate,
                                "clip_seconds": seconds})
    clips = load_folder(folder, data_config, only=files.train + files.val)
    mels = clips_to_mels(spec, clips.waveforms)  # (N, 1, n_mels, T)
    if mels.shape[-2:] != (cfg.n_mels, cfg.n_frames):
        raise ValueError(f"clips of {folder} give mels of {tuple(mels.shape[-2:])}, the model "
                         f"was built for ({cfg.n_mels}, {cfg.n_frames})")
    train, val = set(files.train), set(files.val)
    train_idx = [i for i, f in enumerate(clips.files) if f in train]
    val_idx = [i for i, f in enumerate(clips.files) if f in val]
    if not train_idx:
        raise FileNotFoundError(f"training clips not found: none of the run's training files "
                                f"in {folder} gives a clip now")
    return Run(path, ckpt.model.eval(), spec, metrics, clips, mels, train_idx, val_idx,
               files.notes)


def prior_for(run: Run, kind: str, seed: int = 0) -> LatentPrior:
    """``kind`` "gmm" (fitted on the run's training posterior means) or "normal"."""
    from ..model.vae import encode_dataset

    if kind not in PRIORS:
        raise ValueError(f"--prior: expected one of {', '.join(PRIORS)}, got {kind!r}")
    if kind == "normal":
        return normal_prior(run.model.latent_dim)
    mu, _ = encode_dataset(run.model, run.train_mels)  # (N_train, D)
    return fit_gmm_prior(mu.cpu(), seed=seed)


def sample_sounds(model, spec, prior: LatentPrior, n: int, seed: int = 0,
                  inverter: Inverter | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` latents from ``prior`` (seeded), decoded and inverted: ``z`` ``(n, D)``, mels
    ``(n, 1, n_mels, T)``, waveforms ``(n, 1, samples)`` on the CPU. ``inverter``: what turns
    the mels into sound (a run's :meth:`Inverter.for_run
    <sda_lab.representation.inverter.Inverter.for_run>`), else the spectrogram's own inversion
    (:func:`sda_lab.studies.descriptors.invert`, which raises its ``ValueError``)."""
    z = prior.sample(n, seed)  # (n, D)
    mels = decode_samples(model, z)  # (n, 1, n_mels, T)
    return z, mels, invert(spec, mels, seed=seed, inverter=inverter)  # (n, 1, samples)


def _screen(waves: torch.Tensor, sample_rate: int) -> tuple[np.ndarray, list[str]]:
    """Per waveform of ``(b, 1, samples)``: its loudest 20 ms frame in dBFS and "" (fine),
    "broken: ..." or "near-silent: ..."."""
    from ..representation.metrics import loudest_frame_dbfs

    finite = torch.isfinite(waves).flatten(1).all(dim=1)  # (b,)
    level = loudest_frame_dbfs(torch.nan_to_num(waves, 0.0, 0.0, 0.0), sample_rate).numpy()
    why = []
    for ok, db in zip(finite.tolist(), level):
        if not ok:
            why.append("broken: NaN/Inf samples")
        elif not db >= SILENT_DBFS:
            why.append(f"near-silent: loudest 20 ms frame {db:.1f} dBFS, below "
                       f"{SILENT_DBFS:g} dBFS")
        else:
            why.append("")
    return level, why


def _f0_notes(f0_hz: np.ndarray, why: list[str], f0: bool) -> list[str]:
    """Why each sample's ``f0_hz`` is empty ("" where it is filled)."""
    out = []
    for hz, w in zip(f0_hz, why):
        if np.isfinite(hz):
            out.append("")
        elif w:
            out.append(f"no pitch: {w.split(':')[0]}")
        elif not f0:
            out.append("not estimated (--no-f0)")
        else:
            out.append(f"unpitched: pYIN found a pitch above {F0_FLOOR_HZ:.0f} Hz in under "
                       f"{MIN_VOICED:.0%} of its loud frames")
    return out


def _nearest_windows(windows: torch.Tensor, run: Run) -> pd.DataFrame:
    """:func:`~sda_lab.studies.copying.nearest_clips` of decoded windows ``(b, W, 1, n_mels,
    T)``, one row per sample: the training columns of its most copy-like window (smallest
    relative distance; ``nn_window``, 0 the first) and the held-out columns of its window
    nearest to a held-out clip."""
    b, w = windows.shape[:2]
    near = nearest_clips(windows.flatten(0, 1).nan_to_num(), run.train_mels, run.val_mels)
    rows = np.arange(b) * w
    best_train = rows + near["relative_distance"].to_numpy().reshape(b, w).argmin(1)
    best_val = rows + near["nn_val_mse"].to_numpy().reshape(b, w).argmin(1)
    out = near.iloc[best_train].reset_index(drop=True)
    for col in ("nn_val_mse", "nn_val_index"):
        out[col] = near[col].to_numpy()[best_val]
    out["nn_window"] = best_train - rows
    return out


def generate_run(run: str | Path | Run, out: str | Path, n: int = 16, prior: str = "gmm",
                 seed: int = 0, f0: bool = True, keep_silent: bool = False,
                 progress=None, seconds: float | None = None, preset=None
                 ) -> tuple[pd.DataFrame, dict | None]:
    """Sample ``n`` sounds from a run and write them to ``out`` in batches of :data:`BATCH`.

    Each batch is decoded, inverted through the run's own
    :class:`~sda_lab.representation.inverter.Inverter` (:meth:`Inverter.for_run
    <sda_lab.representation.inverter.Inverter.for_run>`: its learned inverse mel, the start it
    kept, or the NNLS start; PGHI and fast Griffin-Lim), checked and written before the next
    is made: ``out/sample_000.wav`` ... (16-bit PCM, :func:`sda_lab.core._io.write_wav`) and
    ``out/samples.csv`` rewritten (atomically) with a row for every sample made so far: file
    (empty where not written), ``status`` ("kept", "dropped: <why>", or "kept: <why>" with
    ``keep_silent``), ``loudest_20ms_dbfs``, prior, seed, inversion (the inverter's ``name``),
    descriptors, ``f0_note`` (why ``f0_hz`` is empty), nearest training and held-out clips and
    their mel MSE, ``relative_distance`` and ``copy``
    (:func:`sda_lab.studies.copying.nearest_clips`; an unflagged sample's is ``"cannot tell"``
    where the check's sensitivity is below :data:`sda_lab.studies.copying.MIN_SENSITIVITY`). With ``seconds`` (None: one clip) each
    sample is that long (:func:`sda_lab.studies.continuation.continue_mel` from the prior's
    latent, inverted once; ``round(seconds * sample_rate)`` samples), batches hold ``BATCH /
    seconds`` samples, the copying columns are those of the sample's most copy-like decoded
    window, and the table adds
    ``seconds``, ``windows``, ``nn_window``, ``continuation`` and ``copy_check`` (what was
    done). ``preset``: a :class:`~sda_lab.studies.presets.Preset` of this run; every sample then
    starts from its latent instead of a prior sample (with ``seconds``, each continuation after
    the first window is drawn anew; the table's ``start`` column names the preset). Near-silent
    and broken samples (module docstring)
    are dropped, near-silent ones kept with ``keep_silent``. An interrupt keeps every batch
    written (the ``KeyboardInterrupt`` carries ``samples_done``). ``progress(done, n)`` is
    called after each batch.

    Returns the table and the copying check over the written samples
    (:func:`sda_lab.studies.copying.copy_summary`; None when no sample was written). Raises what
    :func:`load_run` and :meth:`Inverter.for_run
    <sda_lab.representation.inverter.Inverter.for_run>` raise, ``ValueError`` for ``n`` outside
    [1, :data:`MAX_SAMPLES`], an unknown prior or ``seconds`` out of range
    (:func:`sda_lab.studies.continuation.check_seconds`), and
    :class:`sda_lab.core._io.WriteError` for an unwritable ``out``, before any sample is made.
    """
    from ..core._io import atomic_write, check_writable_dir, write_wav

    if isinstance(n, bool) or int(n) != n or not 1 <= n <= MAX_SAMPLES:
        raise ValueError(f"--n: expected a number of sounds from 1 to {MAX_SAMPLES}, got {n!r}")
    if prior not in PRIORS:
        raise ValueError(f"--prior: expected one of {', '.join(PRIORS)}, got {prior!r}")
    out = check_writable_dir(out, "--out")  # before any long work
    run = run if isinstance(run, Run) else load_run(run)
    length = None if seconds is None else check_seconds(seconds, run.spec.config, "--seconds")
    inverter = Inverter.for_run(run.path, run.spec)  # its learned inverse mel, or its start
    latent_prior = prior_for(run, prior, seed)
    if preset is None:
        z = latent_prior.sample(int(n), seed)  # (n, D)
    else:
        z = preset.z.to(torch.float32).expand(int(n), -1)  # (n, D): the preset's latent
    batch = BATCH if seconds is None else max(1, int(BATCH / max(1.0, float(seconds))))
    windows_generator = torch.Generator().manual_seed(seed)  # the continuations' windows
    references = reconstruction_distances(run.model, run.train_mels, run.val_mels)
    tells = can_tell(references)
    c, labels = run.spec.config, run.clips.labels
    width = max(3, len(str(n - 1)))
    tables: list[pd.DataFrame] = []
    done = 0
    try:
        for b, start in enumerate(range(0, n, batch)):
            if length is None:
                mels = decode_samples(run.model, z[start:start + batch])  # (b, 1, n_mels, T)
                windows = mels.unsqueeze(1)  # (b, 1, 1, n_mels, T)
                waves = invert(run.spec, mels, seed=seed + b, inverter=inverter)  # (b, 1, samples)
            else:
                frames = run.spec.get_mel_shape(length)[1]
                cont = continue_mel(run.model, latent_prior, z[start:start + batch], frames,
                                    windows_generator)
                mels, windows = cont.mel, cont.windows  # (b, 1, n_mels, T'), (b, W, 1, n_mels, T)
                waves = inverter(mels, length, generator=torch.Generator().manual_seed(seed + b)
                                 ).cpu()  # (b, 1, length)
            level, why = _screen(waves, c.sample_rate)
            ok = [i for i, w in enumerate(why) if not w.startswith("broken")]
            table = pd.DataFrame(np.nan, index=range(len(why)), columns=list(DESCRIPTORS))
            if ok:
                table.iloc[ok] = clip_descriptors(waves[ok], c.sample_rate, f0=f0,
                                                  n_fft=c.n_fft, hop_length=c.hop_length).values
            keep = [not w or (keep_silent and w.startswith("near-silent")) for w in why]
            names = [f"sample_{start + i:0{width}d}.wav" if k else "" for i, k in
                     enumerate(keep)]
            table.insert(0, "file", names)
            table.insert(1, "status", ["kept" if not w else (f"kept: {w}" if k else
                                                             f"dropped: {w}")
                                       for w, k in zip(why, keep)])
            table.insert(2, "loudest_20ms_dbfs", level)
            table.insert(3, "prior", prior)
            table.insert(4, "seed", seed)
            table.insert(5, "inversion", inverter.name)
            if preset is not None:
                table.insert(6, "start", f"preset {preset.name}")
            table["f0_note"] = _f0_notes(table["f0_hz"].to_numpy(float), why, f0)
            near = _nearest_windows(windows, run)
            if length is not None:
                at = 7 if preset is not None else 6
                table.insert(at, "seconds", float(seconds))
                table.insert(at + 1, "windows", windows.shape[1])
                table.insert(at + 2, "continuation", describe(run.model.config))
                table["nn_window"] = near["nn_window"]
                table["copy_check"] = (f"most copy-like of each sample's {windows.shape[1]} "
                                       "decoded windows (nn_window: which; 0 is the first)")
            table["nn_train_mse"] = near["nn_train_mse"]
            table["nn_train_clip"] = [labels[run.train_idx[i]] for i in near["nn_train_index"]]
            table["relative_distance"] = near["relative_distance"]
            table["copy"] = [bool(c) if tells or c else "cannot tell" for c in near["copy"]]
            if run.val_idx:
                table["nn_val_mse"] = near["nn_val_mse"]
                table["nn_val_clip"] = [labels[run.val_idx[i]] for i in near["nn_val_index"]]
            for name, w in zip(names, waves):
                if name:
                    write_wav(out / name, w[0], c.sample_rate)  # limited only where it would clip
            tables.append(table)
            csv = pd.concat(tables, ignore_index=True).to_csv(index=False).encode()
            atomic_write(out / "samples.csv", lambda f: f.write(csv))
            done = start + len(why)
            if progress is not None:
                progress(done, n)
    except KeyboardInterrupt as exc:
        exc.samples_done = done
        raise
    table = pd.concat(tables, ignore_index=True)
    written = table[table["file"] != ""]
    check = (copy_summary(written["relative_distance"].to_numpy(float), references)
             if len(written) else None)
    return table, check
