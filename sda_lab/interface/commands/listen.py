"""``python -m sda_lab listen RUN FILE --out OUT.wav [--through mel|vae] [--seconds S]``.

Hear a file through a trained run's ears: its first ``--seconds`` (default: one clip of the
model) are mixed to mono, resampled to the run's rate, turned into the run's mel, optionally
encoded and decoded by its VAE (``--through vae``: the posterior mean, clip by clip), and
inverted back to audio with the run's learned inverse mel (``RUN/inverse_mel.pt``,
:mod:`sda_lab.representation.inverse_mel`, with a PGHI start) where it has one, else the
spectrogram's default NNLS inversion (``--inversion`` forces either). The result is written to
``OUT.wav`` (16-bit PCM, scaled down only if it would clip), and the spectral convergence and
log-spectral distance against the input are printed (:mod:`sda_lab.representation.metrics`).

Errors are one line naming the flag or path: no such run, a run without a checkpoint, no such
file, unreadable audio, a bad option, an output that cannot be written.
"""

from __future__ import annotations

import argparse
import io
import math
from pathlib import Path

from . import _options as opt

THROUGH = ("mel", "vae")
INVERSIONS = ("auto", "learned", "nnls")


def add_parser(subparsers) -> None:
    """Add ``listen`` to ``subparsers`` (an ``argparse`` sub-parser action)."""
    p = subparsers.add_parser(
        "listen", help="hear a file through a run's representation (and VAE), as WAV",
        description="Write FILE's first seconds as the run hears them: through its mel and "
                    "inversion (--through mel) or also through its VAE (--through vae); print "
                    "spectral convergence and log-spectral distance against the input.")
    p._sub_name = "listen"
    p.add_argument("run", metavar="RUN", help="run folder of 'python -m sda_lab train'")
    p.add_argument("file", metavar="FILE", help="audio file to listen to")
    p.add_argument("--out", metavar="OUT.wav", required=True, help="WAV file to write")
    p.add_argument("--through", choices=THROUGH, default="mel",
                   help="mel: the representation and its inversion only (default); vae: "
                        "encode and decode as well")
    p.add_argument("--seconds", type=opt.positive_float, default=None,
                   help="how much of the file's start (default: one clip of the model)")
    p.add_argument("--inversion", choices=INVERSIONS, default="auto",
                   help="auto: the run's learned inverse mel if it has one, else NNLS (default)")
    p.add_argument("--seed", type=opt.seed, default=0, help="seeds Griffin-Lim's random phases")
    p.set_defaults(func=run)


def _read(file: str, sample_rate: int, samples: int):
    """The first ``samples`` of ``file`` as a ``(1, 1, n)`` float tensor at ``sample_rate``."""
    import torch

    from ...data._audio_read import read_mono, resample

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
    need = math.ceil(samples * got.sample_rate / sample_rate) + 1
    mono = mono[:need]
    if got.sample_rate != sample_rate:
        mono = resample(mono, got.sample_rate, sample_rate)
    return torch.from_numpy(mono[:samples].copy()).view(1, 1, -1)  # (1, 1, n)


