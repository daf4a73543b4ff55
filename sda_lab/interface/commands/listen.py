"""``python -m sda_lab listen RUN FILE --out OUT.wav [--through mel|vae] [--seconds S]``.

Hear a file through a trained run's ears: its first ``--seconds`` (default: one clip of the
model) are mixed to mono, resampled to the run's rate, turned into the run's mel, optionally
encoded and decoded by its VAE (``--through vae``: the posterior mean, clip by clip), and
inverted back to audio by the run's own inversion (:meth:`Inverter.for_run
<sda_lab.representation.inverter.Inverter.for_run>`, as the run's audio figures, ``generate``'s
learned path and the export hear it): its learned inverse mel (``RUN/inverse_mel.pt``) where it
has one, else the NNLS start, then PGHI and fast Griffin-Lim (``--inversion`` forces either
magnitude); through the VAE, the inverse fine-tuned on the model's decoded mels
(``RUN/decoded_inverse_mel.pt``) where the run kept one. The result is written to
``OUT.wav`` by :func:`sda_lab.core._io.write_wav` (16-bit PCM, peaks limited only where they
would clip), and the figures printed are those of the file as written (after the limiter)
against the input (:mod:`sda_lab.representation.metrics`): spectral convergence, log-spectral distance and
the level difference (RMS of output over input, dB). For a silent input (its loudest 20 ms frame
below :data:`SILENT_DBFS`) they are undefined, and said to be.

Errors are one line naming the flag or path, before any work: no such run, a run without a
checkpoint, no such file, unreadable audio, a bad option (``--seconds`` outside one FFT window
of the run .. :data:`MAX_SECONDS`), an ``--out`` that exists (without ``--overwrite``) or is
one of the inputs (FILE or the run's files, by path or by inode), an output that cannot be
written.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import replace
from pathlib import Path

from . import _options as opt

THROUGH = ("mel", "vae")
INVERSIONS = ("auto", "learned", "nnls")
MAX_SECONDS = 3600.0  # an hour: more is refused before reading (the whole of it is held in memory)
SILENT_DBFS = -90.0  # an input whose loudest 20 ms frame is below this has no ratio to compare
_SECONDS = (f"a positive number of seconds giving at least one FFT window of the run and at "
            f"most {MAX_SECONDS:g} (an hour)")
seconds_option = opt._number(float, lambda v: 0 < v <= MAX_SECONDS, _SECONDS)
MAX_POSTERIOR_STEPS = 10_000  # 100x the recipe's: about 20 s a clip at one thread
steps_option = opt._number(int, lambda v: 0 <= v <= MAX_POSTERIOR_STEPS,
                           f"an integer from 0 to {MAX_POSTERIOR_STEPS}")


def add_parser(subparsers) -> None:
    """Add ``listen`` to ``subparsers`` (an ``argparse`` sub-parser action)."""
    p = subparsers.add_parser(
        "listen", help="hear a file through a run's representation (and VAE), as WAV",
        description="Write FILE's first seconds as the run hears them: through its mel and "
                    "inversion (--through mel) or also through its VAE (--through vae); print "
                    "spectral convergence, log-spectral distance and level against the input.")
    p._sub_name = "listen"
    p.add_argument("run", metavar="RUN", type=opt.path, help="run folder of 'python -m sda_lab train'")
    p.add_argument("file", metavar="FILE", type=opt.path, help="audio file to listen to")
    p.add_argument("--out", metavar="OUT.wav", type=opt.path, required=True, help="WAV file to write")
    p.add_argument("--through", choices=THROUGH, default="mel",
                   help="mel: the representation and its inversion only (default); vae: "
                        "encode and decode as well")
    p.add_argument("--seconds", type=seconds_option, default=None,
                   help="how much of the file's start, at most an hour (default: one clip of "
                        "the model; a shorter file is used whole)")
    p.add_argument("--inversion", choices=INVERSIONS, default="auto",
                   help="auto: the run's learned inverse mel if it has one, else the NNLS start "
                        "(default); either is followed by PGHI and fast Griffin-Lim")
    p.add_argument("--posterior-steps", type=steps_option, default=None,
                   help="--through vae: gradient steps refining each clip's posterior mean on "
                        "the run's own loss (default: the run's, as its audio figures were "
                        "heard; 0: the encoder's mean as it is)")
    p.add_argument("--seed", type=opt.seed, default=0,
                   help="seeds the random phases (of the coefficients too small for PGHI)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.set_defaults(func=run)


def _read(file: str, sample_rate: int, samples: int):
    """The first ``samples`` of ``file`` as a ``(1, 1, n)`` float tensor at ``sample_rate``."""
    import torch

    from ...data._audio_read import rate_problem, read_mono, resample

    path = Path(file)
    if not path.is_file():
        raise FileNotFoundError(f"FILE: no such file: {file}")
    try:
        got = read_mono(path)
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, ...
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"FILE: {file} is not readable audio ({first})") from exc
    mono = got.mono
    if got.n_bad:
        raise ValueError(f"FILE: {file} holds {got.n_bad} NaN/Inf samples")
    if mono.shape[0] == 0:
        raise ValueError(f"FILE: {file} holds no audio frames")
    bad_rate = rate_problem(got.sample_rate)
    if bad_rate:
        raise ValueError(f"FILE: {file}: {bad_rate}")
    need = math.ceil(samples * got.sample_rate / sample_rate) + 1
    mono = mono[:need]
    if got.sample_rate != sample_rate:
        mono = resample(mono, got.sample_rate, sample_rate)
    return torch.from_numpy(mono[:samples].copy()).view(1, 1, -1)  # (1, 1, n)


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: the same path once resolved (links followed), or
    the same inode (a hard link)."""
    try:
        if a.resolve() == b.resolve():
            return True
    except (OSError, RuntimeError):  # a symlink loop
        pass
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _training_files(run_dir: str, flag: str = "RUN") -> dict[str, Path]:
    """``{"one of <flag>'s training files": path}`` for each file the run recorded (none when
    its record or folder cannot be read: then there is nothing of it to overwrite here)."""
    from ...training.rundir import RunDir

    try:
        run = RunDir(run_dir)
        folder, record = run.data_folder(), run.record()
    except (OSError, ValueError):
        return {}
    if folder is None:
        return {}
    names = list(record.get("train_files") or []) + list(record.get("val_files") or [])
    return {f"one of {flag}'s training files ({name})": Path(folder) / name for name in names}


def check_wav_out(out: str) -> Path:
    """``--out`` as a path: one line unless it names a ``.wav`` file (not a folder)."""
    path = Path(out)
    if path.suffix.lower() != ".wav":
        raise ValueError(f"--out: expected a file name ending in .wav, got {out!r}")
    if path.is_dir():
        raise ValueError(f"--out: expected a WAV file, got the folder {out!r}")
    opt.check_file_out_folder(path)
    return path


def check_audio_file(file: str) -> None:
    """One line unless ``FILE`` is an existing file that can be opened (a folder, a symlink to
    nothing and a file without read permission are named as such)."""
    if Path(file).is_dir():
        raise ValueError(f"FILE: expected an audio file, got a folder: {file}")
    if not Path(file).is_file():
        if Path(file).is_symlink():
            raise FileNotFoundError(f"FILE: a symlink that leads to no file (broken, or a "
                                    f"loop): {file}")
        raise FileNotFoundError(f"FILE: no such file: {file}")
    try:
        with open(file, "rb"):
            pass
    except PermissionError:
        raise PermissionError(f"FILE: permission denied: {file}") from None


def check_out_is_not_an_input(out: Path, inputs: dict[str, Path]) -> None:
    """``ValueError`` (one line naming ``--out``) when ``out`` is one of ``inputs`` (``{what:
    path}``): writing it would replace an input with its reconstruction."""
    for what, path in inputs.items():
        if _same_file(out, path):
            raise ValueError(f"--out: expected a file that is not one of the inputs, got "
                             f"{str(out)!r}, which is {what} ({path}); writing it would replace "
                             f"it with its reconstruction")