def listen(run_dir: str, file: str, out: str, through: str = "mel",
           seconds: float | None = None, inversion: str = "auto", seed: int = 0) -> dict:
    """Do what ``listen`` does; returns ``{"spectral_convergence", "log_spectral_distance_db",
    "inversion", "samples", "sample_rate", "out"}``. Raises one-line errors (module docstring)."""
    import soundfile as sf
    import torch

    from ...core._io import atomic_write, check_writable_dir
    from ...representation.inverse_mel import (INVERSE_MEL_FILE, load_inverse_mel,
                                               mel_to_waveform_learned)
    from ...representation.metrics import log_spectral_distance, spectral_convergence
    from ...studies.descriptors import clip_length
    from ...studies.generate import run_checkpoint
    from ...training.checkpoint import load_checkpoint

    if through not in THROUGH:
        raise ValueError(f"--through: expected one of {', '.join(THROUGH)}, got {through!r}")
    if inversion not in INVERSIONS:
        raise ValueError(f"--inversion: expected one of {', '.join(INVERSIONS)}, got "
                         f"{inversion!r}")
    if seconds is not None and not (0 < seconds < math.inf):
        raise ValueError(f"--seconds: expected a positive number, got {seconds!r}")
    out_path = Path(out)
    if out_path.suffix.lower() != ".wav":
        raise ValueError(f"--out: expected a file name ending in .wav, got {out!r}")
    if out_path.is_dir():
        raise ValueError(f"--out: expected a WAV file, got the folder {out!r}")
    ckpt_path = run_checkpoint(run_dir)
    if not Path(file).is_file():
        raise FileNotFoundError(f"FILE: no such file: {file}")
    check_writable_dir(out_path.parent if str(out_path.parent) else ".", "--out folder")
    inverse_path = Path(run_dir) / INVERSE_MEL_FILE
    if inversion == "learned" and not inverse_path.is_file():
        raise FileNotFoundError(f"--inversion learned: RUN has no {INVERSE_MEL_FILE} "
                                f"({inverse_path})")
    ckpt = load_checkpoint(ckpt_path, device="cpu")
    spec = ckpt.spectrogram()
    model = ckpt.model.eval()
    sr = spec.config.sample_rate
    clip = clip_length(spec, model.config.n_frames)
    want = clip if seconds is None else max(1, round(seconds * sr))
    x = _read(file, sr, want)  # (1, 1, n)
    n = x.shape[-1]
    if n < spec.config.n_fft:
        raise ValueError(f"FILE: {file} holds {n} samples at {sr} Hz, fewer than one FFT window "
                         f"({spec.config.n_fft}); use a longer file or --seconds")
    inverse = None
    if inversion != "nnls" and inverse_path.is_file():
        inverse = load_inverse_mel(inverse_path)
        inverse.check_spectrogram(spec)
    torch.manual_seed(seed)

    def invert(mel, length):
        if inverse is None:
            return spec.mel_to_waveform(mel, length=length)  # (k, 1, length)
        return mel_to_waveform_learned(spec, inverse, mel, "pghi", length=length,
                                       generator=torch.Generator().manual_seed(seed))

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
            mu, _ = model.encode(mel)  # (k, D)
            decoded = model.decode(mu, mel.shape)  # (k, 1, n_mels, T)
            y = invert(decoded, clip).reshape(1, 1, -1)[..., :n]  # (1, 1, n)
    sc = float(spectral_convergence(x, y, spec.config.n_fft, spec.config.hop_length))
    lsd = float(log_spectral_distance(x, y, spec.config.n_fft, spec.config.hop_length))
    peak = max(1.0, float(y.abs().max()))
    buf = io.BytesIO()
    sf.write(buf, (y[0, 0] / peak).numpy(), sr, format="WAV", subtype="PCM_16")
    atomic_write(out_path, lambda f: f.write(buf.getvalue()))
    return {"spectral_convergence": sc, "log_spectral_distance_db": lsd,
            "inversion": "learned inverse mel + PGHI" if inverse is not None else "NNLS default",
            "samples": n, "sample_rate": sr, "out": str(out_path), "scaled_by": 1 / peak}


def run(args: argparse.Namespace) -> int:
    """Run ``listen``; returns the exit status (errors propagate to the CLI's one line)."""
    r = listen(args.run, args.file, args.out, through=args.through, seconds=args.seconds,
               inversion=args.inversion, seed=args.seed)
    scaled = f", scaled by {r['scaled_by']:.3f} to avoid clipping" if r["scaled_by"] < 1 else ""
    print(f"wrote {r['out']}: {r['samples'] / r['sample_rate']:.2f} s at {r['sample_rate']} Hz "
          f"through {args.through} ({r['inversion']}){scaled}")
    print(f"spectral convergence {r['spectral_convergence']:.3f}, log-spectral distance "
          f"{r['log_spectral_distance_db']:.2f} dB against the input")
    return 0