def listen(run_dir: str, file: str, out: str, through: str = "mel",
           seconds: float | None = None, inversion: str = "auto", seed: int = 0,
           posterior_steps: int | None = None, overwrite: bool = False) -> dict:
    """Do what ``listen`` does; returns ``{"spectral_convergence", "log_spectral_distance_db",
    "level_db", "silent_input", "input_dbfs", "inversion", "samples", "sample_rate",
    "file_seconds", "out", "limited_db", "posterior_steps"}``.

    ``through="vae"``: each clip's posterior mean is refined by ``posterior_steps`` (None: the
    run's ``TrainConfig.posterior_steps``) before decoding
    (:func:`~sda_lab.training.posterior.heard_reconstruction`), as the run's audio figures
    were heard.

    The three figures are those of the waveform as written (after
    :func:`~sda_lab.core._io.limit_peaks`) against the input, None when the input is silent
    (``silent_input``: its loudest 20 ms frame, ``input_dbfs``, is below :data:`SILENT_DBFS`).
    ``limited_db`` is the writer's largest gain reduction (dB, 0: none).
    Raises one-line errors (module docstring) before any work.
    """
    import torch

    from ...core._io import check_writable_dir, write_wav
    from ...representation.inverse_mel import INVERSE_MEL_FILE
    from ...representation.inverter import Inverter
    from ...studies.descriptors import clip_length
    from ...training.rundir import RunDir
    from ...training.checkpoint import load_checkpoint
    from ...training.config import TrainConfig
    from ...training.posterior import heard_reconstruction

    if through not in THROUGH:
        raise ValueError(f"--through: expected one of {', '.join(THROUGH)}, got {through!r}")
    if inversion not in INVERSIONS:
        raise ValueError(f"--inversion: expected one of {', '.join(INVERSIONS)}, got "
                         f"{inversion!r}")
    if posterior_steps is not None and through != "vae":
        raise ValueError(f"--posterior-steps: expected with --through vae (a posterior to "
                         f"refine), got --through {through}")
    if seconds is not None and not (0 < seconds <= MAX_SECONDS):
        raise ValueError(f"--seconds: expected {_SECONDS}, got {seconds!r}")
    out_path = check_wav_out(out)
    ckpt_path = RunDir(run_dir).run_checkpoint()
    check_audio_file(file)
    inverse_path = Path(run_dir) / INVERSE_MEL_FILE
    check_out_is_not_an_input(out_path, {"FILE": Path(file), "RUN's checkpoint": ckpt_path,
                                         "RUN's learned inverse mel": inverse_path,
                                         **_training_files(run_dir)})
    if out_path.exists() and not overwrite:
        raise ValueError(f"--out: {out} exists; choose another name or pass --overwrite")
    check_writable_dir(out_path.parent if str(out_path.parent) else ".", "--out folder")
    if inversion == "learned" and not inverse_path.is_file():
        raise FileNotFoundError(f"--inversion learned: RUN has no {INVERSE_MEL_FILE} "
                                f"({inverse_path})")
    ckpt = load_checkpoint(ckpt_path, device="cpu")
    spec = ckpt.spectrogram()
    model = ckpt.model.eval()
    config = ckpt.train_config or TrainConfig()
    if posterior_steps is not None:
        config = replace(config, posterior_steps=posterior_steps)
    sr = spec.config.sample_rate
    clip = clip_length(spec, model.config.n_frames)
    n_fft = spec.config.n_fft
    if seconds is not None and seconds * sr < n_fft:
        raise ValueError(f"--seconds: expected a number of seconds from {n_fft / sr:.3g} (one "
                         f"FFT window of the run: {n_fft} samples at {sr} Hz) to "
                         f"{MAX_SECONDS:g} (an hour), got {seconds!r}")
    want = clip if seconds is None else max(1, round(seconds * sr))
    x = _read(file, sr, want)  # (1, 1, n)
    n = x.shape[-1]
    if n < spec.config.n_fft:
        raise ValueError(f"FILE: {file} holds {n} samples at {sr} Hz, fewer than one FFT window "
                         f"({spec.config.n_fft}); use a longer file")
    inverter = Inverter.for_run(run_dir, spec, learned={"auto": None, "learned": True,
                                                        "nnls": False}[inversion],
                                mels="analysed" if through == "mel" else "decoded")
    torch.manual_seed(seed)

    def invert(mel, length):  # (k, 1, n_mels, T) -> (k, 1, length)
        return inverter(mel, length, generator=torch.Generator().manual_seed(seed),
                        progress=True)

    with torch.no_grad():
        if through == "mel":
            y = invert(spec.waveform_to_mel(x), n)  # (1, 1, n)
        else:  # the model sees whole clips: cut, pad the last, decode, join, trim
            k = math.ceil(n / clip)
            padded = torch.nn.functional.pad(x, (0, k * clip - n))  # (1, 1, k * clip)
            clips = padded.view(k, 1, clip)  # (k, 1, clip)
            mel = spec.waveform_to_mel(clips)  # (k, 1, n_mels, T)
            if mel.shape[-1] != model.config.n_frames:
                raise ValueError(f"RUN: clips of {clip} samples give {mel.shape[-1]} frames, the "
                                 f"model was built for {model.config.n_frames}")
            decoded = heard_reconstruction(model, mel, config, spec.mel_magnitude,
                                           progress=True)  # (k, 1, n_mels, T)
            y = invert(decoded, clip).reshape(1, 1, -1)[..., :n]  # (1, 1, n)
    if not bool(torch.isfinite(y).all()):
        raise ValueError(f"RUN: its {'VAE and ' if through == 'vae' else ''}inversion gave "
                         f"NaN/Inf samples for {file}; nothing written")
    limited_db = write_wav(out_path, y[0, 0], sr)
    return {**written_figures(x, y, spec), "inversion": inverter.name,
            "samples": n, "sample_rate": sr, "file_seconds": n / sr if n < want else None,
            "out": str(out_path), "limited_db": limited_db,
            "posterior_steps": config.posterior_steps if through == "vae" else None}


def written_figures(x, y, spec) -> dict:
    """The figures of a waveform ``y`` ``(1, 1, n)`` as written (after
    :func:`~sda_lab.core._io.limit_peaks`) against the input ``x`` ``(1, 1, n)``, at the rate
    and STFT of ``spec``: ``{"spectral_convergence", "log_spectral_distance_db", "level_db",
    "silent_input", "input_dbfs"}``; the three figures None when the input is silent (its
    loudest 20 ms frame, ``input_dbfs``, below :data:`SILENT_DBFS`)."""
    from ...core._io import limit_peaks
    from ...representation.metrics import (level_db, log_spectral_distance,
                                           loudest_frame_dbfs, spectral_convergence)

    c = spec.config
    written = limit_peaks(y, c.sample_rate)  # (1, 1, n) what the file holds
    input_dbfs = float(loudest_frame_dbfs(x, c.sample_rate)[0])
    silent = not input_dbfs >= SILENT_DBFS
    figures = (None, None, None) if silent else (
        float(spectral_convergence(x, written, c.n_fft, c.hop_length)[0]),
        float(log_spectral_distance(x, written, c.n_fft, c.hop_length)[0]),
        float(level_db(x, written)[0]))
    return {"spectral_convergence": figures[0], "log_spectral_distance_db": figures[1],
            "level_db": figures[2], "silent_input": silent, "input_dbfs": input_dbfs}


def figures_line(r: dict) -> str:
    """The line ``listen`` and ``blend`` print for :func:`written_figures`' ``r``."""
    from ...training.audio_eval import LEVEL_JND_DB

    if r["silent_input"]:
        return (f"spectral convergence, log-spectral distance and level: undefined, the input "
                f"(mixed to mono) is silent (its loudest 20 ms frame is {r['input_dbfs']:.1f} "
                f"dBFS, below "
                f"{SILENT_DBFS:g}): there is nothing in it to compare against")
    level, sc = r["level_db"], r["spectral_convergence"]
    side = ("at the input's level" if abs(level) < LEVEL_JND_DB else
            "quieter" if level < 0 else "louder")
    return (f"as written, against the input: spectral convergence {sc:.3f}"
            f"{' (further from the input than silence is)' if sc >= 1 else ''}, log-spectral "
            f"distance {r['log_spectral_distance_db']:.2f} dB, level {level:+.1f} dB ({side}; "
            "RMS of the output over the input)")


def run(args: argparse.Namespace) -> int:
    """Run ``listen``; returns the exit status (errors propagate to the CLI's one line)."""
    from ...core._io import limited_clause

    r = listen(args.run, args.file, args.out, through=args.through, seconds=args.seconds,
               inversion=args.inversion, seed=args.seed, posterior_steps=args.posterior_steps,
               overwrite=args.overwrite)
    scaled = limited_clause(r["limited_db"])
    whole = (f" (FILE holds only {r['file_seconds']:.2f} s: all of it)"
             if r["file_seconds"] is not None and args.seconds is not None else "")
    steps = r["posterior_steps"]
    posterior = ("" if steps is None else ", the encoder's posterior mean" if not steps else
                 f", the posterior mean refined by {opt.count(steps, 'step')}")
    print(f"wrote {r['out']}: {r['samples'] / r['sample_rate']:.2f} s at {r['sample_rate']} Hz "
          f"through {args.through}{posterior} ({r['inversion']}){scaled}{whole}")
    print(figures_line(r))
    return 0
